#!/usr/bin/env bash
# Runs commands under a real KVM on a machine without /dev/kvm: Debian's kernel
# booted under QEMU TCG (one vCPU: with two the guest kernel locks up under load),
# kvm_amd loaded on TCG's emulated SVM, this checkout shared into the guest at the
# same path over 9p.
#
#   scripts/nested-kvm.sh [--npt=0|1] [--timeout S] COMMAND [ARG...]
#   scripts/nested-kvm.sh [--npt=0|1] [--timeout S] --commands FILE [--results DIR]
#
# One command: prints its output and exits with its status. A list (FILE: one shell
# command line a line, run from the checkout's top): all in one boot, each command's
# output in DIR/N.out and "STATUS SECONDS" in DIR/N.status (DIR inside the checkout;
# default build-nested/run), one line per command on stdout. --timeout bounds each
# command (default 1200 s): a command that does not finish in time wedged the guest;
# it gets status 124 and the last console lines in its .out, QEMU is killed and a new
# guest goes on with the next command. A guest that dies mid-command gives 125.
#
# npt=0 (the default) gives KVM's shadow MMU, npt=1 nested paging (the L2's page walks
# are then TCG's). Packages: linux-image-amd64, busybox-static, cpio (scripts/setup.sh
# --nested installs them); the initramfs is cached under build-nested/.
# Exit status: the command's (one command); 0 when every command of a list ran to
# its end (whatever its status), 1 when a guest wedged or died; 2 for bad usage or a
# missing package.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
npt=0
timeout_s=1200
# Booting takes 4-12 s on an idle machine; far more on a loaded one.
boot_timeout_s=180
list=
results=$top/build-nested/run
while [ $# -gt 0 ]; do
  case "$1" in
    --npt=0 | --npt=1) npt=${1#--npt=} ;;
    --timeout) timeout_s=$2; shift ;;
    --commands) list=$2; shift ;;
    --results) results=$2; shift ;;
    --) shift; break ;;
    -*) echo "nested-kvm: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
usage="nested-kvm: usage: scripts/nested-kvm.sh [--npt=0|1] [--timeout S] COMMAND... | --commands FILE [--results DIR]"
if [ -n "$list" ]; then
  [ $# -eq 0 ] || { echo "$usage" >&2; exit 2; }
  [ -f "$list" ] || { echo "nested-kvm: $list: no such file" >&2; exit 2; }
else
  [ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
fi
case "$timeout_s" in '' | *[!0-9]*) echo "nested-kvm: --timeout takes whole seconds" >&2; exit 2 ;; esac
mkdir -p "$results"
results=$(cd "$results" && pwd)
case "$results/" in "$top"/*) ;; *) echo "nested-kvm: --results must be inside $top (the guest writes there)" >&2; exit 2 ;; esac

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$kernel" ] || { echo "nested-kvm: no /boot/vmlinuz-*: apt-get install linux-image-amd64" >&2; exit 2; }
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver
command -v busybox >/dev/null || [ -x /bin/busybox ] || { echo "nested-kvm: no busybox: apt-get install busybox-static" >&2; exit 2; }
command -v cpio >/dev/null || { echo "nested-kvm: no cpio: apt-get install cpio" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "nested-kvm: no qemu-system-x86_64" >&2; exit 2; }

out=$top/build-nested
mkdir -p "$out"
modules=(irqbypass kvm ccp kvm-amd virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
  virtio_pci netfs fscache 9pnet 9pnet_virtio 9p)
# The guest's init: modules, kvm_amd with the npt the kernel command line asks for, the
# checkout over 9p, then scripts/nested-guest.sh (read from the checkout) runs the list.
init='#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in irqbypass kvm ccp virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev \
         virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
arg() { sed -n "s/.*pagelab\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
npt=$(arg npt)
insmod /lib/modules/kvm-amd.ko npt=${npt:-0} nested=0
top=$(arg top)
mkdir -p "$top"; mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 top "$top"
cd "$top"
echo "nested-kvm: kvm_amd npt=$(cat /sys/module/kvm_amd/parameters/npt) /dev/kvm $( [ -e /dev/kvm ] && echo ready || echo missing)"
export HOME=/tmp TMPDIR=/tmp PATH=/bin:/sbin:/usr/bin
sh "$top/scripts/nested-guest.sh" "$(arg list)" "$(arg first)" "$(arg results)"
poweroff -f
'
# The shared libraries of what runs inside (pagelab and the test binaries).
libs=$(for bin in "$top"/build/vmm/pagelab "$top"/build/tests/pagelab_*_tests; do
  [ -x "$bin" ] && ldd "$bin" | grep -oE '/[^ ]+'
done | sort -u)
# The cache is keyed by the init's text and the libraries, so either changing gives a
# new initramfs.
initrd=$out/initramfs-$kver-$(printf '%s\n%s' "$init" "$libs" | md5sum | cut -c1-8).cpio.gz

if [ ! -s "$initrd" ]; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules,lib64,etc}
  cp "$(command -v busybox || echo /bin/busybox)" "$root/bin/busybox"
  for m in "${modules[@]}"; do
    f=$(find "$moddir" -name "$m.ko*" | head -n1)
    [ -n "$f" ] || continue  # built into this kernel
    case "$f" in
      *.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
      *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
  done
  printf '%s' "$init" >"$root/init"
  chmod +x "$root/init"
  for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  rm -f "$out"/initramfs-*.cpio.gz
  (cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  rm -rf "$root"
  trap - EXIT
fi

single=0
if [ -z "$list" ]; then
  single=1
  list=$results/commands
  printf '%q ' "$@" >"$list"
  echo >>"$list"
fi
count=$(grep -c '' "$list" || true)
rm -f "$results"/*.out "$results"/*.status "$results"/console-*.log

qemu_pid=
cleanup() { [ -z "$qemu_pid" ] || kill -KILL "$qemu_pid" 2>/dev/null || true; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# The console's last lines, without carriage returns and terminal escapes.
console_tail() { tail -n 20 "$1" | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g'; }

# The command number the console's last marker names ("begin N"), or 0.
last_begun() { sed -nE 's/.*nested-kvm: begin ([0-9]+).*/\1/p' "$1" | tail -n1; }

failed=0 # a guest wedged or died
first=1
boot=0
while [ "$first" -le "$count" ]; do
  boot=$((boot + 1))
  log=$results/console-$boot.log
  t0=$(date +%s.%N)
  qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 1 -m 4G \
    -nographic -no-reboot -nodefaults -serial stdio -kernel "$kernel" -initrd "$initrd" \
    -virtfs "local,path=$top,mount_tag=top,security_model=none" \
    -append "console=ttyS0 panic=-1 quiet pagelab.npt=$npt pagelab.top=$top pagelab.list=$list pagelab.first=$first pagelab.results=$results" \
    </dev/null >"$log" 2>&1 &
  qemu_pid=$!
  current=0
  since=$(date +%s)
  booted=0
  wedged=0
  while kill -0 "$qemu_pid" 2>/dev/null; do
    sleep 0.5
    if [ "$booted" = 0 ] && grep -q 'nested-kvm: kvm_amd' "$log"; then
      booted=1
      printf 'nested-kvm: guest %d booted in %.1f s (%s)\n' "$boot" "$(echo "$(date +%s.%N) - $t0" | bc)" \
        "$(grep -o 'kvm_amd npt=[A-Z0-9]* /dev/kvm [a-z]*' "$log" | head -n1)" >&2
    fi
    n=$(last_begun "$log")
    n=${n:-0}
    if [ "$n" != "$current" ]; then current=$n since=$(date +%s); fi
    bound=$timeout_s
    [ "$current" != 0 ] || bound=$boot_timeout_s
    if [ $(($(date +%s) - since)) -gt "$bound" ]; then wedged=1; break; fi
  done
  if [ "$wedged" = 1 ]; then
    kill -KILL "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
    failed=1
    if [ "$current" = 0 ]; then
      echo "nested-kvm: the guest did not boot within $boot_timeout_s s; last console lines:" >&2
      console_tail "$log" >&2
      exit 1
    fi
    {
      echo "nested-kvm: command $current did not finish within $timeout_s s: the guest wedged; last console lines:"
      console_tail "$log"
    } >>"$results/$current.out"
    echo "124 $timeout_s" >"$results/$current.status"
    first=$((current + 1))
    continue
  fi
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
  if grep -q 'nested-kvm: all done' "$log"; then break; fi
  failed=1
  if [ "$current" = 0 ]; then
    echo "nested-kvm: the guest ended before running anything; last console lines:" >&2
    console_tail "$log" >&2
    exit 1
  fi
  if [ ! -f "$results/$current.status" ]; then
    {
      echo "nested-kvm: the guest died during command $current; last console lines:"
      console_tail "$log"
    } >>"$results/$current.out"
    echo "125 0" >"$results/$current.status"
  fi
  first=$((current + 1))
done

if [ "$single" = 1 ]; then
  cat "$results/1.out"
  read -r status _ <"$results/1.status"
  exit "$status"
fi
n=0
while IFS= read -r line; do
  n=$((n + 1))
  read -r status secs <"$results/$n.status" || { status=125 secs=0; }
  echo "nested-kvm: [$n] exit $status in $secs s: $line"
done <"$list"
exit "$failed"
