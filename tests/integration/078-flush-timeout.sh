#!/usr/bin/env bash
# --flush-timeout (RocketMQ's syncFlushTimeout): with --flush sync, a send whose fdatasync does not
# complete in time is answered FLUSH_DISK_TIMEOUT. The message is stored (page cache) but shown
# to consumers only once the disk catches up; mq-send reports it in its receipts, exits 1 and does
# not send it again. The slow disk is a test-only LD_PRELOAD library that delays every fdatasync
# while a file exists (tests/integration/slow_fdatasync.cc).
. "$(dirname "$0")/lib.sh"

SHIM=${MQ_BUILD:-$(dirname "$MQ_BIN")}/lib/libmq-slow-fdatasync.so
[[ -f $SHIM ]] || fail "$SHIM missing: build it first (make)"
export MQ_SLOW_SYNC_FILE=$T/slow
slow_ms=$((3000 * MQ_SLOW))

# Usage errors first.
set +e
mq-broker --data "$T/x" --flush-timeout 0 2>"$T/err0"; rc0=$?
mq-broker --data "$T/x" --flush-timeout soon 2>"$T/err1"; rc1=$?
set -e
[[ $rc0 -eq 2 ]] || fail "--flush-timeout 0 exited $rc0"
grep -q -- '--flush-timeout' "$T/err0" || fail "no clear error for --flush-timeout 0: $(cat "$T/err0")"
[[ $rc1 -eq 2 ]] || fail "--flush-timeout soon exited $rc1"

# The timeout comes from --config (same name as the flag); only the broker gets the slow disk.
printf 'flush = "sync"\nflush-timeout = "300ms"\nqueues = 1\n' >"$T/b.toml"
LD_PRELOAD=$SHIM ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
  start_broker b --config "$T/b.toml"
grep -q 'flush sync (timeout 300ms)' "$T/b.log" || fail "broker did not take flush-timeout from --config"

echo one | timeout 10 mq-send -b "$B" -t t --mode sync --receipts >"$T/r1" || fail "send on a fast disk"
grep -qP '\t0\t0\tSEND_OK$' "$T/r1" || fail "first receipt: $(cat "$T/r1")"

# The disk turns slow: each fdatasync takes 3 s, ten times the flush timeout.
echo "$slow_ms" >"$MQ_SLOW_SYNC_FILE"
t0=$(date +%s%N)
set +e
echo two | timeout 20 mq-send -b "$B" -t t --mode sync --timeout 10s --receipts >"$T/r2" 2>"$T/e2"; rc=$?
set -e
took_ms=$((($(date +%s%N) - t0) / 1000000))
[[ $rc -eq 1 ]] || fail "a FLUSH_DISK_TIMEOUT send exited $rc ($(cat "$T/e2"))"
grep -qP '^1\t[0-9a-f]{32}\t[^\t]+\t0\t1\tFLUSH_DISK_TIMEOUT$' "$T/r2" || fail "receipt: $(cat "$T/r2")"
[[ $took_ms -lt $((slow_ms - 500)) ]] || fail "answered after ${took_ms} ms: it waited for the disk"
# Not durable yet, so not visible: a reader sees only the first message.
timeout 10 mq-consume -b "$B" -t t --from earliest -e >"$T/seen"
[[ $(cat "$T/seen") == one ]] || fail "an unflushed message was visible: $(tr '\n' ' ' <"$T/seen")"

# Async mode: a batch behind the slow fdatasync, every message reported, none resent.
set +e
seq 3 | timeout 20 mq-send -b "$B" -t t --timeout 10s --receipts >"$T/r3" 2>"$T/e3"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "async FLUSH_DISK_TIMEOUT sends exited $rc ($(cat "$T/e3"))"
[[ $(grep -cP '\tFLUSH_DISK_TIMEOUT$' "$T/r3") -eq 3 ]] || fail "async receipts: $(cat "$T/r3")"
cut -f 5 "$T/r3" | sort -n | tr '\n' ' ' | grep -qx '2 3 4 ' || fail "async offsets: $(cat "$T/r3")"

# The disk recovers: everything becomes visible, each message exactly once.
rm -f "$MQ_SLOW_SYNC_FILE"
want=$(printf '%s\n' 1 2 3 one two)
all() { timeout 10 mq-consume -b "$B" -t t --from earliest -e | sort; }
wait_until 20 bash -c "[[ \$(timeout 10 mq-consume -b '$B' -t t --from earliest -e | wc -l) -ge 5 ]]" ||
  fail "messages answered FLUSH_DISK_TIMEOUT never became visible"
[[ $(all) == "$want" ]] || fail "after the disk recovered: $(all | tr '\n' ' ')"
grep -q 'FLUSH_DISK_TIMEOUT' "$T/b.log" || fail "the broker logged no warning about the slow disk"
echo fine | timeout 10 mq-send -b "$B" -t t --mode sync >/dev/null || fail "send after the disk recovered"

stop_broker b -TERM
grep -qE '[0-9]+ appends answered FLUSH_DISK_TIMEOUT' "$T/b.log" || fail "exit line: $(tail -n 3 "$T/b.log")"
# They were flushed: a restart has them, once each.
restart_broker b
[[ $(all) == "$(printf '%s\n' 1 2 3 fine one two)" ]] || fail "after a restart: $(all | tr '\n' ' ')"
stop_broker b -TERM
echo "$TEST_NAME: ok (answered in ${took_ms} ms while fdatasync took ${slow_ms} ms)"
