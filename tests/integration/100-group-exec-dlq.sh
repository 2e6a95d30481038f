#!/usr/bin/env bash
# 10000 messages through a group with --exec that fails for a chosen set: every other message is
# processed OK exactly once, every failing one lands in %DLQ%GROUP after --max-retries (with its
# id and a growing MQ_RECONSUME); exit 65 dead-letters at once; nothing is lost.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async --delay-levels "100ms 200ms 300ms"
n=10000
seq "$n" | timeout 60 mq-send -b "$B1" -t work --receipts >"$T/receipts" || fail "send"
cat >"$T/handler.sh" <<'SH'
read -r b
echo "$b $MQ_RECONSUME $MQ_MSG_ID" >>"$OUT/attempts"
if [ $((b % 501)) -eq 0 ]; then exit 65; fi         # poison: dead-letter at once
if [ $((b % 97)) -eq 0 ]; then exit 3; fi           # always fails: retried, then DLQ
if [ $((b % 89)) -eq 0 ] && [ "$MQ_RECONSUME" -lt 1 ]; then exit 1; fi  # fails once, then OK
echo "$b" >>"$OUT/ok"
SH
export OUT=$T
spawn cpid mq-consume -b "$B1" -t work -g workers --from earliest --exec "sh $T/handler.sh" \
    --concurrency 8 --max-retries 2 --commit-interval 200ms -v >"$T/consumer.out" 2>"$T/consumer.log"
poison=$(seq "$n" | awk '$1 % 501 == 0' | wc -l)
always=$(seq "$n" | awk '$1 % 501 != 0 && $1 % 97 == 0' | wc -l)
expect_ok=$((n - poison - always))
dlq_count() { timeout 10 mq-consume -b "$B1" -t '%DLQ%workers' --from earliest -e 2>/dev/null | wc -l; }
ok_count() { [[ -f $T/ok ]] && wc -l <"$T/ok" || echo 0; }
wait_until 200 bash -c "[[ \$( [[ -f $T/ok ]] && wc -l <$T/ok || echo 0) -ge $expect_ok ]]" || fail "only $(ok_count) of $expect_ok processed"
wait_until 60 bash -c "[[ \$(timeout 10 mq-consume -b $B1 -t '%DLQ%workers' --from earliest -e 2>/dev/null | wc -l) -ge $((poison + always)) ]]" \
  || fail "dead letters: $(dlq_count), expected $((poison + always))"
sleep 1
kill -TERM "$cpid"
timeout 20 tail --pid="$cpid" -f /dev/null || fail "consumer did not stop on SIGTERM"
rc=0; wait "$cpid" || rc=$?
[[ $rc -eq 0 ]] || fail "consumer exit $rc after SIGTERM: $(tail -n 5 "$T/consumer.log")"
# its own count (-v) has both kinds of dead letters: exit 65 and retried too often
grep -q "dead-lettered $((poison + always)), " "$T/consumer.log" ||
  fail "consumer's count: $(grep -o 'dead-lettered [0-9]*' "$T/consumer.log"), expected $((poison + always))"
# processed OK exactly once
sort -n "$T/ok" | uniq -d >"$T/dups"
[[ ! -s $T/dups ]] || fail "processed twice: $(head -n 3 "$T/dups")"
[[ $(ok_count) -eq $expect_ok ]] || fail "ok count $(ok_count), expected $expect_ok"
# the DLQ holds exactly the failing set, ids kept, reconsume counts right
timeout 10 mq-consume -b "$B1" -t '%DLQ%workers' --from earliest -e --format json >"$T/dlq.json"
python3 - "$T" "$n" <<'PY' || fail "dead-letter contents wrong"
import json, sys
t, n = sys.argv[1], int(sys.argv[2])
ids = {}
for l in open(f"{t}/receipts"):
    line, mid = l.split("\t")[:2]
    ids[line] = mid          # seq value == line number
dlq = [json.loads(l) for l in open(f"{t}/dlq.json")]
bodies = sorted(int(r["body"]) for r in dlq)
want = sorted(b for b in range(1, n + 1) if b % 501 == 0 or b % 97 == 0)
assert bodies == want, f"dlq bodies differ: {len(bodies)} vs {len(want)}"
for r in dlq:
    b = int(r["body"])
    assert r["id"] == ids[str(b)], f"id changed for {b}"
    assert r["props"].get("%ORIGIN_TOPIC") == "work", r["props"]
    if b % 501 == 0:
        assert r["reconsume"] == 1, f"poison {b} reconsume {r['reconsume']}"
    else:
        assert r["reconsume"] == 3, f"failing {b} reconsume {r['reconsume']}"
# attempts of the always-failing ones: reconsume 0, 1, 2 with the same id
att = {}
for l in open(f"{t}/attempts"):
    b, rc, mid = l.split()
    att.setdefault(int(b), []).append((int(rc), mid))
for b in want:
    if b % 501 == 0: continue
    rcs = sorted(x[0] for x in att[b])
    assert rcs == [0, 1, 2], f"{b}: attempts {rcs}"
    assert {x[1] for x in att[b]} == {ids[str(b)]}
for b in range(89, n + 1, 89):
    if b % 97 and b % 501:
        assert sorted(x[0] for x in att[b]) == [0, 1], f"{b}: {att[b]}"
PY
echo "$TEST_NAME: ok ($expect_ok consumed once, $((poison + always)) dead-lettered)"
