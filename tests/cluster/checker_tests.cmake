# Included by tests/cluster/CMakeLists.txt; kvc_fault_load comes from
# fault_tests.cmake. The consistency checker: its rules on hand-made
# histories, then the real cluster client passes and the load's planted bugs
# are flagged (about 15 s).
if(KVC_BUILD_CLI AND KVC_SYSTEM_PYTHON)
  add_test(NAME "cluster: checker" COMMAND ${KVC_SYSTEM_PYTHON} -m pytest -q -rs -p no:cacheprovider
           ${CMAKE_CURRENT_LIST_DIR}/checker_test.py)
  set_tests_properties("cluster: checker" PROPERTIES LABELS cluster TIMEOUT 120
    ENVIRONMENT "KVC_BIN=$<TARGET_FILE:kvc_cli>;KVC_FAULT_LOAD=$<TARGET_FILE:kvc_fault_load>")
endif()
