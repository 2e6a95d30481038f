#!/usr/bin/env bash
# Committed offsets survive broker restarts (clean and kill -9); clean exits (-n, -e, SIGTERM,
# closed stdout) leave no duplicates; a new group starts at --from; latest means the end at creation.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush sync --queues 1
seq 1 1000 | timeout 30 mq-send -b "$B1" -t o || fail "send"
timeout 20 mq-consume -b "$B1" -t o -g g --from earliest -n 100 >"$T/a" || fail "first -n 100"
seq 1 100 | diff -q - "$T/a" >/dev/null || fail "first 100 wrong"
timeout 20 mq-consume -b "$B1" -t o -g g --from earliest -n 100 >"$T/b" || fail "second -n 100"
seq 101 200 | diff -q - "$T/b" >/dev/null || fail "second 100 wrong (duplicates after a clean -n exit?)"
stop_broker b1 -TERM
restart_broker b1
timeout 20 mq-consume -b "$B1" -t o -g g -n 100 >"$T/c" || fail "after clean restart"
seq 201 300 | diff -q - "$T/c" >/dev/null || fail "offsets lost across a clean restart: $(head -n 1 "$T/c")"
sleep 0.5   # the broker persists offsets within 200ms
stop_broker b1 -9
restart_broker b1
timeout 20 mq-consume -b "$B1" -t o -g g -n 100 >"$T/d" || fail "after kill -9"
seq 301 400 | diff -q - "$T/d" >/dev/null || fail "offsets lost across kill -9: $(head -n 1 "$T/d")"
# closed stdout: nothing past what was written is committed
set +o pipefail
timeout 20 mq-consume -b "$B1" -t o -g g | head -n 5 >"$T/e"
set -o pipefail
seq 401 405 | diff -q - "$T/e" >/dev/null || fail "head -n 5 got $(cat "$T/e")"
# what the pipe accepted counts as written; what it did not is delivered again, nothing is skipped
timeout 20 mq-consume -b "$B1" -t o -g g --from earliest -e >"$T/g" || fail "-e"
if [[ -s $T/g ]]; then
  first=$(head -n 1 "$T/g")
  [[ $first -ge 406 ]] || fail "after | head -n 5 the group went back to $first"
  seq "$first" 1000 | diff -q - "$T/g" >/dev/null || fail "-e did not continue from the committed offset"
fi
# ... also when the member has caught up before the reader goes away: it was seen only at
# the next message's write, so a caught-up member hung on (holding its queues) until then
timeout 10 mq-send -b "$B1" -t idle --mode sync a b c || fail "send idle"
rc_c=0
{ timeout 20 mq-consume -b "$B1" -t idle -g idle --from earliest || rc_c=$?; echo "$rc_c" >"$T/idle.rc"; } |
  head -n 3 >"$T/idle" || true
[[ $(cat "$T/idle.rc") -eq 0 && $(tr '\n' ' ' <"$T/idle") == "a b c " ]] ||
  fail "a caught-up member | head -n 3: exit $(cat "$T/idle.rc"), got '$(tr '\n' ' ' <"$T/idle")'"
timeout 10 mq-send -b "$B1" -t idle --mode sync d || fail "send d"
[[ $(timeout 10 mq-consume -b "$B1" -t idle -g idle -e) == d ]] || fail "after | head -n 3 of a caught-up member"
# a new group with the default --from latest starts at the end at its creation
timeout 10 mq-consume -b "$B1" -t o -g fresh -e >"$T/h" || fail "fresh group -e"
[[ ! -s $T/h ]] || fail "a new group with --from latest read old messages"
timeout 10 mq-send -b "$B1" -t o "after-fresh" || fail "send after"
timeout 10 mq-consume -b "$B1" -t o -g fresh -e >"$T/i" || fail "fresh group second run"
[[ $(cat "$T/i") == after-fresh ]] || fail "fresh group got '$(cat "$T/i")'"
# a new group with --from -N starts N before each queue's end (once: then its commits count)
timeout 10 mq-consume -b "$B1" -t o -g back2 --from -2 -e --format '%q %o\n' >"$T/back2" || fail "--from -2 group"
timeout 10 mq-offset -b "$B1" topics -t o --format tsv | awk -F'\t' 'NR > 1 && $6 > 0 { for (o = ($5 >= 2 ? $5 - 2 : 0); o < $5; o++) print $2, o }' \
  | sort >"$T/back2.want"
[[ $(count_lines "$T/back2") -eq 2 ]] || fail "--from -2 group on 1 queue read $(count_lines "$T/back2") messages"
sort "$T/back2" | diff - "$T/back2.want" >/dev/null || fail "--from -2 group read $(tr '\n' ' ' <"$T/back2"), want $(tr '\n' ' ' <"$T/back2.want")"
timeout 10 mq-consume -b "$B1" -t o -g back2 --from -2 -e >"$T/back2.again" || fail "--from -2 group again"
[[ ! -s $T/back2.again ]] || fail "a second run of group back2 read again: $(tr '\n' ' ' <"$T/back2.again")"
# a new group started before its topic exists reads the topic from its first message: --from
# latest is the end when the consumer started (the tail does the same), not when a heartbeat
# later brings the assignment
spawn early mq-consume -b "$B1" -t born-later -g early --format '%s\n' >"$T/early.out" 2>"$T/early.err"
wait_until 10 grep -q "does not exist yet" "$T/early.err" || fail "early group: no notice: $(cat "$T/early.err")"
seq 1 5 | timeout 10 mq-send -b "$B1" -t born-later --mode sync || fail "send born-later"
wait_until 15 bash -c "[[ \$(wc -l <'$T/early.out') -ge 5 ]]" || fail "early group got $(tr '\n' ' ' <"$T/early.out")"
kill -TERM "$early"; timeout 20 tail --pid="$early" -f /dev/null || true
sort -n "$T/early.out" | diff - <(seq 1 5) >/dev/null || fail "early group got $(tr '\n' ' ' <"$T/early.out")"
# a group of a topic no broker has says so, like the tail
timeout 10 mq-consume -b "$B1" -t no-such-topic -g g -e 2>"$T/none.err" || fail "group -e of a missing topic exited $?"
grep -q "topic 'no-such-topic' does not exist" "$T/none.err" || fail "group: missing topic not reported: $(cat "$T/none.err")"
# SIGTERM is a clean exit too
seq 2001 2200 | timeout 10 mq-send -b "$B1" -t o || fail "send 3"
spawn cpid mq-consume -b "$B1" -t o -g g >"$T/j" 2>/dev/null
sleep 2
kill -TERM "$cpid"
timeout 20 tail --pid="$cpid" -f /dev/null || fail "consumer did not stop on SIGTERM"
rc=0; wait "$cpid" || rc=$?
[[ $rc -eq 0 ]] || fail "SIGTERM exit status $rc"
timeout 10 mq-consume -b "$B1" -t o -g g -e >"$T/k"
cat "$T/j" "$T/k" | sort -n | uniq -d | wc -l | grep -qx 0 || fail "duplicates after SIGTERM"
# What mq-offset shows is what a kill -9 of the broker keeps: a commit shows once it is saved
# (showing saves the commits still waiting). Each round kills a consumer that commits every
# 50 ms, shows at once (its last commits are usually not saved yet: the broker saves every
# 200 ms), kills the broker and compares.
start_broker b2 --flush sync --queues 2
seq 1 30000 | timeout 30 mq-send -b "$B2" -t s || fail "send s"
shown_sum() {
  timeout 10 mq-offset -b "$B2" show -g s -t s --format tsv |
    awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "committed") c = i; next } { n += $c } END { print n + 0 }'
}
for round in 1 2 3 4; do
  spawn sc mq-consume -b "$B2" -t s -g s --from earliest --commit-interval 50ms --exec true --concurrency 4
  slow_sleep 0.7
  kill -9 "$sc"; wait "$sc" 2>/dev/null || true
  shown=$(shown_sum)
  stop_broker b2 -9
  restart_broker b2
  after=$(shown_sum)
  note "round $round: shown $shown, after kill -9 $after"
  [[ $shown -gt 0 && $after -ge $shown ]] || fail "round $round: mq-offset showed $shown committed, after a kill -9 $after"
done

# offsets.json removed while stopped: said at the start (every group starts over), not silent;
# a data directory's first start writes the file, even with no group yet
[[ -s ${DATA[b1]}/offsets.json ]] || fail "no offsets.json"
stop_broker b1 -TERM
rm "${DATA[b1]}/offsets.json"
lines=$(count_lines "$T/b1.log")
restart_broker b1
tail -n +"$((lines + 1))" "$T/b1.log" | grep -q "offsets.json is missing although the log holds messages" ||
  fail "a removed offsets.json was not said: $(tail -n 3 "$T/b1.log")"
start_broker fresh
wait_until 10 test -s "$T/fresh/offsets.json" || fail "a new data directory got no offsets.json"
grep -q "is missing" "$T/fresh.log" && fail "a new data directory warned of a missing offsets.json"
stop_broker fresh -TERM
echo "$TEST_NAME: ok"
