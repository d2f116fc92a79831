#!/usr/bin/env bash
# Prints each skipped test of the last CTest run with the reason GoogleTest gave
# (the line after "Skipped" in its output). Usage: scripts/skip-reasons.sh BUILD_DIR
set -euo pipefail
log="${1:-build}/Testing/Temporary/LastTest.log"
[ -f "$log" ] || exit 0
awk '
  /^[0-9]+\/[0-9]+ Test: / { name = $3; want = 0; next }
  /: Skipped$/ { want = 1; next }
  want == 1 { sub(/^[ \t]+/, ""); if ($0 != "") { printf "  skipped %s: %s\n", name, $0 }; want = 0 }
' "$log"
