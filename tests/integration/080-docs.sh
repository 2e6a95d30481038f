#!/usr/bin/env bash
# What a user gets: every man page converts with scdoc and lints clean with mandoc and
# groff; every completion script parses in its shell; every long option a program's
# --help lists is in its man page and in its bash, zsh and fish completions; and bash
# and fish completion really offer options, option values and live topic names.
set -euo pipefail

SRC=${MQ_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${MQ_BIN:-$SRC/build/bin}
PROGS=(mq-broker mq-send mq-consume mq-offset mq-replay)
PAGES=(mq-broker.1 mq-send.1 mq-consume.1 mq-offset.1 mq-replay.1 mq.7 mq-data.5 mq-protocol.5)
SECTIONS=(NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO")
# Programs whose binary must exist. A program whose cmd/PROG.cc exists must be built too.
REQUIRED=(mq-broker mq-send mq-consume)

failures=0
fail() {
  echo "080-docs: FAIL: $*" >&2
  failures=$((failures + 1))
}
note() { echo "080-docs: $*" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Installs a Debian package the checks need when it is missing (root or password-less sudo).
ensure() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo -n"
  note "installing $pkg for the $cmd checks"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" \
    >/dev/null 2>&1 || true
  command -v "$cmd" >/dev/null 2>&1
}

ensure scdoc scdoc || fail "scdoc is not installed"
ensure mandoc mandoc || fail "mandoc is not installed"
have_zsh=1 have_fish=1
ensure zsh zsh || { have_zsh=0; note "zsh is not installed: zsh checks skipped"; }
ensure fish fish || { have_fish=0; note "fish is not installed: fish checks skipped"; }

# --- 1. man pages ------------------------------------------------------------------------
for page in "${PAGES[@]}"; do
  src=$SRC/man/$page.scd
  if [[ ! -f $src ]]; then
    fail "man/$page.scd is missing"
    continue
  fi
  if ! scdoc <"$src" >"$tmp/$page" 2>"$tmp/scdoc.err"; then
    fail "scdoc rejects man/$page.scd: $(cat "$tmp/scdoc.err")"
    continue
  fi
  if command -v mandoc >/dev/null; then
    lint=$(mandoc -T lint -W warning "$tmp/$page" 2>&1 || true)
    [[ -z $lint ]] || fail "mandoc lint of man/$page.scd:"$'\n'"$lint"
  fi
  if command -v groff >/dev/null; then
    warn=$(groff -ww -man -Tutf8 "$tmp/$page" 2>&1 >/dev/null || true)
    [[ -z $warn ]] || fail "groff warnings for man/$page.scd:"$'\n'"$warn"
  fi
  for section in "${SECTIONS[@]}"; do
    grep -qx "# $section" "$src" || fail "man/$page.scd has no $section section"
  done
  # Code blocks: every one closed before the next heading, none empty (an unclosed block
  # turns the prose after it into code and the next block into prose).
  bad=$(awk '/^```/ { if (open && prev ~ /^```/) { print NR": empty code block"; exit }
                      open = !open }
             /^# / && open { print NR": heading inside a code block"; exit }
             { prev = $0 }
             END { if (open) print "unclosed code block at the end" }' "$src")
  [[ -z $bad ]] || fail "man/$page.scd: $bad"
done

# --- 2. completion scripts parse -----------------------------------------------------------
for prog in "${PROGS[@]}"; do
  b=$SRC/completions/bash/$prog z=$SRC/completions/zsh/_$prog f=$SRC/completions/fish/$prog.fish
  for file in "$b" "$z" "$f"; do
    [[ -f $file ]] || fail "${file#"$SRC"/} is missing"
  done
  [[ -f $b ]] && { bash -n "$b" 2>"$tmp/err" || fail "bash -n ${b#"$SRC"/}: $(cat "$tmp/err")"; }
  if [[ -f $z ]]; then
    [[ $(head -n 1 "$z") == "#compdef $prog" ]] || fail "${z#"$SRC"/} does not start with #compdef $prog"
    if ((have_zsh)); then
      zsh -n "$z" 2>"$tmp/err" || fail "zsh -n ${z#"$SRC"/}: $(cat "$tmp/err")"
    fi
  fi
  if [[ -f $f ]] && ((have_fish)); then
    fish -n "$f" 2>"$tmp/err" || fail "fish -n ${f#"$SRC"/}: $(cat "$tmp/err")"
  fi
done

shared=$SRC/completions/fish/functions/__mq_names.fish
if [[ ! -f $shared ]]; then
  fail "${shared#"$SRC"/} is missing"
elif ((have_fish)); then
  fish -n "$shared" 2>"$tmp/err" || fail "fish -n ${shared#"$SRC"/}: $(cat "$tmp/err")"
fi

# --- 3. every option of --help is documented and completed ---------------------------------
# has_word FILE WORD: WORD appears in FILE not as part of a longer option name.
has_word() { grep -qE -- "(^|[^A-Za-z0-9-])$2([^A-Za-z0-9-]|\$)" "$1"; }

for prog in "${PROGS[@]}"; do
  required=0
  for r in "${REQUIRED[@]}"; do [[ $r == "$prog" ]] && required=1; done
  [[ -f $SRC/cmd/$prog.cc ]] && required=1
  if [[ ! -x $BIN/$prog ]]; then
    if ((required)); then fail "$BIN/$prog is missing: cannot check its options"; else note "$prog not built yet: option check skipped"; fi
    continue
  fi
  if ! "$BIN/$prog" --help >"$tmp/help" 2>&1; then
    fail "$prog --help exits non-zero"
  fi
  if [[ $prog == mq-offset ]]; then
    for sub in topics show groups reset export import; do
      "$BIN/$prog" "$sub" --help >>"$tmp/help" 2>&1 || fail "mq-offset $sub --help exits non-zero"
    done
  fi
  # options are the lines that start with a flag (the Examples footer may show other programs')
  mapfile -t opts < <(grep -E '^ +(-[a-zA-Z0-9],)?--[a-z]' "$tmp/help" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
  [[ ${#opts[@]} -gt 0 ]] || fail "$prog --help lists no long options"
  for opt in "${opts[@]}"; do
    man=$SRC/man/$prog.1.scd
    [[ -f $man ]] && ! has_word "$man" "$opt" && fail "$prog $opt is not in man/$prog.1.scd"
    b=$SRC/completions/bash/$prog z=$SRC/completions/zsh/_$prog f=$SRC/completions/fish/$prog.fish
    # bash: among the words offered (compgen -W); zsh: an _arguments spec; fish: a -l option.
    [[ -f $b ]] && ! grep -qE -- "compgen -W .*[\"' ]$opt([\"' ]|\$)" "$b" &&
      fail "$prog $opt is not in completions/bash/$prog"
    [[ -f $z ]] && ! grep -qE -- "[{'\",*]$opt(=?\[|[=+]?[,}])" "$z" &&
      fail "$prog $opt is not in completions/zsh/_$prog"
    [[ -f $f ]] && ! grep -qE -- "-l ${opt#--}( |\$)" "$f" && fail "$prog $opt is not in completions/fish/$prog.fish"
  done
done

# --- 4. completion really works ------------------------------------------------------------
# A fake mq-offset next to the "programs" answers the live topic and group look-ups.
mkdir -p "$tmp/bin"
cat >"$tmp/bin/mq-offset" <<'FAKE'
#!/bin/sh
echo "$*" >>"$(dirname "$0")/calls"
[ "$1" = -b ] && shift 2
case $1 in
  topics) printf 'topic\tbroker\tqueue\norders\tb\t0\norders\tb\t1\nevents\tb\t0\n' ;;
  groups) printf 'group\tmembers\tlag\nworkers\t2\t0\n' ;;
esac
FAKE
chmod +x "$tmp/bin/mq-offset"

bash_complete() {  # bash_complete PROG WORD... (the last word is the one being completed)
  local prog=$1
  shift
  bash -c '
    source /usr/share/bash-completion/bash_completion
    source "$1/completions/bash/$2"
    fn=_${2//-/_}
    shift 2
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"
    COMP_POINT=${#COMP_LINE}
    prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    "$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "$prev"
    printf "%s\n" "${COMPREPLY[@]}"
  ' bash "$SRC" "$prog" "$@"
}

expect_lines() {  # expect_lines WHAT OUTPUT WORD...: every WORD is a line (first field) of OUTPUT
  local what=$1 out=$2
  shift 2
  for w in "$@"; do
    cut -f1 <<<"$out" | grep -qx -- "$w" || fail "$what does not offer $w (got: $(tr '\n' ' ' <<<"$out"))"
  done
}

if [[ -f /usr/share/bash-completion/bash_completion ]]; then
  out=$(bash_complete mq-send mq-send --mo) || fail "bash completion of 'mq-send --mo' failed"
  expect_lines "bash 'mq-send --mo'" "$out" --mode
  out=$(bash_complete mq-send mq-send --mode "") || fail "bash completion of 'mq-send --mode ' failed"
  expect_lines "bash 'mq-send --mode '" "$out" sync async oneway
  [[ $(wc -l <<<"$out") -eq 3 ]] || fail "bash 'mq-send --mode ' does not offer exactly the three modes: $(tr '\n' ' ' <<<"$out")"
  out=$(bash_complete mq-consume mq-consume --from "") || fail "bash completion of 'mq-consume --from ' failed"
  expect_lines "bash 'mq-consume --from '" "$out" earliest latest
  out=$(bash_complete mq-offset mq-offset re) || fail "bash completion of 'mq-offset re' failed"
  expect_lines "bash 'mq-offset re'" "$out" reset
  out=$(bash_complete mq-offset mq-offset reset --to "") || fail "bash completion of 'mq-offset reset --to ' failed"
  expect_lines "bash 'mq-offset reset --to '" "$out" earliest latest
  out=$(bash_complete mq-broker mq-broker --role "") || fail "bash completion of 'mq-broker --role ' failed"
  expect_lines "bash 'mq-broker --role '" "$out" master slave
  : >"$tmp/bin/calls"
  out=$(bash_complete mq-consume "$tmp/bin/mq-consume" -b 127.0.0.1:1 -t "") || fail "bash topic completion failed"
  expect_lines "bash 'mq-consume -b 127.0.0.1:1 -t '" "$out" orders events
  grep -q -- 'topic' <<<"$out" && fail "bash topic completion offers the header line"
  grep -qx -- '-b 127.0.0.1:1 topics --format tsv' "$tmp/bin/calls" ||
    fail "bash topic completion did not ask mq-offset with the typed broker (calls: $(cat "$tmp/bin/calls"))"
  out=$(MQ_BROKER=10.0.0.1:2 bash_complete mq-consume "$tmp/bin/mq-consume" -g "") || fail "bash group completion failed"
  expect_lines "bash 'mq-consume -g '" "$out" workers
  grep -qx -- '-b 10.0.0.1:2 groups --format tsv' "$tmp/bin/calls" ||
    fail "bash group completion did not use MQ_BROKER (calls: $(cat "$tmp/bin/calls"))"
  # No broker at all: completion stays silent and succeeds.
  out=$(PATH=/usr/bin:/bin bash_complete mq-send mq-send -b 127.0.0.1:1 -t "") || fail "bash topic completion without mq-offset failed"
  [[ -z $out ]] || fail "bash topic completion without a broker offers: $out"
else
  fail "/usr/share/bash-completion/bash_completion is missing (Debian package bash-completion)"
fi

if ((have_fish)); then
  out=$(cd "$SRC" && fish -c 'source completions/fish/mq-send.fish; complete -C "mq-send --mode "') ||
    fail "fish completion of 'mq-send --mode ' failed"
  expect_lines "fish 'mq-send --mode '" "$out" sync async oneway
  out=$(cd "$SRC" && fish -c 'source completions/fish/mq-send.fish; complete -C "mq-send --mo"') ||
    fail "fish completion of 'mq-send --mo' failed"
  expect_lines "fish 'mq-send --mo'" "$out" --mode
  out=$(cd "$SRC" && fish -c 'source completions/fish/mq-offset.fish; complete -C "mq-offset "') ||
    fail "fish completion of 'mq-offset ' failed"
  expect_lines "fish 'mq-offset '" "$out" topics show groups reset export import
  out=$(cd "$SRC" && fish -c "source completions/fish/mq-consume.fish; complete -C '$tmp/bin/mq-consume -t '") ||
    fail "fish topic completion failed"
  expect_lines "fish 'mq-consume -t '" "$out" orders events
fi

if ((failures)); then
  echo "080-docs: $failures check(s) failed" >&2
  exit 1
fi
echo "080-docs: ok"
