#!/usr/bin/env bash
# kill -9 of a group consumer while a deliberately slow message holds a queue's commit back:
# after a restart every message is processed at least once and duplicates stay within --max-span
# per queue; the committed offset never passed the unfinished message. A fast member with a long
# --commit-interval: duplicates within twice the span per queue.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async --queues 2
seq 1600 | timeout 60 mq-send -b "$B1" -t slow || fail "send"
span=100
# (a command the kill -9 started before it wrote the body reads nothing: no line for it)
cat >"$T/h1.sh" <<'SH'
read -r b || [ -n "$b" ] || exit 1
if [ "$b" = 10 ]; then sleep 600; fi
echo "$b $MQ_QUEUE" >>"$OUT/done"
SH
export OUT=$T
spawn c1 mq-consume -b "$B1" -t slow -g g --from earliest --exec "sh $T/h1.sh" --concurrency 4 \
  --max-span $span --commit-interval 100ms 2>"$T/c1.log"
# wait until the span limit stalls the queue holding message 10 (the other queue finishes)
wait_until 120 bash -c "[[ \$(wc -l <$T/done 2>/dev/null || echo 0) -ge $((800 + span - 5)) ]]" || fail "consumer made no progress: $(wc -l <"$T/done")"
sleep 1
before=$(wc -l <"$T/done")
q10=$(timeout 10 mq-consume -b "$B1" -t slow --from earliest -e --format '%s %q\n' | awk '$1 == 10 { print $2 }')
in_q10=$(awk -v q="$q10" '$2 == q' "$T/done" | wc -l)
# pulled at most span past the blocker: at most span+1 (the blocker excluded) finished in that queue beyond offset of 10
[[ $in_q10 -le $((span + 10)) ]] || fail "span limit not honoured: $in_q10 done in the blocked queue"
kill -9 "$c1"
pkill -9 -f "sleep 600" || true   # the killed consumer's command (its own process group)
sleep 0.5
cat >"$T/h2.sh" <<'SH'
read -r b
echo "$b $MQ_QUEUE" >>"$OUT/done"
SH
timeout 120 mq-consume -b "$B1" -t slow -g g --exec "sh $T/h2.sh" --concurrency 4 -e 2>"$T/c2.log" || fail "second consumer: $(tail -n 3 "$T/c2.log")"
cut -d' ' -f1 "$T/done" | sort -n | uniq >"$T/uniq"
seq 1600 | diff -q - "$T/uniq" >/dev/null || fail "messages lost: $(comm -23 <(seq 1600 | sort) <(sort "$T/uniq") | head -n 3)"
total=$(wc -l <"$T/done")
dups=$((total - 1600))
note "before kill $before, total $total, duplicates $dups (bound $((span * 2)))"
[[ $dups -le $((span * 2 + 2)) ]] || fail "$dups duplicates exceed the span bound"
[[ $dups -ge 1 ]] || fail "no duplicate at all: the slow message's queue was committed past it"

# the broker killed while a member works: its last commit gets no answer, so the progress is not
# saved and the run is no success (it exited 0 in silence, having committed nothing); while the
# broker is down the member says so rather than wait in silence
start_broker b2 --flush async
seq 1 40 | timeout 20 mq-send -b "$B2" -t k5 -q || fail "send to b2"
spawn kpid mq-consume -b "$B2" -t k5 -g gk5 --from earliest -e --commit-interval 60s \
  --exec 'cat >/dev/null; sleep 0.1' 2>"$T/k5.err"
sleep 1
stop_broker b2 -9
rc=0; timeout 60 tail --pid="$kpid" -f /dev/null || fail "the member did not end"
wait "$kpid" || rc=$?
[[ $rc -eq 1 ]] && grep -q "the last commit of [0-9]* queues\? was not saved" "$T/k5.err" ||
  fail "a member whose last commit got no answer: exit $rc, $(cat "$T/k5.err")"
grep -q "unreachable: its queues wait for it" "$T/k5.err" || fail "the member did not say its broker is unreachable: $(cat "$T/k5.err")"
# a fast member with a long --commit-interval: a queue whose commit offset moved --max-span past
# its last commit is committed at once, so a kill -9 delivers again at most about twice the span
# per queue, not everything since the last interval's commit
start_broker b3 --flush async --queues 2
seq 1 3000 | timeout 30 mq-send -b "$B3" -t fast -q || fail "send to b3"
printf 'read -r b || [ -n "$b" ] || exit 1\necho "$b" >>"$OUT/fast"\n' >"$T/h3.sh"
fspan=40
spawn f1 mq-consume -b "$B3" -t fast -g gf --from earliest --exec "sh $T/h3.sh" --concurrency 4 \
  --max-span $fspan --commit-interval 60s 2>"$T/f1.log"
wait_until 60 bash -c "[[ \$(wc -l <$T/fast 2>/dev/null || echo 0) -ge 600 ]]" || fail "fast member made no progress"
kill -9 "$f1"
sleep 0.5  # its last commands finish
killed_at=$(wc -l <"$T/fast")
timeout 120 mq-consume -b "$B3" -t fast -g gf --exec "sh $T/h3.sh" --concurrency 4 -e 2>"$T/f2.log" ||
  fail "second fast member: $(tail -n 3 "$T/f2.log")"
sort -n "$T/fast" | uniq | diff -q <(seq 1 3000) - >/dev/null || fail "fast: messages lost"
fdups=$(($(wc -l <"$T/fast") - 3000))
# bound: 2 queues x 2 spans, + the 4 commands running at the kill and those finishing while an
# early commit is on its way
fbound=$((2 * 2 * fspan + 20))
note "fast member killed after $killed_at, duplicates $fdups (bound $fbound)"
[[ $fdups -le $fbound ]] || fail "$fdups duplicates after a kill -9: more than twice --max-span per queue"

echo "$TEST_NAME: ok (duplicates $dups)"
