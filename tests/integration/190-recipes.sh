#!/usr/bin/env bash
# The shell recipes of mq(7) EXAMPLES and README's tour, run as written (plus -b and bounds):
# tail into jq, fan a growing log file into a topic, a worker pool with --exec and a dead letter,
# copying a topic through --format json | --json, resetting a group an hour back with a dry run
# first, re-driving dead letters, counting messages per queue.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is missing (scripts/deps --test installs it)"
start_broker m
export MQ_BROKER=$M
export XDG_STATE_HOME=$T/state  # mq-offset reset writes its undo file there

# 1. tail a topic of JSON bodies into jq (a live follower, started before the sends)
spawn TAIL sh -c "mq-consume -t events -n 3 | jq -r 'select(.status >= 500) | .path' > '$T/jq.out'"
sleep 0.3
mq-send -t events '{"status":503,"path":"/a"}' '{"status":200,"path":"/b"}' '{"status":500,"path":"/c"}' ||
  fail "send events: exit $?"
jq_done() { [[ $(sort "$T/jq.out" 2>/dev/null | tr '\n' ' ') == "/a /c " ]]; }
wait_until 20 jq_done || fail "jq recipe printed: $(cat "$T/jq.out")"

# 2. fan a log file into a topic as it grows
: >"$T/app.log"
spawn FAN sh -c "tail -F '$T/app.log' 2>/dev/null | mq-send -t app-log"
echo "line one" >>"$T/app.log"
sleep 0.5
printf 'line two\nline three\n' >>"$T/app.log"
timeout 20 mq-consume -t app-log --from earliest -n 3 >"$T/fan.out" || fail "reading app-log: exit $?"
# (no key: the lines spread over the queues, so compare them as a set)
[[ $(sort "$T/fan.out" | tr '\n' '|') == "line one|line three|line two|" ]] || fail "fan-in got: $(cat "$T/fan.out")"
kill_tree -TERM "$FAN"

# 3. a worker pool: two members, jobs split between them, exit 65 dead-letters at once
cat >"$T/worker.sh" <<'W'
read -r job
case $job in poison*) exit 65 ;; esac
echo "$job" >> "$WORK_DIR/done.$$"
W
export WORK_DIR=$T
seq -f 'job-%g' 1 20 | mq-send -t jobs || fail "send jobs: exit $?"
mq-send -t jobs poison-1 || fail "send poison: exit $?"
spawn W1 mq-consume -t jobs -g workers --from earliest --concurrency 2 --exec "sh $T/worker.sh"
spawn W2 mq-consume -t jobs -g workers --from earliest --concurrency 2 --exec "sh $T/worker.sh"
done_count() { cat "$T"/done.* 2>/dev/null | sort -u | wc -l; }
all_done() { [[ $(done_count) -eq 20 ]]; }
wait_until 60 all_done || fail "worker pool finished $(done_count) of 20 jobs"
wait_until 30 sh -c "mq-consume -t '%DLQ%workers' --from earliest -e 2>/dev/null | grep -q poison-1" ||
  fail "the poison job is not in %DLQ%workers"
kill -TERM "$W1" "$W2"
timeout 20 tail --pid="$W1" -f /dev/null; timeout 20 tail --pid="$W2" -f /dev/null

# 4. copy a topic, keeping keys, tags and properties
mq-send -t orders -k k1 --tag t1 -p a=1 first || fail "send orders 1"
mq-send -t orders -k k2 --tag t2 -p b=2 second || fail "send orders 2"
mq-consume -t orders --from earliest -e --format json | mq-send -t orders-copy --json || fail "copy pipeline: exit $?"
fields='[.key, .tag, .props, .body] | tostring'
diff <(mq-consume -t orders --from earliest -e --format json | jq -r "$fields" | sort) \
     <(mq-consume -t orders-copy --from earliest -e --format json | jq -r "$fields" | sort) >"$T/copy.diff" ||
  fail "the copy differs: $(cat "$T/copy.diff")"

# 5. reset a group to an hour ago, dry run first (every job is less than an hour old: back to 0)
# column 4 of `show` is the committed offset
mq-offset show -g workers -t jobs --format tsv | head -1 | cut -f4 | grep -qx committed || fail "show's columns changed"
committed() { mq-offset show -g workers -t jobs --format tsv | awk -F'\t' '$1 == "jobs" { s += $4 } END { print s + 0 }'; }
before=$(committed)
[[ $before -ge 21 ]] || fail "the workers committed $before of 21"
mq-offset reset -g workers -t jobs --to-time -1h --dry-run >"$T/dry" || fail "dry run: exit $?"
[[ $(committed) -eq $before ]] || fail "the dry run changed offsets"
mq-offset reset -g workers -t jobs --to-time -1h >"$T/reset" || fail "reset: exit $?"
[[ $(committed) -eq 0 ]] || fail "after the reset the offsets sum to $(committed)"

# 6. re-drive dead letters, dry run first; a second run re-drives nothing
mq-replay --dlq workers --dry-run >"$T/dlq-dry" || fail "dlq dry run: exit $?"
grep -q poison-1 "$T/dlq-dry" || fail "dry run does not list the dead letter: $(cat "$T/dlq-dry")"
jobs_before=$(mq-consume -t jobs --from earliest -e | wc -l)
mq-replay --dlq workers || fail "re-drive: exit $?"
mq-replay --dlq workers || fail "second re-drive: exit $?"
[[ $(mq-consume -t jobs --from earliest -e | wc -l) -eq $((jobs_before + 1)) ]] || fail "re-drive did not add exactly one job"

# 7. count the messages each queue got in the last 10 minutes
mq-replay -t jobs --from -10m --format '%q\n' | sort | uniq -c >"$T/per-queue"
[[ $(awk '{ s += $1 } END { print s }' "$T/per-queue") -eq $((jobs_before + 1)) ]] || fail "per-queue counts: $(cat "$T/per-queue")"
# 8. README's five-minute tour, taken from README.md itself (minus the endless follower)
awk '/^## A five-minute tour/ { t = 1 } t && /^```sh/ { on = 1; next } on && /^```$/ { exit } on' \
  "$MQ_SRC/README.md" | grep -vx 'mq-consume -t demo' >"$T/tour.sh"
[[ $(grep -c '^mq-' "$T/tour.sh") -ge 10 ]] || fail "could not find the tour in README.md"
(cd "$T" && timeout 120 bash -euo pipefail tour.sh >"$T/tour.out" 2>"$T/tour.err") ||
  fail "README tour failed: $(tail -n 5 "$T/tour.err")"
grep -q '"key":"customer-7","tag":"new","props":{"source":"web"},"body":"order 1"' "$T/tour.out" ||
  fail "tour: the JSON round trip lost fields: $(grep customer "$T/tour.out")"
[[ $(grep -c $'\tSEND_OK$' "$T/tour.out") -eq 2 ]] || fail "tour: expected 2 SEND_OK receipts"
[[ $(grep -c '^job [0-9]* from queue [0-9]' "$T/tour.out") -eq 10 ]] || fail "tour: the group ran $(grep -c '^job ' "$T/tour.out") of 10 jobs"
note "ok: every mq(7) recipe and README's tour work as written"
