#!/usr/bin/env bash
# Fuzzes the scenario parser and the tables-file parser with libFuzzer (clang++ from
# Debian) under ASan+UBSan, each for PAGELAB_FUZZ_SECONDS (default 60), seeded from
# examples/ and fuzz/corpus/. Prints, per target, the executions and the coverage
# reached; fails on any finding (the crashing input is kept in build-fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${PAGELAB_FUZZ_SECONDS:-60}
cxx=${PAGELAB_FUZZ_CXX:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: skipped: $cxx not found (apt-get install clang)"
  exit 0
fi
out=build-fuzz
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -Iinclude -Ivmm/lab)
paging_sources=(vmm/paging/*.cpp)

build() { # NAME SOURCES...
  local name=$1
  shift
  echo "== fuzz: building $name"
  "$cxx" "${flags[@]}" "$@" "${paging_sources[@]}" -lfmt -o "$out/$name"
}

run() { # NAME SEED_DIR...
  local name=$1
  shift
  local corpus="$out/corpus-$name" log="$out/$name.log"
  mkdir -p "$corpus"
  echo "== fuzz: running $name for ${seconds} s"
  set +e
  (cd "$out" && "./$name" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
    -print_final_stats=1 "corpus-$name" "${@/#/../}") >"$log" 2>&1
  local rc=$?
  set -e
  local runs cov ft
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -n1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
  echo "fuzz $name: ${runs:-?} executions, coverage ${cov:-?} edges, ${ft:-?} features," \
    "corpus $(find "$corpus" -type f | wc -l) inputs, exit $rc"
  if [ "$rc" != 0 ]; then
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 20
    return 1
  fi
}

build scenario_parser_fuzz fuzz/scenario_parser_fuzz.cpp vmm/lab/scenario/scenario_parser.cpp
build tables_file_fuzz fuzz/tables_file_fuzz.cpp
status=0
run scenario_parser_fuzz examples || status=1
run tables_file_fuzz fuzz/corpus/tables || status=1
exit $status
