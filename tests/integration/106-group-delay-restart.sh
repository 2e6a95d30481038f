#!/usr/bin/env bash
# Delayed retries are durable: a message sent back for a 3s retry survives a broker kill -9 and
# is delivered again after the restart, on time and exactly with its id.
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
echo "$TEST_NAME: ok"
