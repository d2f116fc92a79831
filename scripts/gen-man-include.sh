#!/usr/bin/env bash
# Writes the help2man include file for pagelab.1 (run at build time by CMake): a
# COMMANDS section with every command's and subcommand's own --help, so the man page
# says everything `pagelab CMD --help` says. Usage: gen-man-include.sh PAGELAB OUTPUT
set -euo pipefail
bin=$1
out=$2

# shellcheck source=help-lists.sh
. "$(dirname "$0")/help-lists.sh"

# Help text as roff, kept as printed (no filling): backslashes as \e, hyphens as \- so
# options copy as typed, and a leading . or ' made literal.
roff() {
  sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

command_help() {
  local sub
  printf '.SS "pagelab %s"\n.nf\n' "$*"
  "$bin" "$@" --help | roff
  printf '.fi\n'
  for sub in $(subcommands "$@"); do command_help "$@" "$sub"; done
}

{
  printf '[COMMANDS]\n'
  for cmd in $(subcommands); do command_help "$cmd"; done
  cat <<'EOF'
[ENVIRONMENT]
.TP
.B PAGELAB_QEMU
The QEMU binary the \fBqemu\fR backend starts (default: \fBqemu\-system\-x86_64\fR on
\fB$PATH\fR).
[SEE ALSO]
In pagelab's source tree: \fIREADME.md\fR (set\-up, commands, architecture),
\fIdocs/platforms.md\fR (what to expect on kvm_intel, kvm_amd, PVM and QEMU TCG, and the
known deviations by name), \fIdocs/json.md\fR (the \fB\-\-json\fR output),
\fIexamples/README.md\fR (the scenario language of \fBpagelab run\fR).
EOF
} >"$out.tmp"
mv "$out.tmp" "$out"
