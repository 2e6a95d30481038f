#!/usr/bin/env bash
# Broker lifecycle: ready file, data-dir lock, SIGTERM = clean exit 0 with acked data kept and a
# fast clean restart, --no-auto-create, --config, --max-message-size, reserved topic names,
# --io-threads.
. "$(dirname "$0")/lib.sh"

# thread_names NAME: "comm=count ..." of the broker NAME's threads
thread_names() { cat /proc/"${PIDS[$1]}"/task/*/comm | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' '; }

start_broker b1 --flush sync
[[ $B1 =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "ready file holds '$B1'"
[[ $(wc -l <"$T/b1.ready") -eq 1 ]] || fail "ready file is not one line"

# a second broker on the same data directory exits 1 naming the directory
set +e
timeout 10 mq-broker --data "${DATA[b1]}" --listen 127.0.0.1:0 2>"$T/second.err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "second broker on the same dir exited $rc"
grep -qF "${DATA[b1]}" "$T/second.err" || fail "lock error does not name the directory: $(cat "$T/second.err")"

seq 20000 | timeout 30 mq-send -b "$B1" -t life || fail "send"
stop_broker b1 -TERM
[[ $BROKER_EXIT -eq 0 ]] || fail "SIGTERM exit status $BROKER_EXIT"
restart_broker b1
timeout 20 mq-consume -b "$B1" -t life --from earliest -e | sort -n | diff -q - <(seq 20000) >/dev/null || fail "data after clean restart"
# SIGHUP (its terminal closed) is a clean stop too (it was death: status 129, no checkpoint)
stop_broker b1 -HUP
[[ $BROKER_EXIT -eq 0 ]] && grep -q "SIGHUP received: stopping" "$T/b1.log" || fail "SIGHUP: exit status $BROKER_EXIT"
grep -q "^mq-checkpoint [0-9]* [0-9]* 1 " "${DATA[b1]}/checkpoint" || fail "SIGHUP left no clean checkpoint: $(cat "${DATA[b1]}/checkpoint")"
restart_broker b1
# --flush sync: the zeroer keeps synced zeros ahead, the watchdog times out stuck syncs
names=$(thread_names b1)
for want in mq-io=1 mq-flusher=1 mq-zeroer=1 mq-flush-watch=1 mq-maint=1; do
  [[ " $names" == *" $want "* ]] || fail "broker threads with --flush sync: want $want, have: $names"
done

# reserved and invalid names
set +e
timeout 10 mq-send -b "$B1" -t '%DLQ%x' m 2>/dev/null; rc1=$?
timeout 10 mq-send -b "$B1" -t "$(printf 'a%.0s' $(seq 1 128))" m 2>/dev/null; rc2=$?
set -e
[[ $rc1 -eq 2 && $rc2 -eq 2 ]] || fail "reserved/long topic names accepted ($rc1 $rc2)"

# oversized message: clear failure, exit 1, others keep working
start_broker small --max-message-size 1KiB --flush async
set +e
head -c 5000 /dev/zero | tr '\0' 'x' | timeout 10 mq-send -b "$SMALL" -t big --raw 2>"$T/big.err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "oversized message: exit $rc"
grep -qi 'large\|size' "$T/big.err" || fail "oversized error unclear: $(cat "$T/big.err")"
timeout 10 mq-send -b "$SMALL" -t big small-one || fail "small message after a rejected big one"

# --no-auto-create and --config
cat >"$T/broker.conf" <<CONF
flush = "async"
queues = 2
no-auto-create = true
CONF
start_broker strict --config "$T/broker.conf"
set +e
timeout 10 mq-send -b "$STRICT" -t unknown m 2>"$T/strict.err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "send to a missing topic with --no-auto-create: exit $rc"
grep -qi 'unknown\|not found\|exist' "$T/strict.err" || fail "no-auto-create error unclear: $(cat "$T/strict.err")"
# the command line wins over --config for the log level too: -v beats a file's log-level and
# quiet (it did not: nothing was logged), a --log-level on the command line beats both
printf 'log-level = "warn"\nquiet = true\n' >"$T/quiet.conf"
start_broker loud --config "$T/quiet.conf" -v
grep -q 'info mq-broker: listening on' "$T/loud.log" || fail "-v after a quiet --config: $(cat "$T/loud.log")"
stop_broker loud
: >"$T/loud.log"
start_broker loud --config "$T/quiet.conf" -v --log-level error
timeout 10 mq-send -b "$LOUD" -t loud m || fail "send to loud"
stop_broker loud
[[ ! -s $T/loud.log ]] || fail "--log-level error -v logged: $(cat "$T/loud.log")"
# sizes out of range are said as given (not in bytes); an unwritable --ready-file leaves no .tmp
rc=0; timeout 10 mq-broker --data "$T/big" --listen 127.0.0.1:0 --max-message-size 61MiB 2>"$T/big.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--max-message-size 61MiB: expected 1 byte to 60MiB" "$T/big.err" ||
  fail "--max-message-size 61MiB: exit $rc, $(cat "$T/big.err")"
mkdir "$T/rdir"
rc=0; timeout 10 mq-broker --data "$T/rd" --listen 127.0.0.1:0 --ready-file "$T/rdir" 2>"$T/rdir.err" || rc=$?
[[ $rc -eq 1 && ! -e $T/rdir.tmp ]] || fail "--ready-file naming a directory: exit $rc, $(ls "$T" | grep rdir | tr '\n' ' ')"
# --delay-levels as a TOML list in --config (it was 'given more than once')
printf 'delay-levels = ["1s", "zz"]\n' >"$T/dl.conf"
rc=0; timeout 10 mq-broker --data "$T/dl" --listen 127.0.0.1:0 --config "$T/dl.conf" 2>"$T/dl.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "invalid duration 'zz'" "$T/dl.err" || fail "a delay-levels list: exit $rc, $(cat "$T/dl.err")"
printf 'delay-levels = ["1s", "2s"]\n' >"$T/dl.conf"
start_broker listed --config "$T/dl.conf"
stop_broker listed
# a misspelt key in --config is a usage error naming it (not silently the default flush mode)
printf 'flsuh = "async"\n' >"$T/typo.conf"
rc=0; timeout 10 mq-broker --data "$T/typo" --listen 127.0.0.1:0 --config "$T/typo.conf" 2>"$T/typo.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "unknown option 'flsuh' (did you mean flush? see mq-broker --help)" "$T/typo.err" ||
  fail "--config with a typo: exit $rc, $(cat "$T/typo.err")"
# '.' and '..' are no topic names (they used to become topics no send could use)
rc=0; timeout 10 mq-send -b "$STRICT" -t .. m 2>"$T/dots.err" || rc=$?
[[ $rc -eq 2 ]] || fail "mq-send -t ..: exit $rc, $(cat "$T/dots.err")"

# --io-threads: 3 threads serve a round trip and show in the thread count and names; out of range is a usage error
start_broker threads --io-threads 3 --flush async
seq 2000 | timeout 20 mq-send -b "$THREADS" -t th || fail "send with --io-threads 3"
timeout 20 mq-consume -b "$THREADS" -t th --from earliest -e | sort -n | diff -q - <(seq 2000) >/dev/null \
  || fail "data with --io-threads 3"
n3=$(ls "/proc/${PIDS[threads]}/task" | wc -l)
# threads are named for top -H / ps -L: 3 io threads, the flusher, ... (this broker flushes
# async: no mq-flush-watch, the --flush-timeout watchdog, and no mq-zeroer, mq-data(5))
names=$(thread_names threads)
for want in mq-io=3 mq-io-standby=1 mq-flusher=1 mq-maint=1; do
  [[ " $names" == *" $want "* ]] || fail "broker threads with --io-threads 3: want $want, have: $names"
done
[[ " $names" != *" mq-zeroer="* && " $names" != *" mq-flush-watch="* ]] \
  || fail "a broker with --flush async runs a zeroer or a flush watch: $names"
stop_broker threads -TERM
start_broker one --io-threads 1 --flush async
n1=$(ls "/proc/${PIDS[one]}/task" | wc -l)
stop_broker one -TERM
[[ $((n3 - n1)) -eq 2 ]] || fail "--io-threads 3 runs $n3 threads, --io-threads 1 runs $n1"
rc=0
timeout 10 mq-broker --data "$T/x" --listen 127.0.0.1:0 --io-threads 65 2>"$T/io.err" || rc=$?
[[ $rc -eq 2 ]] || fail "--io-threads 65 exited $rc"
echo "$TEST_NAME: ok"
