#!/usr/bin/env bash
# A full disk (a small tmpfs): sends fail with a clear status, nothing stored is harmed, the broker
# keeps serving, and sends succeed again once space returns — without a restart.
. "$(dirname "$0")/lib.sh"

[[ $(id -u) -eq 0 ]] || fail "needs root to mount a tmpfs (CI runs as root)"
mkdir -p "$T/mnt"
mount -t tmpfs -o size=6m tmpfs "$T/mnt" || fail "cannot mount a tmpfs"
AT_EXIT+=("umount '$T/mnt' 2>/dev/null")
start_broker full --data "$T/mnt/data" --flush sync --segment-size 1MiB --max-message-size 64KiB
seq 1000 | timeout 20 mq-send -b "$FULL" -t d --receipts >"$T/r0" || fail "first sends"
timeout 20 mq-consume -b "$FULL" -t d -g gkeep --from earliest -n 10 >/dev/null || fail "gkeep's first 10"
# leave ~1 MiB free, then push 3 MiB
used=$(df --output=avail -B1 "$T/mnt" | tail -n 1)
fallocate -l $((used - 1024 * 1024)) "$T/mnt/filler" 2>/dev/null || head -c $((used - 1024 * 1024)) /dev/zero >"$T/mnt/filler"
set +e
head -c 3000000 /dev/urandom | base64 -w 100 | timeout 60 mq-send -b "$FULL" -t d --receipts >"$T/r1" 2>"$T/full.err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "sending into a full disk exited $rc"
grep -qiE 'disk.?full|no space' "$T/full.err" || fail "no clear disk-full error: $(head -n 3 "$T/full.err")"
failed=$(grep -c 'FAILED$' "$T/r1" || true)
[[ $failed -gt 0 ]] || fail "no message failed although the disk is full"
kill -0 "${PIDS[full]}" || fail "broker died on a full disk"
# everything acked is still readable and intact
cat "$T/r0" "$T/r1" | grep -P '\tSEND_OK$' | awk -F'\t' '{ print $4 "\t" $5 "\t" $2 }' | sort >"$T/acked"
timeout 30 mq-consume -b "$FULL" -t d --from earliest -e --format '%q\t%o\t%i\n' | sort >"$T/stored"
[[ $(comm -23 "$T/acked" "$T/stored" | wc -l) -eq 0 ]] || fail "acked messages lost on a full disk"
# the operator hears of it: one line, not one per refused send
grep -q "sends refused: .*(1 so far)" "$T/full.log" || fail "the broker did not log the refused sends"
[[ $(grep -c "sends refused" "$T/full.log") -le 2 ]] || fail "refused sends logged $(grep -c "sends refused" "$T/full.log") times"
# not a byte left: offsets cannot be saved either: commits are refused, and a consumer that
# stops says so (exit 1)
# instead of exiting 0 with progress that a restart would forget
cat /dev/zero >"$T/mnt/filler2" 2>/dev/null || true
# sync sends into the full disk fail fast: once one message used its retries, the next ones get one
# attempt each (each took three, with pauses: a third of a second per message). 30 x 60 KiB: more
# than the zeros preallocated in the active segment can take.
set +e
for i in $(seq 30); do head -c 45000 /dev/urandom | base64 -w 0; echo; done |
  timeout 60 mq-send -b "$FULL" -t d --mode sync --receipts -v >"$T/r2" 2>"$T/sync-full.err"; rc=$?
set -e
failed=$(grep -c 'FAILED$' "$T/r2" || true)
[[ $rc -eq 1 && $failed -ge 10 ]] || fail "sync sends into a full disk: exit $rc, $failed of 30 failed"
retried=$(grep -c 'retrying' "$T/sync-full.err" || true)
[[ $retried -le 3 ]] || fail "sync sends into a full disk retried $retried times (the first failed message's 3 at most)"
rc=0; timeout 30 mq-consume -b "$FULL" -t d -g gfull --from earliest -n 100 --commit-interval 200ms >/dev/null \
  2>"$T/gfull.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "offsets are not being saved" "$T/gfull.err" ||
  fail "a group on a full disk: exit $rc, $(cat "$T/gfull.err")"
wait_until 10 grep -q "offset commits are refused until it works" "$T/full.log" || fail "refused commits not logged"
# a new group cannot save where it starts: it waits, and says why (it was silent)
timeout 5 mq-consume -b "$FULL" -t d -g gnew --from earliest -n 1 >/dev/null 2>"$T/gnew.err" || true
grep -q "refused the group's start offset: offsets are not being saved" "$T/gnew.err" ||
  fail "a new group on a full disk did not say why it waits: $(cat "$T/gnew.err")"
# ... and with -e (read what is there, then end) it does not wait: exit 1, saying why (it waited
# for ever)
rc=0; timeout 20 mq-consume -b "$FULL" -t d -g gnew-e --from earliest -e >/dev/null 2>"$T/gnew-e.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "refused the group's start offset: offsets are not being saved" "$T/gnew-e.err" ||
  fail "a new group with -e on a full disk: exit $rc, $(cat "$T/gnew-e.err")"
# a reset cannot be saved either: refused (exit 1), not applied in memory, answered as done and
# lost at the next kill -9
rc=0; timeout 20 mq-offset -b "$FULL" reset -g gkeep -t d --to latest --undo-dir "$T/undo" >/dev/null 2>"$T/reset.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "offsets are not being saved" "$T/reset.err" ||
  fail "a reset on a full disk: exit $rc, $(cat "$T/reset.err")"
[[ $(timeout 10 mq-offset -b "$FULL" export -g gkeep | awk '{ s += $5 } END { print s }') -eq 10 ]] ||
  fail "the refused reset moved gkeep: $(timeout 10 mq-offset -b "$FULL" export -g gkeep)"
# -e with a failing command whose messages cannot be sent back for their retry (the retry topic
# cannot be written): exit 1 saying so, after trying for 10 s (it waited for ever)
rc=0; timeout 60 mq-consume -b "$FULL" -t d -g gkeep -e --exec 'exit 1' 2>"$T/sendback.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "a failed message could not be sent back for its retry" "$T/sendback.err" ||
  fail "-e with send-backs refused: exit $rc, $(tail -n 3 "$T/sendback.err")"
# the failed saves leave no empty offsets.json.tmp behind (they did, rewritten every try)
[[ ! -e "$T/mnt/data/offsets.json.tmp" ]] || fail "a failed offsets save left offsets.json.tmp"
# space returns: sends work again without a restart
rm -f "$T/mnt/filler" "$T/mnt/filler2"
wait_until 10 grep -q "consumer offsets saved again" "$T/full.log" || fail "offsets not saved after space returned"
timeout 30 mq-consume -b "$FULL" -t d -g gfull2 --from earliest -n 100 >/dev/null || fail "a group after space returned: exit $?"
seq 500 | timeout 20 mq-send -b "$FULL" -t d2 || fail "sends did not resume after space returned"
timeout 20 mq-consume -b "$FULL" -t d2 --from earliest -e | sort -n | diff -q - <(seq 500) >/dev/null || fail "data after space returned"
# a stop that cannot save the offsets says so (exit 1), not "stopped cleanly"
cat /dev/zero >"$T/mnt/filler3" 2>/dev/null || true
timeout 30 mq-consume -b "$FULL" -t d2 -g gfull3 --from earliest -n 10 --commit-interval 200ms >/dev/null 2>&1 || true
stop_broker full -TERM
[[ $BROKER_EXIT -eq 1 ]] && grep -q "consumer offsets not saved" "$T/full.log" ||
  fail "a stop on a full disk: exit $BROKER_EXIT, $(tail -n 2 "$T/full.log")"
# ... and starting on it serves what is stored (it exited 1: "write checkpoint.tmp: No space
# left on device", so not even reads until space was freed by hand)
cat /dev/zero >"$T/mnt/filler4" 2>/dev/null || true
restart_broker full
grep -q "started on a full disk" "$T/full.log" || fail "a start on a full disk did not say so: $(tail -n 2 "$T/full.log")"
[[ ! -e "$T/mnt/data/checkpoint.tmp" ]] || fail "a failed checkpoint write left checkpoint.tmp"
timeout 20 mq-consume -b "$FULL" -t d2 --from earliest -e | sort -n | diff -q - <(seq 500) >/dev/null || fail "reads after a start on a full disk"
rm -f "$T/mnt/filler3" "$T/mnt/filler4"
seq 10 | timeout 20 mq-send -b "$FULL" -t d3 || fail "sends after a start on a full disk and space back"
stop_broker full -TERM
restart_broker full
[[ $(timeout 20 mq-consume -b "$FULL" -t d3 --from earliest -e | wc -l) -eq 10 ]] || fail "d3 after restart"
stop_broker full -TERM
umount "$T/mnt"
echo "$TEST_NAME: ok (failed while full: $failed)"
