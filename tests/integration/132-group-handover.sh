#!/usr/bin/env bash
# Hand-over between members. (1) Members started together share a backlog: the first one to
# join gives up the queues the later ones are assigned without running the messages it had
# pulled of them first. (2) An --orderly member frozen (SIGSTOP) past the broker's session
# timeout loses its queue to another member and, woken up, runs nothing of it while that one
# does (it may get it back in a rebalance, after the other let go). (1b) A member runs the
# queues it holds side by side.
. "$(dirname "$0")/lib.sh"
stop_member() { kill -TERM "$1" 2>/dev/null; timeout 15 tail --pid="$1" -f /dev/null || fail "member $1 did not stop"; }

start_broker b1 --flush async --queues 6
seq 1 1800 | timeout 30 mq-send -b "$B1" -t backlog || fail "send the backlog"
cat >"$T/h.sh" <<'SH'
read -r b
# when the member forked this command (clock ticks since boot, field 22 of /proc/PID/stat): the
# shell mq-consume spawned, which runs this one once the command is listed (its gate)
echo "start $b $MQ_QUEUE $MEMBER $(cut -d' ' -f22 /proc/$PPID/stat)" >>"$OUT/log"
sleep "$NAP"
echo "end $b $MQ_QUEUE $MEMBER" >>"$OUT/log"
SH
export OUT=$T NAP=0.01
for m in m1 m2 m3; do
  MEMBER=$m spawn "PID_$m" mq-consume -b "$B1" -t backlog -g share --from earliest --exec "sh $T/h.sh" \
    --commit-interval 200ms 2>>"$T/$m.log"
done
wait_until 120 bash -c "[[ \$(grep -c ^end $T/log 2>/dev/null || echo 0) -ge 1800 ]]" \
  || fail "backlog: $(grep -c ^end "$T/log") of 1800 done"
for m in m1 m2 m3; do v=PID_$m; stop_member "${!v}"; done
grep ^end "$T/log" | awk '{print $2}' | sort -n | diff -q - <(seq 1800) >/dev/null \
  || fail "backlog: messages lost or run twice"
for m in m1 m2 m3; do
  n=$(grep -c "^end .* $m\$" "$T/log" || true)
  note "backlog: $m ran $n of 1800"
  # six queues over three members: two each; the first to join took all six for a moment
  [[ $n -ge 300 ]] || fail "backlog: $m ran only $n of 1800 (the backlog was not shared)"
done

# (1b) one member holding all six queues runs them side by side, not one queue's backlog first
: >"$T/log"
seq 1 600 | timeout 30 mq-send -b "$B1" -t fair || fail "send fair"
MEMBER=solo spawn PID_solo mq-consume -b "$B1" -t fair -g fair --from earliest --exec "sh $T/h.sh" 2>>"$T/solo.log"
wait_until 60 bash -c "[[ \$(grep -c ^end $T/log 2>/dev/null || echo 0) -ge 120 ]]" || fail "fair: the member did not run"
stop_member "$PID_solo"
first=$(grep ^start "$T/log" | head -n 120 | awk '{print $3}' | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' ')
note "fair: the first 120 runs by queue: $first"
for q in 0 1 2 3 4 5; do
  n=$(grep ^start "$T/log" | head -n 120 | awk -v q="$q" '$3 == q' | wc -l)
  [[ $n -ge 10 ]] || fail "fair: queue $q had $n of the first 120 runs ($first)"
done

# (2) one queue, two orderly members; A runs it, B waits; A is frozen past the session timeout.
: >"$T/log"
start_broker b2 --flush async --queues 1
seq 1 300 | timeout 30 mq-send -b "$B2" -t ord --mode sync || fail "send ord"
export NAP=0.02
MEMBER=A spawn PID_A mq-consume -b "$B2" -t ord -g o --from earliest --orderly --exec "sh $T/h.sh" 2>>"$T/A.log"
wait_until 20 bash -c "[[ \$(grep -c '^end .* A\$' $T/log 2>/dev/null || echo 0) -ge 5 ]]" || fail "A did not start"
MEMBER=B spawn PID_B mq-consume -b "$B2" -t ord -g o --from earliest --orderly --exec "sh $T/h.sh" 2>>"$T/B.log"
sleep 1
kill -STOP "$PID_A"
echo "FREEZE" >>"$T/log"
wait_until 30 bash -c "grep -q '^start [0-9]* [0-9]* B ' $T/log" || fail "B did not take over the frozen member's queue"
thaw=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", $1 * hz }' /proc/uptime)  # before A wakes
kill -CONT "$PID_A"
echo "THAW $thaw" >>"$T/log"
wait_until 60 bash -c "[[ \$(grep '^end' $T/log | awk '{print \$2}' | sort -u | wc -l) -ge 300 ]]" \
  || fail "orderly: $(grep '^end' "$T/log" | awk '{print $2}' | sort -u | wc -l) of 300 done"
kill -0 "$PID_A" || fail "the thawed member died"
stop_member "$PID_A"
stop_member "$PID_B"
python3 - "$T/log" <<'PY' || fail "orderly hand-over violated"
import sys
lines = [l.split() for l in open(sys.argv[1])]
frozen = lines.index(["FREEZE"])
# Never two members on the queue at once, but for what A had in hand when it was frozen: a
# command forked before the freeze may still wait for its body (A writes it once woken), so
# it starts late. Such commands (forked before the thaw) are left out of the check; a
# command A forks after waking must not run beside B's (A may get the queue back later).
thaw = int(next(l for l in lines if l[0] == "THAW")[1])
drop = set()
for i in range(frozen, len(lines)):
    l = lines[i]
    if l[0] == "start" and l[3] == "A" and int(l[4]) < thaw:
        drop.add(i)
        drop.add(next((j for j in range(i, len(lines)) if lines[j][:2] == ["end", l[1]] and lines[j][3] == "A"), i))
assert len(drop) <= 2, f"A started {len(drop) // 2} commands forked before the thaw after the freeze"
lines = [l for i, l in enumerate(lines) if i not in drop]
running = {}
for i, l in enumerate(lines):
    if l[0] == "start":
        others = {m: b for m, b in running.items() if m != l[3]}
        assert not others, f"line {i + 1}: {l[3]} started {l[1]} while {others} ran"
        assert l[3] not in running, f"line {i + 1}: {l[3]} started {l[1]} while it ran {running[l[3]]}"
        running[l[3]] = l[1]
    elif l[0] == "end":
        assert running.pop(l[3]) == l[1]
# in order while one member holds it
for i in range(1, len(lines)):
    p, l = lines[i - 1], lines[i]
    if l[0] == "start" and p[0] == "end" and p[3] == l[3]:
        assert int(l[1]) == int(p[1]) + 1, f"line {i + 1}: {l[3]} ran {l[1]} after {p[1]}"
assert any(l[0] == "start" and l[3] == "B" for l in lines[frozen:]), "B never ran"
PY
echo "$TEST_NAME: ok"
