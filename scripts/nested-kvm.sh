#!/usr/bin/env bash
# Runs one command under a real KVM on a machine without /dev/kvm: Debian's kernel
# booted under QEMU TCG (one vCPU: with two the guest kernel locks up under load),
# kvm_amd loaded on TCG's emulated SVM, this checkout shared into the guest at the
# same path over 9p. Prints the command's output and exits with its status.
#
#   scripts/nested-kvm.sh [--npt=0|1] [--timeout SECONDS] COMMAND [ARG...]
#   scripts/nested-kvm.sh build/vmm/pagelab tour --backend kvm
#
# npt=0 (the default) gives KVM's shadow MMU, npt=1 nested paging (the L2's page walks
# are then TCG's). Packages: linux-image-amd64, busybox-static, cpio (scripts/setup.sh
# --nested installs them); the initramfs is cached under build-nested/.
# Exit status: the command's; 124 when the guest did not finish in time (wedged), with
# the last console lines; 2 for bad usage or a missing package.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
npt=0
timeout_s=1200
while [ $# -gt 0 ]; do
  case "$1" in
    --npt=0 | --npt=1) npt=${1#--npt=} ;;
    --timeout) timeout_s=$2; shift ;;
    --) shift; break ;;
    -*) echo "nested-kvm: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[ $# -gt 0 ] || { echo "nested-kvm: usage: scripts/nested-kvm.sh [--npt=0|1] [--timeout S] COMMAND..." >&2; exit 2; }

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$kernel" ] || { echo "nested-kvm: no /boot/vmlinuz-*: apt-get install linux-image-amd64" >&2; exit 2; }
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver
command -v busybox >/dev/null || [ -x /bin/busybox ] || { echo "nested-kvm: no busybox: apt-get install busybox-static" >&2; exit 2; }
command -v cpio >/dev/null || { echo "nested-kvm: no cpio: apt-get install cpio" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "nested-kvm: no qemu-system-x86_64" >&2; exit 2; }

out=$top/build-nested
mkdir -p "$out"
initrd=$out/initramfs-$kver.cpio.gz
modules=(irqbypass kvm ccp kvm-amd virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
  virtio_pci netfs fscache 9pnet 9pnet_virtio 9p)

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
  cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in irqbypass kvm ccp virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev \
         virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
npt=$(sed -n 's/.*pagelab.npt=\([01]\).*/\1/p' /proc/cmdline)
insmod /lib/modules/kvm-amd.ko npt=${npt:-0} nested=0
top=$(sed -n 's/.*pagelab.top=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p "$top"; mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 top "$top"
cd "$top"
echo "nested-kvm: kvm_amd npt=$(cat /sys/module/kvm_amd/parameters/npt) /dev/kvm $( [ -e /dev/kvm ] && echo ready || echo missing)"
export HOME=/tmp TMPDIR=/tmp PATH=/bin:/sbin:/usr/bin
sh build-nested/command.sh
echo "nested-kvm: exit status $?"
poweroff -f
INIT
  chmod +x "$root/init"
  # The shared libraries of what runs inside (pagelab and the test binaries).
  for bin in "$top"/build/vmm/pagelab "$top"/build/tests/pagelab_*_tests; do
    [ -x "$bin" ] || continue
    ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
  (cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  rm -rf "$root"
  trap - EXIT
fi

# The command, quoted, for the guest's shell.
printf '%q ' "$@" >"$out/command.sh"
echo >>"$out/command.sh"
log=$out/console.log
set +e
timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 1 -m 4G \
  -nographic -no-reboot -nodefaults -serial stdio -kernel "$kernel" -initrd "$initrd" \
  -virtfs "local,path=$top,mount_tag=top,security_model=none" \
  -append "console=ttyS0 panic=-1 quiet pagelab.npt=$npt pagelab.top=$top" </dev/null >"$log" 2>&1
rc=$?
set -e
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "nested-kvm: the guest did not finish within $timeout_s s (wedged?); last console lines:" >&2
  tail -n 20 "$log" >&2
  exit 124
fi
sed -n '/nested-kvm: kvm_amd/,/nested-kvm: exit status/p' "$log" | tr -d '\r' | sed 's/^.*\(nested-kvm: kvm_amd\)/\1/'
status=$(sed -nE 's/.*nested-kvm: exit status ([0-9]+).*/\1/p' "$log" | tr -d '\r' | tail -n1)
if [ -z "$status" ]; then
  echo "nested-kvm: the guest ended without the command's status (QEMU exit $rc); last console lines:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
exit "$status"
