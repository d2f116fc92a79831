# Sourced by gen-bash-completion.sh and gen-man-include.sh: lists read from the built
# binary's own --help ($bin must be set).

# The names listed under "Subcommands:" in `pagelab [CMD] --help`.
subcommands() {
  "$bin" "$@" --help | awk '/^Subcommands:/ {in_list = 1; next}
    /^[^ ]/ {in_list = 0}
    in_list && /^  [a-z][a-z0-9-]*( |$)/ {print $1}'
}
