#!/usr/bin/env bash
# A stuck --exec is terminated at --consume-timeout (its children too) and the message is retried;
# the timed-out attempt never finishes later.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async --delay-levels "200ms"
timeout 10 mq-send -b "$B1" -t stuck "only-one" || fail "send"
cat >"$T/h.sh" <<'SH'
cat >/dev/null
if [ "$MQ_RECONSUME" = 0 ]; then
  echo started >>"$OUT/first"
  sleep 30 &
  echo $! >"$OUT/sleep.pid"
  wait $!
  echo finished >>"$OUT/first"
  exit 0
fi
echo "retry $MQ_RECONSUME" >>"$OUT/ok"
SH
export OUT=$T
start=$SECONDS
timeout 60 mq-consume -b "$B1" -t stuck -g g --from earliest --exec "sh $T/h.sh" --consume-timeout 1s -n 2 \
  2>"$T/c.log" || fail "consumer: $(tail -n 3 "$T/c.log")"
elapsed=$((SECONDS - start))
[[ -f $T/ok ]] || fail "message not retried after the timeout"
grep -q '^retry 1$' "$T/ok" || fail "retry ran with $(cat "$T/ok")"
[[ $elapsed -lt 20 ]] || fail "took ${elapsed}s: the stuck command was not terminated at 1s"
sleep 1
! grep -q finished "$T/first" || fail "the timed-out attempt finished anyway"
# (by its pid: other tests on the machine may run a "sleep 30" of their own)
[[ -s $T/sleep.pid ]] || fail "the stuck command did not record its child"
kill -0 "$(cat "$T/sleep.pid")" 2>/dev/null && fail "the stuck command's child is still running"
echo "$TEST_NAME: ok (${elapsed}s)"
