#!/usr/bin/env bash
# kill -9 of a --flush sync broker while mq-send streams: every SEND_OK receipt is readable after
# restart, the offsets in receipts are the stored ones, nothing is stored twice at one offset.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush sync --segment-size 1MiB --max-message-size 64KiB
for round in 1 2 3; do
  ( seq $((round * 1000000)) $((round * 1000000 + 199999)) | timeout 60 mq-send -b "$B1" -t crash --retries 0 --timeout 2s --receipts >"$T/receipts.$round" 2>"$T/send.$round.log" ) &
  sender=$!
  EXTRA_PIDS+=("$sender")
  slow_sleep "0.$((RANDOM % 5 + 3))"
  stop_broker b1 -9
  wait "$sender" || true
  restart_broker b1
done
cat "$T"/receipts.* >"$T/all"
grep -P '\tSEND_OK$' "$T/all" >"$T/acked" || true
acked=$(count_lines "$T/acked")
[[ $acked -gt 0 ]] || fail "no message was acked before the kills (test did not exercise anything)"
timeout 60 mq-consume -b "$B1" -t crash --from earliest -e --format '%q\t%o\t%i\t%s\n' | sort >"$T/stored"
stored=$(count_lines "$T/stored")
note "acked=$acked stored=$stored"
# every acked message is stored at its receipt's queue and offset with its id
awk -F'\t' '{ print $4 "\t" $5 "\t" $2 }' "$T/acked" | sort >"$T/a3"
cut -f1-3 "$T/stored" | sort >"$T/s3"
missing=$(comm -23 "$T/a3" "$T/s3" | wc -l)
[[ $missing -eq 0 ]] || fail "$missing acked messages lost after kill -9: $(comm -23 "$T/a3" "$T/s3" | head -n 3)"
dups=$(cut -f1,2 "$T/stored" | sort | uniq -d | wc -l)
[[ $dups -eq 0 ]] || fail "$dups offsets hold two messages"
# offsets are dense per queue
awk -F'\t' '{ n[$1]++; if ($2 + 1 > m[$1]) m[$1] = $2 + 1 } END { for (q in n) if (n[q] != m[q]) { print "queue " q ": " n[q] " messages, max offset " m[q]; bad=1 } exit bad }' "$T/stored" \
  || fail "gaps in queue offsets"
grep -q -i 'recover' "$T/b1.log" || fail "broker did not log its recovery"
echo "$TEST_NAME: ok (acked $acked, stored $stored, lost 0)"
