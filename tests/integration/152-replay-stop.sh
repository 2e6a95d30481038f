#!/usr/bin/env bash
# mq-replay stops when told: SIGTERM/SIGINT in the middle of a --rate pause ends the run at
# once with nothing published after the signal (exit 0, receipts of what was acknowledged,
# --dlq keeps its progress for the next run), and a closed stdout under --receipts stops
# publishing (only what was in flight gets out), exit 0 without a message.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async

# count TOPIC: the messages stored in TOPIC
count() { timeout 10 mq-replay -b "$B1" -t "$1" 2>/dev/null | wc -l | tr -d ' '; }
# ms_since START_NS
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
# gone PID SECONDS: waits (polling every 20 ms, finer than tail --pid) until our child PID
# has exited (a zombie until `wait`); fails after SECONDS
gone() {
  local end=$((SECONDS + $2 * MQ_SLOW))
  while [[ -e /proc/$1 && $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) != Z ]]; do
    [[ $SECONDS -ge $end ]] && return 1
    sleep 0.02
  done
}
limit=$((1000 * MQ_SLOW))  # "at once", with room for a slow machine

N=20000
seq 1 "$N" | timeout 60 mq-send -b "$B1" -t big || fail "send big"

# --- SIGTERM during a --rate pause (10 s between messages): the first message is out, the
# second is never published
spawn rpid mq-replay -b "$B1" -t big --to-topic rx --rate 0.1 --receipts >"$T/rx.receipts" 2>"$T/rx.err"
wait_until 10 bash -c "[[ \$(timeout 5 mq-replay -b $B1 -t rx | wc -l) -ge 1 ]]" || fail "--rate 0.1: nothing published"
slow_sleep 0.5
kill -TERM "$rpid"
start=$(date +%s%N)
gone "$rpid" 30 || fail "--rate 0.1: still running 30 s after SIGTERM"
ms=$(ms_since "$start")
rc=0; wait "$rpid" || rc=$?
[[ $ms -lt $limit ]] || fail "--rate 0.1: exited ${ms}ms after SIGTERM"
[[ $rc -eq 0 ]] || fail "--rate 0.1 stopped by SIGTERM: exit $rc ($(cat "$T/rx.err"))"
sleep 1
[[ $(count rx) -eq 1 ]] || fail "--rate 0.1: $(count rx) messages published, 1 before SIGTERM"
[[ $(grep -c SEND_OK "$T/rx.receipts") -eq 1 ]] || fail "--rate 0.1: receipts after SIGTERM: $(cat "$T/rx.receipts")"
note "SIGTERM in a --rate pause: exit after ${ms}ms"

# --- SIGINT during a pause of 1000 s, from -i FILE
timeout 10 mq-replay -b "$B1" -t big --until 5 --format json >"$T/five.json" || fail "five json"
start=$(date +%s%N)
# (one SIGINT sent by pid: timeout(1) also signals its process group, a second signal, which
# ends the run with 130 as a second Ctrl-C does)
spawn rp mq-replay -b "$B1" -i "$T/five.json" --to-topic ry --rate 0.001 2>"$T/ry.err"
sleep 2
kill -INT "$rp"
( sleep 20; kill -9 "$rp" 2>/dev/null ) &
EXTRA_PIDS+=("$!")
rc=0; wait "$rp" || rc=$?
ms=$(ms_since "$start")
[[ $ms -lt $((2000 + limit)) ]] || fail "--rate 0.001 -i: exited ${ms}ms after the start, SIGINT at 2 s"
[[ $rc -eq 0 ]] || fail "--rate 0.001 -i stopped by SIGINT: exit $rc ($(cat "$T/ry.err"))"
[[ $(count ry) -eq 1 ]] || fail "--rate 0.001 -i: $(count ry) messages published, 1 before SIGINT"

# --- --dlq --rate 1: SIGTERM after the first re-drive keeps the progress; the next run
# re-drives the rest, none twice
seq 1 10 | timeout 10 mq-send -b "$B1" -t w || fail "send w"
spawn cpid mq-consume -b "$B1" -t w -g workers --from earliest --exec "exit 65" --commit-interval 200ms \
  >"$T/consumer.out" 2>"$T/consumer.log"
wait_until 30 bash -c "[[ \$(timeout 5 mq-replay -b $B1 --dlq workers --dry-run 2>/dev/null | wc -l) -ge 10 ]]" ||
  fail "dead letters did not arrive"
kill -TERM "$cpid"
timeout 20 tail --pid="$cpid" -f /dev/null || fail "consumer did not stop"
wait "$cpid" || true
spawn dpid mq-replay -b "$B1" --dlq workers --to-topic wout --rate 0.2 --receipts >"$T/dlq.receipts" 2>"$T/dlq.err"
wait_until 10 bash -c "[[ \$(timeout 5 mq-replay -b $B1 -t wout | wc -l) -ge 1 ]]" || fail "--dlq --rate: nothing re-driven"
slow_sleep 0.5
kill -TERM "$dpid"
start=$(date +%s%N)
gone "$dpid" 30 || fail "--dlq --rate: still running 30 s after SIGTERM"
ms=$(ms_since "$start")
rc=0; wait "$dpid" || rc=$?
[[ $ms -lt $limit ]] || fail "--dlq --rate 0.2: exited ${ms}ms after SIGTERM"
[[ $rc -eq 0 ]] || fail "--dlq --rate stopped by SIGTERM: exit $rc ($(cat "$T/dlq.err"))"
sleep 1
[[ $(count wout) -eq 1 ]] || fail "--dlq --rate: $(count wout) re-driven, 1 before SIGTERM"
[[ $(grep -c SEND_OK "$T/dlq.receipts") -eq 1 ]] || fail "--dlq --rate: receipts: $(cat "$T/dlq.receipts")"
[[ $(timeout 10 mq-replay -b "$B1" --dlq workers --dry-run | wc -l) -eq 9 ]] ||
  fail "--dlq stopped by SIGTERM did not keep its progress: $(timeout 10 mq-replay -b "$B1" --dlq workers --dry-run | wc -l) left"
timeout 20 mq-replay -b "$B1" --dlq workers --to-topic wout || fail "--dlq after the stop"
timeout 10 mq-replay -b "$B1" -t wout | sort -n | diff - <(seq 1 10) >/dev/null ||
  fail "--dlq in two runs: $(timeout 10 mq-replay -b "$B1" -t wout | sort -n | tr '\n' ' ')"

# --- a closed stdout stops publishing with --receipts: at most what was in flight gets out
# (--window 1024 here), exit 0 and no message
set +o pipefail
timeout 60 mq-replay -b "$B1" -t big --to-topic big2 --receipts 2>"$T/head.err" | head -n 1 >"$T/head.out"
rc=${PIPESTATUS[0]}
set -o pipefail
[[ $rc -eq 0 ]] || fail "--receipts | head -n 1: exit $rc ($(cat "$T/head.err"))"
[[ ! -s $T/head.err ]] || fail "--receipts | head -n 1 said: $(cat "$T/head.err")"
[[ $(count_lines "$T/head.out") -eq 1 ]] || fail "--receipts | head -n 1 printed $(count_lines "$T/head.out") lines"
n=$(count big2)
[[ $n -ge 1 && $n -le 5000 ]] || fail "--receipts | head -n 1: $n of $N messages published"
note "closed stdout: $n of $N published"
# the same from -i FILE
timeout 30 mq-replay -b "$B1" -t big --format json >"$T/big.json" || fail "big json"
set +o pipefail
timeout 60 mq-replay -b "$B1" -i "$T/big.json" --to-topic big3 --receipts 2>"$T/head3.err" | head -n 1 >/dev/null
rc=${PIPESTATUS[0]}
set -o pipefail
[[ $rc -eq 0 && ! -s $T/head3.err ]] || fail "-i --receipts | head -n 1: exit $rc ($(cat "$T/head3.err"))"
n=$(count big3)
[[ $n -ge 1 && $n -le 5000 ]] || fail "-i --receipts | head -n 1: $n of $N messages published"
# and in a --rate pause (nothing to write then: the reader's going is seen without a write)
start=$(date +%s%N)
set +o pipefail
timeout 30 mq-replay -b "$B1" -t big --to-topic big4 --rate 0.2 --receipts 2>"$T/head4.err" | head -n 1 >/dev/null
rc=${PIPESTATUS[0]}
set -o pipefail
ms=$(ms_since "$start")
[[ $rc -eq 0 && ! -s $T/head4.err ]] || fail "--rate --receipts | head -n 1: exit $rc ($(cat "$T/head4.err"))"
[[ $ms -lt $((1000 + limit)) ]] || fail "--rate 0.2 --receipts | head -n 1: ran ${ms}ms"
[[ $(count big4) -eq 1 ]] || fail "--rate --receipts | head -n 1: $(count big4) published"

# --- --rate: 0 is no limit; a rate below one message a day is a usage error naming --rate
timeout 20 mq-replay -b "$B1" -t big --queue 0 --until 100 --to-topic r0 --rate 0 || fail "--rate 0"
[[ $(count r0) -eq 100 ]] || fail "--rate 0 published $(count r0)"
for r in 1e-300 0.00001; do
  start=$(date +%s%N)
  rc=0; timeout -k 5 10 mq-replay -b "$B1" -t big --to-topic rz --rate "$r" 2>"$T/rate.err" || rc=$?
  [[ $rc -eq 2 && $(count_lines "$T/rate.err") -eq 1 ]] && grep -q -- "--rate" "$T/rate.err" ||
    fail "--rate $r: exit $rc, $(cat "$T/rate.err")"
done
[[ $(count rz) -eq 0 ]] || fail "a refused --rate published $(count rz)"
# the longest rate still taken: one a day, stopped by SIGTERM at once
spawn rpid mq-replay -b "$B1" -t big --to-topic rd --rate 0.0000116 2>"$T/rd.err"
wait_until 10 bash -c "[[ \$(timeout 5 mq-replay -b $B1 -t rd | wc -l) -ge 1 ]]" || fail "--rate 0.0000116: nothing published"
kill -TERM "$rpid"
gone "$rpid" 10 || fail "--rate 0.0000116: still running after SIGTERM"
rc=0; wait "$rpid" || rc=$?
[[ $rc -eq 0 ]] || fail "--rate 0.0000116 stopped by SIGTERM: exit $rc ($(cat "$T/rd.err"))"

# --- durations past 100 years are usage errors naming the flag (107000d fits in int64
# milliseconds, not in the nanoseconds of a timer: it failed every request at once)
for cmd in "mq-offset -b $B1 --timeout 107000d topics" "mq-replay -b $B1 --timeout 1000000d -t big"; do
  rc=0; timeout 10 $cmd >/dev/null 2>"$T/dur.err" || rc=$?
  [[ $rc -eq 2 ]] && grep -q -- "--timeout: invalid duration '[0-9]*d': too large" "$T/dur.err" ||
    fail "$cmd: exit $rc, $(cat "$T/dur.err")"
done
timeout 10 mq-offset -b "$B1" --timeout 36500d topics >/dev/null || fail "--timeout 36500d"

# --- a file that cannot be read is named as such (not "standard input")
rc=0; timeout 10 mq-replay -b "$B1" -i "$T" --to-topic x 2>"$T/dir.err" || rc=$?
[[ $rc -eq 1 ]] && grep -qx "mq-replay: cannot read $T: Is a directory" "$T/dir.err" ||
  fail "-i DIR: exit $rc, $(cat "$T/dir.err")"
note "ok"
