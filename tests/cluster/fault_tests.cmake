# Included by tests/cluster/CMakeLists.txt. The load of the fault and checker
# tests (the cluster through the C ABI), and kill -9 of one node of three,
# 20 times, under that load (about 60 s).
add_executable(kvc_fault_load ${CMAKE_CURRENT_LIST_DIR}/fault_load.cc)
target_link_libraries(kvc_fault_load PRIVATE kvc Threads::Threads)
target_compile_options(kvc_fault_load PRIVATE -Wall -Wextra)
set(KVC_FAULT_ENV "KVC_BIN=$<TARGET_FILE:kvc_cli>;KVC_FAULT_LOAD=$<TARGET_FILE:kvc_fault_load>")
if(KVC_BUILD_CLI AND KVC_SYSTEM_PYTHON)
  add_test(NAME "cluster: fault kill -9" COMMAND ${KVC_SYSTEM_PYTHON} -m pytest -q -rs -s -p no:cacheprovider
           ${CMAKE_CURRENT_LIST_DIR}/fault_test.py)
  set_tests_properties("cluster: fault kill -9" PROPERTIES LABELS cluster TIMEOUT 180 ENVIRONMENT "${KVC_FAULT_ENV}")
endif()
# The same with etcd membership (each kill and restart changes the view);
# skips loudly without etcd (about 60 s).
if(KVC_BUILD_CLI AND KVC_SYSTEM_PYTHON)
  add_test(NAME "cluster: fault kill -9 (etcd)" COMMAND ${KVC_SYSTEM_PYTHON} -m pytest -q -rs -s -p no:cacheprovider
           ${CMAKE_CURRENT_LIST_DIR}/fault_etcd_test.py)
  set_tests_properties("cluster: fault kill -9 (etcd)" PROPERTIES LABELS cluster TIMEOUT 180 ENVIRONMENT "${KVC_FAULT_ENV}")
endif()
