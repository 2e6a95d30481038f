#!/usr/bin/env bash
# How a group member stops: SIGTERM stops pulling and starting commands at once, lets running
# commands finish for --stop-grace (those are committed), then terminates the rest (SIGTERM,
# then SIGKILL; they are not committed and are delivered again), exits 0; a second signal exits
# at once (143) and kills the running commands. --exec without -g is a usage error. --tag
# filters a group. A member killed -9 loses its queues to the others within seconds. A reader
# that stops reading stops neither heartbeats nor a stop signal (member and tail).
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async --queues 1
export OUT=$T
committed() { timeout 10 mq-offset -b "$B1" export -g "$1" | awk -F'\t' -v t="$2" '$2 == t && $4 == 0 { print $5 }'; }
# alive PIDFILE: that process runs (a zombie waiting for its reaper does not count)
alive() { local p; p=$(cat "$1"); [[ -e /proc/$p ]] && ! grep -q '^[0-9]* (.*) Z' "/proc/$p/stat" 2>/dev/null; }
# gone PIDFILE: it is dead within a second (SIGKILL was sent before the consumer returned)
gone() {
  local i
  for i in $(seq 1 $((20 * MQ_SLOW))); do
    alive "$1" || return 0
    sleep 0.05
  done
  return 1
}
# stop_consumer PID: SIGTERM, then wait for the exit; sets RC and MS (from the signal to the exit)
stop_consumer() {
  local start
  start=$(date +%s%N)
  kill -TERM "$1"
  timeout 20 tail --pid="$1" -f /dev/null || fail "consumer $1 did not exit after SIGTERM"
  RC=0
  wait "$1" || RC=$?
  MS=$((($(date +%s%N) - start) / 1000000))
}

# ---- --exec without -g: exit 2, and the message says why
rc=0
timeout 10 mq-consume -b "$B1" -t nogroup --exec true -e 2>"$T/nogroup.err" || rc=$?
[[ $rc -eq 2 ]] || fail "--exec without -g: exit $rc"
grep -q -- '--exec needs a consumer group (-g GROUP)' "$T/nogroup.err" || fail "--exec without -g: $(cat "$T/nogroup.err")"
[[ $(wc -l <"$T/nogroup.err") -eq 1 ]] || fail "--exec without -g: more than one line: $(cat "$T/nogroup.err")"

# ---- SIGTERM with running commands: offset 0 finishes within the grace, offset 1 ignores
# SIGTERM and is killed, offsets 2.. were pulled but never start
cat >"$T/h.sh" <<'SH'
read -r b
echo "$b $MQ_RECONSUME" >>"$OUT/started"
case $b in
  quick) sleep 2 ;;
  stuck) trap '' TERM; echo $$ >"$OUT/stuck.pid"; sleep 60 ;;
esac
echo "$b" >>"$OUT/done"
SH
printf '%s\n' quick stuck q1 q2 q3 q4 q5 q6 | timeout 10 mq-send -b "$B1" -t st --mode sync || fail "send st"
spawn cpid mq-consume -b "$B1" -t st -g g --from earliest --exec "sh $T/h.sh" --concurrency 2 \
  --stop-grace 3s --commit-interval 200ms >/dev/null 2>"$T/c1.log"
wait_until 20 bash -c "[[ -s $T/stuck.pid && \$(wc -l <$T/started) -ge 2 ]]" || fail "the two commands did not start"
stop_consumer "$cpid"
[[ $RC -eq 0 ]] || fail "SIGTERM: exit $RC"
# 3 s grace, then SIGTERM (ignored), SIGKILL 2 s later: at least 5 s, not much more
[[ $MS -ge 4500 ]] || fail "SIGTERM: exited after ${MS}ms, before the grace and the kill"
[[ $MS -lt $((9000 * MQ_SLOW)) ]] || fail "SIGTERM: exited after ${MS}ms"
note "SIGTERM with a stuck command: exit 0 after ${MS}ms"
printf '%s\n' quick stuck | diff - <(cut -d' ' -f1 "$T/started" | sort) >/dev/null ||
  fail "after SIGTERM more commands started: $(tr '\n' ' ' <"$T/started")"
[[ $(cat "$T/done") == quick ]] || fail "done after SIGTERM: $(tr '\n' ' ' <"$T/done")"
gone "$T/stuck.pid" || fail "the stuck command outlived the consumer"
grep -q 'terminating 1 command' "$T/c1.log" || fail "no word about the terminated command: $(cat "$T/c1.log")"
[[ $(committed g st) == 1 ]] || fail "committed $(committed g st) after SIGTERM, expected 1 (quick finished, stuck not)"
# nothing was sent back: the stuck message comes again as it was, then the rest, once each
: >"$T/started"
: >"$T/done"
cat >"$T/fast.sh" <<'SH'
read -r b
echo "$b $MQ_RECONSUME" >>"$OUT/started"
SH
timeout 30 mq-consume -b "$B1" -t st -g g -e --exec "sh $T/fast.sh" 2>"$T/c2.log" || fail "second run"
printf '%s\n' "stuck 0" "q1 0" "q2 0" "q3 0" "q4 0" "q5 0" "q6 0" | diff - "$T/started" >/dev/null ||
  fail "after the restart: $(tr '\n' ' ' <"$T/started")"
[[ $(timeout 10 mq-replay -b "$B1" -t '%RETRY%g' 2>/dev/null | wc -l) -eq 0 ]] || fail "a terminated message was sent back"
[[ $(committed g st) == 8 ]] || fail "committed $(committed g st) after the second run, expected 8"

# ---- --stop-grace 0: running commands are terminated at once
rm -f "$T/stuck.pid"
: >"$T/started"
printf '%s\n' stuck | timeout 10 mq-send -b "$B1" -t st || fail "send stuck"
spawn cpid mq-consume -b "$B1" -t st -g g --exec "sh $T/h.sh" --stop-grace 0 2>"$T/c3.log"
wait_until 20 test -s "$T/stuck.pid" || fail "stuck did not start"
stop_consumer "$cpid"
[[ $RC -eq 0 ]] || fail "SIGTERM with --stop-grace 0: exit $RC"
[[ $MS -lt $((5000 * MQ_SLOW)) ]] || fail "--stop-grace 0: exited after ${MS}ms (SIGKILL comes 2 s after SIGTERM)"
gone "$T/stuck.pid" || fail "the stuck command outlived the consumer (--stop-grace 0)"
[[ $(committed g st) == 8 ]] || fail "a terminated message was committed: $(committed g st)"

# ---- a second SIGTERM exits at once, status 143, and kills the running command
rm -f "$T/stuck.pid"
spawn cpid mq-consume -b "$B1" -t st -g g --exec "sh $T/h.sh" --stop-grace 60s 2>"$T/c4.log"
wait_until 20 test -s "$T/stuck.pid" || fail "stuck did not start again"
kill -TERM "$cpid"
sleep 0.5
kill -0 "$cpid" 2>/dev/null || fail "the first SIGTERM did not wait for the running command"
stop_consumer "$cpid"
[[ $RC -eq 143 ]] || fail "second SIGTERM: exit $RC, expected 143"
[[ $MS -lt $((2000 * MQ_SLOW)) ]] || fail "second SIGTERM: exited after ${MS}ms"
gone "$T/stuck.pid" || fail "the command outlived a second SIGTERM"
[[ $(committed g st) == 8 ]] || fail "the second signal committed something: $(committed g st)"

# ---- --tag 'a||b' in a group: only those run, and the others are committed past
for t in a b c a c b; do timeout 10 mq-send -b "$B1" -t tg --tag "$t" "m-$t" || fail "send tg"; done
cat >"$T/tag.sh" <<'SH'
echo "$(cat) $MQ_TAG" >>"$OUT/tagged"
SH
timeout 20 mq-consume -b "$B1" -t tg -g tg --from earliest -e --tag 'a||b' --exec "sh $T/tag.sh" 2>"$T/tag.log" ||
  fail "--tag in a group"
[[ $(tr '\n' ' ' <"$T/tagged") == "m-a a m-b b m-a a m-b b " ]] || fail "--tag 'a||b' ran: $(tr '\n' ' ' <"$T/tagged")"
[[ $(committed tg tg) == 6 ]] || fail "--tag: committed $(committed tg tg), expected 6 (past the filtered ones)"

# ---- a member killed -9 loses its queues to the other within seconds
start_broker b2 --flush async --queues 2
cat >"$T/m.sh" <<'SH'
read -r b
echo "$b $MEMBER" >>"$OUT/m.done"
SH
timeout 10 mq-send -b "$B2" -t tk --queue 0 created || fail "create tk"  # before the group (--from latest)
MEMBER=a spawn apid mq-consume -b "$B2" -t tk -g tk --exec "sh $T/m.sh" --commit-interval 200ms 2>"$T/a.log"
MEMBER=b spawn bpid mq-consume -b "$B2" -t tk -g tk --exec "sh $T/m.sh" --commit-interval 200ms 2>"$T/b.log"
two_owners() {
  [[ $(timeout 5 mq-offset -b "$B2" show -g tk -t tk | awk -F'\t' '$1 == "tk" && $7 != "-" { print $7 }' | sort -u | wc -l) -eq 2 ]]
}
wait_until 20 two_owners || fail "the two members did not split the queues"
kill -9 "$apid"
start=$(date +%s%N)
printf '%s\n' x0 | timeout 10 mq-send -b "$B2" -t tk --queue 0 || fail "send tk 0"
printf '%s\n' x1 | timeout 10 mq-send -b "$B2" -t tk --queue 1 || fail "send tk 1"
took_over() { [[ $(grep -c ' b$' "$T/m.done" 2>/dev/null) -ge 2 ]]; }
wait_until 15 took_over ||
  fail "the survivor did not take over: $(cat "$T/m.done" 2>/dev/null)"
ms=$((($(date +%s%N) - start) / 1000000))
note "a member killed -9: the survivor processed both queues ${ms}ms later"
[[ $ms -lt $((4000 * MQ_SLOW)) ]] || fail "take-over after kill -9 took ${ms}ms"
kill -TERM "$bpid"
timeout 15 tail --pid="$bpid" -f /dev/null || fail "member b did not stop"

# ---- a reader that stops reading does not stop the member: it keeps sending heartbeats (the
# broker keeps it), SIGTERM ends it within its grace, and nothing unwritten is committed
start_broker b3 --flush async --queues 2
seq 1 60000 | timeout 20 mq-send -b "$B3" -t sr || fail "send sr"
( mq-consume -b "$B3" -t sr -g sr --from earliest --format '%q %o\n' --stop-grace 1s --commit-interval 200ms \
    2>"$T/sr.log" & echo $! >"$T/sr.pid"; wait ) | (sleep $((8 * MQ_SLOW)); cat >"$T/sr.out") &
EXTRA_PIDS+=($!)
sleep $((5 * MQ_SLOW))  # its pipe is full for seconds, longer than the broker waits for a silent member
members=$(timeout 5 mq-offset -b "$B3" groups | awk -F'\t' '$1 == "sr" { print $2 }')
[[ $members == 1 ]] || fail "a member whose reader stalls was dropped (members: '$members')"
start=$(date +%s%N)
kill -TERM "$(cat "$T/sr.pid")"
timeout 20 tail --pid="$(cat "$T/sr.pid")" -f /dev/null || fail "the stalled member did not exit after SIGTERM"
ms=$((($(date +%s%N) - start) / 1000000))
note "a member writing to a stalled reader stopped ${ms}ms after SIGTERM"
[[ $ms -lt $((4000 * MQ_SLOW)) ]] || fail "a member writing to a stalled reader took ${ms}ms to stop"
wait_until 20 test -s "$T/sr.out" || fail "the reader got nothing"
sleep 1
for q in 0 1; do
  c=$(timeout 10 mq-offset -b "$B3" export -g sr | awk -F'\t' -v q=$q '$2 == "sr" && $4 == q { print $5 }')
  w=$(grep -c "^$q " "$T/sr.out" || true)
  [[ -n $c && $c -gt 0 && $c -le $w ]] || fail "queue $q: committed '$c', but $w lines were written"
done
# the same for a tail: SIGINT ends it although its reader does not read
( mq-consume -b "$B3" -t sr --from earliest 2>"$T/srt.log" & echo $! >"$T/srt.pid"; wait ) |
  (sleep $((6 * MQ_SLOW)); cat >/dev/null) &
EXTRA_PIDS+=($!)
sleep $((2 * MQ_SLOW))
start=$(date +%s%N)
kill -INT "$(cat "$T/srt.pid")"
timeout 20 tail --pid="$(cat "$T/srt.pid")" -f /dev/null || fail "the stalled tail did not exit after SIGINT"
ms=$((($(date +%s%N) - start) / 1000000))
[[ $ms -lt $((3000 * MQ_SLOW)) ]] || fail "a tail writing to a stalled reader took ${ms}ms to stop"
# SIGHUP (the terminal closed) stops a member cleanly: exit 0 and what it wrote committed
mq-consume -b "$B3" -t sr -g hup --from earliest >"$T/hup.out" 2>"$T/hup.log" &
hup=$!
EXTRA_PIDS+=("$hup")
wait_until 20 test -s "$T/hup.out" || fail "the SIGHUP member got nothing"
kill -HUP "$hup"
rc=0; wait "$hup" || rc=$?
[[ $rc -eq 0 ]] || fail "SIGHUP: member exited $rc: $(tail -n 2 "$T/hup.log")"
c=$(timeout 10 mq-offset -b "$B3" export -g hup | awk -F'\t' '{ n += $5 } END { print n + 0 }')
[[ $c -gt 0 ]] || fail "SIGHUP: nothing committed"
echo "$TEST_NAME: ok"
