#!/usr/bin/env bash
# Builds the fuzz targets with clang and libFuzzer (+ AddressSanitizer and
# UBSan) in their own build directory and runs one for a while, starting
# from its committed corpus and adding the new inputs it finds there.
#   scripts/fuzz.sh [SECONDS] [TARGET]      defaults: 60, node_request
# Environment: KVC_FUZZ_BUILD_DIR (default build-fuzz), KVC_JOBS (default 2),
# KVC_FUZZ_ARGS (more libFuzzer flags). A crash leaves its input in
# $KVC_FUZZ_BUILD_DIR/artifacts/ and exits non-zero; replay it with
#   $KVC_FUZZ_BUILD_DIR/fuzz/kvc_fuzz_<target> FILE
# Needs Debian's clang and libclang-rt-14-dev (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
TARGET=${2:-node_request}
BUILD_DIR=${KVC_FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${KVC_JOBS:-2}
CORPUS=fuzz/corpus/$TARGET
for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
done
[[ -d $CORPUS ]] || { echo "fuzz.sh: no corpus $CORPUS (targets: $(ls fuzz/corpus | tr '\n' ' '))" >&2; exit 1; }

# Everything built with ASan+UBSan and libFuzzer's coverage instrumentation;
# only the target itself links libFuzzer's main.
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKVC_SANITIZE=address -DKVC_FUZZ_LIBFUZZER=ON -DKVC_WITH_CUDA=OFF -DKVC_BUILD_BINDINGS=OFF \
  -DKVC_BUILD_CLI=OFF -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link
cmake --build "$BUILD_DIR" -j"$JOBS" --target "kvc_fuzz_$TARGET"

mkdir -p "$BUILD_DIR/artifacts"
# New inputs go to the committed corpus directory (review and commit them);
# the committed seeds are read from there too.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$BUILD_DIR/fuzz/kvc_fuzz_$TARGET" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=20 \
  -artifact_prefix="$BUILD_DIR/artifacts/" ${KVC_FUZZ_ARGS:-} "$CORPUS"
echo "fuzz.sh: $TARGET ran ${SECONDS_TO_RUN}s without a crash; corpus: $(ls "$CORPUS" | wc -l) files in $CORPUS"
