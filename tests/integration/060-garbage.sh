#!/usr/bin/env bash
# Garbage, truncated, oversized, wrong-version frames and unknown request types from raw sockets
# while a normal client keeps working; the broker keeps serving and nothing stored is harmed.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async
seq 1000 | timeout 20 mq-send -b "$B1" -t g || fail "initial send"
( seq 1001 60000 | timeout 60 mq-send -b "$B1" -t g --mode sync >"$T/bg.out" 2>"$T/bg.err"; echo $? >"$T/bg.rc" ) &
bg=$!
EXTRA_PIDS+=("$bg")
python3 - "${B1%:*}" "${B1##*:}" <<'PY' || fail "raw socket attacks"
import socket, struct, sys, os, random, time
host, port = sys.argv[1], int(sys.argv[2])
def conn():
    s = socket.create_connection((host, port), timeout=5)
    return s
def expect_closed(s, what):
    s.settimeout(5)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return
    except ConnectionResetError:
        return
    except socket.timeout:
        raise SystemExit(f"broker kept the connection open after {what}")
random.seed(1)
# 1. pure garbage
s = conn(); s.sendall(os.urandom(4096)); expect_closed(s, "garbage")
# 2. oversized length
s = conn(); s.sendall(struct.pack("<I", 0x7fffffff) + b"\x01" * 60); expect_closed(s, "oversized frame")
# 3. wrong version
s = conn(); s.sendall(struct.pack("<IBBHIHH", 12, 99, 1, 0, 1, 0, 0)); expect_closed(s, "wrong version")
# 4. length below the header
s = conn(); s.sendall(struct.pack("<I", 3) + b"abc"); expect_closed(s, "short length")
# 5. truncated frame then hang up
s = conn(); s.sendall(struct.pack("<IBBHIHH", 1000, 1, 2, 0, 1, 0, 0) + b"x" * 10); s.close()
def read_to_close(s, d, what):  # d and what follows until the broker closes
    try:
        while True:
            c = s.recv(65536)
            if not c:
                return d
            d += c
    except ConnectionResetError:
        return d
    except socket.timeout:
        raise SystemExit(f"broker kept the connection open after {what}")
def answer_then_close(s, rid, want_status, what):
    # the error answer comes first, then the broker closes the connection
    s.settimeout(5)
    d = b""
    while len(d) < 16:
        c = s.recv(65536)
        if not c:
            raise SystemExit(f"{what}: closed without an answer")
        d += c
    ln, ver, typ, flags, r, status = struct.unpack("<IBBHIH", d[:14])
    assert r == rid and status == want_status and flags & 1, f"{what}: answer id {r} status {status}"
    d = read_to_close(s, d, what)  # then the close, and nothing more: requests behind it are not handled
    assert len(d) == 4 + ln, f"{what}: {len(d) - 4 - ln} bytes more after the answer"
# 6. valid header, send request with a garbage payload: BAD_REQUEST (20), then closed
s = conn(); payload = struct.pack("<I", 3) + os.urandom(50)
s.sendall(struct.pack("<IBBHIHH", 12 + len(payload), 1, 2, 0, 7, 0, 0) + payload)
answer_then_close(s, 7, 20, "garbage send payload")
# 6b. a pull request whose payload does not decode, with a good request behind it: closed
s = conn(); s.sendall(struct.pack("<IBBHIHH", 13, 1, 3, 0, 8, 0, 0) + b"\x01" + struct.pack("<IBBHIHH", 12, 1, 4, 0, 10, 0, 0))
answer_then_close(s, 8, 20, "malformed pull")
# 7. unknown request type: UNKNOWN_TYPE (27), then closed; broker alive
s = conn(); s.sendall(struct.pack("<IBBHIHH", 12, 1, 200, 0, 9, 0, 0))
answer_then_close(s, 9, 27, "unknown request type")
# 7b. replication_status (18) takes no payload: one with trailing bytes is refused and closed
s = conn(); s.sendall(struct.pack("<IBBHIHH", 15, 1, 18, 0, 11, 0, 0) + b"xyz")
answer_then_close(s, 11, 20, "replication_status with a payload")
# 7c. requests before a bad frame still get their answers (a stored send answered, not left
# for the client to send again as a duplicate), then the connection closes
def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff
def send_frame(rid, body):
    topic = b"before-bad"
    rest = struct.pack("<BBHIQ16sqqIHHII", 0xA7, 0, len(topic), 0, 0, os.urandom(16), int(time.time() * 1000), 0, 0,
                       0, 0, 0, len(body)) + topic + body
    rec = struct.pack("<II", 8 + len(rest), crc32c(rest)) + rest
    payload = struct.pack("<I", 1) + rec
    return struct.pack("<IBBHIHH", 12 + len(payload), 1, 2, 0, rid, 0, 0) + payload
def answers(s):
    s.settimeout(10)
    d = read_to_close(s, b"", "a bad frame")
    out = []
    while len(d) >= 16:
        ln, ver, typ, flags, r, status = struct.unpack("<IBBHIH", d[:14])
        out.append((r, status))
        d = d[4 + ln:]
    return out
for what, bad in [("garbage", b"\xff" * 16), ("an unknown type", struct.pack("<IBBHIHH", 12, 1, 77, 0, 3, 0, 0)),
                  ("a response frame", struct.pack("<IBBHIHH", 12, 1, 1, 1, 4, 0, 0))]:
    s = conn(); s.sendall(send_frame(2, what.encode()) + bad)
    got = answers(s)
    assert (2, 0) in got, f"a send followed by {what}: answers {got}, none SEND_OK for it"
# 8. many connections writing random bytes in small pieces
socks = [conn() for _ in range(50)]
for _ in range(20):
    for s in socks:
        try: s.send(os.urandom(random.randrange(1, 64)))
        except OSError: pass
for s in socks: s.close()
PY
timeout 60 tail --pid="$bg" -f /dev/null
[[ $(cat "$T/bg.rc") -eq 0 ]] || fail "the normal client failed during the attacks: $(cat "$T/bg.err")"
kill -0 "${PIDS[b1]}" || fail "broker died"
timeout 90 mq-consume -b "$B1" -t g --from earliest -e | sort -n | diff -q - <(seq 60000) >/dev/null || fail "stored data differs"
grep -qiE 'clos|invalid|garbage|exceed|version' "$T/b1.log" || fail "broker did not log why it closed bad connections"
grep -q 'closed: unknown request type 200' "$T/b1.log" || fail "broker did not log the unknown request it closed"
[[ $(timeout 10 mq-consume -b "$B1" -t before-bad --from earliest -e | sort | tr '\n' ' ') == "a response frame an unknown type garbage " ]] ||
  fail "the sends before bad frames: $(timeout 10 mq-consume -b "$B1" -t before-bad --from earliest -e | tr '\n' ' ')"
grep -q 'closed: pull request: malformed payload' "$T/b1.log" || fail "broker did not log the malformed pull it closed"
grep -q 'closed: replication_status request: payload must be empty' "$T/b1.log" ||
  fail "broker did not log the replication_status it closed"
echo "$TEST_NAME: ok"
