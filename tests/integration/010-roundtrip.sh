#!/usr/bin/env bash
# 100k lines through mq-send and back through the tail: content and count;
# sync mode keeps stdin order in every queue; bodies given as arguments.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async
seq 100000 | timeout 60 mq-send -b "$B1" -t lines || fail "mq-send of 100k lines exited $?"
timeout 60 mq-consume -b "$B1" -t lines --from earliest -e >"$T/out" || fail "tail exited $?"
[[ $(count_lines "$T/out") -eq 100000 ]] || fail "expected 100000 lines, got $(count_lines "$T/out")"
sort -n "$T/out" | diff -q - <(seq 100000) >/dev/null || fail "content differs from seq 100000"

# sync mode: stdin order is queue order
seq 3000 | timeout 60 mq-send -b "$B1" -t ordered --mode sync || fail "sync send exited $?"
timeout 30 mq-consume -b "$B1" -t ordered --from earliest -e --format '%q %s\n' >"$T/ordered"
[[ $(count_lines "$T/ordered") -eq 3000 ]] || fail "ordered: expected 3000, got $(count_lines "$T/ordered")"
awk '{ if ($1 in last && $2 <= last[$1]) { print "queue " $1 ": " $2 " after " last[$1]; bad=1 } last[$1]=$2 } END { exit bad }' \
  "$T/ordered" || fail "sync mode broke per-queue order"
# keyless messages spread over all 4 queues
[[ $(cut -d' ' -f1 "$T/ordered" | sort -u | wc -l) -eq 4 ]] || fail "keyless messages did not spread over 4 queues"
# --from -N: the last N of each queue (kcat's -o -N); more than a queue holds is all of it
timeout 30 mq-consume -b "$B1" -t ordered --from -3 -e --format '%q %s\n' >"$T/last3"
for q in 0 1 2 3; do
  awk -v q="$q" '$1 == q' "$T/ordered" | tail -n 3 | diff - <(awk -v q="$q" '$1 == q' "$T/last3") >/dev/null \
    || fail "--from -3, queue $q: $(awk -v q="$q" '$1 == q' "$T/last3" | tr '\n' ' ')"
done
[[ $(timeout 30 mq-consume -b "$B1" -t ordered --from -100000 -e | wc -l) -eq 3000 ]] || fail "--from -100000 is not everything"

# BODY arguments, key routing, tag, properties, json output
timeout 10 mq-send -b "$B1" -t args -k user-7 --tag red -p a=1 -p b=two "first body" "second body" || fail "args send"
timeout 10 mq-consume -b "$B1" -t args --from earliest -e --format json >"$T/args.json" || fail "args consume"
[[ $(count_lines "$T/args.json") -eq 2 ]] || fail "args: expected 2 messages"
python3 - "$T/args.json" <<'PY' || fail "json fields wrong"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r["body"] for r in rows) == ["first body", "second body"], rows
assert all(r["key"] == "user-7" and r["tag"] == "red" for r in rows), rows
assert all(r["props"] == {"a": "1", "b": "two"} for r in rows), rows
assert len({r["queue"] for r in rows}) == 1, "same key must map to one queue"
assert all(len(r["id"]) == 32 for r in rows) and rows[0]["id"] != rows[1]["id"]
for k in ("topic", "offset", "born", "stored", "reconsume"):
    assert k in rows[0], k
PY

# the tail sees a new message within a short time, also through a pipe
( timeout 20 mq-consume -b "$B1" -t live -n 1 >"$T/live" ) &
tail_pid=$!
EXTRA_PIDS+=("$tail_pid")
slow_sleep 1  # its start (latest) is looked up before the send
start=$(date +%s%N)
timeout 10 mq-send -b "$B1" -t live "hello live" || fail "live send"
wait "$tail_pid" || fail "tail -n 1 exited $?"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[[ $(cat "$T/live") == "hello live" ]] || fail "live tail got '$(cat "$T/live")'"
note "tail saw a new message after ${elapsed_ms}ms (including process start-up of mq-send)"
[[ $elapsed_ms -lt $((3000 * MQ_SLOW)) ]] || fail "tail took ${elapsed_ms}ms: not a long-poll"

# closed stdout is a normal end
set +o pipefail
timeout 20 mq-consume -b "$B1" -t lines --from earliest 2>"$T/head.err" | head -n 3 >"$T/head"
rc=${PIPESTATUS[0]}
set -o pipefail
[[ $rc -eq 0 ]] || fail "mq-consume | head -n 3 exited $rc"
[[ ! -s $T/head.err ]] || fail "mq-consume printed on a closed stdout: $(cat "$T/head.err")"
[[ $(count_lines "$T/head") -eq 3 ]] || fail "head got $(count_lines "$T/head") lines"

# a topic that exists nowhere: said on stderr (a typo is not silence), exit 0 with -e; -q hides it
timeout 10 mq-consume -b "$B1" -t no-such-topic --from earliest -e >"$T/none.out" 2>"$T/none.err" \
  || fail "mq-consume -e of a missing topic exited $?"
[[ ! -s $T/none.out ]] || fail "mq-consume -e of a missing topic printed: $(cat "$T/none.out")"
grep -q "topic 'no-such-topic' does not exist" "$T/none.err" || fail "missing topic not reported: $(cat "$T/none.err")"
timeout 10 mq-consume -b "$B1" -t no-such-topic -e -q 2>"$T/none.q.err" || fail "mq-consume -q -e of a missing topic exited $?"
[[ ! -s $T/none.q.err ]] || fail "-q still reported: $(cat "$T/none.q.err")"
echo "$TEST_NAME: ok"
