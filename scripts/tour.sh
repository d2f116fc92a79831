#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the guided tour: install what is
# missing, build, and run `pagelab tour`. Extra arguments go to the tour.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset default >/dev/null
cmake --build --preset default -j"$(nproc)" --target pagelab
exec build/vmm/pagelab tour "$@"
