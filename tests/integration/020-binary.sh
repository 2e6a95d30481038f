#!/usr/bin/env bash
# Binary bodies: -0, --raw and --json body_b64; consume --format json -> send --json round trip
# keeps body bytes, key, tag and properties.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async
python3 - "$T" <<'PY'
import os, sys, json, base64, random
t = sys.argv[1]
random.seed(7)
bodies = [bytes(random.randrange(256) for _ in range(random.randrange(0, 300))).replace(b"\0", b"\1") for _ in range(200)]
bodies.insert(100, b"")  # an empty body in the middle
with open(f"{t}/nul.in", "wb") as f:
    f.write(b"".join(b + b"\0" for b in bodies))  # NUL-terminated, like find -print0
with open(f"{t}/nul.expect", "wb") as f:
    f.write(b"".join(b + b"\0" for b in bodies))
full = [bytes(random.randrange(256) for _ in range(random.randrange(0, 400))) for _ in range(100)]
with open(f"{t}/b64.in", "w") as f:
    for i, b in enumerate(full):
        f.write(json.dumps({"body_b64": base64.b64encode(b).decode(), "key": f"k{i%7}", "tag": "bin",
                            "props": {"i": str(i), "uni": "é✓"}}) + "\n")
with open(f"{t}/raw.in", "wb") as f:
    f.write(bytes(range(256)) * 4 + b"\n\0tail")
PY
timeout 20 mq-send -b "$B1" -t nul --mode sync --queue 0 -0 <"$T/nul.in" || fail "send -0"
timeout 20 mq-consume -b "$B1" -t nul --from earliest -e -0 >"$T/nul.out" || fail "consume -0"
cmp "$T/nul.out" "$T/nul.expect" || fail "-0 round trip differs"

timeout 20 mq-send -b "$B1" -t raw --raw <"$T/raw.in" || fail "send --raw"
timeout 20 mq-consume -b "$B1" -t raw --from earliest -e --format '%s' >"$T/raw.out" || fail "consume raw"
cmp "$T/raw.out" "$T/raw.in" || fail "--raw round trip differs"

timeout 20 mq-send -b "$B1" -t b64 --json <"$T/b64.in" || fail "send --json"
timeout 20 mq-consume -b "$B1" -t b64 --from earliest -e --format json >"$T/b64.out" || fail "consume json"
# copy the topic through json and compare the copies
timeout 20 mq-send -b "$B1" -t b64copy --json <"$T/b64.out" || fail "send --json of consume output"
timeout 20 mq-consume -b "$B1" -t b64copy --from earliest -e --format json >"$T/copy.out" || fail "consume copy"
python3 - "$T" <<'PY' || fail "json round trip lost bytes, keys, tags or properties"
import json, sys, base64
t = sys.argv[1]
def load(p):
    out = []
    for l in open(p):
        r = json.loads(l)
        body = base64.b64decode(r["body_b64"]) if "body_b64" in r else r["body"].encode()
        out.append((body, r["key"], r["tag"], tuple(sorted(r["props"].items()))))
    return sorted(out)
src = []
for l in open(f"{t}/b64.in"):
    r = json.loads(l)
    src.append((base64.b64decode(r["body_b64"]), r["key"], r["tag"], tuple(sorted(r["props"].items()))))
a, b = load(f"{t}/b64.out"), load(f"{t}/copy.out")
assert a == sorted(src), "consume output differs from input"
assert b == a, "copy differs"
PY

# a binary key, tag and property survive consume --format json -> send --json (key_b64 ...),
# and the copy lands in the same queue (the key picks it)
timeout 10 mq-send -b "$B1" -t binkey -k $'k\xff' --tag $'t\xfe' -p $'p=\xc3' -p n=v body || fail "send binary key"
timeout 20 mq-consume -b "$B1" -t binkey --from earliest -e --format json >"$T/binkey.json" || fail "consume binkey"
timeout 20 mq-send -b "$B1" -t binkey --json <"$T/binkey.json" || fail "send --json of binkey"
timeout 20 mq-consume -b "$B1" -t binkey --from earliest -e --format '%q %k %T %p{p} %p{n}\n' >"$T/binkey.out" ||
  fail "consume binkey copies"
[[ $(sort -u "$T/binkey.out" | wc -l) -eq 1 && $(wc -l <"$T/binkey.out") -eq 2 ]] ||
  fail "binary key/tag/property changed in the json round trip: $(od -c "$T/binkey.out" | head -n 4)"
grep -q $'k\xff t\xfe \xc3 v' "$T/binkey.out" || fail "binary fields: $(od -c "$T/binkey.out" | head -n 4)"

# malformed json lines are reported with their line numbers, the rest is sent, exit 1
printf '%s\n' '{"body":"ok1"}' '{"body": broken' '{"body_b64":"***"}' '{"body":"ok2"}' >"$T/bad.in"
set +e
timeout 20 mq-send -b "$B1" -t badjson --json <"$T/bad.in" 2>"$T/bad.err"
rc=$?
set -e
[[ $rc -eq 1 ]] || fail "malformed lines: expected exit 1, got $rc"
grep -q 'line 2' "$T/bad.err" || fail "no error naming line 2: $(cat "$T/bad.err")"
grep -q 'line 3' "$T/bad.err" || fail "no error naming line 3: $(cat "$T/bad.err")"
timeout 20 mq-consume -b "$B1" -t badjson --from earliest -e | sort >"$T/bad.out"
printf 'ok1\nok2\n' | diff - "$T/bad.out" || fail "good lines around malformed ones were not sent"

# every limit at once: --max-frame at its minimum (--max-message-size + 256KiB) takes a body at
# --max-message-size with a key and a tag near 64 KiB and 60 KiB of properties (at the old
# 64 KiB margin it did not); and a batch of small messages is sent before it outgrows a frame
# (a 900 KB batch plus a 1 MiB message made one 1.9 MiB frame: the connection was closed)
rc=0
timeout 10 mq-broker --data "$T/lim0" --listen 127.0.0.1:0 --max-message-size 1MiB --max-frame 1088KiB 2>"$T/lim0.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "must exceed --max-message-size (1MiB) by at least 256KiB" "$T/lim0.err" ||
  fail "--max-frame below the margin: exit $rc, $(cat "$T/lim0.err")"
start_broker lim --max-message-size 1MiB --max-frame 1280KiB
python3 -c '
import json
print(json.dumps({"body": "b" * 1048576, "key": "k" * 65000, "tag": "t" * 60000,
                  "props": {"p%d" % i: "v" * 6000 for i in range(10)}}))' >"$T/lim.json"
timeout 30 mq-send -b "$LIM" -t lim --json --receipts <"$T/lim.json" >"$T/lim.rcpt" 2>"$T/lim.err" ||
  fail "a message at every limit: $(cat "$T/lim.err")"
timeout 20 mq-consume -b "$LIM" -t lim --from earliest -e --format json |
  python3 -c '
import json, sys
m = json.loads(sys.stdin.readline())
sys.exit(0 if (len(m["body"]), len(m["key"]), len(m["tag"]), len(m["props"])) == (1048576, 65000, 60000, 10) else 1)' ||
  fail "the message at every limit did not come back whole"
python3 -c 'import json; print(json.dumps({"body": "x", "props": {"p%d" % i: "v" * 7000 for i in range(10)}}))' |
  { timeout 10 mq-send -b "$LIM" -t lim --json 2>"$T/props.err" && fail "70 KB of properties were sent"; true; }
grep -q "line 1: properties of 70080 bytes (encoded) are more than 65536 bytes together" "$T/props.err" ||
  fail "too many properties: $(cat "$T/props.err")"
# (from a file: a pipe that pauses between them would have the batch sent before the big one)
python3 -c 'import sys; [sys.stdout.write("%029999d\n" % i) for i in range(30)]; sys.stdout.write("y" * 1048576 + "\n")' >"$T/limbatch.in"
timeout 30 mq-send -b "$LIM" -t limbatch --receipts <"$T/limbatch.in" >"$T/limbatch.rcpt" 2>"$T/limbatch.err" ||
  fail "small messages then one at the limit: $(tail -n 2 "$T/limbatch.err")"
[[ $(grep -c $'\tSEND_OK$' "$T/limbatch.rcpt") -eq 31 ]] || fail "batch before a large message: $(grep -vc SEND_OK "$T/limbatch.rcpt") not SEND_OK"
echo "$TEST_NAME: ok"
