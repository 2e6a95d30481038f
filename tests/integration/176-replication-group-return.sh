#!/usr/bin/env bash
# Three members of a group on -b MASTER,SLAVE; the master is killed (-9) mid-backlog and
# returns 8 s later. The members move to the slave and back with their queues: the broker
# each arrives at knows no members, and the first one there must not be handed the others'
# queues (it would start them again at that broker's older offsets while their holders still
# run them). Every message runs; none runs again after the master's return; duplicates stay
# within the fail-over's in-flight window; the master ends with every queue committed.
. "$(dirname "$0")/lib.sh"

start_broker m --flush sync
start_broker s --role slave --master "$M"
seq 3000 | timeout 30 mq-send -b "$M" -t fo || fail "send"
export OUT=$T
for i in 1 2 3; do
  MEMBER=m$i spawn "P$i" mq-consume -b "$M,$S" -t fo -g g --from earliest --commit-interval 200ms \
    --exec 'b=$(cat); sleep 0.01; echo "$b $MQ_QUEUE $MEMBER" >>"$OUT/done"' 2>"$T/c$i.log"
done
wait_until 60 bash -c "[[ \$(wc -l <$T/done 2>/dev/null || echo 0) -ge 500 ]]" || fail "members did not start"
stop_broker m -9
sleep 8
killed_at=$(count_lines "$T/done")
restart_broker m
echo BACK >>"$T/done"
wait_until 120 bash -c "[[ \$(grep -v BACK $T/done | cut -d' ' -f1 | sort -u | wc -l) -ge 3000 ]]" \
  || fail "$(grep -v BACK "$T/done" | cut -d' ' -f1 | sort -u | wc -l) of 3000 ran"
for i in 1 2 3; do grep -q "is back: continuing on it" "$T/c$i.log" || fail "m$i did not move back to the master"; done
for i in 1 2 3; do v=P$i; kill -TERM "${!v}"; done
for i in 1 2 3; do v=P$i; timeout 20 tail --pid="${!v}" -f /dev/null || fail "m$i did not stop"; done
python3 - "$T/done" <<'PY' || fail "runs after the master's return"
import sys
lines = [l.split() for l in open(sys.argv[1])]
back = lines.index(["BACK"])
before = {l[0] for l in lines[:back]}
again = [l for l in lines[back + 1:] if l[0] in before]
runs = [l[0] for l in lines if l != ["BACK"]]
dups = len(runs) - len(set(runs))
print(f"{len(runs)} runs of {len(set(runs))} messages, {dups} duplicates, {len(again)} run again after the return")
assert len(set(runs)) == 3000
assert len(again) <= 10, f"{len(again)} messages ran again after the master returned, first {again[:3]}"
assert dups <= 150, f"{dups} duplicates"
PY
wait_until 10 committed_is "$T/m/offsets.json" g fo 3000 \
  || fail "the master holds $(committed "$T/m/offsets.json" g fo) committed of 3000: $(jq -c .offsets "$T/m/offsets.json")"
echo "$TEST_NAME: ok"
