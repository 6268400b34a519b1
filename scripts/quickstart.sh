#!/usr/bin/env bash
# The main job: install what is missing, build, and run the embedded cache
# under `kvc bench` with the default chat-like workload, printing a report.
# Extra arguments go to `kvc bench` (see `kvc bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec build/cli/kvc bench "$@"
