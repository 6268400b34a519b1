#!/usr/bin/env bash
# Every test suite: installs what is missing, builds, and runs C++ (doctest),
# C, CLI, Python, Go and Rust tests, the node, remote-tier, cluster and fuzz
# corpus tests through CTest; then rebuilds with
# AddressSanitizer+UBSan and runs the C++/C suites again. Set
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
  echo "== build (ASan+UBSan)"
  KVC_BUILD_DIR=build-asan KVC_BUILD_TARGETS="kvc_core_tests kvc_tier_tests kvc_policy_tests kvc_sim_tests kvc_capi_test kvc_remote_cache_tests kvc_remote_tier_test" scripts/build.sh -DKVC_SANITIZE=address -DKVC_WITH_CUDA=OFF -DKVC_WITH_GRPC=OFF -DKVC_BUILD_BINDINGS=OFF
  echo "== tests under ASan+UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS" --timeout 900 -L 'core|policy|sim|capi|tier|remote'
fi
if [[ "${KVC_TSAN:-0}" == 1 ]]; then
  echo "== build (TSan)"
  KVC_BUILD_DIR=build-tsan KVC_BUILD_TARGETS="kvc_core_tests kvc_tier_tests" scripts/build.sh -DKVC_SANITIZE=thread -DKVC_WITH_CUDA=OFF -DKVC_WITH_GRPC=OFF -DKVC_BUILD_BINDINGS=OFF
  echo "== stress and SSD tier tests under TSan"
  TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j"$JOBS" --timeout 900 -L core -R stress
  TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j"$JOBS" --timeout 900 -L tier
fi
echo "== all test suites passed"
