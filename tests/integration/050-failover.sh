#!/usr/bin/env bash
# Two masters; one is killed (-9) while mq-send streams to both: every message is acked
# (retries fail over to the survivor, keeping the message id), nothing acked is lost.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush sync
start_broker b2 --flush sync
# a slow trickle so that the kill lands mid-stream
( for i in $(seq 1 4000); do echo "$i"; [[ $((i % 200)) -eq 0 ]] && sleep 0.1; done ) \
  | timeout 120 mq-send -b "$B1,$B2" -t fo --receipts --timeout 3s >"$T/receipts" 2>"$T/send.log" &
sender=$!
EXTRA_PIDS+=("$sender")
# kill b1 once it has acked some (receipts are written whenever the trickle pauses)
wait_until 20 awk -F'\t' -v b="$B1" '$3 == b { n++ } END { exit n < 1 }' "$T/receipts" || fail "no message reached b1"
stop_broker b1 -9
rc=0
wait "$sender" || rc=$?
[[ $(count_lines "$T/receipts") -eq 4000 ]] || fail "expected 4000 receipts, got $(count_lines "$T/receipts")"
[[ $rc -eq 0 ]] || fail "mq-send exited $rc: $(grep -v SEND_OK "$T/receipts" | head -n 3; tail -n 3 "$T/send.log")"
on_b1=$(awk -F'\t' -v b="$B1" '$3 == b' "$T/receipts" | wc -l)
on_b2=$(awk -F'\t' -v b="$B2" '$3 == b' "$T/receipts" | wc -l)
[[ $on_b1 -gt 0 && $on_b2 -gt 0 ]] || fail "messages did not spread over both masters (b1=$on_b1 b2=$on_b2)"
# after the kill every message went to b2: the last 1000 lines
tail -n 1000 "$T/receipts" | awk -F'\t' -v b="$B2" '$3 != b { bad=1 } END { exit bad }' || fail "messages after the kill were not sent to the survivor"
restart_broker b1
for b in "$B1" "$B2"; do
  timeout 30 mq-consume -b "$b" -t fo --from earliest -e --format "$b\t%q\t%o\t%i\n"
done | sort >"$T/stored"
awk -F'\t' '{ print $3 "\t" $4 "\t" $5 "\t" $2 }' "$T/receipts" | sort >"$T/acked"
lost=$(comm -23 "$T/acked" "$T/stored" | wc -l)
[[ $lost -eq 0 ]] || fail "$lost acked messages missing: $(comm -23 "$T/acked" "$T/stored" | head -n 3)"
# a consumer listing both masters reads everything once per stored copy
timeout 30 mq-consume -b "$B1,$B2" -t fo --from earliest -e --format '%i\n' | sort -u | wc -l >"$T/ids"
[[ $(cat "$T/ids") -eq 4000 ]] || fail "reading both masters gave $(cat "$T/ids") distinct ids, expected 4000"

# oneway: no acks, but a master that fails is avoided, and what could not be written at all
# goes to the other one (it was 1 in 4 of the rest FAILED, each block still sent to the dead b1)
( for i in $(seq 1 3000); do echo "$i"; [[ $((i % 100)) -eq 0 ]] && sleep 0.05; done ) \
  | timeout 120 mq-send -b "$B1,$B2" -t ow --mode oneway --receipts >"$T/ow" 2>"$T/ow.log" &
sender=$!
EXTRA_PIDS+=("$sender")
wait_until 20 awk -F'\t' -v b="$B1" '$3 == b { n++ } END { exit n < 1 }' "$T/ow" || fail "no oneway message reached b1"
stop_broker b1 -9
wait "$sender" || true  # messages written into b1's socket as it died may be FAILED
[[ $(count_lines "$T/ow") -eq 3000 ]] || fail "oneway: expected 3000 receipts, got $(count_lines "$T/ow")"
failed=$(grep -c $'\tFAILED$' "$T/ow" || true)
[[ $failed -le 50 ]] || fail "oneway: $failed of 3000 FAILED after b1 died: $(grep FAILED "$T/ow" | head -n 3)"
tail -n 1000 "$T/ow" | awk -F'\t' -v b="$B2" '$3 != b || $6 != "SENT" { bad=1 } END { exit bad }' ||
  fail "oneway messages after the kill did not all go to b2: $(tail -n 1000 "$T/ow" | grep -v "$B2" | head -n 3)"
echo "$TEST_NAME: ok (b1=$on_b1 b2=$on_b2, lost 0; oneway failed $failed)"
