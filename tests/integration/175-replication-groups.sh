#!/usr/bin/env bash
# Replicated consumer offsets and delay progress (issue 7):
# 1. mq-offset topics shows a stopped slave's lag in bytes and time, and 0 once it caught up.
# 2. A group's committed offsets reach the slave; with the master killed (-9), a consumer started
#    with -b MASTER,SLAVE reads from the slave starting exactly at them (nothing lost, nothing
#    twice) and commits there; when the master returns, the slave hands those higher offsets over:
#    the group neither rewinds nor skips on the master.
# 3. A running group consumer whose master is killed continues on the slave where it was (every
#    message consumed, duplicates bounded), and moves back when the master returns.
# 4. A promoted slave continues a group from its replicated offsets (not --from) and redelivers a
#    pending delayed retry once, without repeating the retry level the master had already moved.
. "$(dirname "$0")/lib.sh"

logs_equal() { same_logs "$T/m" "$T/s"; }
# lag_json: the slave columns of the master's first topics row
lag_json() { timeout 10 mq-offset -b "$M" topics -t lag --format json | jq -c '.[0] | [.slave, .slave_state, .slave_lag_bytes, .slave_lag_ms]'; }
caught_up_lag() { lag_json | grep -q '"connected",0,0'; }
# lines_at_least FILE N / distinct_at_least FILE N / matching_is FILE REGEX N
lines_at_least() { [[ -f $1 && $(count_lines "$1") -ge $2 ]]; }
distinct_at_least() { [[ -f $1 && $(sort -u "$1" | wc -l) -ge $2 ]]; }
matching_is() { [[ $(grep -c "$2" "$1") -eq $3 ]]; }

start_broker m --flush sync --delay-levels 1s,8s
start_broker s --role slave --master "$M" --delay-levels 1s,8s

# --- 1. replication lag in mq-offset topics ---------------------------------------------------
timeout 10 mq-send -b "$M" -t lag "first" || fail "send to lag"
wait_until 20 logs_equal || fail "slave did not catch up"
wait_until 10 caught_up_lag || fail "caught-up slave not shown with lag 0: $(lag_json)"
stop_broker s -TERM
seq 100 | timeout 10 mq-send -b "$M" -t lag || fail "send while the slave is down"
sleep 0.3
read -r addr state bytes ms < <(lag_json | jq -r '@tsv')
[[ $addr == "$S" && $state == disconnected ]] || fail "stopped slave not shown as disconnected: $(lag_json)"
[[ $bytes -gt 1000 ]] || fail "lag in bytes of a stopped slave is $bytes"
[[ $ms -ge 300 ]] || fail "lag in time of a stopped slave is ${ms}ms"
timeout 10 mq-offset -b "$M" topics -t lag --format tsv | head -n 1 | grep -q $'slave\tslave_state\tslave_lag_bytes\tslave_lag_ms' \
  || fail "tsv header lacks the slave columns"
restart_broker s
wait_until 20 caught_up_lag || fail "restarted slave's lag did not return to 0: $(lag_json)"

# --- 2. offsets replicated; fresh consumer on the slave; reconciliation -----------------------
seq 1000 | timeout 20 mq-send -b "$M" -t g || fail "send 1..1000"
timeout 20 mq-consume -b "$M" -t g -g grp --from earliest -e >"$T/c1" 2>"$T/c1.log" || fail "first consumer exited $?"
[[ $(count_lines "$T/c1") -eq 1000 ]] || fail "first consumer read $(count_lines "$T/c1")"
seq 1001 3000 | timeout 20 mq-send -b "$M" -t g || fail "send 1001..3000"
wait_until 20 logs_equal || fail "slave did not catch up after 3000 messages"
wait_until 10 committed_is "$T/s/offsets.json" grp g 1000 \
  || fail "slave holds $(committed "$T/s/offsets.json" grp g) committed, expected 1000"
stop_broker m -9
timeout 30 mq-consume -b "$M,$S" -t g -g grp --from earliest -e >"$T/c2" 2>"$T/c2.log" \
  || fail "consumer on the slave exited $?: $(tail -n 3 "$T/c2.log")"
sort -n "$T/c2" | diff -q - <(seq 1001 3000) >/dev/null \
  || fail "consumer on the slave read $(count_lines "$T/c2") messages, not exactly 1001..3000 (first $(head -n 1 "$T/c2"))"
wait_until 10 committed_is "$T/s/offsets.json" grp g 3000 || fail "commits on the slave not persisted there"
# the master returns with 1000 committed; the slave's 3000 win
restart_broker m
wait_until 20 grep -q "took .* consumer offsets from slave" "$T/m.log" || fail "master did not take the slave's offsets"
wait_until 10 committed_is "$T/m/offsets.json" grp g 3000 || fail "master holds $(committed "$T/m/offsets.json" grp g) committed"
timeout 20 mq-consume -b "$M" -t g -g grp --from earliest -e >"$T/c3" 2>"$T/c3.log" || fail "consumer after the return exited $?"
[[ ! -s $T/c3 ]] || fail "the group rewound on the returned master: $(count_lines "$T/c3") messages again"
seq 3001 3010 | timeout 20 mq-send -b "$M" -t g || fail "send 3001..3010"
timeout 20 mq-consume -b "$M" -t g -g grp -e >"$T/c4" 2>"$T/c4.log" || fail "consumer of new messages exited $?"
sort -n "$T/c4" | diff -q - <(seq 3001 3010) >/dev/null || fail "after the return the group read: $(tr '\n' ' ' <"$T/c4")"

# --- 3. a running consumer fails over to the slave and back ----------------------------------
seq 1000 | sed "s/^/r-/" | timeout 20 mq-send -b "$M" -t run || fail "send run"
wait_until 20 logs_equal || fail "slave did not catch up with run"
export OUT=$T
spawn cpid mq-consume -b "$M" -t run -g rg --from earliest --max-span 50 --commit-interval 200ms \
  --exec 'cat >>"$OUT/run.out"; echo >>"$OUT/run.out"' 2>"$T/run.log"
wait_until 30 lines_at_least "$T/run.out" 200 || fail "running consumer did not start"
stop_broker m -9
wait_until 40 distinct_at_least "$T/run.out" 1000 \
  || fail "running consumer stuck at $(sort -u "$T/run.out" | wc -l) of 1000 after the master died"
grep -q "unreachable: continuing on $S" "$T/run.log" || fail "consumer did not say it moved to the slave"
sort "$T/run.out" | uniq -d >"$T/run.dups"
note "running consumer: $(count_lines "$T/run.out") deliveries of 1000, $(count_lines "$T/run.dups") duplicated"
[[ $(count_lines "$T/run.dups") -le 50 ]] || fail "too many duplicates: $(count_lines "$T/run.dups")"
restart_broker m
wait_until 20 grep -q "$M is back: continuing on it" "$T/run.log" || fail "consumer did not move back to the master"
seq 5 | sed 's/^/late-/' | timeout 20 mq-send -b "$M" -t run || fail "send late"
wait_until 20 matching_is "$T/run.out" '^late-' 5 || fail "consumer back on the master missed new messages"
kill -TERM "$cpid"
timeout 20 tail --pid="$cpid" -f /dev/null || fail "consumer did not stop"
wait_until 10 committed_is "$T/m/offsets.json" rg run 1005 || fail "master holds $(committed "$T/m/offsets.json" rg run) committed for rg"

# --- 4. promotion: group offsets and delayed retries continue ---------------------------------
cat >"$T/h.sh" <<'SH'
body=$(cat)
echo "$MQ_RECONSUME $body" >>"$OUT/attempts"
[ "$body" != X ] || [ "$MQ_RECONSUME" -ge 2 ]
SH
{ seq 50; echo X; } | timeout 20 mq-send -b "$M" -t pr --queue 0 || fail "send pr"
spawn rpid mq-consume -b "$M" -t pr -g rr --from earliest --commit-interval 200ms --exec "sh $T/h.sh" 2>"$T/r1.log"
# X fails at once (1s level), is redelivered, fails again: now pending in the 8s level
wait_until 20 grep -q "^1 X$" "$T/attempts" || fail "first retry of X not delivered"
sent_back=$(date +%s%N)
wait_until 10 committed_is "$T/m/offsets.json" rr pr 51 || fail "rr did not commit on the master"
# replicated: the group, its retry topic, and the 1s level's progress past X's first retry
wait_until 10 committed_is "$T/s/offsets.json" rr pr 51 || fail "slave lacks rr's offsets"
wait_until 10 committed_is "$T/s/offsets.json" rr '%RETRY%rr' 1 || fail "slave lacks rr's retry offset"
wait_until 10 committed_is "$T/s/offsets.json" '%SCHEDULE%' '%SCHEDULE%' 1 \
  || fail "slave lacks the delay progress: $(jq -c '.offsets' "$T/s/offsets.json")"
kill -TERM "$rpid"
timeout 20 tail --pid="$rpid" -f /dev/null || fail "rr consumer did not stop"
stop_broker m -9
stop_broker s -TERM
start_broker p --data "$T/s" --delay-levels 1s,8s
: >"$T/attempts"
timeout 30 mq-consume -b "$P" -t pr -g rr --from earliest --exec "sh $T/h.sh" -n 1 2>"$T/r2.log" \
  || fail "consumer on the promoted slave exited $?: $(tail -n 3 "$T/r2.log")"
delay_ms=$(( ($(date +%s%N) - sent_back) / 1000000 ))
[[ $(cat "$T/attempts") == "2 X" ]] || fail "promoted slave delivered: $(tr '\n' ';' <"$T/attempts") (expected only X's second retry)"
note "X's second retry came ${delay_ms}ms after its send-back (level 8s)"
[[ $delay_ms -ge 6000 ]] || fail "second retry came too early: ${delay_ms}ms"
timeout 20 mq-consume -b "$P" -t pr -g rr --from earliest --exec "sh $T/h.sh" -e 2>"$T/r3.log" || fail "last consumer exited $?"
[[ $(cat "$T/attempts") == "2 X" ]] || fail "the promoted slave delivered again: $(tr '\n' ';' <"$T/attempts")"
echo "$TEST_NAME: ok"
