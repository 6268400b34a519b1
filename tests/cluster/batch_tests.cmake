# Included by tests/cluster/CMakeLists.txt. Batches through a static-peers
# cluster of three `kvc serve` (test_cluster_batch.py with
# cluster_batch_tool), one of them killed (a few seconds).
add_executable(kvc_cluster_batch_tool ${CMAKE_CURRENT_LIST_DIR}/cluster_batch_tool.c)
target_link_libraries(kvc_cluster_batch_tool PRIVATE kvc)
set_target_properties(kvc_cluster_batch_tool PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
target_compile_options(kvc_cluster_batch_tool PRIVATE -Wall -Wextra -pedantic -Werror)
target_compile_definitions(kvc_cluster_batch_tool PRIVATE _POSIX_C_SOURCE=200809L)
if(KVC_BUILD_CLI AND KVC_SYSTEM_PYTHON)
  add_test(NAME "cluster: batches" COMMAND ${KVC_SYSTEM_PYTHON} -m pytest -q -rs -p no:cacheprovider
           ${CMAKE_CURRENT_LIST_DIR}/test_cluster_batch.py)
  set_tests_properties("cluster: batches" PROPERTIES LABELS cluster TIMEOUT 90
    ENVIRONMENT "KVC_BIN=$<TARGET_FILE:kvc_cli>;KVC_CLUSTER_BATCH_TOOL=$<TARGET_FILE:kvc_cluster_batch_tool>")
endif()
