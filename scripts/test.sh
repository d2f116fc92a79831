#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a tested build: install what is
# missing, build with warnings as errors and run every test, then do the same
# under ASan+UBSan. Prints how many tests ran and how many were skipped (and why).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
summary=()
run_suite() {
  local preset=$1 dir=$2
  echo "== build ($preset)"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j"$jobs"
  echo "== test ($preset)"
  local log
  log=$(mktemp)
  set +e
  ctest --preset "$preset" -j"$jobs" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local total skipped failed
  total=$(grep -oE 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  failed=$(grep -oE '[0-9]+ tests failed out of' "$log" | grep -oE '^[0-9]+' || echo 0)
  skipped=$(grep -cE '\*\*\*Skipped|Skipped +[0-9.]+ sec' "$log" || true)
  summary+=("$preset: $((total - failed - skipped)) ran and passed, $failed failed, $skipped skipped (of $total)")
  if grep -qE 'Skipped' "$log"; then
    echo "-- skipped tests and their reasons ($preset):"
    for t in $(grep -E 'Skipped' "$log" | grep -oE '[a-z]+\.[A-Za-z0-9_./]+' | sort -u); do
      reason=$(grep -h -A3 "$t" "$dir"/Testing/Temporary/LastTest.log 2>/dev/null | grep -m1 -oE 'Skipped.*|needs .*' || true)
      echo "   $t ${reason:+- $reason}"
    done
  fi
  rm -f "$log"
  return "$rc"
}

status=0
run_suite ci build || status=1
if [ "${PAGELAB_SKIP_ASAN:-0}" != 1 ]; then
  ASAN_OPTIONS=detect_leaks=1 run_suite asan build-asan || status=1
fi
echo "== summary"
for s in "${summary[@]}"; do echo "$s"; done
exit $status
