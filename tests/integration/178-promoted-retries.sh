#!/usr/bin/env bash
# A slave promoted after kill -9 of its master delivers every delayed retry at least once (mq(7):
# a promoted slave continues every delayed retry):
# 1. Retries still waiting in %SCHEDULE% when the master dies: the promoted broker moves them to
#    %RETRY%G, a topic it never got a record of from the master, and the group receives them.
# 2. The master had moved the retries already, but the slave (catching up slowly after a restart,
#    its fdatasync slowed by tests/integration/slow_fdatasync.cc) holds the %SCHEDULE% records and
#    not yet the moved copies when the master dies: the master's delay progress, sent to the slave
#    meanwhile, must not count them as delivered there.
. "$(dirname "$0")/lib.sh"

SHIM=${MQ_BUILD:-$(dirname "$MQ_BIN")}/lib/libmq-slow-fdatasync.so
[[ -f $SHIM ]] || fail "$SHIM missing: build it first (make)"
export OUT=$T
# h.sh: records "RECONSUME BODY" in $OUT/attempts.$1; the first attempt fails, retries succeed
cat >"$T/h.sh" <<'SH'
body=$(cat)
echo "$MQ_RECONSUME $body" >>"$OUT/attempts.$1"
[ "$MQ_RECONSUME" -ge 1 ]
SH
# retried FILE PREFIX: every PREFIX-1..4 was delivered as a retry (MQ_RECONSUME=1)
retried() {
  local n
  for n in 1 2 3 4; do grep -qx "1 $2-$n" "$1" 2>/dev/null || return 1; done
}
logs_equal() { same_logs "$T/$1" "$T/$2"; }

# --- 1. retries waiting in %SCHEDULE% -------------------------------------------------------
# the delays are long enough for what happens before the kill, even under sanitizers (MQ_SLOW)
d1=$((10 * MQ_SLOW)) d2=$((8 * MQ_SLOW))
start_broker m --flush sync --delay-levels "${d1}s ${d1}s ${d1}s"
start_broker s --role slave --master "$M"
seq 4 | sed 's/^/f-/' | timeout 10 mq-send -b "$M" -t t || fail "send t"
spawn c1 mq-consume -b "$M" -t t -g G --from earliest --commit-interval 200ms --exec "sh $T/h.sh 1" \
  2>"$T/c1.log"
sent_back=$(date +%s)
# every message failed and was sent back (the group committed past it), and the slave has it all
wait_until 20 committed_is "$T/m/offsets.json" G t 4 || fail "the group did not commit past its 4 failures"
wait_until 20 logs_equal m s || fail "slave did not catch up"
[[ $(grep -c '^0 ' "$T/attempts.1") -eq 4 && $(grep -vc '^0 ' "$T/attempts.1") -eq 0 ]] \
  || fail "attempts before the kill: $(tr '\n' ';' <"$T/attempts.1")"
[[ $(($(date +%s) - sent_back)) -lt $((d1 - 1)) ]] || fail "too slow: the retries may have left %SCHEDULE% already"
stop_broker m -9
kill -TERM "$c1"
timeout 20 tail --pid="$c1" -f /dev/null || fail "consumer of the dead master did not stop"
stop_broker s -TERM
start_broker p --data "$T/s"
spawn c2 mq-consume -b "$P" -t t -g G --commit-interval 200ms --exec "sh $T/h.sh 2" 2>"$T/c2.log"
wait_until 40 retried "$T/attempts.2" f \
  || fail "the promoted slave delivered these retries: $(cat "$T/attempts.2" 2>/dev/null | tr '\n' ';') (expected 1 f-1..4)"
kill -TERM "$c2"
timeout 20 tail --pid="$c2" -f /dev/null || fail "consumer of the promoted slave did not stop"
note "part 1: $(grep -c '^1 ' "$T/attempts.2") retries delivered by the promoted slave"
stop_broker p -TERM

# --- 2. delay progress ahead of the slave's log ---------------------------------------------
# Small segments: the slave copies at most one segment (1 MiB) per round trip, so the moved
# copies, behind 8 MiB of other messages, reach it several slow round trips after the delay
# progress (sent right after its first round trip).
start_broker m2 --flush sync --delay-levels "${d2}s 60s" --segment-size 1MiB
start_broker s2 --role slave --master "$M2"
seq 4 | sed 's/^/g-/' | timeout 10 mq-send -b "$M2" -t t2 || fail "send t2"
spawn c3 mq-consume -b "$M2" -t t2 -g G2 --from earliest --commit-interval 200ms --exec "sh $T/h.sh 3" \
  2>"$T/c3.log"
sent_back=$(date +%s)
wait_until 20 committed_is "$T/m2/offsets.json" G2 t2 4 || fail "G2 did not commit past its 4 failures"
kill -TERM "$c3"
timeout 20 tail --pid="$c3" -f /dev/null || fail "consumer of m2 did not stop"
wait_until 20 logs_equal m2 s2 || fail "s2 did not catch up"
wait_until 10 committed_is "$T/s2/offsets.json" G2 t2 4 || fail "s2 lacks G2's offsets"
stop_broker s2 -TERM
python3 -c 'import sys; sys.stdout.write(("x" * 1000 + "\n") * 8192)' | timeout 60 mq-send -b "$M2" -t fill \
  || fail "send fill"
[[ $(($(date +%s) - sent_back)) -lt $((d2 - 1)) ]] || fail "too slow: the retries may have been moved before the filler"
# the master moves the 4 retries (behind the filler) and counts them delivered
wait_until 20 committed_is "$T/m2/offsets.json" '%SCHEDULE%' '%SCHEDULE%' 4 \
  || fail "m2 did not move the retries: $(jq -c '.offsets' "$T/m2/offsets.json")"
[[ ! -s $T/attempts.3 || $(grep -vc '^0 ' "$T/attempts.3") -eq 0 ]] || fail "c3 got a retry: stopped too late"

# The slave returns on a slow disk (each fdatasync takes 1 s) and gets the master's offsets
# after its first round trip: kill -9 the master then, long before the slave has the copies.
export MQ_SLOW_SYNC_FILE=$T/slow
echo $((1000 * MQ_SLOW)) >"$MQ_SLOW_SYNC_FILE"
before=$(count_lines "$T/s2.log")
LD_PRELOAD=$SHIM ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
  restart_broker s2 -v
# offsets_seen: the slave took the master's delay progress, or (since the fix) holds it back
offsets_seen() {
  committed_is "$T/s2/offsets.json" '%SCHEDULE%' '%SCHEDULE%' 4 \
    || tail -n +"$((before + 1))" "$T/s2.log" | grep -q 'offsets of master .* held until'
}
wait_until 30 offsets_seen || fail "s2 never got the master's offsets: $(tail -n 5 "$T/s2.log")"
stop_broker m2 -9
! tail -n +"$((before + 1))" "$T/s2.log" | grep -q 'caught up' || fail "s2 caught up before the kill: no test"
rm -f "$MQ_SLOW_SYNC_FILE"
stop_broker s2 -TERM
start_broker p2 --data "$T/s2" --delay-levels "${d2}s 60s"
spawn c4 mq-consume -b "$P2" -t t2 -g G2 --commit-interval 200ms --exec "sh $T/h.sh 4" 2>"$T/c4.log"
wait_until 40 retried "$T/attempts.4" g \
  || fail "the promoted s2 delivered these retries: $(cat "$T/attempts.4" 2>/dev/null | tr '\n' ';') (expected 1 g-1..4); delay progress there: $(jq -c '[.offsets[] | select(.group == "%SCHEDULE%")]' "$T/s2/offsets.json")"
kill -TERM "$c4"
timeout 20 tail --pid="$c4" -f /dev/null || fail "consumer of p2 did not stop"
note "part 2: $(grep -c '^1 ' "$T/attempts.4") retries delivered by the promoted slave"
echo "$TEST_NAME: ok"
