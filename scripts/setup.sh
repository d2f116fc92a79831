#!/usr/bin/env bash
# Installs the Debian packages pagelab needs, skipping what is already present.
# Safe to run again; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config linux-libc-dev
  libcapstone-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  qemu-system-x86 clang-format
  clang libclang-rt-14-dev
  help2man bash-completion  # the man page pagelab.1; loading the installed completion
)
# --nested: also what scripts/nested-kvm.sh boots (a real KVM inside QEMU TCG).
if [ "${1:-}" = --nested ]; then packages+=(linux-image-amd64 busybox-static cpio); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
