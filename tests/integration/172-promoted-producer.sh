#!/usr/bin/env bash
# A running mq-send whose master dies and whose listed slave is restarted as a master (promoted)
# sends the rest there: it asks the master's slaves again (hello, once a second) while the master
# cannot be reached, and the one that answers as a master takes the master's queues. Before, every
# later message failed ("cannot reach" the dead master) until mq-send was started again.
. "$(dirname "$0")/lib.sh"

start_broker m --replication sync
start_broker s --role slave --master "$M"
seq 1 3 | timeout 20 mq-send -b "$M" -t p -q || fail "first send"
wait_until 20 same_logs "$T/m" "$T/s" || fail "the slave did not copy the master"
( for i in $(seq 1 300); do echo "$i"; sleep 0.02; done ) |
  timeout 120 mq-send -b "$M,$S" -t p --receipts --timeout 5s >"$T/receipts" 2>"$T/send.err" &
sender=$!
EXTRA_PIDS+=("$sender")
wait_until 20 awk -F'\t' -v b="$M" '$3 == b && $6 == "SEND_OK" { n++ } END { exit n < 20 }' "$T/receipts" ||
  fail "nothing was acknowledged by the master"
stop_broker m -9
stop_broker s -TERM
start_broker s --role master
rc=0; wait "$sender" || rc=$?
[[ $(count_lines "$T/receipts") -eq 300 ]] || fail "$(count_lines "$T/receipts") receipts of 300"
on_s=$(awk -F'\t' -v b="$S" '$3 == b && $6 == "SEND_OK"' "$T/receipts" | wc -l)
[[ $on_s -ge 100 ]] || fail "only $on_s messages went to the promoted slave (exit $rc): $(grep -v SEND_OK "$T/receipts" | head -n 2)"
tail -n 50 "$T/receipts" | awk -F'\t' -v b="$S" '$3 != b || $6 != "SEND_OK" { bad = 1 } END { exit bad }' ||
  fail "the last messages did not all go to the promoted slave: $(tail -n 2 "$T/receipts")"
grep -q "answers as a master now (promoted)" "$T/send.err" || fail "mq-send did not say it moved: $(tail -n 2 "$T/send.err")"
# every acknowledged message is on the promoted broker
awk -F'\t' '$6 == "SEND_OK" { print $2 }' "$T/receipts" | sort -u >"$T/acked"
timeout 30 mq-consume -b "$S" -t p --from earliest -e --format '%i\n' | sort -u >"$T/stored"
lost=$(comm -23 "$T/acked" "$T/stored" | wc -l)
note "exit $rc, $on_s on the promoted slave, lost $lost"
[[ $lost -eq 0 ]] || fail "$lost acknowledged messages are not on the promoted broker"
echo "$TEST_NAME: ok ($on_s sent to the promoted slave)"
