#!/usr/bin/env bash
# Prints each failed test of the last CTest run with the end of its output: the
# failure lines GoogleTest printed (from the first "Failure" on), or the last lines
# when there is none (a timeout, a crash). CI shows the end of a long log only, so
# scripts/test.sh prints this again in its summary. Usage: failed-tests.sh BUILD_DIR
set -euo pipefail
log="${1:-build}/Testing/Temporary/LastTest.log"
[ -f "$log" ] || exit 0
awk -v keep=40 '
  /^[0-9]+\/[0-9]+ Test: / { name = $3; n = 0; from = 0; inside = 0; next }
  /^Output:$/ { getline; inside = 1; next }
  /^<end of output>$/ { inside = 0; next }
  inside { lines[++n] = $0; if (!from && ($0 ~ /Failure$|: error|Failure:|FAILED|Sanitizer|terminate called|Segmentation/)) from = n; next }
  /^Test (Failed|Timeout)|^Test time/ {
    if ($0 ~ /^Test time/) { time = $0; next }
    first = from ? from : (n > keep ? n - keep + 1 : 1)
    last = first + keep - 1 < n ? first + keep - 1 : n
    printf "  FAILED %s (%s, %s)\n", name, $0, time
    for (i = first; i <= last; i++) printf "    %s\n", lines[i]
    if (last < n) printf "    ... (%d more lines in %s)\n", n - last, FILENAME
  }
' "$log"
