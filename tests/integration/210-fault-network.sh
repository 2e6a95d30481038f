#!/usr/bin/env bash
# Fault suite: network faults through tests/tools/faultproxy.py.
# 1. Producers (async with retries, and sync) and a group consumer talk to the broker through the
#    proxy while it delays, slices frames into 3-byte pieces, cuts connections mid-frame
#    (drop-after), resets them, corrupts bits and stalls them (blackhole): no acked message lost,
#    no corrupt body served, a new client facing a black hole fails within its --timeout.
# 2. The replication link slave -> master through the proxy with resets and mid-frame cuts: the
#    slave catches up byte-identical and serves the same messages as the master.
# 3. 10% random packet loss (iptables in a throw-away network namespace): lost 0.
# One figures line per part. TORTURE=1: longer phases.
. "$(dirname "$0")/lib.sh"
. "$MQ_SRC/tests/tools/fault.sh"

# ---- 3. (runs in its own network namespace: `unshare -n bash $0 --netns`) ----------------------
if [[ ${1:-} == --netns ]]; then
  ip link set lo up
  start_broker nb --flush sync --queues 4
  port=${NB##*:}
  iptables -A INPUT -p tcp --dport "$port" -m statistic --mode random --probability 0.1 -j DROP
  iptables -A INPUT -p tcp --sport "$port" -m statistic --mode random --probability 0.1 -j DROP
  n=$(scale 400 10000)
  seq "$n" | sed 's/^/ns-/' | timeout 100 mq-send -b "$NB" -t lossy --window 64 --retries 10 --timeout 20s \
    --receipts >"$T/ns.rcpt" 2>"$T/ns.send.log" || note "netns: mq-send exited $?: $(tail -n 1 "$T/ns.send.log")"
  # With 10 % of packets dropped both ways, a SYN lost twice (or a segment lost three or four
  # times) costs TCP 3 s of retransmission waits, mq-consume's default --timeout (CI saw "no answer
  # within 3.0s" once); 20 s takes about six losses of one segment in a row.
  timeout 100 mq-consume -b "$NB" -t lossy --from earliest -e --format json --timeout 20s >"$T/ns.json" \
    2>"$T/ns.consume.log" || fail "netns: consumer exited $?: $(tail -n 1 "$T/ns.consume.log")"
  dropped=$(iptables -L INPUT -v -n -x | awk '/DROP/ { s += $1 } END { print s + 0 }')
  figures "network iptables-drop-10%" -r "$T/ns.rcpt=ns" -c "$T/ns.json"
  [[ $(fig_get acked) -eq $n ]] || fail "netns: only $(fig_get acked) of $n acked despite retries"
  note "netns: $dropped packets dropped by iptables"
  [[ $dropped -gt 0 ]] || fail "netns: iptables dropped nothing"
  echo "$TEST_NAME: netns ok"
  exit 0
fi

dur=$(scale 1 4)   # seconds per fault mode
rate=$(scale 300 600)

# ---- 1. producers and a consumer through the proxy -------------------------------------------
start_broker b1 --flush sync --queues 4
start_proxy px "$B1"
total=$(awk -v d="$dur" 'BEGIN { print int(d * 5 + 4) }')
( gen_lines na "$rate" "$total" | mq-send -b "$PX" -t net --window 32 --retries 10 --timeout 15s \
    --receipts >"$T/na.rcpt" 2>"$T/na.log" ) &
pa=$!; EXTRA_PIDS+=("$pa")
( gen_lines ns "$((rate / 4))" "$total" | mq-send -b "$PX" -t net --mode sync --retries 10 --timeout 15s \
    --receipts >"$T/ns.rcpt" 2>"$T/ns.log" ) &
ps=$!; EXTRA_PIDS+=("$ps")
spawn cons mq-consume -b "$PX" -t net -g g --from earliest --format json --commit-interval 300ms \
  >"$T/c.1.json" 2>"$T/c.log"
wait_until 20 grep -q "created topic net" "$T/b1.log" || fail "producers did not start"
# corrupt-up: requests only; answers carry no checksum of their own (a flipped bit in a send
# answer's offset reaches the receipt: reported to the lead), sends are checked by the records' CRC
# (a damaged one is refused CORRUPT_RECORD and sent again),
# and a pull whose offset was damaged gets an answer the group consumer sees does not fit it
for mode in "delay=50" "slice=3" "drop-after=20000" "corrupt-up=0.02" pass; do
  proxy_ctl px "$mode" >/dev/null
  sleep "$dur"
done
for i in 1 2 3; do proxy_ctl px reset >/dev/null; sleep 0.5; done
# a black hole: current connections stall, a new client gives up within its --timeout
proxy_ctl px blackhole >/dev/null
t0=$(date +%s%N)
rc=0
timeout 30 mq-send -b "$PX" -t net --timeout 2s "into the hole" 2>"$T/hole.err" || rc=$?
took=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $rc -eq 1 ]] || fail "mq-send into a black hole exited $rc (expected 1)"
# hello waits --timeout (no retry after a timeout); allow scheduling slack on a loaded machine
[[ $took -le 5000 ]] || fail "mq-send into a black hole took $took ms with --timeout 2s"
grep -q "no answer" "$T/hole.err" || fail "no clear error from mq-send into a black hole: $(cat "$T/hole.err")"
# the same for a tail, whose --timeout is its own (default 3s)
t0=$(date +%s%N)
rc=0
timeout 30 mq-consume -b "$PX" -t net --from earliest -e --timeout 1s >/dev/null 2>"$T/hole.c.err" || rc=$?
took_c=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $rc -eq 1 ]] || fail "mq-consume into a black hole exited $rc (expected 1)"
[[ $took_c -le 4000 ]] || fail "mq-consume into a black hole took $took_c ms with --timeout 1s"
grep -q "no answer" "$T/hole.c.err" || fail "no clear error from mq-consume into a black hole: $(cat "$T/hole.c.err")"
proxy_ctl px pass >/dev/null
note "faults done at $SECONDS s"
wait "$pa" || note "async producer exited $?: $(tail -n 1 "$T/na.log")"
wait "$ps" || note "sync producer exited $?: $(tail -n 1 "$T/ns.log")"
stats=$(proxy_ctl px stats)
note "producers done at $SECONDS s"
kill -TERM "$cons"; timeout 20 tail --pid="$cons" -f /dev/null || true
timeout 30 mq-consume -b "$PX" -t net -g g -e --format json >"$T/c.2.json" 2>>"$T/c.log" \
  || fail "draining consumer exited $?"
timeout 30 mq-consume -b "$B1" -t net --from earliest -e --format json >"$T/all.json" || fail "full read exited $?"
note "drained at $SECONDS s"
figures "network proxy stored" -r "$T/na.rcpt=na" -R "$T/ns.rcpt=ns" -c "$T/all.json"
[[ $(fig_get acked) -gt 300 ]] || fail "only $(fig_get acked) acked: the scenario did not exercise anything"
figures "network proxy group" -r "$T/na.rcpt=na" -R "$T/ns.rcpt=ns" -c "$T/c.1.json" -c "$T/c.2.json"
note "proxy: blackhole clients gave up after $took ms (mq-send), $took_c ms (mq-consume); $stats"
grep -qE "cuts=[1-9]" <<<"$stats" || fail "drop-after cut no connection"
grep -qE "resets=[1-9]" <<<"$stats" || fail "reset hit no connection"
# a send whose record the broker found damaged on the way (CORRUPT_RECORD) is sent again: no
# message fails for it
damaged=$(grep -c "record checksum mismatch" "$T/b1.log" || true)
! grep -h "checksum mismatch" "$T/na.log" "$T/ns.log" | head -n 3 | grep . ||
  fail "messages failed because the broker found them damaged on the way (not sent again)"
note "sends refused as damaged on the way and sent again: $damaged"

# a connection that goes silent (half-open link, or a peer whose decoder lost sync on a corrupted
# length): after a request timed out on it with nothing answered since, the client drops it and
# the next request reconnects (libmq/net/channel.cc), so only the message in flight at the sever
# fails
seq 20 | timeout 20 mq-send -b "$B1" -t sil --receipts >/dev/null || fail "send to sil"
( for i in $(seq 1 20); do echo "$i"; [[ $i -eq 3 ]] && wait_until 20 test -e "$T/severed"; sleep 0.1; done | timeout 60 mq-send -b "$PX" -t sil --mode sync \
    --timeout 500ms --receipts >"$T/sil.rcpt" 2>"$T/sil.log" ) &
sp=$!; EXTRA_PIDS+=("$sp")
# sever once the producer's connection carried a few messages
wait_until 20 bash -c "timeout 5 mq-consume -b $B1 -t sil --from earliest -e 2>/dev/null | awk 'END { exit NR < 22 }'" \
  || fail "the silent-connection producer did not start"
note "silent: $(proxy_ctl px sever)"
touch "$T/severed"
t0=$SECONDS
wait "$sp" || true
after=$(awk -F'\t' '$6 != "SEND_OK"' "$T/sil.rcpt" | wc -l)
[[ $((SECONDS - t0)) -le 20 ]] || fail "a silent connection kept mq-send $((SECONDS - t0)) s for 20 messages with --timeout 500ms"
[[ $(wc -l <"$T/sil.rcpt") -eq 20 ]] || fail "silent connection: $(wc -l <"$T/sil.rcpt") receipts for 20 messages"
[[ $after -le 2 ]] || fail "after a connection went silent $after of 20 messages failed (the client kept the dead connection)"
note "silent connection: the client reconnected ($after of 20 failed)"
stop_broker b1 -TERM
[[ $BROKER_EXIT -eq 0 ]] || fail "broker exited $BROKER_EXIT on SIGTERM after the proxy faults"
note "part 1 done at $SECONDS s"

# ---- 2. replication link through the proxy ----------------------------------------------------
logs_equal() { same_logs "$T/m" "$T/s"; }
start_broker m --flush async --segment-size 256KiB
start_proxy pr "$M"
start_broker s --role slave --master "$PR" --segment-size 256KiB
rtotal=$(scale 3 12)
( gen_lines rp "$((rate * 2))" "$rtotal" | mq-send -b "$M" -t rep --window 64 --receipts >"$T/rp.rcpt" 2>"$T/rp.log" ) &
pr=$!; EXTRA_PIDS+=("$pr")
end=$((SECONDS + rtotal))
i=0
while [[ $SECONDS -lt $end ]]; do
  i=$((i + 1))
  case $((i % 3)) in
    0) proxy_ctl pr reset >/dev/null ;;
    1) proxy_ctl pr drop-after=$((RANDOM % 30000 + 100)) >/dev/null ;;
    2) proxy_ctl pr pass >/dev/null ;;
  esac
  rand_sleep 200 600
done
proxy_ctl pr pass >/dev/null
wait "$pr" || fail "replication producer exited $?: $(tail -n 1 "$T/rp.log")"
wait_until 40 logs_equal || fail "slave did not catch up through the proxy ($(proxy_ctl pr stats))"
fmt='%q\t%o\t%i\t%s\n'
timeout 30 mq-consume -b "$M" -t rep --from earliest -e --format "$fmt" >"$T/m.out" || fail "read master"
timeout 30 mq-consume -b "$S" -t rep --from earliest -e --format "$fmt" >"$T/s.out" || fail "read slave"
# the same (queue, offset, id, body) rows; how the tail interleaves queues depends on its pulls
cmp -s <(sort "$T/m.out") <(sort "$T/s.out") || fail "slave serves other messages than the master"
timeout 30 mq-consume -b "$S" -t rep --from earliest -e --format json >"$T/s.json" || fail "read slave json"
figures "network replication-resets" -r "$T/rp.rcpt=rp" -c "$T/s.json"
note "part 2 done at $SECONDS s"
note "replication: $(proxy_ctl pr stats); slave reconnects logged: $(grep -c -i 'connect' "$T/s.log" || true)"

# ---- 3. random packet loss in a network namespace ----------------------------------------------
if ! command -v iptables >/dev/null; then
  fail "iptables missing (scripts/deps --test installs it)"
fi
timeout 120 unshare -n bash "$0" --netns || fail "network-namespace part failed"
echo "$TEST_NAME: ok"
