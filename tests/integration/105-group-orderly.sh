#!/usr/bin/env bash
# --orderly: each queue is processed strictly in order, one message at a time; a failure is
# retried in place (holding its queue) and after --max-retries goes to the dead-letter queue,
# then the queue moves on.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async --queues 2
for i in $(seq 1 200); do echo "k$((i % 2)) $i"; done >"$T/input"
# key routes to a queue: use --json so each line carries its key
awk '{ printf "{\"key\":\"%s\",\"body\":\"%s\"}\n", $1, $2 }' "$T/input" | timeout 30 mq-send -b "$B1" -t ord --json --mode sync \
  || fail "send"
cat >"$T/h.sh" <<'SH'
read -r b
echo "start $b $MQ_QUEUE $MQ_RECONSUME" >>"$OUT/log"
if [ "$b" = 50 ] && [ "$MQ_RECONSUME" -lt 2 ]; then echo "fail $b $MQ_QUEUE" >>"$OUT/log"; exit 1; fi  # twice
if [ "$b" = 120 ]; then echo "fail $b $MQ_QUEUE" >>"$OUT/log"; exit 1; fi   # always: DLQ after retries
echo "end $b $MQ_QUEUE" >>"$OUT/log"
SH
export OUT=$T
timeout 90 mq-consume -b "$B1" -t ord -g o --from earliest --orderly --concurrency 4 --exec "sh $T/h.sh" \
  --max-retries 2 -e 2>"$T/c.log" || fail "orderly consumer: $(tail -n 3 "$T/c.log")"
python3 - "$T/log" <<'PY' || fail "orderly order violated"
import sys
events = [l.split() for l in open(sys.argv[1])]
running = {}
last_end = {}
for ev in events:
    kind, b, q = ev[0], int(ev[1]), ev[2]
    if kind == "start":
        assert q not in running, f"queue {q}: {b} started while {running[q]} runs"
        running[q] = b
    elif kind == "fail":
        assert running.pop(q) == b
    else:
        assert running.pop(q) == b
        assert last_end.get(q, 0) < b, f"queue {q}: {b} finished after {last_end[q]}"
        last_end[q] = b
# a failing message is retried before anything later in its queue starts
starts = [(int(e[1]), int(e[3])) for e in events if e[0] == "start"]
i50 = [i for i, (b, r) in enumerate(starts) if b == 50]
assert [starts[i][1] for i in i50] == [0, 1, 2], starts[i50[0]:i50[0]+3]
ends = {int(e[1]) for e in events if e[0] == "end"}
assert ends == set(range(1, 201)) - {120}, sorted(set(range(1, 201)) - {120} - ends)[:5]
PY
timeout 10 mq-consume -b "$B1" -t '%DLQ%o' --from earliest -e >"$T/dlq"
[[ $(cat "$T/dlq") == 120 ]] || fail "DLQ holds '$(cat "$T/dlq")', expected 120"

# A failure retried in place is the queue's commit blocker: mq-offset show counts its attempts.
timeout 10 mq-send -b "$B1" -t stuck --queue 0 --mode sync stuck after || fail "send stuck"
spawn C2 mq-consume -b "$B1" -t stuck -g s --from earliest --orderly --exec 'exit 1' -q
blocker_retried() {  # the queue's row: ... blocker age reconsume waiting
  mq-offset show -b "$B1" -g s -t stuck --format json >"$T/show.json" &&
    python3 -c 'import json,sys; r=[q for q in json.load(open(sys.argv[1])) if q["queue"]==0];
sys.exit(0 if r and r[0]["blocker"]==0 and int(r[0]["reconsume"])>=1 else 1)' "$T/show.json"
}
wait_until 20 blocker_retried || fail "show after an in-place retry: $(cat "$T/show.json")"
kill "$C2"; wait "$C2" 2>/dev/null
echo "$TEST_NAME: ok"
