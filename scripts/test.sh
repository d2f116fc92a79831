#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a tested build: install what is
# missing, build with warnings as errors and run every test, then do the same under
# ASan+UBSan. Prints how many tests ran, how many were skipped, and why.
# Without /dev/kvm, the KVM tests (skipped by the default build) then run inside one
# nested kvm_amd under QEMU TCG (scripts/nested-stage.sh, npt=0): the "nested-kvm:"
# line of the summary.
# PAGELAB_SKIP_ASAN=1 skips the sanitizer pass (quicker local runs);
# PAGELAB_SKIP_NESTED=1 the nested KVM stage; PAGELAB_NESTED_NPT="0 1" runs it with
# npt=1 as well.
set -euo pipefail
cd "$(dirname "$0")/.."
nested=0
if [ ! -e /dev/kvm ] && [ "${PAGELAB_SKIP_NESTED:-0}" != 1 ]; then nested=1; fi
if [ "$nested" = 1 ]; then scripts/setup.sh --nested; else scripts/setup.sh; fi

jobs=$(nproc)
summaries=()
failures=() # each failed test's name and the end of its output (failed-tests.sh)
status=0

# QEMU guests are named guest=pagelab-PID-N: one whose pagelab is gone is an orphan.
count_orphan_qemus() {
  local n=0 pid owner
  for pid in $(pgrep -f 'guest=pagelab-[0-9]+-' || true); do
    owner=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null |
      sed -nE 's/.*qemu.*guest=pagelab-([0-9]+)-.*/\1/p')
    if [ -n "$owner" ] && [ ! -d "/proc/$owner" ]; then n=$((n + 1)); fi
  done
  echo "$n"
}

# pagelab's files directly in /tmp and /dev/shm, sorted (for a before/after diff).
pagelab_temp_files() {
  find /tmp /dev/shm -maxdepth 1 -mindepth 1 -name '*pagelab*' 2>/dev/null | sort
}

run_suite() {
  local preset=$1 dir=$2
  echo "== build ($preset)"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j"$jobs"
  echo "== test ($preset)"
  local log rc test_tmp before_tmp
  log=$(mktemp)
  # Tests leave nothing behind: they run with a TMPDIR of their own that must end
  # empty, and no new pagelab file may appear in /tmp or /dev/shm.
  test_tmp=$(mktemp -d)
  before_tmp=$(pagelab_temp_files)
  set +e
  TMPDIR="$test_tmp" ctest --preset "$preset" -j"$jobs" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  sleep 1 # PDEATHSIG and reaping are asynchronous
  local orphans
  orphans=$(count_orphan_qemus)
  echo "orphan qemu processes: $orphans"
  if [ "$orphans" != 0 ]; then rc=1; fi
  local left
  left=$({
    find "$test_tmp" -mindepth 1 -maxdepth 1
    comm -13 <(echo "$before_tmp") <(pagelab_temp_files)
  } | sed '/^$/d')
  echo "files left in temporary directories: $(echo -n "$left" | grep -c . || true)"
  if [ -n "$left" ]; then
    echo "$left" | head -n 20
    rc=1
  fi
  rm -rf "$test_tmp"
  local total failed skipped passed
  total=$(sed -nE 's/.*tests failed out of ([0-9]+).*/\1/p' "$log" | tail -n1)
  failed=$(sed -nE 's/.* ([0-9]+) tests failed out of.*/\1/p' "$log" | tail -n1)
  skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)$' "$log" || true)
  total=${total:-0}
  failed=${failed:-0}
  passed=$((total - failed - skipped))
  echo "-- skipped tests and why ($preset):"
  scripts/skip-reasons.sh "$dir"
  summaries+=("$preset: $passed passed, $failed failed, $skipped skipped")
  # CI keeps the end of the log only: the failures go to the summary as well.
  if [ "$failed" != 0 ]; then
    failures+=("-- $preset:")
    while IFS= read -r line; do failures+=("$line"); done < <(scripts/failed-tests.sh "$dir")
  fi
  rm -f "$log"
  return "$rc"
}

start=$(date +%s)
run_suite default build || status=1
# The default build only: ASan's shadow memory and speed do not suit a TCG guest.
# PAGELAB_NESTED_NPT="0 1" adds a pass with nested paging (TCG's page walks).
if [ "$nested" = 1 ]; then
  for npt in ${PAGELAB_NESTED_NPT:-0}; do
    echo "== nested KVM (kvm_amd npt=$npt inside QEMU TCG)"
    nested_log=$(mktemp)
    if scripts/nested-stage.sh --npt="$npt" build | tee "$nested_log"; then :; else status=1; fi
    summaries+=("$(grep -E '^nested-kvm: ' "$nested_log" | tail -n1)")
    rm -f "$nested_log"
  done
elif [ -e /dev/kvm ]; then
  summaries+=("nested-kvm: not needed: /dev/kvm exists, the KVM tests ran natively")
else
  summaries+=("nested-kvm: skipped (PAGELAB_SKIP_NESTED=1)")
fi
if [ "${PAGELAB_SKIP_ASAN:-0}" != 1 ]; then
  run_suite asan build-asan || status=1
fi
# The parser fuzz targets, where the libFuzzer toolchain (clang++) is installed.
if [ "${PAGELAB_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz"
  fuzz_log=$(mktemp)
  if scripts/fuzz.sh | tee "$fuzz_log"; then fuzz_ok=1; else fuzz_ok=0 status=1; fi
  while read -r line; do summaries+=("$line"); done < <(grep -E '^fuzz (.*): |^fuzz: skipped' "$fuzz_log")
  [ "$fuzz_ok" = 1 ] || summaries+=("fuzz: FAILED (see build-fuzz/*.log)")
  rm -f "$fuzz_log"
fi
echo "== summary ($(($(date +%s) - start)) s)"
for s in "${summaries[@]}"; do echo "$s"; done
if [ "${#failures[@]}" != 0 ]; then
  echo "== failed tests"
  for s in "${failures[@]}"; do echo "$s"; done
fi
exit $status
