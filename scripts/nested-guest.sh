#!/bin/sh
# The guest half of scripts/nested-kvm.sh, run by the initramfs's init (busybox sh)
# from the shared checkout, so changing it needs no new initramfs. Runs the command
# lines of LIST from number FIRST on, each from the checkout's top with its output in
# RUNDIR/N.out and "STATUS SECONDS" in RUNDIR/N.status; the console gets only markers,
# which the host watches to bound each command and to reboot past a wedged one.
#   nested-guest.sh LIST FIRST RUNDIR
list=$1
first=$2
rundir=$3
n=0
while IFS= read -r line; do
  n=$((n + 1))
  [ "$n" -lt "$first" ] && continue
  echo "nested-kvm: begin $n"
  t0=$(date +%s)
  sh -c "$line" >"$rundir/$n.out" 2>&1 </dev/null
  rc=$?
  echo "$rc $(($(date +%s) - t0))" >"$rundir/$n.status"
  sync
  echo "nested-kvm: end $n $rc"
done <"$list"
echo "nested-kvm: all done"
