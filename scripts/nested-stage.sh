#!/usr/bin/env bash
# The nested KVM test stage of scripts/test.sh: every test that skips here because
# there is no /dev/kvm runs inside ONE guest with a real kvm_amd (scripts/nested-kvm.sh,
# QEMU TCG), so the KVM backend is tested on machines without KVM. Where /dev/kvm
# exists the KVM tests already ran natively and this does nothing.
#
#   scripts/nested-stage.sh [--npt=0|1] [BUILD_DIR]     (default build; not ASan)
#
# Which tests: those whose native run skips with "needs /dev/kvm" (found by running
# the test binaries here with QEMU hidden, ~10 s), so a new KVM test joins by itself.
# A test that wedges the guest fails with the last console lines; the rest of its
# binary goes on in a new guest. With npt=1 the tests in the known wedge list below
# are skipped with the reason. The last line is the summary:
#   nested-kvm: N passed, N failed, N skipped (...)
# Exit status 0 when nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."
npt=0
case "${1:-}" in --npt=0 | --npt=1) npt=${1#--npt=}; shift ;; esac
dir=${1:-build}
# Every test binary built (a layer without KVM tests lists none).
layers=()
for bin in "$dir"/tests/pagelab_*_tests; do
  [ -x "$bin" ] || continue
  name=${bin##*/pagelab_}
  layers+=("${name%_tests}")
done
[ ${#layers[@]} -gt 0 ] || { echo "nested-kvm: no test binaries in $dir/tests" >&2; exit 2; }

if [ -e /dev/kvm ]; then
  echo "nested-kvm: not needed: /dev/kvm exists, the KVM tests ran natively"
  exit 0
fi

# npt=1 only: any L2 state with EFER.LME=1, CR4.PAE=0, CR0.PG=0 hangs the whole guest
# kernel (KVM_RUN never returns): QEMU's emulated #VMEXIT (do_vmexit() calls
# cpu_x86_update_cr0() while the L2's LME/PAE are still loaded, and it returns early).
# pagelab knows it (lab::platform_wedge): the mode matrix does not try such writes and
# ProbeModes skips its test, both saying why. Tests listed here are skipped by the
# stage as well, with this reason, should a new one be found to wedge.
npt1_wedges=()
npt1_wedge_reason="kvm_amd npt=1 under QEMU TCG wedges the guest kernel on any L2 state with EFER.LME=1, CR4.PAE=0, CR0.PG=0 (QEMU's emulated #VMEXIT, do_vmexit() -> cpu_x86_update_cr0() returns early); runs with npt=0"

start=$(date +%s)
work=build-nested/stage
rm -rf "$work"
mkdir -p "$work"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The KVM tests: what skips natively for want of /dev/kvm (QEMU hidden, so the
#    listing run is quick).
for layer in "${layers[@]}"; do
  bin=$dir/tests/pagelab_${layer}_tests
  [ -x "$bin" ] || { echo "nested-kvm: $bin is not built" >&2; exit 2; }
  TMPDIR=$tmp PAGELAB_QEMU=/nonexistent "$bin" --gtest_color=no 2>&1 |
    awk -v layer="$layer" '
      /^\[ RUN      \] / { test = $4; next }
      /: Skipped$/ { want = 1; next }
      want == 1 { want = 0; if (index($0, "needs /dev/kvm") == 1) print layer "." test }
    ' >>"$work/selected" || true # a test that needs QEMU fails here: only the listing counts
done
selected=$(grep -c '' "$work/selected" || true)
if [ "$selected" = 0 ]; then
  echo "nested-kvm: no test skips for want of /dev/kvm: nothing to run"
  exit 0
fi

# 2. Run them, one command per test binary, in as few guests as wedges allow.
: >"$work/results" # layer.Suite.Test RESULT
: >"$work/skip-reasons"
: >"$work/failures"
todo=$work/selected
boots=0
for round in 1 2 3 4 5 6; do
  : >"$work/commands"
  for layer in "${layers[@]}"; do
    filter=$({ grep "^$layer\." "$todo" || true; } | while read -r t; do
      skip=0
      if [ "$npt" = 1 ]; then for w in "${npt1_wedges[@]+"${npt1_wedges[@]}"}"; do [ "$t" = "$w" ] && skip=1; done; fi
      if [ "$skip" = 1 ]; then
        if ! grep -q "^$t " "$work/results"; then
          echo "$t skipped" >>"$work/results"
          echo "  skipped $t: $npt1_wedge_reason" >>"$work/skip-reasons"
        fi
      else
        printf '%s:' "${t#"$layer".}"
      fi
    done)
    [ -n "$filter" ] || continue
    echo "$dir/tests/pagelab_${layer}_tests --gtest_color=no --gtest_filter=${filter%:}" >>"$work/commands"
  done
  [ -s "$work/commands" ] || break
  set +e
  scripts/nested-kvm.sh --npt="$npt" --timeout "${PAGELAB_NESTED_TIMEOUT:-300}" --commands "$work/commands" --results "$work/round-$round" \
    2> >(grep 'booted in' >&2) | sed 's/--gtest_filter=.*/--gtest_filter=.../'
  set -e
  boots=$((boots + $(ls "$work/round-$round"/console-*.log 2>/dev/null | wc -l)))
  n=0
  while IFS= read -r line; do
    n=$((n + 1))
    layer=$(echo "$line" | sed -E 's|.*/pagelab_([a-z]+)_tests .*|\1|')
    out=$work/round-$round/$n.out
    [ -f "$out" ] || continue
    awk -v layer="$layer" -v results="$work/results" -v reasons="$work/skip-reasons" \
      -v failures="$work/failures" '
      function tail_of(n,   i, s) {  # the last n lines the running test printed
        s = ""
        for (i = (lines > n ? lines - n + 1 : 1); i <= lines; i++) s = s "    " line[i] "\n"
        return s
      }
      /^\[ RUN      \] / { test = $4; lines = 0; running = 1; next }
      running { line[++lines] = $0 }
      /: Skipped$/ { want = 1; next }
      want == 1 { want = 0; reason = $0; next }
      /^\[       OK \] .* \([0-9]+ ms\)$/ { print layer "." $4 " passed" >> results; running = 0; next }
      /^\[  SKIPPED \] .* \([0-9]+ ms\)$/ {
        print layer "." $4 " skipped" >> results
        print "  skipped " layer "." $4 ": " reason >> reasons; running = 0; next }
      /^\[  FAILED  \] .* \([0-9]+ ms\)$/ {
        print layer "." $4 " failed" >> results
        printf "  FAILED %s.%s\n%s", layer, $4, tail_of(40) >> failures; running = 0; next }
      END {
        if (running && test != "") {
          print layer "." test " failed" >> results
          printf "  FAILED %s.%s (the guest wedged or died)\n%s", layer, test, tail_of(40) >> failures
        }
      }' "$out"
  done <"$work/commands"
  # What did not run yet (after a wedge) goes to a new guest.
  grep -vxFf <(cut -d' ' -f1 "$work/results") "$work/selected" >"$work/todo" || true
  todo=$work/todo
  [ -s "$todo" ] || break
done

passed=$(grep -c ' passed$' "$work/results" || true)
failed=$(grep -c ' failed$' "$work/results" || true)
skipped=$(grep -c ' skipped$' "$work/results" || true)
notrun=$((selected - passed - failed - skipped))
echo "-- nested KVM tests: failures"
cat "$work/failures"
echo "-- nested KVM tests: skipped and why"
cat "$work/skip-reasons"
extra=
[ "$notrun" = 0 ] || extra=", $notrun never ran"
echo "nested-kvm: $passed passed, $failed failed, $skipped skipped$extra ($selected KVM tests in kvm_amd npt=$npt under QEMU TCG, $boots guest boot(s), $(($(date +%s) - start)) s)"
[ "$failed" = 0 ] && [ "$notrun" = 0 ]
