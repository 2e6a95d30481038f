#!/usr/bin/env bash
# Two, then three members of one group share a topic's queues; one is killed -9 mid-stream and
# the others take over its queues within seconds; nothing is lost.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async --queues 6
cat >"$T/h.sh" <<'SH'
read -r b
echo "$b $MQ_QUEUE $MEMBER" >>"$OUT/done"
SH
export OUT=$T
member() {
  MEMBER=$1 spawn "PID_$1" mq-consume -b "$B1" -t rb -g g --from earliest --exec "sh $T/h.sh" --concurrency 2 \
    --commit-interval 200ms 2>>"$T/$1.log"
}
member m1
member m2
sleep 4
seq 1 600 | timeout 30 mq-send -b "$B1" -t rb || fail "send 1"
wait_until 90 bash -c "[[ \$(wc -l <$T/done 2>/dev/null || echo 0) -ge 600 ]]" || fail "first batch not consumed"
[[ $(awk '{print $3}' "$T/done" | sort -u | wc -l) -eq 2 ]] || fail "two members did not share the work"
# each queue was processed by one member only
[[ $(awk '{print $2, $3}' "$T/done" | sort -u | awk '{print $1}' | uniq -d | wc -l) -eq 0 ]] || fail "a queue was processed by two members"
member m3
sleep 4
seq 601 1200 | timeout 30 mq-send -b "$B1" -t rb || fail "send 2"
wait_until 90 bash -c "[[ \$(wc -l <$T/done) -ge 1200 ]]" || fail "second batch not consumed"
[[ $(awk '$1 > 600 {print $3}' "$T/done" | sort -u | wc -l) -eq 3 ]] || fail "three members did not share the work"
kill -9 "$PID_m2"
seq 1201 1800 | timeout 30 mq-send -b "$B1" -t rb || fail "send 3"
start=$SECONDS
wait_until 60 bash -c "[[ \$(cut -d' ' -f1 $T/done | sort -u | wc -l) -ge 1800 ]]" || fail "after kill: $(cut -d' ' -f1 "$T/done" | sort -u | wc -l) of 1800"
note "the survivors finished the work $((SECONDS - start))s after the kill"
cut -d' ' -f1 "$T/done" | sort -n | uniq | diff -q - <(seq 1800) >/dev/null || fail "messages lost"
[[ $(awk '$1 > 1200 {print $3}' "$T/done" | grep -c m2 || true) -eq 0 ]] || fail "the killed member processed messages after its death"
echo "$TEST_NAME: ok"
