#!/usr/bin/env bash
# The broker at its open-file limit: connections it cannot accept wait in the backlog (accept is
# retried every 100 ms and said once a minute, not ten lines a second), sends that need a new
# segment or index file fail and are retried by mq-send, and nothing is given up for good: once
# descriptors are free again every acknowledged message is there and new ones are stored.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush sync --segment-size 64KiB
bpid=${PIDS[b1]}
seq 100 | timeout 20 mq-send -b "$B1" -t fds -q || fail "first send"
open_fds() { ls "/proc/$bpid/fd" | wc -l; }
limit=$(( $(open_fds) + 12 ))
prlimit --pid "$bpid" --nofile="$limit:$((limit + 4000))" || fail "prlimit"

# 40 connections held open: the broker runs out of descriptors accepting them
python3 - "$B1" "$T" >"$T/hold.out" 2>"$T/hold.err" <<'PY' &
import os, socket, sys, time
h, p = sys.argv[1].rsplit(":", 1)
t = sys.argv[2]
socks = [socket.create_connection((h, int(p)), timeout=10) for _ in range(40)]
open(f"{t}/hold.ready", "w").write("ready\n")
while not os.path.exists(f"{t}/hold.stop"):
    time.sleep(0.1)
PY
holder=$!
EXTRA_PIDS+=("$holder")
wait_until 30 test -s "$T/hold.ready" || fail "could not open the connections: $(cat "$T/hold.err")"
wait_until 10 grep -q "accept on .*Too many open files" "$T/b1.log" || fail "the broker never ran out of descriptors"
slow_sleep 2
said=$(grep -c "accept on" "$T/b1.log" || true)
[[ $said -le 2 ]] || fail "accept failures said $said times in 2 s"

# a send that comes in while the broker is out of descriptors is accepted once they are back
seq 101 3000 | timeout 60 mq-send -b "$B1" -t fds --receipts >"$T/late.rcpt" 2>"$T/late.err" &
sender=$!
slow_sleep 1
touch "$T/hold.stop"
timeout 20 tail --pid="$holder" -f /dev/null || fail "the holder did not stop"
rc=0
wait "$sender" || rc=$?
[[ $rc -eq 0 ]] || fail "send after the shortage exited $rc: $(tail -n 3 "$T/late.err")"
kill -0 "$bpid" || fail "broker died"

# topics and segments made while descriptors are short: some sends fail, the log stays usable
prlimit --pid "$bpid" --nofile="$(( $(open_fds) + 3 )):$((limit + 4000))" || fail "prlimit"
for i in $(seq 1 6); do
  seq 200 | timeout 10 mq-send -b "$B1" -t "short-$i" --retries 0 -q 2>>"$T/short.err" || true
done
prlimit --pid "$bpid" --nofile="$((limit + 4000)):$((limit + 4000))" || fail "prlimit"
seq 3001 6000 | timeout 30 mq-send -b "$B1" -t fds -q || fail "send once descriptors are back: $(tail -n 3 "$T/b1.log")"
grep -q "poisoned" "$T/b1.log" && fail "the commit log was given up: $(grep poisoned "$T/b1.log" | head -n 1)"
got=$(timeout 30 mq-consume -b "$B1" -t fds --from earliest -e | sort -n | uniq | wc -l)
[[ $got -eq 6000 ]] || fail "$got of 6000 messages readable"
stop_broker b1 -9
restart_broker b1
got=$(timeout 30 mq-consume -b "$B1" -t fds --from earliest -e | sort -n | uniq | wc -l)
[[ $got -eq 6000 ]] || fail "$got of 6000 messages after kill -9"
echo "$TEST_NAME: ok ($said accept warnings)"
