#!/bin/bash
# Runs the access-test mirror (generate.py N) on QEMU TCG and splits the CPU time:
# pagelab's own, QEMU's (sampled from /proc while it runs: pagelab's `time` counts its
# children only once they are reaped), whole process per case, and pagelab's own peak
# RSS (VmHWM, sampled: QEMU's is not in it).
#
# usage: bench/access_mirror/measure.sh [PAGELAB] [N...]   (default: build/vmm/pagelab 1024 65536)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pagelab=${1:-$here/../../build/vmm/pagelab}
shift || true
sizes=("${@:-1024}")
[ $# -eq 0 ] && sizes=(1024 65536)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tick=$(getconf CLK_TCK)
for n in "${sizes[@]}"; do
  python3 "$here/generate.py" "$n" > "$work/mirror.pgl"
  /usr/bin/time -f "%U %S %M" -o "$work/time" "$pagelab" run --backend qemu "$work/mirror.pgl" \
    > "$work/out" 2> "$work/err" &
  runner=$!
  qemu_ticks=0 qemu="" inner="" hwm=0
  while kill -0 "$runner" 2>/dev/null; do
    [ -z "$inner" ] && inner=$(pgrep -P "$runner" -x pagelab || true)
    if [ -z "$qemu" ] && [ -n "$inner" ]; then
      qemu=$(pgrep -P "$inner" qemu-system || true)
    fi
    if [ -n "$inner" ]; then
      h=$(awk '/^VmHWM/ {print $2}' "/proc/$inner/status" 2>/dev/null || true)
      [ -n "$h" ] && hwm=$h
    fi
    if [ -n "$qemu" ]; then
      t=$(awk '{print $14 + $15}' "/proc/$qemu/stat" 2>/dev/null || true)
      [ -n "$t" ] && qemu_ticks=$t
    fi
    sleep 0.02
  done
  wait "$runner" || { echo "pagelab run failed:"; tail -5 "$work/out" "$work/err"; exit 1; }
  read -r user sys _ < "$work/time"
  cases=$(grep -oE '^[0-9]+ passed' "$work/out" | tail -1 | cut -d' ' -f1)
  python3 - "$n" "$cases" "$user" "$sys" "$hwm" "$qemu_ticks" "$tick" <<'PY'
import sys
n, cases, user, sys_, rss, qticks, tick = sys.argv[1:]
cases = int(cases); total = float(user) + float(sys_); qemu = int(qticks) / int(tick)
own = total - qemu
print(f"{n:>6} cases: pagelab {own:.2f} s CPU ({own / cases * 1e6:.1f} us/case, "
      f"{cases / own:,.0f} cases/s); QEMU {qemu:.2f} s ({qemu / cases * 1e6:.1f} us/case); "
      f"whole {total / cases * 1e6:.1f} us/case; pagelab max RSS {int(rss) / 1024:.0f} MiB")
PY
done
