#!/usr/bin/env bash
# Configures and builds kvc into build/ (or $KVC_BUILD_DIR). Extra arguments
# go to cmake's configure step, e.g. -DKVC_SANITIZE=address.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${KVC_BUILD_DIR:-build}
JOBS=${KVC_JOBS:-2}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=${KVC_BUILD_TYPE:-RelWithDebInfo} "$@"
# KVC_BUILD_TARGETS="a b": build only those targets.
cmake --build "$BUILD_DIR" -j"$JOBS" ${KVC_BUILD_TARGETS:+--target $KVC_BUILD_TARGETS}
