#!/usr/bin/env bash
# --max-topics (here from --config): a send that would auto-create a topic past the limit is
# refused naming the topic and the limit, mq-send exits 1, nothing of it is stored, existing
# topics keep working. The broker's own topics are exempt: at the limit a failing message still
# goes through %RETRY%G to %DLQ%G. A limit below what the data directory holds keeps its topics.
# 400 topics work under a soft open-file limit of 256 (the broker raises it).
. "$(dirname "$0")/lib.sh"

printf 'flush = "async"\nmax-topics = 2\n' >"$T/broker.conf"
start_broker b1 --config "$T/broker.conf" --delay-levels "100ms 200ms"
timeout 10 mq-send -b "$B1" -t one m1 || fail "first topic: exit $?"
timeout 10 mq-send -b "$B1" -t two m2 || fail "second topic: exit $?"
rc=0
seq 3 | timeout 10 mq-send -b "$B1" -t three --receipts >"$T/three.rcpt" 2>"$T/three.err" || rc=$?
[[ $rc -eq 1 ]] || fail "send past --max-topics exited $rc"
grep -q 'topic three not created' "$T/three.err" && grep -q -- '--max-topics 2' "$T/three.err" \
  || fail "refusal does not name the topic and the limit: $(cat "$T/three.err")"
[[ $(grep -c 'FAILED$' "$T/three.rcpt") -eq 3 ]] || fail "receipts: $(cat "$T/three.rcpt")"
grep -q 'topic three not created' "$T/b1.log" || fail "broker did not warn about the refusal"
topics() { timeout 10 mq-offset -b "$1" topics --format tsv | tail -n +2 | cut -f1 | sort -u | tr '\n' ' '; }
[[ $(topics "$B1") == "one two " ]] || fail "topics after the refusal: $(topics "$B1")"
timeout 10 mq-send -b "$B1" -t one m1b || fail "an existing topic refused at the limit: exit $?"

# at the limit, a message that keeps failing is retried and dead-lettered all the same
spawn cpid mq-consume -b "$B1" -t one -g g --from earliest --exec "sh -c 'cat >/dev/null; exit 3'" \
  --max-retries 1 --commit-interval 100ms >/dev/null 2>"$T/consumer.log"
dlq() { timeout 5 mq-consume -b "$B1" -t '%DLQ%g' --from earliest -e 2>/dev/null | sort | tr '\n' ' '; }
wait_until 30 bash -c "[[ \"\$(timeout 5 mq-consume -b $B1 -t '%DLQ%g' --from earliest -e 2>/dev/null | wc -l)\" -ge 2 ]]" \
  || fail "dead letters at the topic limit: '$(dlq)'"
[[ $(dlq) == "m1 m1b " ]] || fail "dead-letter queue holds '$(dlq)'"
kill -TERM "$cpid"
timeout 20 tail --pid="$cpid" -f /dev/null || fail "consumer did not stop"
grep -q '"%RETRY%g"' "${DATA[b1]}/topics.json" || fail "no retry topic in topics.json"
rc=0
timeout 10 mq-send -b "$B1" -t three m3 2>/dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "the broker's own topics were counted or freed a place: exit $rc"

# a lower limit on restart: the topics stay, new ones are refused
stop_broker b1 -TERM
start_broker b2 --data "${DATA[b1]}" --max-topics 1
grep -q '2 topics exist, more than --max-topics 1' "$T/b2.log" || fail "no warning about the lowered limit"
timeout 10 mq-send -b "$B2" -t two m2b || fail "existing topic refused after lowering the limit: exit $?"
[[ $(timeout 10 mq-consume -b "$B2" -t two --from earliest -e | sort | tr '\n' ' ') == "m2 m2b " ]] || fail "topic two"
rc=0
timeout 10 mq-send -b "$B2" -t four m4 2>"$T/four.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q 'topic four not created' "$T/four.err" || fail "new topic past a lowered limit: exit $rc"
rc=0
timeout 10 mq-broker --data "$T/x" --listen 127.0.0.1:0 --max-topics 0 2>"$T/zero.err" || rc=$?
[[ $rc -eq 2 ]] || fail "--max-topics 0 exited $rc"

# many topics on a low soft open-file limit: the broker raises it to the hard limit at start
# (each queue written keeps its index file open), so 400 topics work under a soft limit of 256
soft=$(ulimit -S -n)
ulimit -S -n 256
start_broker many --flush async
ulimit -S -n "$soft"
read -r _ _ _ lsoft lhard _ < <(grep 'Max open files' "/proc/${PIDS[many]}/limits")
[[ $lsoft == "$lhard" ]] || fail "open file limit not raised: soft $lsoft, hard $lhard"
for i in $(seq 1 400); do echo "m$i"; done | while read -r m; do
  timeout 10 mq-send -b "$MANY" -q -t "t-$m" "$m" || { echo "send to t-$m failed" >&2; exit 1; }
done || fail "sending to 400 topics"
[[ $(timeout 10 mq-consume -b "$MANY" -t t-m400 --from earliest -e) == m400 ]] || fail "topic 400 unreadable"
[[ $(ls /proc/"${PIDS[many]}"/fd | wc -l) -gt 256 ]] || fail "the test did not need more than 256 files"
stop_broker many -TERM
echo "$TEST_NAME: ok"
