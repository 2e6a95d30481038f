#!/usr/bin/env bash
# Seeded tail damage after kill -9: truncate or corrupt the last segment at random positions.
# The broker starts, keeps every record before the damage, cuts at the first bad record, says so,
# and new sends reuse the cut offsets exactly once. Damage inside an older segment: a group waits
# at it (warned once), a tail -e prints every other queue and exits 1.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush sync --segment-size 64KiB --queues 1
seq 3000 | timeout 30 mq-send -b "$B1" -t c || fail "send"
stop_broker b1 -9
cp -a "${DATA[b1]}" "$T/pristine"
RANDOM=42
for trial in $(seq 1 12); do
  rm -rf "${DATA[b1]}"
  cp -a "$T/pristine" "${DATA[b1]}"
  seg=$(ls "${DATA[b1]}/commitlog" | sort | tail -n 1)
  mode=$((trial % 3))
  # python: damage the segment, print how many records of this segment end before the damage
  kept_in_seg=$(python3 - "${DATA[b1]}/commitlog/$seg" "$mode" "$RANDOM" <<'PY'
import sys, struct, random
path, mode, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(seed)
data = bytearray(open(path, "rb").read())
ends, pos = [], 0
while pos + 4 <= len(data):
    size = struct.unpack_from("<I", data, pos)[0]
    if size < 72 or pos + size > len(data): break
    pos += size; ends.append(pos)
assert len(ends) > 2
p = random.randrange(1, len(data))
if mode == 0:      # truncate
    data = data[:p]
elif mode == 1:    # flip one bit
    data[p] ^= 1 << random.randrange(8)
else:              # zero a block
    for i in range(p, min(len(data), p + 37)): data[i] = 0
open(path, "wb").write(data)
print(sum(1 for e in ends if e <= p))
PY
)
  before=$(( $(ls "$T/pristine/commitlog" | wc -l) ))
  restart_broker b1
  total=$(timeout 20 mq-consume -b "$B1" -t c --from earliest -e | wc -l)
  # records in earlier (undamaged) segments + intact records of the damaged one
  earlier=$(python3 - "$T/pristine/commitlog" "$seg" <<'PY'
import os, sys, struct
d, last = sys.argv[1], sys.argv[2]
n = 0
for f in sorted(os.listdir(d)):
    if f == last: continue
    data = open(os.path.join(d, f), "rb").read(); pos = 0
    while pos + 4 <= len(data):
        size = struct.unpack_from("<I", data, pos)[0]
        if size < 72 or pos + size > len(data): break
        pos += size; n += 1
print(n)
PY
)
  expect=$((earlier + kept_in_seg))
  [[ $total -eq $expect ]] || fail "trial $trial (mode $mode): $total records served, expected $expect"
  # new sends take the next offsets, no gaps, no duplicates
  seq 50 | timeout 10 mq-send -b "$B1" -t c --mode sync --receipts >"$T/r" || fail "send after recovery"
  first=$(head -n 1 "$T/r" | cut -f5)
  [[ $first -eq $expect ]] || fail "trial $trial: first new offset $first, expected $expect"
  timeout 20 mq-consume -b "$B1" -t c --from earliest -e --format '%o\n' >"$T/offs"
  seq 0 $((expect + 49)) | diff -q - "$T/offs" >/dev/null || fail "trial $trial: offsets not dense after recovery"
  stop_broker b1 -9
done
grep -qiE 'cut|truncat' "$T/b1.log" || fail "broker never said what it cut"

# damage inside an older segment after a clean stop (nothing scans it): the queue is stuck at
# that record (nothing may be skipped), but neither side is silent about it
rm -rf "${DATA[b1]}"
cp -a "$T/pristine" "${DATA[b1]}"
restart_broker b1
stop_broker b1 -TERM
seg=$(ls "${DATA[b1]}/commitlog" | sort | head -n 1)
printf '\xff' | dd of="${DATA[b1]}/commitlog/$seg" bs=1 seek=20000 conv=notrunc status=none
restart_broker b1
rc=0; timeout 6 mq-consume -b "$B1" -t c -g stuck --from earliest -e >/dev/null 2>"$T/stuck.err" || rc=$?
[[ $rc -eq 124 ]] || fail "a group at a damaged record: exit $rc (expected to keep retrying)"
[[ $(grep -c "(retrying)" "$T/stuck.err") -eq 1 ]] || fail "the member did not warn once: $(cat "$T/stuck.err")"
[[ $(grep -c "read failed: .*offset" "$T/b1.log") -eq 1 ]] || fail "the broker did not log the failed read once"

# a tail (-e) meeting such a record prints every other queue to its end, then exits 1 naming
# the queue it could not read past
start_broker b2 --flush sync --segment-size 64KiB --queues 4
seq 8000 | timeout 30 mq-send -b "$B2" -t d || fail "send d"
stop_broker b2 -TERM
seg=$(ls "${DATA[b2]}/commitlog" | sort | head -n 1)
printf '\xff' | dd of="${DATA[b2]}/commitlog/$seg" bs=1 seek=20000 conv=notrunc status=none
restart_broker b2
rc=0; timeout 20 mq-consume -b "$B2" -t d --from earliest -e --format '%q %o\n' >"$T/d.out" 2>"$T/d.err" || rc=$?
[[ $rc -eq 1 ]] || fail "a tail at a damaged record: exit $rc, expected 1: $(cat "$T/d.err")"
bad=$(grep -oE 'queue [0-9]+' "$T/d.err" | head -n 1 | cut -d' ' -f2)
at=$(grep -oE 'offset [0-9]+' "$T/d.err" | head -n 1 | cut -d' ' -f2)
[[ -n $bad && -n $at ]] || fail "the tail did not name the damaged queue and offset: $(cat "$T/d.err")"
for q in 0 1 2 3; do
  n=$(awk -v q="$q" '$1 == q' "$T/d.out" | wc -l)
  if [[ $q -eq $bad ]]; then
    # every record before the damaged one (the broker serves them, then refuses it)
    [[ $n -eq $at ]] || fail "queue $q (damaged at offset $at) printed $n records"
    # what it printed is the start of the queue, dense
    awk -v q="$q" '$1 == q {print $2}' "$T/d.out" | diff -q - <(seq 0 $((n - 1))) >/dev/null || fail "queue $q: not dense before the damage"
  else
    [[ $n -eq 2000 ]] || fail "intact queue $q printed $n of 2000 (the damaged one is $bad)"
  fi
done
echo "$TEST_NAME: ok (12 trials)"
