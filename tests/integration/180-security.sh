#!/usr/bin/env bash
# Access control and TLS, end to end: a broker with --auth and --tls-cert/--tls-key (a CA and
# certificates made here with openssl); every permission's allowed and denied path through the
# real programs (publish, subscribe, consume, admin, replicate, anonymous); wrong passwords,
# unsafe credential files, a wrong CA and a wrong host name; secrets absent from every log and
# error; the non-loopback warning; a slave replicating over TLS with credentials.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || fail "openssl is missing (scripts/deps --test installs it)"

# --- certificates: a CA, a broker certificate for localhost/127.0.0.1, a stranger CA ---------
cd "$T"
ossl() { openssl "$@" >>"$T/openssl.out" 2>&1 || fail "openssl $1 failed: $(tail -3 "$T/openssl.out")"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mq-test-ca -keyout ca.key -out ca.pem
ossl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout broker.key -out broker.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
ossl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out broker.pem
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=stranger -keyout other.key -out other.pem
# a certificate from the right CA but for another name
ossl req -newkey rsa:2048 -nodes -subj /CN=elsewhere -keyout far.key -out far.csr
printf 'subjectAltName=DNS:elsewhere.example\n' >far.ext
ossl x509 -req -in far.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile far.ext -out far.pem
# a certificate of the right CA and name that expired in 2020
mkdir -p caw && : >caw/index.txt && echo 01 >caw/serial
printf '[ca]\ndefault_ca = c\n[c]\ndir = %s/caw\ndatabase = $dir/index.txt\nserial = $dir/serial\nnew_certs_dir = $dir\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n' "$T" >caw/ca.cnf
ossl ca -batch -config caw/ca.cnf -cert ca.pem -keyfile ca.key -in broker.csr -out expired.pem \
  -startdate 20200101000000Z -enddate 20200102000000Z
chmod 600 ./*.key

# --- users -------------------------------------------------------------------------------------
bob_hash=$(printf %s 'b0b-Secret!' | sha256sum | cut -d' ' -f1)
cat >users <<USERS
# test users
user alice Apple-Pie-42
user bob sha256:$bob_hash
user rep Repl1cate-Me
allow alice publish orders orders.*
allow alice subscribe orders
allow alice consume billing
allow bob admin billing
allow bob subscribe *
allow rep replicate
allow anonymous subscribe open
USERS
chmod 600 users
creds() { printf 'user %s\npassword %s\n' "$1" "$2" >"$T/$3"; chmod 600 "$T/$3"; }
creds alice Apple-Pie-42 alice.cred
creds bob 'b0b-Secret!' bob.cred
creds rep Repl1cate-Me rep.cred
creds alice wrong-password bad.cred

# --- refusals at start: unsafe or malformed auth file, half a TLS setup -------------------------
cp users loose && chmod 644 loose
rc=0; timeout 10 mq-broker --data "$T/x" --listen 127.0.0.1:0 --auth loose 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "chmod 600" "$T/e" || fail "a readable --auth file: exit $rc, $(cat "$T/e")"
rc=0; timeout 10 mq-broker --data "$T/x" --listen 127.0.0.1:0 --auth "$T/no-such-file" 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "no-such-file" "$T/e" || fail "a missing --auth file: exit $rc, $(cat "$T/e")"
printf 'user a x\nallow a publsh t\n' >typo && chmod 600 typo
rc=0; timeout 10 mq-broker --data "$T/x" --listen 127.0.0.1:0 --auth typo 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "typo:2: unknown permission 'publsh'" "$T/e" || fail "typo in --auth: exit $rc, $(cat "$T/e")"
rc=0; timeout 10 mq-broker --data "$T/x" --listen 127.0.0.1:0 --tls-cert broker.pem 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--tls-cert and --tls-key go together" "$T/e" || fail "--tls-cert alone: exit $rc"
rc=0; timeout 10 mq-broker --data "$T/x" --listen 127.0.0.1:0 --tls-cert broker.pem --tls-key other.key 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "does not belong to" "$T/e" || fail "mismatched key: exit $rc, $(cat "$T/e")"

# --- the broker --------------------------------------------------------------------------------
start_broker m --auth users --tls-cert broker.pem --tls-key broker.key
port=${M##*:}
LOCAL="localhost:$port"
export MQ_TLS_CA=$T/ca.pem
# a connection that says hello and never logs in does not hold a --max-connections slot: closed
# about 10 s after it was accepted (the rest of the test runs meanwhile; checked at the end)
python3 - "$port" "$T/ca.pem" >"$T/idle-login.out" 2>&1 <<'PY' &
import socket, ssl, struct, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
t0 = time.monotonic()
s = ctx.wrap_socket(socket.create_connection(("localhost", int(sys.argv[1])), timeout=30), server_hostname="localhost")
s.sendall(struct.pack("<IBBHIHH", 12, 1, 1, 0, 1, 0, 0))  # hello, request id 1, empty payload
got = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
except (ConnectionResetError, ssl.SSLError):
    pass
print(f"closed after {time.monotonic() - t0:.1f} s, {len(got)} bytes answered")
PY
idle_login=$!
EXTRA_PIDS+=("$idle_login")

# plain TCP to a TLS broker, a stranger CA, a certificate for another name: all refused
rc=0; MQ_TLS_CA= timeout 10 mq-send -b "$M" --credentials alice.cred -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "closed by the peer before any answer (if it uses TLS, give --tls-ca)" "$T/e" || fail "plain TCP to a TLS broker: exit $rc, $(cat "$T/e")"
rc=0; timeout 10 mq-send -b "$M" --tls-ca other.pem --credentials alice.cred -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "certificate verify failed (unable to get local issuer certificate)" "$T/e" || fail "stranger CA: exit $rc, $(cat "$T/e")"
chmod 644 far.key  # a key every user may read: served, with a warning
start_broker far --tls-cert far.pem --tls-key far.key
grep -q -- "--tls-key far.key may be read by every user of this machine" "$T/far.log" || fail "no warning for a readable --tls-key"
rc=0; timeout 10 mq-send -b "$FAR" -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "certificate verify failed (the certificate is not for 127.0.0.1)" "$T/e" || fail "wrong host name: exit $rc, $(cat "$T/e")"
stop_broker far
start_broker old --tls-cert expired.pem --tls-key broker.key
grep -q "tls-cert expired.pem has expired: clients will refuse it" "$T/old.log" || fail "no warning for an expired --tls-cert"
rc=0; timeout 10 mq-send -b "$OLD" -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "certificate verify failed (certificate has expired)" "$T/e" || fail "expired certificate: exit $rc, $(cat "$T/e")"
stop_broker old

# publish: allowed topics by name and by glob, over TLS, by address and by host name
seq 1 50 | timeout 20 mq-send -b "$M" --credentials alice.cred -t orders || fail "alice publish orders: exit $?"
MQ_USER=alice MQ_PASSWORD=Apple-Pie-42 timeout 20 mq-send -b "$LOCAL" -t orders.eu eu1 eu2 ||
  fail "alice publish orders.eu via env and host name: exit $?"
# publish denied
rc=0; timeout 10 mq-send -b "$M" --credentials alice.cred -t audit x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "user alice may not publish topic audit" "$T/e" || fail "alice publish audit: exit $rc, $(cat "$T/e")"
# anonymous: denied with a hint; wrong password: one clear line
rc=0; timeout 10 mq-send -b "$M" -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "requires authentication" "$T/e" || fail "anonymous send: exit $rc, $(cat "$T/e")"
[[ $(count_lines "$T/e") -eq 1 ]] || fail "anonymous send: the error said more than once: $(cat "$T/e")"
rc=0; echo '{"body":"a"}' | timeout 10 mq-replay -b "$M" -i - --to-topic orders 2>"$T/e" || rc=$?
[[ $rc -eq 1 && $(count_lines "$T/e") -eq 1 ]] && grep -q "^mq-replay: .*requires authentication" "$T/e" ||
  fail "anonymous replay -i: exit $rc, $(cat "$T/e")"
rc=0; timeout 10 mq-send -b "$M" --credentials bad.cred -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "authentication failed for user alice" "$T/e" || fail "wrong password: exit $rc, $(cat "$T/e")"
rc=0; MQ_USER=nobody MQ_PASSWORD=x timeout 10 mq-consume -b "$M" -t orders --from earliest -e 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "authentication failed for user nobody" "$T/e" || fail "unknown user: exit $rc, $(cat "$T/e")"
# unsafe or incomplete credentials are refused before connecting
cp alice.cred loose.cred && chmod 640 loose.cred
rc=0; timeout 10 mq-send -b "$M" --credentials loose.cred -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "others may read it" "$T/e" || fail "group-readable credentials: exit $rc, $(cat "$T/e")"
rc=0; timeout 10 mq-send -b "$M" --credentials missing.cred -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "missing.cred" "$T/e" || fail "missing credentials file: exit $rc, $(cat "$T/e")"
rc=0; MQ_USER=alice timeout 10 mq-send -b "$M" -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -q "MQ_PASSWORD is not" "$T/e" || fail "MQ_USER alone: exit $rc, $(cat "$T/e")"
# a user name never holds whitespace (the --auth file splits on it): a credentials file in the
# broker's format, or such an MQ_USER, would send and log "alice PASSWORD" as the name. Refused
# before connecting, without repeating it.
printf 'user alice Apple-Pie-42\npassword Apple-Pie-42\n' >authfmt.cred && chmod 600 authfmt.cred
rc=0; timeout 10 mq-send -b "$M" --credentials authfmt.cred -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] &&
  grep -qF "authfmt.cred: the user name contains whitespace (is this the broker's --auth format?)" "$T/e" ||
  fail "a credentials file in the --auth format: exit $rc, $(cat "$T/e")"
grep -q Apple-Pie-42 "$T/e" && fail "the password in a user name was echoed"
rc=0; MQ_USER="alice Apple-Pie-42" MQ_PASSWORD=Apple-Pie-42 timeout 10 mq-consume -b "$M" -t orders --from earliest -e 2>"$T/e" || rc=$?
[[ $rc -eq 2 ]] && grep -qx "mq-consume: MQ_USER contains whitespace" "$T/e" ||
  fail "MQ_USER with a blank: exit $rc, $(cat "$T/e")"
grep -q Apple-Pie-42 "$T/e" && fail "the password in MQ_USER was echoed"
grep -q "alice Apple" "$T/m.log" && fail "a user name with the password reached the broker"

# MQ_PASSWORD leaves the environment once read, and mq-send connects again when its first
# contact fails: the retries keep the credentials (not "MQ_USER is set but MQ_PASSWORD is not",
# exit 2, in place of the real reason)
rc=0; MQ_USER=alice MQ_PASSWORD=Apple-Pie-42 timeout 20 mq-send -b 127.0.0.1:1 -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "cannot reach 127.0.0.1:1" "$T/e" ||
  fail "env credentials, nothing listening: exit $rc, $(cat "$T/e")"
rc=0; MQ_USER=alice MQ_PASSWORD=Apple-Pie-42 timeout 20 mq-send -b "$M" --tls-ca other.pem -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "certificate verify failed" "$T/e" ||
  fail "env credentials, stranger CA: exit $rc, $(cat "$T/e")"
# ... and a broker that comes up while mq-send retries its first contact gets the message
start_broker late --auth users --tls-cert broker.pem --tls-key broker.key
stop_broker late
spawn LATE_SEND env MQ_USER=alice MQ_PASSWORD=Apple-Pie-42 mq-send -b "$LATE" -t orders --retries 30 \
  --timeout 20s late-1 2>"$T/late.err"
slow_sleep 1
kill -0 "$LATE_SEND" 2>/dev/null || fail "mq-send did not wait for the broker: $(cat "$T/late.err")"
# the password read from MQ_PASSWORD is wiped from the process's environment block too (ps e)
tr '\0' '\n' <"/proc/$LATE_SEND/environ" | grep -q "^MQ_USER=alice" || fail "not the mq-send process"
tr '\0' '\n' <"/proc/$LATE_SEND/environ" | grep -q Apple-Pie-42 && fail "MQ_PASSWORD readable in /proc/PID/environ"
restart_broker late
timeout 30 tail --pid="$LATE_SEND" -f /dev/null || fail "mq-send still runs after the broker came up"
rc=0; wait "$LATE_SEND" || rc=$?
[[ $rc -eq 0 ]] || fail "env credentials, broker started late: exit $rc, $(cat "$T/late.err")"
[[ $(timeout 20 mq-consume -b "$LATE" --credentials bob.cred -t orders --from earliest -e) == late-1 ]] ||
  fail "the late broker does not hold the message"
stop_broker late

# subscribe: alice reads orders, not orders.eu; bob reads everything; anonymous only 'open'
timeout 20 mq-consume -b "$M" --credentials alice.cred -t orders --from earliest -e >"$T/got" || fail "alice subscribe: exit $?"
diff <(seq 1 50) <(sort -n "$T/got") >/dev/null || fail "alice read back $(count_lines "$T/got") of 50 over TLS"
rc=0; timeout 10 mq-consume -b "$M" --credentials alice.cred -t orders.eu --from earliest -e 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "user alice may not subscribe topic orders.eu" "$T/e" || fail "alice subscribe orders.eu: exit $rc, $(cat "$T/e")"
timeout 20 mq-consume -b "$M" --credentials bob.cred -t orders.eu --from earliest -e >"$T/got" || fail "bob subscribe: exit $?"
[[ $(sort "$T/got" | tr '\n' ' ') == "eu1 eu2 " ]] || fail "bob read: $(cat "$T/got")"

# consume (group) and admin (offsets)
timeout 30 mq-consume -b "$M" --credentials alice.cred -g billing -t orders --from earliest -n 50 >"$T/g" ||
  fail "alice consume in group billing: exit $?"
[[ $(count_lines "$T/g") -eq 50 ]] || fail "group read $(count_lines "$T/g") of 50"
rc=0; timeout 10 mq-consume -b "$M" --credentials bob.cred -g billing -t orders -n 1 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "user bob may not consume group billing" "$T/e" || fail "bob consume: exit $rc, $(cat "$T/e")"
# dead letters of billing: re-driven by a user who may consume billing and publish their topic
# (the re-drive's progress is the group redrive.billing: no permission of its own needed)
timeout 10 mq-send -b "$M" --credentials alice.cred -t orders poison || fail "send poison"
timeout 30 mq-consume -b "$M" --credentials alice.cred -g billing -t orders -n 1 --exec 'exit 65' ||
  fail "alice dead-lettering: exit $?"
wait_until 20 bash -c "timeout 5 mq-replay -b $M --credentials alice.cred --dlq billing --dry-run 2>/dev/null | grep -q poison" ||
  fail "no dead letter: $(timeout 5 mq-replay -b "$M" --credentials alice.cred --dlq billing --dry-run 2>&1)"
rc=0; timeout 10 mq-replay -b "$M" --credentials rep.cred --dlq billing 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "user rep may not" "$T/e" || fail "rep re-drive: exit $rc, $(cat "$T/e")"
timeout 10 mq-replay -b "$M" --credentials alice.cred --dlq billing --receipts >"$T/redrive" 2>"$T/e" ||
  fail "alice re-drive: exit $?: $(cat "$T/e")"
[[ $(grep -c SEND_OK "$T/redrive") -eq 1 ]] || fail "alice re-drive receipts: $(cat "$T/redrive")"
timeout 10 mq-replay -b "$M" --credentials alice.cred --dlq billing --receipts >"$T/redrive2" || fail "second re-drive"
[[ ! -s $T/redrive2 ]] || fail "the second re-drive sent again: $(cat "$T/redrive2")"
[[ $(timeout 10 mq-consume -b "$M" --credentials alice.cred -t orders --from earliest -e | grep -c poison) -eq 2 ]] ||
  fail "orders should hold the poison message and its one re-driven copy"
rc=0; timeout 10 mq-offset -b "$M" --credentials alice.cred reset -g billing -t orders --to earliest >"$T/o" 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "user alice may not admin group billing" "$T/e" || fail "alice reset: exit $rc, $(cat "$T/e")"
# refused everywhere: one line, no table of queues that were not reset
[[ ! -s $T/o && $(wc -l <"$T/e") -eq 1 ]] || fail "a denied reset printed more than its error: $(cat "$T/o" "$T/e")"
timeout 10 mq-offset -b "$M" --credentials bob.cred reset -g billing -t orders --to earliest >"$T/reset" 2>&1 ||
  fail "bob reset billing: exit $?: $(cat "$T/reset")"
timeout 10 mq-offset -b "$M" --credentials bob.cred show -g billing >"$T/show" || fail "bob show: exit $?"
grep -q orders "$T/show" || fail "bob show lists no offsets: $(cat "$T/show")"

# replicate: a slave over TLS needs the replicate permission
# a slave that logs in to its master must check its own clients too (else anyone reads
# through it what the master protects): without --auth it does not start
rc=0
timeout 10 mq-broker --data "$T/noauth" --listen 127.0.0.1:0 --role slave --master "$LOCAL" --credentials rep.cred \
  2>"$T/noauth.err" || rc=$?
[[ $rc -eq 2 ]] || fail "a slave with credentials and no --auth: exit $rc, expected 2"
grep -q "logs in to its master as 'rep' but has no --auth" "$T/noauth.err" || fail "noauth: $(cat "$T/noauth.err")"
start_broker bad --role slave --master "$LOCAL" --credentials alice.cred --auth users
# it reaches its master over TLS but serves plaintext: said at start
grep -q "the master is reached over TLS but this slave serves its clients without it" "$T/bad.log" ||
  fail "no warning for a slave serving plaintext what its master sends over TLS"
wait_until 20 grep -q "may not replicate" "$T/bad.log" || fail "a slave without 'replicate' was not refused"
stop_broker bad
start_broker s --role slave --master "$LOCAL" --credentials rep.cred --auth users --tls-cert broker.pem --tls-key broker.key
grep -q "serves its clients without it" "$T/s.log" && fail "a slave with --tls-cert warned of plaintext"
logs_equal() { same_logs "$T/m" "$T/s"; }
wait_until 30 logs_equal || fail "the slave did not catch up over TLS"
timeout 20 mq-consume -b "localhost:${S##*:}" --credentials bob.cred -t orders --from earliest -e >"$T/got" || fail "read the slave: exit $?"
[[ $(count_lines "$T/got") -eq 52 ]] || fail "slave serves $(count_lines "$T/got") of 52 (50, a poison message and its re-driven copy)"
stop_broker s

# no secret anywhere: broker logs, client errors, the process list
grep -rl -e Apple-Pie-42 -e 'b0b-Secret' -e Repl1cate-Me -e wrong-password -e "$bob_hash" "$T"/*.log "$T/e" "$T/late.err" && fail "a secret leaked into a log"
spawn CONS env MQ_USER=alice MQ_PASSWORD=Apple-Pie-42 mq-consume -b "$M" -t orders --from latest -q
sleep 0.5
ps -eo args | grep -e Apple-Pie-42 | grep -v grep && fail "a password shows in ps"
kill "$CONS"
# commands run by --exec do not inherit MQ_PASSWORD
echo env-check | timeout 20 mq-send -b "$M" --credentials alice.cred -t orders || fail "send env-check: exit $?"
MQ_USER=alice MQ_PASSWORD=Apple-Pie-42 timeout 30 mq-consume -b "$M" -g billing -t orders -n 1 \
  --exec "env > $T/child.env" >/dev/null || fail "consume with --exec: exit $?"
[[ -s $T/child.env ]] || fail "--exec did not run"
grep -q MQ_PASSWORD "$T/child.env" && fail "an --exec command inherited MQ_PASSWORD"

# the broker without --auth on a non-loopback address warns
LISTEN[open]=0.0.0.0:0
start_broker open
grep -q "without --auth: anyone who can reach it" "$T/open.log" || fail "no warning for 0.0.0.0 without --auth"
# a TLS client to a broker without TLS: both sides say what the mismatch is
rc=0; timeout 10 mq-send -b "127.0.0.1:${OPEN##*:}" --tls-ca ca.pem -t orders x 2>"$T/e" || rc=$?
[[ $rc -eq 1 ]] && grep -q "does the broker serve TLS? one without --tls-cert closes a TLS client" "$T/e" ||
  fail "TLS client, plain broker: exit $rc, $(cat "$T/e")"
grep -q "the bytes look like a TLS handshake: this broker does not serve TLS" "$T/open.log" ||
  fail "the plain broker did not say it got a TLS handshake"
stop_broker open

# anonymous may do nothing (a tail of the pair says so once): before a login, frames are
# small (a stranger's partial frame does not hold --max-frame bytes); after it, a 300 KiB
# message goes through
grep -v anonymous users >noanon && chmod 600 noanon
start_broker shut --auth noanon
python3 - "${SHUT##*:}" >"$T/big.out" 2>&1 <<'PY' || fail "a large frame before login: $(cat "$T/big.out")"
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
s.sendall(struct.pack("<IBBHIHH", 1 << 20, 1, 2, 0, 1, 0, 0) + b"x" * 1000)  # a 1 MiB send, begun
t0 = time.monotonic()
try:
    while s.recv(65536):
        pass
except ConnectionResetError:
    pass
assert time.monotonic() - t0 < 5, "not closed at once"
PY
grep -q "frame of 1048576 bytes exceeds the limit of 65536 (not authenticated)" "$T/shut.log" ||
  fail "the broker did not say why it closed the large frame: $(tail -n 3 "$T/shut.log")"
head -c 300000 /dev/zero | tr '\0' b >"$T/big.msg"
MQ_TLS_CA= timeout 20 mq-send -b "$SHUT" --credentials alice.cred -t orders --raw <"$T/big.msg" || fail "a 300 KiB message after login: exit $?"
MQ_TLS_CA= timeout 20 mq-consume -b "$SHUT" --credentials alice.cred -t orders --from earliest -e >"$T/big.got" ||
  fail "read the 300 KiB message: exit $?"
[[ $(head -c 300000 "$T/big.got") == "$(cat "$T/big.msg")" ]] || fail "the 300 KiB message came back different"
# an anonymous tail of a pair: the refusal, once, not "unreachable: continuing on" the other
MQ_TLS_CA= start_broker shs --role slave --master "$SHUT" --credentials rep.cred --auth noanon
wait_until 20 grep -q "caught up with master" "$T/shs.log" || fail "shut's slave did not connect"
for list in "$SHUT,$SHS" "$SHS"; do
  rc=0; MQ_TLS_CA= timeout 20 mq-consume -b "$list" -t orders --from earliest -e >/dev/null 2>"$T/e" || rc=$?
  [[ $rc -eq 1 && $(count_lines "$T/e") -eq 1 ]] && grep -q "requires authentication" "$T/e" ||
    fail "anonymous tail of -b $list: exit $rc, $(cat "$T/e")"
done
stop_broker shs
stop_broker shut
timeout 30 tail --pid="$idle_login" -f /dev/null || true
wait "$idle_login" || fail "the idle TLS login check failed: $(cat "$T/idle-login.out")"
read -r _ _ secs _ bytes _ <"$T/idle-login.out" || true
awk -v s="$secs" 'BEGIN { exit !(s >= 9 && s <= 20) }' && [[ ${bytes:-0} -gt 16 ]] ||
  fail "a connection that never logged in: $(cat "$T/idle-login.out") (expected a hello answer and a close after ~10 s)"
grep -q "closed: not authenticated within 10.0s" "$T/m.log" || fail "the broker did not log why it closed the idle login"
note "ok: TLS round trip, every permission allowed and denied, no secret leaked"
