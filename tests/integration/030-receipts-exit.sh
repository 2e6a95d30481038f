#!/usr/bin/env bash
# Receipts in input order (async too), oneway receipts, exit codes: unreachable broker 1, bad flags 2.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush sync
seq 5000 | timeout 30 mq-send -b "$B1" -t r --receipts >"$T/receipts" || fail "send with receipts exited $?"
[[ $(count_lines "$T/receipts") -eq 5000 ]] || fail "expected 5000 receipts"
awk -F'\t' -v b="$B1" '
  NF != 6 { print "bad field count: " $0; bad=1; exit }
  $1 != NR { print "receipt " NR " has line " $1; bad=1; exit }
  length($2) != 32 || $2 !~ /^[0-9a-f]+$/ { print "bad id " $2; bad=1; exit }
  $3 != b { print "bad broker " $3; bad=1; exit }
  $4 !~ /^[0-3]$/ || $5 !~ /^[0-9]+$/ { print "bad queue/offset " $0; bad=1; exit }
  $6 != "SEND_OK" { print "bad status " $6; bad=1; exit }
  { if (ids[$2]++) { print "duplicate id " $2; bad=1; exit } if (pos[$4 " " $5]++) { print "two messages at " $4 " " $5; bad=1; exit } }
  END { exit bad }' "$T/receipts" || fail "receipts malformed"
# receipts agree with what is stored
timeout 30 mq-consume -b "$B1" -t r --from earliest -e --format '%q\t%o\t%i\t%s\n' | sort >"$T/stored"
awk -F'\t' '{ print $4 "\t" $5 "\t" $2 "\t" $1 }' "$T/receipts" | sort | diff -q - "$T/stored" >/dev/null \
  || fail "receipts do not match stored queue/offset/id/body"

# oneway
seq 10 | timeout 10 mq-send -b "$B1" -t ow --mode oneway --receipts >"$T/ow" || fail "oneway exited $?"
awk -F'\t' '$4 != "-" || $5 != "-" || $6 != "SENT" { bad=1 } END { exit bad || NR != 10 }' "$T/ow" || fail "oneway receipts: $(head -n 2 "$T/ow")"
wait_until 5 bash -c "[[ \$(mq-consume -b '$B1' -t ow --from earliest -e | wc -l) -eq 10 ]]" || fail "oneway messages not stored"

# a line that is not sent still has its receipt, in input order (LINE has no gaps)
rc=0
printf '%s\n' '{"body":"a"}' '{"body": x' '' '{"body":"d"}' |
  timeout 10 mq-send -b "$B1" -t rj --json --receipts >"$T/rj" 2>/dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "malformed --json lines: exit $rc"
[[ $(cut -f1,6 "$T/rj" | tr '\t\n' ': ') == "1:SEND_OK 2:FAILED 3:FAILED 4:SEND_OK " ]] ||
  fail "receipts around rejected lines: $(cat "$T/rj")"
awk -F'\t' 'NR == 2 && ($2 != "-" || $3 != "-" || $4 != "-" || $5 != "-") { exit 1 }' "$T/rj" ||
  fail "a rejected line's receipt names an id, broker, queue or offset: $(sed -n 2p "$T/rj")"

# unreachable broker: exit 1 with one clear line
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
set +e
timeout 30 mq-send -b "127.0.0.1:$port" -t x --timeout 1s "m" 2>"$T/unreach.err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "unreachable broker: expected exit 1, got $rc"
grep -q "127.0.0.1:$port" "$T/unreach.err" || fail "error does not name the broker: $(cat "$T/unreach.err")"
grep -q '^mq-send: ' "$T/unreach.err" || fail "error not prefixed with the program name"
# messages given as arguments still get a receipt each
rc=0; timeout 30 mq-send -b "127.0.0.1:$port" -t x --timeout 1s --receipts a b >"$T/unreach.rcpt" 2>/dev/null || rc=$?
[[ $rc -eq 1 && $(cut -f1,2,6 "$T/unreach.rcpt" | tr '\t\n' ': ') == "1:-:FAILED 2:-:FAILED " ]] ||
  fail "receipts with no broker: exit $rc, $(cat "$T/unreach.rcpt")"
set +e
timeout 10 mq-consume -b "127.0.0.1:$port" -t x --from earliest -e 2>/dev/null; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "consume from unreachable broker: expected 1, got $rc"

# usage errors: exit 2
for cmd in "mq-send --no-such-flag -t x" "mq-send" "mq-send -t x --mode fast" "mq-send -t x --timeout 5parsecs" \
           "mq-send -t bad/topic m" "mq-consume" "mq-consume -t x --format" "mq-broker --flush sometimes" \
           "mq-broker --segment-size 12XB" "mq-consume -t x --from yesterday" "mq-send -t x --timeout 0s m" \
           "mq-consume -t x --timeout 0" "mq-consume -t x -g g --consume-timeout 0ms" "mq-replay -t x --timeout 0s" \
           "mq-offset topics --timeout 0s"; do
  set +e
  # shellcheck disable=SC2086
  timeout 10 $cmd -b "$B1" </dev/null >/dev/null 2>"$T/usage.err"; rc=$?
  set -e
  [[ $rc -eq 2 ]] || fail "'$cmd' exited $rc, expected 2 ($(cat "$T/usage.err"))"
  [[ $(count_lines "$T/usage.err") -le 3 ]] || fail "'$cmd' printed a long error: $(cat "$T/usage.err")"
done
# numbers and subcommands: one line that says what was wrong
while IFS='|' read -r cmd want; do
  set +e
  # shellcheck disable=SC2086
  timeout 10 $cmd -b "$B1" </dev/null >/dev/null 2>"$T/usage.err"; rc=$?
  set -e
  [[ $rc -eq 2 ]] || fail "'$cmd' exited $rc, expected 2 ($(cat "$T/usage.err"))"
  grep -qF -- "$want" "$T/usage.err" || fail "'$cmd' said $(head -n 1 "$T/usage.err"), not: $want"
  [[ $(head -n 1 "$T/usage.err" | wc -c) -lt 200 ]] || fail "'$cmd' printed a long line: $(cat "$T/usage.err")"
done <<'CASES'
mq-send -t x --window 0 m|--window: '0' must be at least 1
mq-send -t x --retries abc m|--retries: 'abc' is not a whole number
mq-consume -t x -n -3|--count: '-3' is not a whole number
mq-consume -t x --concurrency 0|--concurrency: '0' must be at least 1
mq-consume -t x -g g --exec true --concurrency 100000|--concurrency: '100000' must be at most 1024
mq-replay -t x --rate -1|--rate: '-1' must be 0 or more
mq-replay -t x --from yesterday|expected earliest, latest, an offset, -N or a time
mq-offset rest -g g|unknown command 'rest'
mq-offset import --dry-run|--dry-run is not an option of import (it is one of reset; see mq-offset --help)
mq-offset|mq-offset: error: a command is required: topics, show, groups, reset, export, import
mq-send -t x --mode fast m|--mode: 'fast' is not one of sync|async|oneway
mq-offset reset -g g -t x --shift abc|invalid --shift 'abc'
mq-broker --queues 2000|--queues: '2000' must be at most 1024
mq-consume -t x --max-span 10 -e|--max-span needs a consumer group
mq-send -t x -p a=1 -p a=2 m|property 'a' given twice
mq-consume -t x -g g --exec cat --format json|--format does not apply to --exec
mq-consume -t x -0 --format json|-0 applies to --format body
mq-send --bogus|argument not expected: --bogus
mq-consume --grup g|did you mean --group?
mq-replay -t x --from 6 --until 3|--from 6 is after --until 3
mq-replay -t x --window 8|--window apply only when publishing
mq-replay -t x --from -1h --until -2h|--from -1h is after --until -2h
mq-consume -t x --format JSON|did you mean json?
mq-consume -t x --exce cat|did you mean --exec?
mq-send -t a -t b m|--topic is given more than once
mq-consume -t x -g g --max-span 99999999999999999999|--max-span: '99999999999999999999' must be at most
mq-broker --max-frame 4XB|--max-frame: invalid size '4XB'
mq-offset --bogus groups|argument not expected: --bogus
mq-offset --format json show --format tsv -g g|--format is given more than once
mq-send --bogus -t|argument not expected: --bogus
mq-consume -t x --from -36501d|--from: invalid time '-36501d': after '-': too large
CASES
# a broker flag value out of range reads like the other usage errors, not as a log line
rc=0; timeout 10 mq-broker --data "$T/mf" --max-frame 32KiB 2>"$T/mf.err" || rc=$?
[[ $rc -eq 2 && $(cat "$T/mf.err") == "mq-broker: error: --max-frame 32KiB: expected 64KiB to 1GiB (see mq-broker --help)" ]] ||
  fail "--max-frame 32KiB: exit $rc, $(cat "$T/mf.err")"
# a queue the topic does not have is the broker's answer, not a usage error: exit 1 (as mq-replay)
rc=0; timeout 10 mq-send -b "$B1" -t x --queue 9 m 2>"$T/q9.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "queue 9 does not exist: topic x has 4 queues" "$T/q9.err" || fail "--queue 9: exit $rc, $(cat "$T/q9.err")"
# an empty value (an unset variable) is refused, not taken as the default
rc=0; timeout 10 mq-consume -b "$B1" -t x -g "" -e 2>"$T/usage.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--group: empty value" "$T/usage.err" || fail "-g '': exit $rc, $(cat "$T/usage.err")"
rc=0; timeout 10 mq-broker --data "" --listen 127.0.0.1:0 2>"$T/usage.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--data: empty value" "$T/usage.err" || fail "--data '': exit $rc, $(cat "$T/usage.err")"
# a closed stdout is an error that says so (not data written into some other descriptor)
rc=0; timeout 10 mq-consume -b "$B1" -t r --from earliest -e >&- 2>"$T/usage.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "standard output is closed" "$T/usage.err" || fail ">&-: exit $rc, $(cat "$T/usage.err")"
# common flags also after mq-offset's subcommand (SPEC: mq-offset topics [-b BROKERS])
timeout 10 mq-offset topics -b "$B1" --timeout 5s --format tsv >"$T/topics.tsv" || fail "mq-offset topics -b exited $?"
cut -f1 "$T/topics.tsv" | grep -qx r || fail "mq-offset topics -b: no topic r in $(cat "$T/topics.tsv")"
# the only broker dies mid-stream: the rest of the input fails in seconds, not at a few messages
# a second after the retry pauses, with a warning now and then (not silence, not a line each)
start_broker gone
{ seq 100; sleep 2; seq 101 3000; } | timeout 60 mq-send -b "$GONE" -t gone --mode sync --receipts \
  >"$T/gone.rcpt" 2>"$T/gone.err" &
sender=$!
EXTRA_PIDS+=("$sender")
wait_until 20 test -s "$T/gone.rcpt" || fail "no receipt before the kill"  # the pause flushed them
stop_broker gone -9
start=$(date +%s%N)
rc=0; wait "$sender" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
[[ $rc -eq 1 ]] || fail "mq-send after its broker died: exit $rc ($(tail -n 2 "$T/gone.err"))"
[[ $ms -lt $((30000 * MQ_SLOW)) ]] || fail "mq-send took ${ms}ms to fail the rest of its input"
[[ $(wc -l <"$T/gone.rcpt") -eq 3000 ]] || fail "receipts: $(wc -l <"$T/gone.rcpt") of 3000"
grep -q "failed so far; going on with the rest" "$T/gone.err" || fail "no warning while failing: $(head -n 3 "$T/gone.err")"
[[ $(wc -l <"$T/gone.err") -le 20 ]] || fail "a line per failure: $(wc -l <"$T/gone.err") lines"
# ... and when it hangs (SIGSTOP: connected, answering nothing): once a send and a hello on a
# new connection timed out, the rest fails at once, not --timeout each (2900 s here)
start_broker hung
{ seq 100; sleep 2; seq 101 3000; } | timeout 120 mq-send -b "$HUNG" -t hung --mode sync --timeout 1s --receipts \
  >"$T/hung.rcpt" 2>"$T/hung.err" &
sender=$!
EXTRA_PIDS+=("$sender")
hundred() { [[ $(wc -l <"$T/hung.rcpt") -ge 100 ]]; }
wait_until 20 hundred || fail "not 100 receipts before the stop: $(wc -l <"$T/hung.rcpt")"
kill -STOP "${PIDS[hung]}"
start=$(date +%s%N)
rc=0; wait "$sender" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
kill -CONT "${PIDS[hung]}"
[[ $rc -eq 1 ]] || fail "mq-send with its broker stopped: exit $rc ($(tail -n 2 "$T/hung.err"))"
[[ $ms -lt $((30000 * MQ_SLOW)) ]] || fail "mq-send took ${ms}ms to fail the rest of its input"
[[ $(awk -F'\t' '$6 == "SEND_OK"' "$T/hung.rcpt" | wc -l) -ge 100 && $(wc -l <"$T/hung.rcpt") -eq 3000 ]] ||
  fail "receipts with a stopped broker: $(cut -f6 "$T/hung.rcpt" | sort | uniq -c | tr '\n' ' ')"
# it answers again: sends go through
timeout 10 mq-send -b "$HUNG" -t hung --mode sync again || fail "send after SIGCONT"
stop_broker hung
# fields the record format or the --tag filters cannot carry: refused before anything is sent,
# per line with --json (was: sent, and refused by the broker as "record lengths do not add up")
rc=0; timeout 10 mq-send -b "$B1" -t x --tag 'a||b' m 2>"$T/tag.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "tag 'a||b': '\*' and '||' are --tag filter syntax" "$T/tag.err" || fail "--tag 'a||b': exit $rc, $(cat "$T/tag.err")"
rc=0; timeout 10 mq-send -b "$B1" -t x --tag 'a|' m 2>"$T/tag.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "tag 'a|' begins or ends with '|'" "$T/tag.err" || fail "--tag 'a|': exit $rc, $(cat "$T/tag.err")"
python3 -c 'import json; print(json.dumps({"body": "ok1"})); print(json.dumps({"body": "big", "key": "k" * 70000})); print(json.dumps({"body": "ok2"}))' |
  { timeout 10 mq-send -b "$B1" -t bigkey --json --receipts >"$T/bigkey" 2>"$T/bigkey.err" && fail "a 70000-byte key was sent"; true; }
grep -q "line 2: key of 70000 bytes is longer than 65535 bytes" "$T/bigkey.err" || fail "big key: $(cat "$T/bigkey.err")"
[[ $(cut -f6 "$T/bigkey" | tr '\n' ' ') == "SEND_OK FAILED SEND_OK " ]] || fail "big key receipts: $(cut -f1,6 "$T/bigkey")"
# the receipts' reader goes away (| head -n 3): a normal end, and the rest of the input is not
# sent (it was, all of it, with no receipt to say so)
rc_send=0
{ for i in $(seq 50); do echo "$i"; sleep 0.1; done; } |
  { timeout 30 mq-send -b "$B1" -t headed --receipts || rc_send=$?; echo "$rc_send" >"$T/headed.rc"; } | head -n 3 >/dev/null || true
[[ $(cat "$T/headed.rc") -eq 0 ]] || fail "mq-send --receipts | head: exit $(cat "$T/headed.rc")"
stored=$(timeout 10 mq-consume -b "$B1" -t headed --from earliest -e | wc -l)
[[ $stored -ge 3 && $stored -le 10 ]] || fail "mq-send --receipts | head -n 3 sent $stored of 50 messages"
# ... also when the input pauses with nothing in flight: a line read after the reader left was
# sent (it was seen only when that line's receipt failed to write)
rc_send=0
{ seq 3; sleep 2; echo late; } |
  { timeout 30 mq-send -b "$B1" -t headed-late --receipts || rc_send=$?; echo "$rc_send" >"$T/headed.rc"; } |
  head -n 3 >/dev/null || true
[[ $(cat "$T/headed.rc") -eq 0 ]] || fail "paused mq-send --receipts | head: exit $(cat "$T/headed.rc")"
late=$(timeout 10 mq-consume -b "$B1" -t headed-late --from earliest -e | sort | tr '\n' ' ')
[[ $late == "1 2 3 " ]] || fail "after the receipts' reader left: stored '$late', expected '1 2 3 ' (late was sent)"
# ... also when the input comes fast: receipts were written in 256 KiB blocks (~4800 lines), so
# the reader saw none of them, and its going away was not seen, until a block was full: with
# one message in flight (--mode sync) thousands were sent after head had what it wanted
rc_send=0
seq 20000 | { timeout 60 mq-send -b "$B1" -t headed-fast --mode sync --receipts || rc_send=$?; echo "$rc_send" >"$T/headed.rc"; } |
  head -n 3 >/dev/null || true
[[ $(cat "$T/headed.rc") -eq 0 ]] || fail "fast mq-send --receipts | head: exit $(cat "$T/headed.rc")"
stored=$(timeout 30 mq-consume -b "$B1" -t headed-fast --from earliest -e | wc -l)
[[ $stored -ge 3 && $stored -le 1000 ]] || fail "fast mq-send --mode sync --receipts | head -n 3 sent $stored of 20000 messages"
note "fast input | head -n 3: $stored sent"
# a stop signal before the input ended: what was sent is finished, and the exit status says the
# rest was not (it was 0, silent: "mq-send < f && rm f" lost the rest of f)
seq 3000000 >"$T/big.in"
mq-send -b "$B1" -t sig <"$T/big.in" 2>"$T/sig.err" &
spid=$!
sleep 1
kill -TERM "$spid"
rc=0; wait "$spid" || rc=$?
[[ $rc -eq 1 ]] && grep -q "stopped by a signal after [0-9]* lines: the rest of the input was not sent" "$T/sig.err" ||
  fail "mq-send stopped by SIGTERM: exit $rc, $(cat "$T/sig.err")"
# receipts to a closed stdout: refused before anything is sent (it sent all, then exited 1,
# inviting a resend that stores them twice)
rc=0; timeout 10 mq-send -b "$B1" -t closed-out --receipts a b >&- 2>"$T/closed.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "cannot write receipts: standard output is closed" "$T/closed.err" ||
  fail "--receipts with stdout closed: exit $rc, $(cat "$T/closed.err")"
[[ $(timeout 10 mq-consume -b "$B1" -t closed-out --from earliest -e 2>/dev/null | wc -l) -eq 0 ]] ||
  fail "--receipts with stdout closed sent messages"
for p in mq-broker mq-send mq-consume; do
  $p --help >/dev/null || fail "$p --help exited $?"
  $p --version | grep -q "$p" || fail "$p --version"
done
echo "$TEST_NAME: ok"
