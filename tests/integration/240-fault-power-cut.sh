#!/usr/bin/env bash
# Fault suite: simulated power cut (NOTES.md 3a). The broker runs on an ext4 loop image under load;
# at a random moment it is frozen (SIGSTOP, and every thread seen stopped: freeze in fault.sh), the
# backing image is copied (the copy holds what the kernel had written back: the disk after a power
# cut, without the dirty page cache), the broker is killed, the copy is mounted (ext4 replays its
# journal) and a broker started on it.
# --flush sync: every message acked SEND_OK is there (lost 0) and no corrupt body is served; these
# trials use 4 MiB segments, so the cut disk holds preallocated zeros past the log (checked).
# --flush async --flush-interval 200ms: loss is reported; allowed at most the flush window.
# --replication sync: the master on an ordinary temp dir, its slave's data directory on the image;
# the slave loses power, a broker started as master on the copy (the slave promoted after its power
# cut) holds every message the master acked SEND_OK: a slave acknowledges only what it fdatasync'd.
# 3 sync trials + 1 async + 2 replication (TORTURE=1: 12 + 4 + 8). Loop mounts are undone at exit.
. "$(dirname "$0")/lib.sh"
. "$MQ_SRC/tests/tools/fault.sh"

[[ $(id -u) -eq 0 ]] || fail "needs root for loop mounts (CI runs as root)"
command -v mkfs.ext4 >/dev/null || fail "mkfs.ext4 missing"
sync_trials=$(scale 3 12)
async_trials=$(scale 1 4)
repl_trials=$(scale 2 8)
mkdir -p "$T/live" "$T/after"
truncate -s 96M "$T/disk.img"
mkfs.ext4 -q -F "$T/disk.img" || fail "mkfs.ext4"
mount -o loop "$T/disk.img" "$T/live" || fail "cannot loop-mount an ext4 image"
AT_EXIT+=("umount '$T/after' 2>/dev/null; umount '$T/live' 2>/dev/null")

# producers BROKER ASYNC SYNC: an async and a sync producer (line prefixes ASYNC and SYNC, receipts
# in $T/ASYNC.rcpt and $T/SYNC.rcpt) in the background until $GEN_STOP exists; sets PA and PS
producers() {
  ( gen_lines "$2" 800 10 | mq-send -b "$1" -t pc --window 64 --retries 0 --timeout 5s \
      --receipts >"$T/$2.rcpt" 2>"$T/$2.log" ) &
  PA=$!; EXTRA_PIDS+=("$PA")
  ( gen_lines "$3" 200 10 | mq-send -b "$1" -t pc --mode sync --retries 0 --timeout 5s \
      --receipts >"$T/$3.rcpt" 2>"$T/$3.log" ) &
  PS=$!; EXTRA_PIDS+=("$PS")
}

# zero_tail SEGMENT: 1 when at least 4 KiB of zeros follow the segment's last record (the
# preallocated space of mq-data(5)), else 0
zero_tail() {
  local end size zeros
  read -r end size zeros < <(segment_records "$1")
  echo $(( zeros == 1 && size - end >= 4096 ? 1 : 0 ))
}

# trial N FLUSH_ARGS...: one power cut; leaves the figures in $FIG and in $ZT whether the cut
# disk's newest segment ended in preallocated zeros
trial() {
  local n=$1; shift
  local b="pc$n"
  start_broker "$b" --data "$T/live/d$n" --queues 4 --segment-size "${SEG:-1MiB}" "$@"
  local up=${b^^}
  export GEN_STOP="$T/gen.stop.$n"
  producers "${!up}" "a$n" "s$n"
  local pa=$PA ps=$PS
  wait_until 20 grep -q "created topic pc" "$T/$b.log" || fail "trial $n: producers did not start"
  rand_sleep 800 2500
  local bpid=${PIDS[$b]}
  freeze "$bpid"
  cp --sparse=always "$T/disk.img" "$T/snap.img"   # the disk as a power cut leaves it
  stop_broker "$b" -9
  touch "$GEN_STOP"
  wait "$pa" 2>/dev/null || true
  wait "$ps" 2>/dev/null || true
  mount -o loop "$T/snap.img" "$T/after" || fail "trial $n: cannot mount the snapshot"
  local segs="$T/after/d$n/commitlog"
  ZT=$(zero_tail "$segs/$(ls "$segs" | sort | tail -n 1)")
  start_broker "r$n" --data "$T/after/d$n" --queues 4 --segment-size 1MiB
  local rup="R$n"
  timeout 30 mq-consume -b "${!rup}" -t pc --from earliest -e --format json >"$T/r$n.json" \
    || fail "trial $n: reading after the power cut exited $?"
  stop_broker "r$n" -TERM
  CUT=$(grep -ciE 'cut|truncat|torn' "$T/r$n.log" || true)
  umount "$T/after"
  rm -f "$T/snap.img"
}

total_acked=0
zero_tails=0
for n in $(seq 1 "$sync_trials"); do
  # 4 MiB segments: large enough for preallocated zeros past the end (mq-data(5)), which the
  # power cut must not turn into lost or corrupt records either
  SEG=4MiB trial "$n" --flush sync
  figures "power-cut sync #$n" -r "$T/a$n.rcpt=a$n" -R "$T/s$n.rcpt=s$n" -c "$T/r$n.json"
  total_acked=$((total_acked + $(fig_get acked)))
  zero_tails=$((zero_tails + ZT))
  [[ $(fig_get corrupt) -eq 0 ]] || fail "corrupt records served"
done
[[ $total_acked -gt 100 ]] || fail "only $total_acked messages acked over all trials: nothing exercised"
[[ $zero_tails -gt 0 ]] || fail "no sync power cut left preallocated zeros past the log: not exercised"
note "$zero_tails of $sync_trials sync power cuts left preallocated zeros past the log end"

for k in $(seq 1 "$async_trials"); do
  n=$((sync_trials + k))
  trial "$n" --flush async --flush-interval 200ms
  # the window: what both producers acked in ~0.5 s (200 ms interval + the fdatasync + slack)
  acked=$(cat "$T/a$n.rcpt" "$T/s$n.rcpt" | grep -c 'SEND_OK$' || true)
  allow=$(( acked > 0 ? (1000 * 5 / 10) : 0 ))
  figures "power-cut async #$n" -r "$T/a$n.rcpt=a$n" -R "$T/s$n.rcpt=s$n" -c "$T/r$n.json" --allow-loss "$allow"
  note "async #$n: lost $(fig_get lost) of $(fig_get acked) acked (allowed $allow: 0.5 s at 1000 msg/s)"
done
# rtrial N: master rmN (temp dir, --replication sync) and its slave rsN (data on the image); the
# slave's power cut; a broker rpN promoted on the snapshot of the slave's disk
rtrial() {
  local n=$1
  start_broker "rm$n" --flush async --replication sync --replication-timeout 1s --queues 4 \
    --segment-size 1MiB
  local mup="RM$n"
  start_broker "rs$n" --role slave --master "${!mup}" --data "$T/live/rs$n" --segment-size 1MiB
  wait_until 20 grep -q "slave .* connected" "$T/rm$n.log" || fail "repl trial $n: slave did not connect"
  export GEN_STOP="$T/gen.stop.r$n"
  producers "${!mup}" "ra$n" "rq$n"
  local pa=$PA ps=$PS
  wait_until 20 grep -q "created topic pc" "$T/rm$n.log" || fail "repl trial $n: producers did not start"
  rand_sleep 800 2500
  freeze "${PIDS[rs$n]}"
  cp --sparse=always "$T/disk.img" "$T/snap.img"   # the slave's disk as a power cut leaves it
  stop_broker "rs$n" -9
  touch "$GEN_STOP"   # acks from here on are FLUSH_SLAVE_TIMEOUT / SLAVE_NOT_AVAILABLE, never SEND_OK
  wait "$pa" 2>/dev/null || true
  wait "$ps" 2>/dev/null || true
  stop_broker "rm$n" -9
  mount -o loop "$T/snap.img" "$T/after" || fail "repl trial $n: cannot mount the snapshot"
  start_broker "rp$n" --data "$T/after/rs$n" --role master --queues 4 --segment-size 1MiB
  local pup="RP$n"
  timeout 30 mq-consume -b "${!pup}" -t pc --from earliest -e --format json >"$T/rp$n.json" \
    || fail "repl trial $n: reading the promoted slave exited $?"
  stop_broker "rp$n" -TERM
  umount "$T/after"
  rm -f "$T/snap.img"
}

repl_acked=0
for n in $(seq 1 "$repl_trials"); do
  rtrial "$n"
  figures "power-cut sync-replication slave #$n" -r "$T/ra$n.rcpt=ra$n" -R "$T/rq$n.rcpt=rq$n" \
    -c "$T/rp$n.json"
  repl_acked=$((repl_acked + $(fig_get acked)))
  [[ $(fig_get corrupt) -eq 0 ]] || fail "corrupt records served by the promoted slave"
  not_ok=$(cat "$T/ra$n.rcpt" "$T/rq$n.rcpt" | grep -cE 'FLUSH_SLAVE_TIMEOUT$|SLAVE_NOT_AVAILABLE$' || true)
  note "repl #$n: $not_ok messages acked FLUSH_SLAVE_TIMEOUT/SLAVE_NOT_AVAILABLE (not promised)"
done
[[ $repl_acked -gt 100 ]] || fail "only $repl_acked messages acked SEND_OK over the replication trials"
echo "$TEST_NAME: ok ($sync_trials sync power cuts, $total_acked acked, lost 0; $repl_trials slave power cuts with sync replication, $repl_acked acked, lost 0)"
