#!/usr/bin/env bash
# Delayed retries are durable: a message sent back for a 3s retry survives a broker kill -9 and
# is delivered again after the restart, on time and exactly with its id. A send-back that fails
# because the broker is down is retried by the consumer until it is back.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush sync --delay-levels "3s"
timeout 10 mq-send -b "$B1" -t d --receipts "retry-me" >"$T/r" || fail "send"
cat >"$T/h.sh" <<'SH'
cat >/dev/null
echo "$MQ_RECONSUME $MQ_MSG_ID $(date +%s%N)" >>"$OUT/attempts"
[ "$MQ_RECONSUME" -ge 1 ]
SH
export OUT=$T
timeout 20 mq-consume -b "$B1" -t d -g g --from earliest --exec "sh $T/h.sh" -n 1 2>"$T/c1.log" || fail "first attempt"
sent_back=$(date +%s%N)
[[ $(wc -l <"$T/attempts") -eq 1 ]] || fail "first attempt not recorded"
# the kill -9 comes once the commit past the sent-back message is on disk (offsets are written at
# most every 200 ms; a SAN run lost the race and got the original again, MQ_RECONSUME=0)
wait_until 5 committed_is "${DATA[b1]}/offsets.json" g d 1 \
  || fail "the commit after the send-back was not persisted: $(committed "${DATA[b1]}/offsets.json" g d)"
stop_broker b1 -9
restart_broker b1
timeout 30 mq-consume -b "$B1" -t d -g g --exec "sh $T/h.sh" -n 1 2>"$T/c2.log" || fail "retry after restart: $(tail -n 3 "$T/c2.log")"
read -r rc id at < <(tail -n 1 "$T/attempts")
[[ $rc -eq 1 ]] || fail "retry had MQ_RECONSUME=$rc"
[[ $id == $(cut -f2 "$T/r") ]] || fail "retry changed the message id"
delay_ms=$(( (at - sent_back) / 1000000 ))
note "retry delivered ${delay_ms}ms after the send-back (level 3s)"
[[ $delay_ms -ge 2500 ]] || fail "retry came too early: ${delay_ms}ms"
[[ $delay_ms -le 8000 ]] || fail "retry came too late: ${delay_ms}ms"

# A send-back that fails (the broker is down when the command fails) is retried by the consumer
# until the broker is back, never dropped: the message is delivered again with MQ_RECONSUME=1.
timeout 10 mq-send -b "$B1" -t d2 "back-later" || fail "send d2"
cat >"$T/h2.sh" <<'SH'
cat >/dev/null
echo "$MQ_RECONSUME" >>"$OUT/attempts2"
if [ "$MQ_RECONSUME" = 0 ]; then : >"$OUT/running2"; sleep 2; exit 3; fi
SH
spawn cpid mq-consume -b "$B1" -t d2 -g g2 --from earliest --exec "sh $T/h2.sh" --commit-interval 200ms \
  2>"$T/c3.log"
wait_until 10 test -f "$T/running2" || fail "the first attempt of d2 did not start"
stop_broker b1 -9  # while the command runs: its send-back finds no broker
failed_back() { grep -q 'sending a failed message back failed' "$T/c3.log"; }
wait_until 10 failed_back || fail "no failed send-back: $(cat "$T/c3.log")"
restart_broker b1
again() { grep -qx 1 "$T/attempts2"; }
wait_until 30 again || fail "not delivered again after a failed send-back: $(tr '\n' ' ' <"$T/attempts2"); $(tail -n 5 "$T/c3.log")"
[[ $(tr '\n' ' ' <"$T/attempts2") == "0 1 " ]] || fail "d2 attempts: $(tr '\n' ' ' <"$T/attempts2")"
kill -TERM "$cpid"
timeout 15 tail --pid="$cpid" -f /dev/null || fail "consumer of d2 did not stop"
echo "$TEST_NAME: ok"
