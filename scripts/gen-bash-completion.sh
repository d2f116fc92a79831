#!/usr/bin/env bash
# Writes pagelab's bash completion script from the built binary's own --help (run at
# build time by CMake), so every command, subcommand and option the binary has is
# completed and none it lacks. Usage: gen-bash-completion.sh PAGELAB OUTPUT
set -euo pipefail
bin=$1
out=$2

# shellcheck source=help-lists.sh
. "$(dirname "$0")/help-lists.sh"

# One line per option of `pagelab CMD... --help`: "NAMES|TYPE|DESCRIPTION", NAMES being
# "-j,--jobs" and TYPE empty for a flag (CLI11 prints TEXT, UINT, INT... for a value).
options() {
  "$bin" "$@" --help | awk '/^Options:/ {in_list = 1; next}
    /^[^ ]/ {in_list = 0}
    in_list && /^  -/ {
      names = $2; sub(/^ +/, "", names)
      line = $0; sub(/^  [^ ]+ ?/, "", line)
      type = ""
      if (match(line, /^(TEXT|UINT|INT|FLOAT|NUMBER|BOOLEAN)[^ ]*/)) type = substr(line, 1, RLENGTH)
      print $1 "|" type "|" line
    }'
}

# The words a "{a,b,c}" set in TEXT lists, space-separated.
set_words() {
  local s=$1
  [[ $s == *"{"*"}"* ]] || return 0
  s=${s#*\{}
  s=${s%%\}*}
  echo "${s//,/ }"
}

# Options whose value is a path: complete file names there.
file_options=" --junit --tables --export --findings "

entries=()
add() { entries+=("    '$1') echo '$2' ;;"); }

emit_command() {  # the words for the command path "$@" ("" for the top level)
  local path="$*" subs longs="" takes="" spec names type desc name words
  subs=$(subcommands "$@" | tr '\n' ' ')
  [[ -n ${subs// /} ]] && add "subcommands:$path" "${subs% }"
  while IFS='|' read -r names type desc; do
    for name in ${names//,/ }; do
      [[ $name == --* ]] && longs+="$name "
      [[ -n $type ]] && takes+="$name "
    done
    [[ -n $type ]] || continue
    name=${names##*,}
    words=$(set_words "$type")
    if [[ -z $words && $name == --backend ]]; then
      # Not a CLI11 set (the accepted values depend on the command): take the backend
      # names its help text lists.
      for w in kvm qemu auto all; do [[ " ${desc//[,;:()]/ } " == *" $w "* ]] && words+="$w "; done
    fi
    if [[ -z $words && $file_options == *" $name "* ]]; then words=@files; fi
    [[ -n $words ]] && add "values:$path $name" "${words% }"
  done < <(options "$@")
  add "options:$path" "${longs% }"
  [[ -n $takes ]] && add "takes_value:$path" "${takes% }"
  # A positional: the words of its set, or file names for scenario files.
  # (awk reads to the end: exiting early could kill pagelab with SIGPIPE mid-help.)
  spec=$("$bin" "$@" --help | awk '!done && /^Positionals:/ {getline; print; done = 1}')
  if [[ -n $spec ]]; then
    words=$(set_words "$spec")
    if [[ -z $words && $spec == "  files "* ]]; then words=@files; fi
    [[ -n $words ]] && add "positional:$path" "$words"
  fi
  local sub
  for sub in $subs; do emit_command "$@" "$sub"; done
}

emit_command

{
  cat <<'EOF'
# shellcheck shell=bash
# bash completion for pagelab, generated at build time from `pagelab --help` and each
# command's --help (scripts/gen-bash-completion.sh): commands, subcommands, options, and
# the values of options that have a fixed set.

# The words of one kind for a command path: subcommands, options, takes_value (options
# that take a value), "values:PATH OPTION", positional; "@files" means file names.
_pagelab_words() {
  case "$1:$2" in
EOF
  printf '%s\n' "${entries[@]}"
  cat <<'EOF'
  esac
}

_pagelab_reply() {
  if [[ $1 == @files ]]; then
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$2")
  else
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
  fi
}

_pagelab() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev="" path="" word i
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  # Which command the words so far name, skipping options and their values.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if [[ $word == -* ]]; then
      if [[ $word != *=* && " $(_pagelab_words takes_value "$path") " == *" $word "* ]]; then
        ((i++))
      fi
      continue
    fi
    if [[ " $(_pagelab_words subcommands "$path") " == *" $word "* ]]; then
      path=${path:+$path }$word
    fi
  done
  if [[ $prev == -* && " $(_pagelab_words takes_value "$path") " == *" $prev "* ]]; then
    local values
    values=$(_pagelab_words values "$path $prev")
    [[ -n $values ]] && _pagelab_reply "$values" "$cur"
    return 0
  fi
  if [[ $cur == -* ]]; then
    _pagelab_reply "$(_pagelab_words options "$path")" "$cur"
    return 0
  fi
  local subs positional
  subs=$(_pagelab_words subcommands "$path")
  if [[ -n $subs ]]; then
    _pagelab_reply "$subs" "$cur"
    return 0
  fi
  positional=$(_pagelab_words positional "$path")
  [[ -n $positional ]] && _pagelab_reply "$positional" "$cur"
  return 0
}

complete -F _pagelab pagelab
EOF
} >"$out.tmp"
mv "$out.tmp" "$out"
