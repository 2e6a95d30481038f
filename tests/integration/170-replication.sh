#!/usr/bin/env bash
# Master/slave replication: an empty slave catches up over a backlog and follows live traffic
# byte for byte (segment files identical, same queue/offset/id); a slave refuses sends and
# serves reads alone; sync replication reports SLAVE_NOT_AVAILABLE / FLUSH_SLAVE_TIMEOUT
# (mq-send exits 1) and succeeds with a slave, also right after the master restarted; kill -9
# of a sync master mid-stream, then the slave's data dir started as a master holds every
# message acked SEND_OK.
. "$(dirname "$0")/lib.sh"

logs_equal() { same_logs "$T/m" "$T/s"; }
fmt='%q\t%o\t%i\n'
# receipts FILE -> "queue offset id" of the SEND_OK lines, sorted
ok_receipts() { awk -F'\t' '$6 == "SEND_OK" { print $4 "\t" $5 "\t" $2 }' "$1" | sort; }

# --- 1. catch-up over a backlog, then live traffic; byte-identical segments -------------------
start_broker m --flush async --segment-size 256KiB
seq 10000 | timeout 30 mq-send -b "$M" -t rep --receipts >"$T/r1" || fail "backlog send exited $?"
# the slave's own segment size differs on purpose: segment boundaries come from the master
start_broker s --role slave --master "$M" --segment-size 1MiB
seq 10001 20000 | timeout 30 mq-send -b "$M" -t rep --receipts >"$T/r2" || fail "live send exited $?"
wait_until 30 logs_equal || fail "slave log did not catch up with the master's"
grep -q "caught up with master" "$T/s.log" || fail "slave did not log its catch-up"
grep -q "slave .* connected" "$T/m.log" || fail "master did not log the slave"

# hello: the master names its slave, the slave its master (mq-send fails over to the master)
timeout 10 mq-send -b "$S" -t other --receipts "to-slave" >"$T/r-slave" || fail "send via a slave's master exited $?"
grep -q "	$M	.*SEND_OK" "$T/r-slave" || fail "a send did not go to the slave's master: $(cat "$T/r-slave")"
timeout 10 mq-send -b "$S,$M" -t other --receipts "via-list" >"$T/r-other" || fail "send with -b slave,master exited $?"
grep -q "	$M	.*SEND_OK" "$T/r-other" || fail "send did not go to the master: $(cat "$T/r-other")"

stop_broker m -TERM
stop_broker s -TERM
(cd "$T/m/commitlog" && ls) >"$T/m.segs"
(cd "$T/s/commitlog" && ls) >"$T/s.segs"
diff -q "$T/m.segs" "$T/s.segs" >/dev/null || fail "segment files differ: $(diff "$T/m.segs" "$T/s.segs" | head)"
[[ $(count_lines "$T/m.segs") -ge 3 ]] || fail "expected several segments, got $(count_lines "$T/m.segs")"
while read -r seg; do
  cmp -s "$T/m/commitlog/$seg" "$T/s/commitlog/$seg" || fail "segment $seg differs"
done <"$T/m.segs"

# the slave alone serves reads: everything acked, at the same queue/offset/id
restart_broker s
timeout 30 mq-consume -b "$S" -t rep --from earliest -e --format "$fmt" | sort >"$T/from-slave" \
  || fail "consume from the slave exited $?"
cat "$T/r1" "$T/r2" >"$T/r12"
ok_receipts "$T/r12" | diff -q - "$T/from-slave" >/dev/null \
  || fail "slave content differs from receipts ($(count_lines "$T/from-slave") lines read)"
# a slave of a slave is told what is wrong (the other slave does not serve replication)
start_broker s2 --role slave --master "$S"
wait_until 10 grep -q "is not served by this broker (a slave) ($S): --master must name a master" "$T/s2.log" ||
  fail "a slave of a slave was not told: $(tail -n 2 "$T/s2.log")"
stop_broker s2 -TERM
stop_broker s -TERM

# --- 2. sync replication statuses --------------------------------------------------------
start_broker m --flush async --replication sync --replication-timeout 1s
seq 5 | timeout 30 mq-send -b "$M" -t sy --receipts >"$T/r-na" 2>/dev/null && fail "sync send without a slave exited 0"
[[ $(grep -c "SLAVE_NOT_AVAILABLE" "$T/r-na") -eq 5 ]] || fail "expected 5 SLAVE_NOT_AVAILABLE: $(cat "$T/r-na")"
stop_broker m -TERM
# sends waiting for a slave that is then killed are answered SLAVE_NOT_AVAILABLE at once, not
# after --replication-timeout (20s here)
start_broker m --flush async --replication sync --replication-timeout 20s
start_broker sk --role slave --master "$M"
wait_until 20 bash -c "timeout 5 mq-send -b $M -t sk --mode sync warm >/dev/null 2>&1" || fail "no slave acknowledgement"
kill -STOP "${PIDS[sk]}"
t0=$(date +%s%N)
timeout 60 mq-send -b "$M" -t sk --mode sync --receipts waiting >"$T/r-sk" 2>/dev/null &
sk_sender=$!
sleep 1
kill -9 "${PIDS[sk]}"
kill -CONT "${PIDS[sk]}" 2>/dev/null || true
wait "$sk_sender" || true
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q $'\tSLAVE_NOT_AVAILABLE$' "$T/r-sk" && [[ $ms -lt 10000 ]] ||
  fail "a send waiting for a killed slave: $(cut -f6 "$T/r-sk") after ${ms}ms"
stop_broker m -TERM
start_broker m --flush async --replication async
seq 5 | timeout 30 mq-send -b "$M" -t sy --receipts >"$T/r-async" || fail "async replication send without a slave failed"
stop_broker m -TERM
# (default timeouts from here: the broker's 3 s --replication-timeout answers before mq-send's 5 s)
start_broker m --flush async --replication sync
lines=$(wc -l <"$T/s.log")
restart_broker s
# (the log is read afresh on every try: only what the restarted slave wrote counts)
wait_until 20 bash -c "tail -n +$((lines + 1)) '$T/s.log' | grep -q 'caught up with master'" || fail "slave did not reconnect"
seq 2000 | timeout 30 mq-send -b "$M" -t sy --receipts >"$T/r-sync" || fail "sync send with a slave exited $?"
[[ $(grep -c "SEND_OK" "$T/r-sync") -eq 2000 ]] || fail "sync send: not every message SEND_OK"
# a frozen slave: no report within the timeout
kill -STOP "${PIDS[s]}"
seq 3 | timeout 30 mq-send -b "$M" -t sy --receipts >"$T/r-to" 2>/dev/null && { kill -CONT "${PIDS[s]}"; fail "send with a frozen slave exited 0"; }
kill -CONT "${PIDS[s]}"
[[ $(grep -c "FLUSH_SLAVE_TIMEOUT" "$T/r-to") -eq 3 ]] || fail "expected 3 FLUSH_SLAVE_TIMEOUT: $(cat "$T/r-to")"
# a producer started while the master restarts, its slave listed too (the slave answers
# first): the first contact is retried until the master is back
stop_broker m -TERM
timeout 30 mq-send -b "$M,$S" -t sy --timeout 8s --retries 10 --receipts back >"$T/r-back" 2>"$T/r-back.err" &
sender=$!
EXTRA_PIDS+=("$sender")
sleep 1.5
restart_broker m
# SEND_OK: the restarted master holds the send for its slave (start grace), which retries
# the master at most a second apart
wait "$sender" || fail "a send started while the master restarted exited $?: $(cat "$T/r-back" "$T/r-back.err")"
[[ $(cut -f3,6 "$T/r-back") == "$M"$'\t'SEND_OK ]] ||
  fail "a send started while the master restarted: $(cat "$T/r-back" "$T/r-back.err")"
# kill -9 of the master, restarted at once: sync sends that reach it before its slave is
# back wait for the slave instead of being answered SLAVE_NOT_AVAILABLE
stop_broker m -9
restart_broker m
seq 5 | timeout 30 mq-send -b "$M" -t sy --mode sync --receipts >"$T/r-k9" 2>"$T/r-k9.err" ||
  fail "sync sends right after a master's restart: $(cut -f6 "$T/r-k9" | sort | uniq -c) $(cat "$T/r-k9.err")"
[[ $(grep -c $'\tSEND_OK$' "$T/r-k9") -eq 5 ]] || fail "expected 5 SEND_OK after the restart: $(cat "$T/r-k9")"

# --- 3. kill -9 of the master mid-stream; promote the slave --------------------------------
seq 1000000 | timeout 40 mq-send -b "$M" -t promo --receipts >"$T/r-promo" 2>/dev/null &
sender=$!
EXTRA_PIDS+=("$sender")
wait_until 20 grep -q "created topic promo" "$T/m.log" || fail "stream did not start"
sleep 0.7
stop_broker m -9
wait "$sender" && fail "mq-send survived its only master"
# only the slave answers: each BODY still gets its receipt
rc=0; timeout 20 mq-send -b "$S" -t promo --retries 0 --receipts x1 x2 >"$T/r-slave" 2>"$T/r-slave.err" || rc=$?
[[ $rc -eq 1 && $(grep -c $'\tFAILED$' "$T/r-slave") -eq 2 ]] && grep -q "no master broker reachable" "$T/r-slave.err" ||
  fail "sends with only a slave up: exit $rc, $(cat "$T/r-slave" "$T/r-slave.err")"
# re-publishing with no master: exit 1, and the reason once, not once per message
rc=0; timeout 30 mq-replay -b "$S" -t promo --until 50 --to-topic copy 2>"$T/replay.err" || rc=$?
[[ $rc -eq 1 ]] || fail "mq-replay --to-topic without a master: exit $rc, $(head -n 3 "$T/replay.err")"
[[ $(count_lines "$T/replay.err") -le 3 ]] || fail "mq-replay --to-topic without a master printed $(count_lines "$T/replay.err") lines"
stop_broker s -TERM
acked=$(grep -c "SEND_OK" "$T/r-promo" || true)
note "$acked messages acked SEND_OK before kill -9"
start_broker p --data "$T/s"
timeout 30 mq-consume -b "$P" -t promo --from earliest -e --format "$fmt" | sort >"$T/promo-stored" \
  || fail "consume from the promoted slave exited $?"
ok_receipts "$T/r-promo" | comm -23 - "$T/promo-stored" >"$T/missing"
[[ ! -s $T/missing ]] || fail "$(count_lines "$T/missing") acked messages missing after promotion, e.g. $(head -n 2 "$T/missing")"
timeout 10 mq-send -b "$P" -t promo "after promotion" || fail "the promoted broker refused a send"
echo "$TEST_NAME: ok"
