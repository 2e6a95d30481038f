#!/usr/bin/env bash
# Fault suite: a group consumer running slow and failing commands (`mq-consume -g G --exec`) is
# killed with SIGKILL at random moments (its running commands with it) and restarted, several
# times. Every message is processed or dead-lettered (lost 0), redeliveries stay within the
# --max-span bound per crash, and every always-failing message ends in %DLQ%G with its id.
# Also runs mqcheck's self-test. TORTURE=1: more messages, more kills.
. "$(dirname "$0")/lib.sh"
. "$MQ_SRC/tests/tools/fault.sh"

python3 "$TOOLS/mqcheck.py" --self-test || fail "mqcheck self-test"

n=$(scale 300 1500)
kills=$(scale 3 12)
span=16
queues=2
start_broker b1 --flush async --queues "$queues" --delay-levels "100ms 200ms 300ms"
seq "$n" | timeout 30 mq-send -b "$B1" -t work --receipts >"$T/rcpt" || fail "send"
cat >"$T/handler.sh" <<'SH'
read -r b
if [ $((b % 40)) -eq 7 ]; then exit 3; fi            # always fails: retried, then DLQ
if [ $((b % 25)) -eq 0 ]; then sleep 0.4; fi          # slow
printf '%s\t%s\n' "$MQ_MSG_ID" "$b" >>"$OUT/done"
SH
export OUT=$T
failing=$(seq "$n" | awk '$1 % 40 == 7' | wc -l)
consume() {  # run as `consume &`: exec, so that $! is mq-consume itself (signals reach it)
  exec mq-consume -b "$B1" -t work -g G --from earliest --exec "sh $T/handler.sh" --concurrency 4 \
    --max-span "$span" --max-retries 2 --commit-interval 200ms "$@" >>"$T/c.out" 2>>"$T/c.log"
}
done_count() { [[ -f $T/done ]] && wc -l <"$T/done" || echo 0; }
# distinct messages processed: a command orphaned by a kill -9 of its consumer may have read a
# cut-off body (an empty line in done), so only bodies 1..n count
processed() { awk -F'\t' -v n="$n" '$2 ~ /^[0-9]+$/ && $2 >= 1 && $2 <= n { s[$2] = 1 } END { print length(s) }' "$T/done" 2>/dev/null || echo 0; }
export -f processed
export n T
for i in $(seq 1 "$kills"); do
  [[ $(processed) -lt $((n - failing)) ]] || break  # all done already
  consume &
  cpid=$!
  EXTRA_PIDS+=("$cpid")
  before=$(done_count)
  # kill once it made some progress, at a random moment after that
  wait_until 30 bash -c "[[ \$( [[ -f $T/done ]] && wc -l <$T/done || echo 0) -gt $before ]]" || fail "consumer $i made no progress"
  rand_sleep 50 400
  kids=$(pgrep -P "$cpid" || true)
  kill -9 "$cpid" 2>/dev/null || true
  for k in $kids; do kill_tree -9 "$k"; done
  wait "$cpid" 2>/dev/null || true
  note "kill $i: $(done_count) processed so far"
done
# the last consumer runs until every message is processed or dead-lettered
consume &
cpid=$!
EXTRA_PIDS+=("$cpid")
dlq() { timeout 10 mq-consume -b "$B1" -t '%DLQ%G' --from earliest -e --format json 2>/dev/null; }
wait_until 90 bash -c "[[ \$(processed) -ge $((n - failing)) ]]" \
  || fail "only $(processed) of $((n - failing)) processed"
# distinct dead letters (a kill between dead-lettering and the commit stores a second copy)
wait_until 30 bash -c "[[ \$(timeout 10 mq-consume -b $B1 -t '%DLQ%G' --from earliest -e 2>/dev/null | sort -u | wc -l) -ge $failing ]]" \
  || fail "dead letters: $(dlq | wc -l), expected $failing distinct"
kill -TERM "$cpid"
timeout 20 tail --pid="$cpid" -f /dev/null || fail "consumer did not stop on SIGTERM"
dlq >"$T/dlq.json"
# duplicates: per crash at most span per queue (+ the commands running at the kill), over the
# topic's queues and the one queue of %RETRY%G; dead-letter copies count as duplicates too
bound=$((kills * (span + 4) * (queues + 1)))
cut -f1 "$T/done" >"$T/done.ids"
figures "consumer-kill" -r "$T/rcpt" -u "$T/done.ids" -d "$T/dlq.json" --max-dup "$bound"
note "bound on duplicates: $bound ($kills kills x (span $span + concurrency 4) x ($queues queues + 1 retry queue))"
# the dead-letter queue holds exactly the always-failing messages, ids kept
python3 - "$T" "$n" <<'PY' || fail "dead-letter contents wrong"
import json, sys
t, n = sys.argv[1], int(sys.argv[2])
ids = {l.split("\t")[0]: l.split("\t")[1] for l in open(f"{t}/rcpt")}   # line (= body) -> id
dlq = [json.loads(l) for l in open(f"{t}/dlq.json")]
bodies = sorted(int(r["body"]) for r in dlq)
want = [b for b in range(1, n + 1) if b % 40 == 7]
assert sorted(set(bodies)) == want, f"dlq bodies {sorted(set(bodies))[:5]}... want {want[:5]}..."
for r in dlq:
    assert r["id"] == ids[r["body"]], f"id changed for {r['body']}"
PY
echo "$TEST_NAME: ok"
