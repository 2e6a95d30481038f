#!/usr/bin/env bash
# make install PREFIX=/usr/local DESTDIR=... puts binaries, man pages and completions where Debian
# looks for them; the installed pages render without warnings; make uninstall removes it all.
. "$(dirname "$0")/lib.sh"

MQ_BUILD=${MQ_BUILD:-$MQ_SRC/build}
build=$(basename "$MQ_BUILD")
san=""
[[ $build == build-san ]] && san=1
root="$T/root"
make -s -C "$MQ_SRC" install PREFIX=/usr/local DESTDIR="$root" BUILD="$build" SAN="$san" >"$T/install.log" 2>&1 \
  || fail "make install: $(tail -n 5 "$T/install.log")"
for p in mq-broker mq-send mq-consume mq-offset mq-replay; do
  [[ -x $root/usr/local/bin/$p ]] || fail "$p not installed"
  [[ -f $root/usr/local/share/man/man1/$p.1 ]] || fail "$p.1 not installed"
  [[ -f $root/usr/local/share/bash-completion/completions/$p ]] || fail "bash completion of $p not installed"
  [[ -f $root/usr/local/share/zsh/site-functions/_$p ]] || fail "zsh completion of $p not installed"
  [[ -f $root/usr/local/share/fish/vendor_completions.d/$p.fish ]] || fail "fish completion of $p not installed"
  "$root/usr/local/bin/$p" --version >/dev/null || fail "installed $p does not run"
done
[[ -f $root/usr/local/share/fish/vendor_functions.d/__mq_names.fish ]] || fail "fish function __mq_names not installed"
for page in man7/mq.7 man5/mq-data.5 man5/mq-protocol.5; do
  [[ -f $root/usr/local/share/man/$page ]] || fail "$page not installed"
done
for page in "$root"/usr/local/share/man/man*/*; do
  out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || fail "man -l $page failed"
  [[ -z $out ]] || fail "man -l $(basename "$page") warns: $out"
done
make -s -C "$MQ_SRC" uninstall DESTDIR="$root" BUILD="$build" SAN="$san" >>"$T/install.log" 2>&1 || fail "make uninstall"
left=$(find "$root" -type f | wc -l)
[[ $left -eq 0 ]] || fail "make uninstall left $left files: $(find "$root" -type f | head -n 3)"
echo "$TEST_NAME: ok"
