#!/usr/bin/env bash
# Installs what kvc needs from Debian 12's packages (idempotent; needs root
# or sudo). Only missing packages are installed; nothing is downloaded from
# anywhere but the Debian archive.
set -euo pipefail

PKGS=(
  cmake g++ make pkg-config git
  libssl-dev libxxhash-dev nlohmann-json3-dev libcli11-dev doctest-dev libabsl-dev
  liburing-dev libtomlplusplus-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc openssl
  python3 python3-dev python3-pytest python3-numpy python3-xxhash swig
  golang-go cargo rustc
  python3-mypy
  # node tests and benchmarks: Redis 7 and hiredis for `kvc bench --redis`
  # (tests start their own redis-server on a free port; no system service
  # is used), clang and its libFuzzer runtime for scripts/fuzz.sh, an HTTP
  # server for the metrics endpoint, etcd for cluster membership.
  redis-server libhiredis-dev
  clang libclang-rt-14-dev
  libcpp-httplib-dev
  etcd-server etcd-client golang-etcd-server-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
