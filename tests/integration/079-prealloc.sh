#!/usr/bin/env bash
# Preallocation (mq-data(5)): while the broker runs, the newest segment ends in zeros past its
# records; kill -9 leaves them there and the restart ends the log where they begin without
# reporting a cut; sends continue at the next offsets; a clean stop truncates the segment to its
# last record.
. "$(dirname "$0")/lib.sh"

seg() { echo "${DATA[p]}/commitlog/00000000000000000000"; }

start_broker p --flush sync
seq 3000 | timeout 30 mq-send -b "$P" -t z || fail "send"
wait_until 10 bash -c "[[ \$(stat -c %s '$(seg)') -gt $((4 << 20)) ]]" || fail "no zeros past the log end: $(segment_records "$(seg)")"
read -r end size zeros < <(segment_records "$(seg)")
[[ $zeros -eq 1 && $size -gt $end ]] || fail "running: records end at $end of $size bytes, zeros after: $zeros"
stop_broker p -9

restart_broker p
grep -q "recovered: scanned 3000 records, cut 0 bytes" "$T/p.log" || fail "restart after kill -9: $(grep recovered "$T/p.log" | tail -n 1)"
timeout 20 mq-consume -b "$P" -t z --from earliest -e | sort -n | diff -q - <(seq 3000) >/dev/null || fail "data after kill -9"
seq 3001 3100 | timeout 20 mq-send -b "$P" -t z --mode sync || fail "send after restart"
timeout 20 mq-consume -b "$P" -t z --from earliest -e | sort -n | diff -q - <(seq 3100) >/dev/null || fail "data after more sends"

stop_broker p -TERM
read -r end size zeros < <(segment_records "$(seg)")
[[ $end -eq $size && $end -gt 0 ]] || fail "clean stop: records end at $end of $size bytes"
restart_broker p
grep -q "clean" <(grep "listening" "$T/p.log" | tail -n 1) || fail "no clean start after SIGTERM: $(grep listening "$T/p.log" | tail -n 1)"
timeout 20 mq-consume -b "$P" -t z --from earliest -e | wc -l | grep -qx 3100 || fail "data after clean restart"
echo "$TEST_NAME: ok (zeros past $end bytes of log while running)"
