#!/usr/bin/env bash
# A member killed -9 while its --exec command runs: the command (and what it started) is
# terminated by the member's reaper instead of running on unseen, and the broker sees the
# member gone at once (the command does not hold the member's connection: it gets stdin,
# stdout and stderr only).
. "$(dirname "$0")/lib.sh"

start_broker b
timeout 10 mq-send -b "$B" -t o job || fail "send"
cat >"$T/job.sh" <<SH
ps -o pgid= -p \$\$ | tr -d ' ' >"$T/pgid.tmp" && mv "$T/pgid.tmp" "$T/pgid"  # the group of sh -c
ls -l /proc/\$\$/fd >"$T/fds"
sleep 30 &
wait
echo finished >"$T/finished"
SH
spawn cpid mq-consume -b "$B" -t o -g g --from earliest --exec "sh $T/job.sh"
wait_until 20 test -s "$T/pgid" || fail "the command did not start"
sleep 0.3
grep -q 'socket:' "$T/fds" && fail "the command holds a socket of its member: $(cat "$T/fds")"
members() { timeout 10 mq-offset -b "$B" groups | awk -F'\t' '$1 == "g" { print $2 }'; }
no_members() { [[ $(members) -eq 0 ]]; }
[[ $(members) -eq 1 ]] || fail "the member is not listed"
pg=$(cat "$T/pgid")
[[ $pg -gt 1 ]] && kill -0 -- "-$pg" || fail "no process group $pg"
AT_EXIT+=("kill -9 -- -$pg 2>/dev/null")
kill -9 "$cpid"
gone() { ! kill -0 -- "-$pg" 2>/dev/null; }
wait_until 5 gone || fail "the command's process group outlived its member: $(pgrep -a -g "$pg")"
wait_until 4 no_members || fail "the broker still lists the killed member"
sleep 0.5
[[ ! -e $T/finished ]] || fail "the command finished after its member was killed"

# commands writing to a closed standard output (| head -n 3) die of SIGPIPE: that is the end
# of the run (exit 0), not 17 failures retried into the dead-letter queue
seq 1 20 | timeout 10 mq-send -b "$B" -t h --queue 0 || fail "send h"
set +o pipefail
timeout 30 mq-consume -b "$B" -t h -g gh --from earliest --exec 'b=$(cat); echo "$b"' 2>"$T/h.err" | head -n 3 >"$T/h.out"
rc=${PIPESTATUS[0]}
set -o pipefail
[[ $rc -eq 0 ]] || fail "--exec into a closed pipe: exit $rc, $(cat "$T/h.err")"
[[ $(count_lines "$T/h.out") -eq 3 ]] || fail "head got $(count_lines "$T/h.out") lines"
[[ ! -s $T/h.err ]] || fail "a closed pipe is a normal end, but: $(cat "$T/h.err")"
timeout 20 mq-consume -b "$B" -t %DLQ%gh --from earliest -e >"$T/h.dlq" 2>/dev/null || true
[[ $(count_lines "$T/h.dlq") -eq 0 ]] || fail "$(count_lines "$T/h.dlq") messages dead-lettered by SIGPIPE"
timeout 20 mq-consume -b "$B" -t h -g gh -e >"$T/h.rest" || fail "the rest: exit $?"
sort -n -u "$T/h.out" "$T/h.rest" | diff - <(seq 1 20) >/dev/null || fail "messages skipped: $(sort -n "$T/h.out" "$T/h.rest" | tr '\n' ' ')"
# ... and so does a command that a shell runs as its child: the shell exits 141 (128+SIGPIPE)
seq 1 5 | timeout 10 mq-send -b "$B" -t y --queue 0 || fail "send y"
set +o pipefail
timeout 30 mq-consume -b "$B" -t y -g gy --from earliest --exec 'cat >/dev/null; yes' 2>"$T/y.err" | head -c 10 >/dev/null
rc=${PIPESTATUS[0]}
set -o pipefail
[[ $rc -eq 0 && ! -s $T/y.err ]] || fail "--exec 'cat; yes' into a closed pipe: exit $rc, $(cat "$T/y.err")"
sleep 1.5  # past the first delay level: a message sent back would be in %RETRY%gy by now
timeout 20 mq-consume -b "$B" -t y -g gy -e --exec 'cat; echo ":$MQ_RECONSUME"' >"$T/y.rest" 2>/dev/null ||
  fail "the rest of y: exit $?"
[[ $(sort -n "$T/y.rest" | tr '\n' ' ') == "1:0 2:0 3:0 4:0 5:0 " ]] ||
  fail "after the shell's exit 141, every message should come again from its queue, not as a retry: $(tr '\n' ' ' <"$T/y.rest")"
timeout 20 mq-consume -b "$B" -t %DLQ%gy --from earliest -e >"$T/y.dlq" 2>/dev/null || true
[[ ! -s $T/y.dlq ]] || fail "dead-lettered by the shell's exit 141: $(cat "$T/y.dlq")"
stop_broker b -TERM
echo "$TEST_NAME: ok"
