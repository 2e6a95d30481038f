#!/usr/bin/env bash
# An fdatasync that fails (EIO from the test shim while a file says so): no send is
# acknowledged, writes stay refused after the fault is gone (a failed sync is never retried),
# and the next start cuts what the failed sync covered instead of serving it (the kernel may
# have dropped those pages and marked them clean: a later power cut could take them away).
. "$(dirname "$0")/lib.sh"

# (not libfiu: its preload hangs an ASan build at start; the shim works in both)
SHIM=${MQ_BUILD:-$(dirname "$MQ_BIN")}/lib/libmq-slow-fdatasync.so
[[ -f $SHIM ]] || fail "$SHIM missing: build it first (make)"
ready="$T/b.ready"
LD_PRELOAD=$SHIM ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" MQ_SLOW_SYNC_FILE="$T/fault" \
  mq-broker --data "$T/d" --listen 127.0.0.1:0 --ready-file "$ready" --queues 1 >>"$T/b.log" 2>&1 &
bpid=$!
EXTRA_PIDS+=("$bpid")
wait_until 20 test -s "$ready" || fail "broker not ready"
B=$(cat "$ready")
seq 1 100 | sed 's/^/ok-/' | timeout 20 mq-send -b "$B" -t f --mode sync --receipts >"$T/r0" || fail "sends before the fault: exit $?"
echo eio >"$T/fault"
rc=0; seq 1 5 | sed 's/^/bad-/' | timeout 20 mq-send -b "$B" -t f --mode sync --retries 0 --timeout 8s --receipts \
  >"$T/r1" 2>"$T/r1.err" || rc=$?
[[ $rc -eq 1 ]] && ! grep -q SEND_OK "$T/r1" || fail "sends during the fault: exit $rc, $(cat "$T/r1")"
rm "$T/fault"
rc=0; timeout 20 mq-send -b "$B" -t f --mode sync --retries 0 --receipts after >"$T/r2" 2>"$T/r2.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "poisoned" "$T/r2.err" || fail "a send after the fault: exit $rc, $(cat "$T/r2" "$T/r2.err")"
[[ -s $T/d/unconfirmed ]] || fail "no record of the last confirmed log position"
kill -9 "$bpid"
wait "$bpid" 2>/dev/null || true
start_broker b2 --data "$T/d" --queues 1
grep -q "an fdatasync failed before the stop" "$T/b2.log" || fail "the restart did not say what it cut: $(tail -n 3 "$T/b2.log")"
timeout 20 mq-consume -b "$B2" -t f --from earliest -e >"$T/read" || fail "read after the restart: exit $?"
[[ $(count_lines "$T/read") -eq 100 && $(grep -c '^ok-' "$T/read") -eq 100 ]] ||
  fail "after the restart: $(count_lines "$T/read") messages, $(grep -c '^bad-' "$T/read") of them never confirmed"
[[ ! -e $T/d/unconfirmed ]] || fail "the record of the cut was not removed"
timeout 20 mq-send -b "$B2" -t f --mode sync new || fail "a send after the restart: exit $?"
stop_broker b2 -TERM
echo "$TEST_NAME: ok"
