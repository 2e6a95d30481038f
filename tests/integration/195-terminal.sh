#!/usr/bin/env bash
# Terminal behaviour: progress on stderr only when it is a terminal (a pty from script(1)), never
# in a pipe; -q silences it; NO_COLOR and a pipe mean no escape codes in diagnostics; a mistyped
# option gets a suggestion and exit 2.
. "$(dirname "$0")/lib.sh"
command -v script >/dev/null || fail "script(1) is missing (bsdutils)"
start_broker m
export MQ_BROKER=$M

# on a terminal: a redrawn progress line (\r ... \e[K) with counts and a rate, then the summary
# (a pause in the input: a fast machine sends 100,000 lines before the first redraw is due)
seq 100000 >"$T/in"
timeout 60 script -qefc "{ head -n 50000 '$T/in'; sleep 0.4; tail -n 50000 '$T/in'; } | mq-send -t p" /dev/null >"$T/tty.out" ||
  fail "mq-send on a pty: exit $?"
grep -qa $'\r'"mq-send: [0-9,]* sent, [0-9,]* acked, [0-9]*/s" "$T/tty.out" || fail "no progress line on a terminal: $(head -c 300 "$T/tty.out" | od -c | head)"
grep -qa $'\e\[K' "$T/tty.out" || fail "the progress line is not erased/redrawn"
grep -qa "sent 100000, acked 100000" "$T/tty.out" || fail "no summary on a terminal"
# -q: nothing at all
timeout 60 script -qefc "mq-send -q -t p < '$T/in'" /dev/null >"$T/tty-q.out" || fail "mq-send -q on a pty: exit $?"
[[ $(tr -d '\r\n' <"$T/tty-q.out" | wc -c) -eq 0 ]] || fail "-q printed on a terminal: $(head -c 200 "$T/tty-q.out")"
# in a pipe: no progress, no summary, no escape codes
timeout 60 mq-send -t p <"$T/in" 2>"$T/pipe.err" || fail "mq-send in a pipe: exit $?"
[[ ! -s $T/pipe.err ]] || fail "stderr not empty in a pipe: $(head -c 200 "$T/pipe.err")"
# replay publishing shows progress too
timeout 60 script -qefc "mq-replay -t p --from earliest --to-topic p2" /dev/null >"$T/tty-r.out" || fail "mq-replay on a pty: exit $?"
grep -qa "published 300000, acked 300000" "$T/tty-r.out" || fail "no replay summary: $(tail -c 300 "$T/tty-r.out")"

# errors: one line, a suggestion for a mistyped flag, exit 2, no colour without a terminal
rc=0; mq-send -t p --windw 3 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "did you mean --window?" "$T/e" || fail "mistyped flag: exit $rc, $(cat "$T/e")"
rc=0; mq-consume -t p --fromm earliest 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "did you mean --from?" "$T/e" || fail "mistyped flag with a value: exit $rc, $(cat "$T/e")"
rc=0; NO_COLOR=1 timeout 60 script -qefc "mq-send -b 127.0.0.1:1 -t p x" /dev/null >"$T/tty-e.out" || rc=$?
grep -qa $'\e\[' "$T/tty-e.out" && fail "colour with NO_COLOR set: $(od -c "$T/tty-e.out" | head -3)"
grep -qa "cannot reach 127.0.0.1:1" "$T/tty-e.out" || fail "unreachable broker: $(cat "$T/tty-e.out")"
note "ok: progress only on a terminal, quiet with -q, suggestions for typos"
