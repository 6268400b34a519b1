#!/usr/bin/env bash
# Every test suite: installs what is missing, builds, and runs C++ (doctest),
# C, CLI, Python, Go and Rust tests, the node, remote-tier, cluster and fuzz
# corpus tests through CTest; then rebuilds with
# AddressSanitizer+UBSan and runs the C++/C suites again, with the node,
# remote-tier and in-process cluster client tests when gRPC is found. Set
# KVC_SKIP_SANITIZERS=1 to skip the sanitizer pass, KVC_TSAN=1 to add a
# ThreadSanitizer pass of the stress tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
JOBS=${KVC_JOBS:-2}

echo "== build (RelWithDebInfo)"
scripts/build.sh
echo "== tests"
ctest --test-dir build --output-on-failure -j"$JOBS" --timeout 900

if [[ "${KVC_SKIP_SANITIZERS:-0}" != 1 ]]; then
  # With gRPC (when found): the node (libkvc/net, kvc serve), the remote tier
  # and the cluster client run under the sanitizers too. Not the multi-process
  # cluster fault tests (minutes each), nor the redis benchmark.
  echo "== build (ASan+UBSan)"
  ASAN_TARGETS="kvc_core_tests kvc_tier_tests kvc_policy_tests kvc_sim_tests kvc_capi_test kvc_remote_cache_tests kvc_remote_tier_test kvc_node_capi_test"
  NET_TARGETS="kvc_cli kvc_node_wire_test kvc_node_bad_peer_test kvc_node_security_test kvc_node_raw_wire_test kvc_node_batch_wire_test kvc_node_pack_wire_test kvc_shm_node_test kvc_shm_holder kvc_shm_wire_test kvc_remote_queue_tests kvc_remote_parity_test kvc_cluster_placement_tests kvc_cluster_client_tests kvc_fuzz_node_request_replay"
  # -O1 -g1 (line tables): what ASan recommends, and half the compile time of
  # -O2 -g (node_service.cc: 13 s against 24 s of CPU); reports keep file:line.
  ASAN_CONFIG=(-DKVC_SANITIZE=address -DKVC_WITH_CUDA=OFF -DKVC_BUILD_BINDINGS=OFF
               "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo "${ASAN_CONFIG[@]}" >/dev/null
  if [[ -d build-asan/libkvc/net ]]; then ASAN_TARGETS="$ASAN_TARGETS $NET_TARGETS"; fi  # gRPC was found
  KVC_BUILD_DIR=build-asan KVC_BUILD_TARGETS="$ASAN_TARGETS" scripts/build.sh "${ASAN_CONFIG[@]}"
  echo "== tests under ASan+UBSan"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # Leaks of Debian's gRPC and c-ares, not of kvc: each entry says why.
  export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" --timeout 900 \
    -L 'core|policy|sim|capi|tier|remote|node|fuzz' -E 'bench vs redis'
  # The cluster client against in-process nodes (tests/cluster/placement_*).
  for t in kvc_cluster_placement_tests kvc_cluster_client_tests; do
    if [[ -x build-asan/tests/cluster/$t ]]; then build-asan/tests/cluster/$t; fi
  done
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
fi
if [[ "${KVC_TSAN:-0}" == 1 ]]; then
  echo "== build (TSan)"
  KVC_BUILD_DIR=build-tsan KVC_BUILD_TARGETS="kvc_core_tests kvc_tier_tests" scripts/build.sh -DKVC_SANITIZE=thread -DKVC_WITH_CUDA=OFF -DKVC_WITH_GRPC=OFF -DKVC_BUILD_BINDINGS=OFF
  echo "== stress and SSD tier tests under TSan"
  TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j"$JOBS" --timeout 900 -L core -R stress
  TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j"$JOBS" --timeout 900 -L tier
fi
echo "== all test suites passed"
