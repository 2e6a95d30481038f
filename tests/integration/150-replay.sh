#!/usr/bin/env bash
# mq-replay: offset and time ranges, --merge by store time, a JSON round trip of binary messages
# through -i (with provenance, bad lines, receipts) and from mq-consume --format json, --to-topic
# provenance, --rate, dead-letter re-drive (--dry-run, skipped the second time, --force), receipts
# and exit codes like mq-send, a message too large for the destination failed alone. Group offsets are never touched.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async --queues 2 --delay-levels "100ms"

# --- offset range: everything in queue 0 of topic r
seq 1 100 | timeout 20 mq-send -b "$B1" -t r --queue 0 || fail "send r"
timeout 10 mq-replay -b "$B1" -t r --from 10 --until 20 >"$T/range" || fail "offset range"
seq 11 20 | diff - "$T/range" >/dev/null || fail "offset range gave $(tr '\n' ' ' <"$T/range")"
timeout 10 mq-replay -b "$B1" -t r --queue 0 >"$T/all" || fail "whole queue"
seq 1 100 | diff - "$T/all" >/dev/null || fail "whole queue wrong"
timeout 10 mq-replay -b "$B1" -t r --queue 1 >"$T/q1" || fail "empty queue"
[[ ! -s $T/q1 ]] || fail "queue 1 should be empty"
timeout 10 mq-replay -b "$B1" -t r --from 95 --format '%q:%o:%s\n' >"$T/tmpl" || fail "template"
printf '0:95:96\n0:96:97\n0:97:98\n0:98:99\n0:99:100\n' | diff - "$T/tmpl" >/dev/null || fail "template output: $(cat "$T/tmpl")"
# -N counts back from each queue's end (kcat's -o -N), for --until too
timeout 10 mq-replay -b "$B1" -t r --from -5 --until -2 --format '%q:%o:%s\n' >"$T/back" || fail "--from -5 --until -2"
printf '0:95:96\n0:96:97\n0:97:98\n' | diff - "$T/back" >/dev/null || fail "--from -5 --until -2 gave: $(cat "$T/back")"
# closed stdout is a normal end
set +o pipefail
timeout 10 mq-replay -b "$B1" -t r | head -n 3 >"$T/head"
rc=${PIPESTATUS[0]}
set -o pipefail
[[ $rc -eq 0 ]] || fail "closed stdout: exit $rc"
# key and tag filters
for i in 1 2 3 4 5 6; do
  timeout 10 mq-send -b "$B1" -t kt --queue 0 -k "k$((i % 2))" --tag "t$((i % 3))" "m$i" || fail "send kt"
done
timeout 10 mq-replay -b "$B1" -t kt --key k1 | tr '\n' ' ' >"$T/key"
[[ $(cat "$T/key") == "m1 m3 m5 " ]] || fail "--key k1 gave $(cat "$T/key")"
timeout 10 mq-replay -b "$B1" -t kt --tag t0 | tr '\n' ' ' >"$T/tag"
[[ $(cat "$T/tag") == "m3 m6 " ]] || fail "--tag t0 gave $(cat "$T/tag")"

# --- time range: three batches a second apart
seq 1 10 | timeout 10 mq-send -b "$B1" -t tm --queue 0 || fail "send tm 1"
sleep 1.1
seq 11 20 | timeout 10 mq-send -b "$B1" -t tm --queue 0 || fail "send tm 2"
sleep 1.1
seq 21 30 | timeout 10 mq-send -b "$B1" -t tm --queue 0 || fail "send tm 3"
timeout 10 mq-replay -b "$B1" -t tm --format json >"$T/tm.json" || fail "tm json"
t2=$(sed -n 11p "$T/tm.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored"])')
t3=$(sed -n 21p "$T/tm.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stored"])')
timeout 10 mq-replay -b "$B1" -t tm --from "$t2" --until "$t3" >"$T/trange" || fail "time range"
seq 11 20 | diff - "$T/trange" >/dev/null || fail "time range $t2..$t3 gave $(tr '\n' ' ' <"$T/trange")"
timeout 10 mq-replay -b "$B1" -t tm --from "$t3" >"$T/tfrom" || fail "time from"
seq 21 30 | diff - "$T/tfrom" >/dev/null || fail "--from $t3 gave $(tr '\n' ' ' <"$T/tfrom")"

# --- merge: alternate queues, one message at a time
for i in 1 2 3 4 5 6 7 8; do
  timeout 10 mq-send -b "$B1" -t m --queue $((i % 2)) "$i" || fail "send m"
  sleep 0.02
done
timeout 10 mq-replay -b "$B1" -t m | tr '\n' ' ' >"$T/nomerge"
[[ $(cat "$T/nomerge") == "2 4 6 8 1 3 5 7 " ]] || fail "queue by queue gave $(cat "$T/nomerge")"
timeout 10 mq-replay -b "$B1" -t m --merge | tr '\n' ' ' >"$T/merge"
[[ $(cat "$T/merge") == "1 2 3 4 5 6 7 8 " ]] || fail "--merge gave $(cat "$T/merge")"

# --- JSON round trip of binary messages through -i
printf 'bin\0ary\xff\xfe\n' >"$T/bin1"
printf 'caf\xc3\xa9 "quoted"' >"$T/bin2"
timeout 10 mq-send -b "$B1" -t bin --queue 0 --raw -k K1 --tag T1 -p x=1 <"$T/bin1" || fail "send bin1"
timeout 10 mq-send -b "$B1" -t bin --queue 0 --raw <"$T/bin2" || fail "send bin2"
timeout 10 mq-replay -b "$B1" -t bin --format json >"$T/bin.json" || fail "bin json"
grep -q body_b64 "$T/bin.json" || fail "binary body not base64"
timeout 10 mq-replay -b "$B1" -i "$T/bin.json" --to-topic bin2 || fail "-i FILE"
timeout 10 mq-replay -b "$B1" -t bin2 --format '%s' >"$T/bin.out" || fail "read bin2"
# the producer may spread the two over both queues: either order is fine
cat "$T/bin1" "$T/bin2" | cmp -s - "$T/bin.out" || cat "$T/bin2" "$T/bin1" | cmp -s - "$T/bin.out" ||
  fail "binary round trip differs: $(od -c "$T/bin.out" | head -n 3)"
timeout 10 mq-replay -b "$B1" -t bin2 --key K1 --format '%k %T %p{x}\n' >"$T/bin.meta" || fail "bin2 meta"
[[ $(cat "$T/bin.meta") == "K1 T1 1" ]] || fail "key/tag/props lost: $(cat "$T/bin.meta")"
timeout 10 mq-replay -b "$B1" -t bin --format json | timeout 10 mq-replay -b "$B1" -i - --to-topic bin3 || fail "-i -"
[[ $(timeout 10 mq-replay -b "$B1" -t bin3 --format json | wc -l) -eq 2 ]] || fail "-i - count"
# -i records the provenance the JSON record carries (topic, queue, offset, id)
timeout 10 mq-replay -b "$B1" -t bin2 --format json >"$T/bin2.json" || fail "bin2 json"
python3 - "$T/bin.json" "$T/bin2.json" <<'PY' || fail "-i provenance wrong"
import json, sys
orig = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[1])}
copy = [json.loads(l) for l in open(sys.argv[2])]
assert sorted(c["props"]["mq.replay.origin_id"] for c in copy) == sorted(orig), copy
for c in copy:
    p = c["props"]
    o = orig[p["mq.replay.origin_id"]]
    assert p["mq.replay.origin_topic"] == "bin" and p["mq.replay.origin_queue"] == "0", p
    assert p["mq.replay.origin_offset"] == str(o["offset"]), (p, o)
    assert "mq.replay.replayed_at" in p and c["id"] != o["id"], c
    assert c["key"] == o["key"] and c["tag"] == o["tag"], (c, o)
    assert {k: v for k, v in p.items() if not k.startswith("mq.replay.")} == o["props"], (p, o)
PY
# a record without them (as mq-send --json takes) gets none of them
timeout 10 mq-replay -b "$B1" -i - --to-topic bare <<<'{"body":"x","topic":7}' || fail "-i of a bare record"
timeout 10 mq-replay -b "$B1" -t bare --format '%p{mq.replay.origin_topic}|%p{mq.replay.origin_id}|%s\n' >"$T/bare" ||
  fail "read bare"
[[ $(cat "$T/bare") == "||x" ]] || fail "a bare record got provenance: $(cat "$T/bare")"
# the pipeline of mq-consume --format json into -i keeps bytes, keys, tags and properties
timeout 10 mq-consume -b "$B1" -t bin --from earliest -e --format json | timeout 10 mq-replay -b "$B1" -i - --to-topic bin5 ||
  fail "mq-consume --format json | mq-replay -i -"
timeout 10 mq-replay -b "$B1" -t bin5 --format '%s' >"$T/bin5.out" || fail "read bin5"
cat "$T/bin1" "$T/bin2" | cmp -s - "$T/bin5.out" || cat "$T/bin2" "$T/bin1" | cmp -s - "$T/bin5.out" ||
  fail "consume | replay -i differs: $(od -c "$T/bin5.out" | head -n 3)"
timeout 10 mq-replay -b "$B1" -t bin5 --key K1 --format '%k %T %p{x} %p{mq.replay.origin_topic}\n' >"$T/bin5.meta" ||
  fail "bin5 meta"
[[ $(cat "$T/bin5.meta") == "K1 T1 1 bin" ]] || fail "consume | replay -i: key/tag/props lost: $(cat "$T/bin5.meta")"
# malformed lines: each reported with its line number and not sent, the others are, exit 1
# (as mq-send); receipts carry the input line numbers
printf '{"body":"ok"}\n{"body": \n{"body":"ok3"}\n[1]\n' >"$T/badlines"
rc=0; timeout 10 mq-replay -b "$B1" -i "$T/badlines" --to-topic bin4 --receipts >"$T/bad.receipts" 2>"$T/bad.err" || rc=$?
[[ $rc -eq 1 ]] || fail "malformed -i lines: exit $rc"
grep -q "^mq-replay: .*badlines: line 2: invalid JSON: column" "$T/bad.err" || fail "malformed -i line 2 not named: $(cat "$T/bad.err")"
grep -q "^mq-replay: .*badlines: line 4: expected a JSON object, got array$" "$T/bad.err" || fail "malformed -i line 4 not named: $(cat "$T/bad.err")"
[[ $(awk -F'\t' '{ print $1 ":" $6 }' "$T/bad.receipts" | tr '\n' ' ') == "1:SEND_OK 2:FAILED 3:SEND_OK 4:FAILED " ]] ||
  fail "-i receipts (every line has one, in order, as mq-send's): $(cat "$T/bad.receipts")"
[[ $(timeout 10 mq-replay -b "$B1" -t bin4 | sort | tr '\n' ' ') == "ok ok3 " ]] || fail "-i did not send the good lines"

# --- --to-topic keeps content and records provenance
timeout 10 mq-replay -b "$B1" -t r --queue 0 --until 5 --to-topic copy --receipts >"$T/copy.receipts" || fail "--to-topic"
[[ $(grep -c SEND_OK "$T/copy.receipts") -eq 5 ]] || fail "receipts: $(cat "$T/copy.receipts")"
timeout 10 mq-replay -b "$B1" -t r --queue 0 --until 5 --format json >"$T/orig.json" || fail "orig json"
timeout 10 mq-replay -b "$B1" -t copy --merge --format json >"$T/copy.json" || fail "copy json"
python3 - "$T" <<'PY' || fail "provenance wrong"
import json, sys
T = sys.argv[1]
orig = [json.loads(l) for l in open(T + "/orig.json")]
copy = [json.loads(l) for l in open(T + "/copy.json")]
assert len(copy) == 5, len(copy)
by_id = {o["id"]: o for o in orig}
assert sorted(c["props"]["mq.replay.origin_id"] for c in copy) == sorted(by_id), copy
for c in copy:
    p = c["props"]
    o = by_id[p["mq.replay.origin_id"]]
    assert c["body"] == o["body"], (c, o)
    assert p["mq.replay.origin_topic"] == "r", p
    assert p["mq.replay.origin_queue"] == "0", p
    assert p["mq.replay.origin_offset"] == str(o["offset"]), p
    assert p["mq.replay.origin_id"] == o["id"], p
    assert "mq.replay.replayed_at" in p, p
    assert c["id"] != o["id"]
PY

# --- --rate: 20 messages at 10/s take at least 1.5 s
start=$(date +%s%N)
timeout 20 mq-replay -b "$B1" -t r --queue 0 --until 20 --to-topic slow --rate 10 || fail "--rate"
ms=$((($(date +%s%N) - start) / 1000000))
[[ $ms -ge 1500 ]] || fail "--rate 10 sent 20 messages in ${ms}ms"
[[ $ms -lt 10000 ]] || fail "--rate 10 took ${ms}ms for 20 messages"
[[ $(timeout 10 mq-replay -b "$B1" -t slow | wc -l) -eq 20 ]] || fail "--rate lost messages"
# each copy's replayed_at is when it was published (after its pause): 20 distinct stamps
timeout 10 mq-replay -b "$B1" -t slow --format '%p{mq.replay.replayed_at}\n' >"$T/stamps"
[[ $(sort -u "$T/stamps" | wc -l) -eq 20 ]] || fail "--rate: replayed_at repeats: $(tr '\n' ' ' <"$T/stamps")"

# --- dead letters: an --exec that always fails, no retries
for i in 1 2 3 4 5; do echo "dead$i"; done | timeout 10 mq-send -b "$B1" -t w || fail "send w"
spawn cpid mq-consume -b "$B1" -t w -g workers --from earliest --exec "exit 3" --max-retries 0 \
  --commit-interval 200ms >"$T/consumer.out" 2>"$T/consumer.log"
wait_until 30 bash -c "[[ \$(timeout 5 mq-replay -b $B1 --dlq workers --dry-run 2>/dev/null | wc -l) -ge 5 ]]" ||
  fail "dead letters did not arrive"
kill -TERM "$cpid"
timeout 20 tail --pid="$cpid" -f /dev/null || fail "consumer did not stop"
wait "$cpid" || true
timeout 10 mq-offset -b "$B1" export -g workers >"$T/offsets.before" || fail "export workers"
timeout 10 mq-replay -b "$B1" --dlq workers --dry-run >"$T/dry.json" || fail "--dry-run"
python3 - "$T/dry.json" <<'PY' || fail "dry run listing wrong"
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
assert len(ls) == 5, len(ls)
assert sorted(l["body"] for l in ls) == ["dead%d" % i for i in range(1, 6)], ls
assert all(l["props"]["%ORIGIN_TOPIC"] == "w" for l in ls), ls
PY
[[ $(timeout 10 mq-replay -b "$B1" -t w | wc -l) -eq 5 ]] || fail "--dry-run published something"
# the listing re-published with -i: the broker's % properties are dropped (they would send the
# copies' retries and dead letters to topic w), the provenance is recorded instead
timeout 10 mq-replay -b "$B1" -i "$T/dry.json" --to-topic dlx || fail "-i of a dead-letter listing"
timeout 10 mq-replay -b "$B1" -t dlx --format json >"$T/dlx.json" || fail "read dlx"
python3 - "$T/dlx.json" <<'PY' || fail "-i kept the broker's properties"
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
assert len(ls) == 5, len(ls)
for l in ls:
    assert not [k for k in l["props"] if k.startswith("%")], l
    assert l["props"]["mq.replay.origin_topic"] == "%DLQ%workers", l
PY
# and a producer may not set them: the re-drive and the retries trust them
rc=0; timeout 10 mq-send -b "$B1" -t w -p %ORIGIN_TOPIC=audit forged 2>"$T/forge.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "names starting with % are the broker's" "$T/forge.err" ||
  fail "mq-send -p %ORIGIN_TOPIC: exit $rc, $(cat "$T/forge.err")"
rc=0; printf '%s\n' '{"body":"a"}' '{"body":"b","props":{"%DLQ_REASON":"x"}}' |
  timeout 10 mq-send -b "$B1" -t forged --json 2>"$T/forge.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q 'line 2: property "%DLQ_REASON": names starting with % are the broker' "$T/forge.err" ||
  fail "mq-send --json with a % property: exit $rc, $(cat "$T/forge.err")"
[[ $(timeout 10 mq-replay -b "$B1" -t forged) == a ]] || fail "mq-send --json: the good line was not sent alone"
timeout 10 mq-replay -b "$B1" --dlq workers --receipts >"$T/redrive" || fail "re-drive"
[[ $(grep -c SEND_OK "$T/redrive") -eq 5 ]] || fail "re-drive receipts: $(cat "$T/redrive")"
timeout 10 mq-replay -b "$B1" -t w --format json >"$T/w.json" || fail "w json"
python3 - "$T/w.json" <<'PY' || fail "re-driven messages wrong"
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
assert len(ls) == 10, len(ls)
red = [l for l in ls if "%REDRIVEN" in l["props"]]
assert sorted(l["body"] for l in red) == ["dead%d" % i for i in range(1, 6)], red
for l in red:
    assert l["reconsume"] == 0, l
    assert "%ORIGIN_TOPIC" not in l["props"] and "%DLQ_REASON" not in l["props"], l
    assert l["props"]["mq.replay.origin_topic"] == "%DLQ%workers", l
PY
# the second re-drive skips them; --dry-run lists nothing; --force re-drives again
timeout 10 mq-replay -b "$B1" --dlq workers --receipts >"$T/redrive2" 2>"$T/redrive2.err" || fail "second re-drive"
grep -q "group workers: 5 dead letters re-driven already, nothing new (--force re-drives every one again)" "$T/redrive2.err" ||
  fail "the second re-drive did not say why it did nothing: $(cat "$T/redrive2.err")"
[[ ! -s $T/redrive2 ]] || fail "second re-drive sent: $(cat "$T/redrive2")"
[[ $(timeout 10 mq-replay -b "$B1" -t w | wc -l) -eq 10 ]] || fail "second re-drive duplicated"
[[ $(timeout 10 mq-replay -b "$B1" --dlq workers --dry-run | wc -l) -eq 0 ]] || fail "dry run after re-drive not empty"
timeout 10 mq-replay -b "$B1" --dlq workers --force --to-topic wcopy || fail "--force"
[[ $(timeout 10 mq-replay -b "$B1" -t wcopy | wc -l) -eq 5 ]] || fail "--force to DEST did not re-drive 5"
# the replays touched no group: the workers group's offsets are where the consumer left them;
# the bookkeeping is the group redrive.workers on the dead-letter topic
timeout 10 mq-offset -b "$B1" export -g workers >"$T/offsets.after" || fail "export workers"
diff "$T/offsets.before" "$T/offsets.after" >/dev/null || fail "re-drive moved the workers group's offsets"
timeout 10 mq-offset -b "$B1" export -g redrive.workers >"$T/redrive.tsv" || fail "export redrive.workers"
[[ $(awk -F'\t' '$2 == "%DLQ%workers" { s += $5 } END { print s + 0 }' "$T/redrive.tsv") -eq 5 ]] ||
  fail "redrive bookkeeping: $(cat "$T/redrive.tsv")"

# --- a message larger than the destination takes: its own FAILED receipt, named; the others
# are published (the broker refuses a send request whole: it must not be batched with them)
{ echo small1; head -c 1000 /dev/zero | tr '\0' a; echo; echo small2; } |
  timeout 20 mq-send -b "$B1" -t big --queue 0 || fail "send big"
stop_broker b1 -TERM
restart_broker b1 --max-message-size 512
rc=0; timeout 10 mq-replay -b "$B1" -t big --to-topic big2 --receipts >"$T/big2" 2>"$T/big2.err" || rc=$?
[[ $rc -eq 1 && $(cut -f1,6 "$T/big2" | tr '\t\n' ': ') == "1:SEND_OK 2:FAILED 3:SEND_OK " ]] ||
  fail "replay of a message too large for the destination: exit $rc, $(cat "$T/big2" "$T/big2.err")"
grep -q "big:0 offset 1: message of 1000 bytes is larger than the limit of 512 bytes" "$T/big2.err" ||
  fail "the message too large is not named: $(cat "$T/big2.err")"
printf '{"body":"a"}\n{"body":"%s"}\n{"body":"b"}\n' "$(head -c 600 /dev/zero | tr '\0' a)" >"$T/big.json"
rc=0; timeout 10 mq-replay -b "$B1" -i "$T/big.json" --to-topic big3 --receipts >"$T/big3" 2>"$T/big3.err" || rc=$?
[[ $rc -eq 1 && $(cut -f1,6 "$T/big3" | tr '\t\n' ': ') == "1:SEND_OK 2:FAILED 3:SEND_OK " ]] ||
  fail "-i with a line too large for the destination: exit $rc, $(cat "$T/big3" "$T/big3.err")"
grep -q "big.json: line 2: message of 600 bytes is larger than the limit of 512 bytes" "$T/big3.err" ||
  fail "the line too large is not named: $(cat "$T/big3.err")"
[[ $(timeout 10 mq-replay -b "$B1" -t big3 --merge | sort | tr '\n' ' ') == "a b " ]] ||
  fail "-i: the lines beside the one too large were not published"

# --- messages not acknowledged: FAILED receipts in input order and exit 1, as mq-send
stop_broker b1 -TERM
restart_broker b1 --no-auto-create
rc=0
timeout 10 mq-replay -b "$B1" -t r --queue 0 --until 2 --to-topic nosuch --receipts >"$T/nack" 2>"$T/nack.err" || rc=$?
[[ $rc -eq 1 ]] || fail "unacknowledged replay: exit $rc"
[[ $(awk -F'\t' '$6 == "FAILED" { print $1 }' "$T/nack" | tr '\n' ' ') == "1 2 " ]] || fail "unacknowledged receipts: $(cat "$T/nack")"
grep -q "^mq-replay: 2 of 2 messages failed: .*nosuch does not exist" "$T/nack.err" || fail "unacknowledged: $(cat "$T/nack.err")"

# --- exit codes
rc=0; mq-replay -b "$B1" --bogus >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "unknown flag: exit $rc"
rc=0; mq-replay -b "$B1" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "no mode: exit $rc"
rc=0; mq-replay -b "$B1" -i "$T/bin.json" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "-i without --to-topic: exit $rc"
rc=0; mq-replay -b "$B1" -t r --from 1x >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "bad --from: exit $rc"
# -0 ends bodies only: with json or a template it would be ignored, so it is refused
for f in json '%o %s'; do
  rc=0; mq-replay -b 127.0.0.1:1 -t r --format "$f" -0 >/dev/null 2>"$T/nul.err" || rc=$?
  [[ $rc -eq 2 ]] && grep -q -- "-0 applies to --format body" "$T/nul.err" || fail "-0 with --format $f: exit $rc, $(cat "$T/nul.err")"
done
rc=0; mq-replay -b 127.0.0.1:1 --dlq g --dry-run -0 >/dev/null 2>"$T/nul.err" || rc=$?
[[ $rc -eq 2 ]] || fail "-0 with a dry run's JSON: exit $rc, $(cat "$T/nul.err")"
mq-replay -b "$B1" -t r --queue 0 --until 2 -0 | tr '\0' '\n' >"$T/nul.out"
[[ $(wc -l <"$T/nul.out") -eq 2 ]] || fail "-0 with bodies: $(od -c "$T/nul.out" | head -3)"
# a usage error before any broker is asked: exit 2 with none reachable
rc=0; timeout 10 mq-replay -b 127.0.0.1:1 -t r --until -2x >/dev/null 2>"$T/until.err" || rc=$?
[[ $rc -eq 2 ]] || fail "bad --until with no broker: exit $rc ($(cat "$T/until.err"))"
grep -q -- "--until: invalid time '-2x'" "$T/until.err" || fail "bad --until not named: $(cat "$T/until.err")"
rc=0; timeout 10 mq-replay -b 127.0.0.1:1 -t r >/dev/null 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "unreachable broker: exit $rc"
# a topic that does not exist: said, exit 0 (as mq-consume -e); a queue it lacks: exit 1
rc=0; timeout 10 mq-replay -b "$B1" -i "$T/no-such-file" --to-topic x 2>"$T/nofile.err" || rc=$?
[[ $rc -eq 2 ]] && grep -qx "mq-replay: $T/no-such-file: No such file or directory" "$T/nofile.err" ||
  fail "-i with a missing file: exit $rc, $(cat "$T/nofile.err")"
rc=0; timeout 10 mq-replay -b "$B1" -t nosuch >"$T/nosuch.out" 2>"$T/nosuch.err" || rc=$?
[[ $rc -eq 0 && ! -s $T/nosuch.out ]] && grep -q "topic 'nosuch' does not exist" "$T/nosuch.err" ||
  fail "replay of a missing topic: exit $rc, $(cat "$T/nosuch.err")"
rc=0; timeout 10 mq-replay -b "$B1" -t r --queue 9 >/dev/null 2>"$T/q9.err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "topic r has no queue 9 (it has 2" "$T/q9.err" ||
  fail "replay of a missing queue: exit $rc, $(cat "$T/q9.err")"
note "ok"
