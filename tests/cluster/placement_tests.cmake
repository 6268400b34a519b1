# Included by tests/cluster/CMakeLists.txt. Placement (libkvc/cluster/placement.h):
# weights, movement on join and leave, zones, draining.
add_executable(kvc_cluster_placement_tests ${CMAKE_CURRENT_LIST_DIR}/placement_test.cc $<TARGET_OBJECTS:kvc_doctest_main>)
target_link_libraries(kvc_cluster_placement_tests PRIVATE kvc_net doctest::doctest)
doctest_discover_tests(kvc_cluster_placement_tests TEST_PREFIX "cluster: " PROPERTIES LABELS cluster)
# The cluster client following placement (in-process nodes, a scripted
# membership source): joins, drains, the write quorum, failover, match.
add_executable(kvc_cluster_client_tests ${CMAKE_CURRENT_LIST_DIR}/placement_client_test.cc $<TARGET_OBJECTS:kvc_doctest_main>)
target_link_libraries(kvc_cluster_client_tests PRIVATE kvc_net doctest::doctest)
doctest_discover_tests(kvc_cluster_client_tests TEST_PREFIX "cluster: " PROPERTIES LABELS cluster)
