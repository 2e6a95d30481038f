#!/usr/bin/env bash
# mq-offset: topics (TSV fields, json), show with the commit blocker of a live slow consumer,
# groups with live members, the lag of retries and dead letters, reset in every mode (dry-run,
# earliest/latest/OFFSET/--shift/--to-time, clamping, a --shift past int64, --queue), a reset
# while a group consumer runs (it continues from the new offset, its stale commit does not undo
# the reset), undo files,
# export/import round trip, bad TSV rejected with its line number and nothing applied, exit codes.
. "$(dirname "$0")/lib.sh"

start_broker b1 --flush async --queues 2
off() { timeout 15 mq-offset -b "$B1" "$@"; }
# committed GROUP TOPIC QUEUE: the group's committed offset from export ("" if none)
committed() { off export -g "$1" | awk -F'\t' -v t="$2" -v q="$3" '$2 == t && $4 == q { print $5 }'; }
expect_committed() {  # GROUP TOPIC QUEUE WANT WHAT
  local got
  got=$(committed "$1" "$2" "$3")
  [[ $got == "$4" ]] || fail "$5: committed $1 $2:$3 is '$got', expected $4"
}
# expect_both GROUP TOPIC WANT0 WANT1 WHAT: committed offsets of queues 0 and 1 (one export)
expect_both() {
  local got
  got=$(off export -g "$1" | awk -F'\t' -v t="$2" '$2 == t && $4 == 0 { a = $5 } $2 == t && $4 == 1 { b = $5 } END { print a " " b }')
  [[ $got == "$3 $4" ]] || fail "$5: committed $1 $2 queues 0 1 are '$got', expected $3 $4"
}
rc_of() { local rc=0; "$@" >"$T/rc.out" 2>"$T/rc.err" || rc=$?; echo "$rc"; }
send() {  # TOPIC QUEUE BODY...
  local t=$1 q=$2; shift 2
  printf '%s\n' "$@" | timeout 10 mq-send -b "$B1" -t "$t" --queue "$q" || fail "send to $t:$q"
}

# ---- messages at known times: queue 0 gets a1..a6 then b1..b4, queue 1 a1..a3 then b1..b2
send t 0 a1 a2 a3 a4 a5 a6
send t 1 a1 a2 a3
sleep 0.6
mid=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.6
send t 0 b1 b2 b3 b4
send t 1 b1 b2

# ---- topics: TSV with a header line, 12 fields per line (the last four: replication, none here)
off topics -t t >"$T/topics" || fail "topics"
[[ $(head -n 1 "$T/topics") == $'topic\tqueue\tbroker\tmin\tmax\tmessages\tbytes\tnewest\tslave\tslave_state\tslave_lag_bytes\tslave_lag_ms' ]] ||
  fail "topics header: $(head -n 1 "$T/topics")"
awk -F'\t' 'NF != 12 { exit 1 }' "$T/topics" || fail "topics lines without 12 fields: $(cat "$T/topics")"
awk -F'\t' 'NR > 1 && ($9 != "-" || $12 != "-") { exit 1 }' "$T/topics" || fail "slave columns without a slave: $(cat "$T/topics")"
[[ $(wc -l <"$T/topics") -eq 3 ]] || fail "topics -t t: $(cat "$T/topics")"
awk -F'\t' -v b="$B1" 'NR > 1 && !($1 == "t" && $3 == b && $4 == 0 && $7 > 0 && $8 ~ /^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T.*Z$/) { exit 1 }' \
  "$T/topics" || fail "topics fields: $(cat "$T/topics")"
grep -qP '^t\t0\t[^\t]+\t0\t10\t10\t' "$T/topics" || fail "topics queue 0: $(cat "$T/topics")"
grep -qP '^t\t1\t[^\t]+\t0\t5\t5\t' "$T/topics" || fail "topics queue 1: $(cat "$T/topics")"
off --format json topics >"$T/topics.json" || fail "topics --format json"
# the broker's internal delay store is listed only when named
off topics >"$T/topics.all" || fail "topics"
grep -q '^%SCHEDULE%' "$T/topics.all" && fail "topics lists %SCHEDULE% unasked: $(head -n 3 "$T/topics.all")"
grep -qP '^t\t0\t' "$T/topics.all" || fail "topics without -t misses t: $(cat "$T/topics.all")"
[[ $(off topics -t '%SCHEDULE%' | grep -c '^%SCHEDULE%') -ge 1 ]] || fail "topics -t %SCHEDULE% lists nothing"
[[ $(rc_of off topics -t nosuch) -eq 1 ]] || fail "topics of a missing topic should exit 1"

# ---- a group that consumed everything: show and export
timeout 20 mq-consume -b "$B1" -t t -g g --from earliest -e >"$T/g.out" || fail "consume g"
[[ $(wc -l <"$T/g.out") -eq 15 ]] || fail "group g consumed $(wc -l <"$T/g.out") of 15"
off show -g g -t t >"$T/show" || fail "show"
[[ $(head -n 1 "$T/show") == $'topic\tqueue\tbroker\tcommitted\tmax\tlag\tmember\tblocker\tage\treconsume\twaiting' ]] ||
  fail "show header: $(head -n 1 "$T/show")"
grep -qP '^t\t0\t[^\t]+\t10\t10\t0\t' "$T/show" || fail "show queue 0: $(cat "$T/show")"
grep -qP '^t\t1\t[^\t]+\t5\t5\t0\t' "$T/show" || fail "show queue 1: $(cat "$T/show")"
expect_both g t 10 5 "after consuming"

# ---- reset --dry-run changes nothing and writes no undo file
off reset -g g -t t --to earliest --dry-run --undo-dir "$T/undo" >"$T/dry" 2>"$T/dry.err" || fail "dry-run"
grep -qP '^t\t0\t[^\t]+\t10\t0\tdry-run$' "$T/dry" || fail "dry-run output: $(cat "$T/dry")"
grep -qP '^t\t1\t[^\t]+\t5\t0\tdry-run$' "$T/dry" || fail "dry-run output: $(cat "$T/dry")"
expect_both g t 10 5 "dry-run"
[[ -z $(ls -A "$T/undo" 2>/dev/null) ]] || fail "dry-run wrote an undo file"

# ---- reset --to earliest writes an undo file; importing it restores the old offsets
off reset -g g -t t --to earliest --undo-dir "$T/undo" >"$T/r1" 2>"$T/r1.err" || fail "reset earliest: $(cat "$T/r1.err")"
grep -qP '^t\t0\t[^\t]+\t10\t0\treset$' "$T/r1" || fail "reset output: $(cat "$T/r1")"
expect_both g t 0 0 "--to earliest"
undo=$(sed -n 's/.*undo file: \([^ ]*\) .*/\1/p' "$T/r1.err")
[[ -f $undo && $undo == "$T/undo/"* ]] || fail "undo file path not printed or missing: $(cat "$T/r1.err")"
[[ $(ls "$T/undo" | wc -l) -eq 1 ]] || fail "expected one undo file: $(ls "$T/undo")"
printf 'g\tt\t%s\t0\t10\ng\tt\t%s\t1\t5\n' "$B1" "$B1" | diff - "$undo" >/dev/null || fail "undo file: $(cat "$undo")"
off import <"$undo" >"$T/imp1" || fail "import of the undo file"
expect_both g t 10 5 "undo"

# ---- OFFSET, clamping, --queue, --shift, latest, --to-time
off reset -g g -t t --to 3 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "--to 3"
expect_both g t 3 3 "--to 3"
off reset -g g -t t --to 7 --queue 1 --undo-dir "$T/undo" >"$T/r2" 2>/dev/null || fail "--to 7 --queue 1"
expect_both g t 3 5 "--to 7 --queue 1 (clamped to the end of queue 1, queue 0 left alone)"
[[ $(wc -l <"$T/r2") -eq 2 ]] || fail "--queue 1 printed: $(cat "$T/r2")"
off reset -g g -t t --shift -2 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "--shift -2"
expect_both g t 1 3 "--shift -2"
off reset -g g -t t --shift=-100 --queue 0 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "--shift=-100"
expect_both g t 0 3 "--shift -100 --queue 0 clamped to the start"
# a shift whose sum overflows int64 saturates: the end (it wrapped to the start), the start
off reset -g g -t t --shift 9223372036854775805 --queue 1 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "--shift 2^63-3"
expect_both g t 0 5 "--shift 9223372036854775805 --queue 1 clamped to the end"
off reset -g g -t t --shift=-9223372036854775808 --queue 1 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "--shift -2^63"
expect_both g t 0 0 "--shift -9223372036854775808 --queue 1 clamped to the start"
off reset -g g -t t --to 999999 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "--to 999999"
expect_both g t 10 5 "--to 999999 clamped"
off reset -g g -t t --to earliest --undo-dir "$T/undo" >/dev/null 2>&1 || fail "earliest again"
off reset -g g -t t --to latest --undo-dir "$T/undo" >/dev/null 2>&1 || fail "--to latest"
expect_both g t 10 5 "--to latest"
off reset -g g -t t --to-time "$mid" --undo-dir "$T/undo" >"$T/r3" 2>/dev/null || fail "--to-time $mid"
expect_both g t 6 3 "--to-time between the batches"
timeout 20 mq-consume -b "$B1" -t t -g g -e | sort >"$T/after-time" || fail "consume after --to-time"
printf '%s\n' b1 b1 b2 b2 b3 b4 | diff - "$T/after-time" >/dev/null || fail "after --to-time got: $(tr '\n' ' ' <"$T/after-time")"
off reset -g g -t t --to earliest --dry-run --format json >"$T/reset.json" || fail "reset --format json"

# ---- export/import round trip, and an edit in between
off export -g g >"$T/exp" || fail "export"
[[ $(awk -F'\t' '$2 == "t"' "$T/exp" | wc -l) -eq 2 ]] || fail "export: $(cat "$T/exp")"
awk -F'\t' 'NF != 5 { exit 1 }' "$T/exp" || fail "export lines without 5 fields: $(cat "$T/exp")"
off reset -g g -t t --to earliest --undo-dir "$T/undo" >/dev/null 2>&1 || fail "earliest before import"
off import <"$T/exp" >/dev/null || fail "import"
off export -g g | diff "$T/exp" - >/dev/null || fail "export after import differs"
sed 's/^\(g\tt\t[^\t]*\t0\t\)10$/\14/' "$T/exp" | off import >/dev/null || fail "import of an edited file"
expect_both g t 4 5 "edited import"
off --format json export -g g >"$T/export.json" || fail "export --format json"
off --format table export -g g -t t >"$T/export.table" || fail "export --format table"
[[ $(head -n 1 "$T/export.table" | tr -s ' ') == "GROUP TOPIC BROKER QUEUE OFFSET" ]] ||
  fail "export --format table: $(cat "$T/export.table")"

# ---- bad TSV: rejected with its line number, nothing applied
printf '# comment\ng\tt\t%s\t0\t7\ng\tt\t%s\t1\n' "$B1" "$B1" >"$T/bad1"
[[ $(rc_of off import <"$T/bad1") -eq 2 ]] || fail "import with a short line should exit 2"
grep -q 'line 3' "$T/rc.err" || fail "short line not named: $(cat "$T/rc.err")"
printf 'g\tt\t%s\t0\t7\ng\tt\t%s\t1\t12x\n' "$B1" "$B1" >"$T/bad2"
[[ $(rc_of off import <"$T/bad2") -eq 2 ]] || fail "import with a bad number should exit 2"
grep -q "line 2.*12x" "$T/rc.err" || fail "bad number not named: $(cat "$T/rc.err")"
expect_both g t 4 5 "a rejected import applied something"
# a topic or queue the broker does not have: named with its line, exit 1, nothing applied
printf 'g\tt\t%s\t0\t7\ng\tt\t%s\t9\t1\n' "$B1" "$B1" >"$T/bad3"
[[ $(rc_of off import <"$T/bad3") -eq 1 ]] || fail "import of a missing queue should exit 1"
grep -q "line 2: topic t has no queue 9" "$T/rc.err" || fail "missing queue not named: $(cat "$T/rc.err")"
printf 'g\tt\t%s\t0\t7\ng\tnosuch\t%s\t0\t1\n' "$B1" "$B1" >"$T/bad4"
[[ $(rc_of off import <"$T/bad4") -eq 1 ]] || fail "import of a missing topic should exit 1"
grep -q "line 2: topic nosuch does not exist" "$T/rc.err" || fail "missing topic not named: $(cat "$T/rc.err")"
expect_both g t 4 5 "an import naming a missing queue applied something"
off export -g g | grep -q nosuch && fail "an import of a missing topic left an offset for it"
# usage errors are found before any broker is asked
[[ $(rc_of off reset -g g -t t --to-time yesterday -b 127.0.0.1:1) -eq 2 ]] ||
  fail "reset --to-time yesterday: exit $(cat "$T/rc.err")"
[[ $(rc_of off reset -g newgroup -t t --to 1 --undo-dir "$T/undo-new") -eq 0 ]] ||
  fail "reset of a group without offsets: $(cat "$T/rc.err")"
grep -q "no undo file: group newgroup had no committed offset" "$T/rc.err" ||
  fail "a reset with nothing to undo did not say so: $(cat "$T/rc.err")"
[[ -z $(ls -A "$T/undo-new" 2>/dev/null) ]] || fail "an empty undo file was left: $(ls "$T/undo-new")"
[[ $(rc_of off reset -g nogroup -t t --shift 1 --undo-dir "$T/undo") -eq 1 ]] ||
  fail "--shift for a group without offsets should exit 1: $(cat "$T/rc.err")"

# ---- a live consumer whose --exec is slow: show names the commit blocker, groups the member
send s 0 block x1 x2 x3 x4
cat >"$T/slow.sh" <<'SH'
read -r b
if [ "$b" = block ]; then sleep 30; fi
exit 0
SH
spawn spid mq-consume -b "$B1" -t s -g slow --from earliest --exec "sh $T/slow.sh" --concurrency 4 \
  --commit-interval 200ms >/dev/null 2>"$T/slow.log"
blocked() { off show -g slow -t s | grep -qP '^s\t0\t[^\t]+\t0\t5\t5\t[^\t-][^\t]*\t0\t[^\t-][^\t]*\t0\t4$'; }
wait_until 20 blocked || fail "show never named the blocker: $(off show -g slow -t s)"
off --format json show -g slow -t s >"$T/show.json" || fail "show --format json"
off groups >"$T/groups" || fail "groups"
[[ $(head -n 1 "$T/groups") == $'group\tmembers\ttopics\tlag\thosts' ]] || fail "groups header: $(head -n 1 "$T/groups")"
grep -P "^slow\t1\t[^\t]*s[^\t]*\t5\t.*pid $spid" "$T/groups" >/dev/null || fail "groups: $(cat "$T/groups")"
grep -qP '^g\t0\t' "$T/groups" || fail "groups misses g: $(cat "$T/groups")"
off --format json groups >"$T/groups.json" || fail "groups --format json"
kill_tree -9 "$spid"

# ---- show: the lag of %RETRY%GROUP and the size of %DLQ%GROUP. poison* dead-letter at once,
# fail* are sent back and hang when retried, so the retry topic is pulled but never committed
cat >"$T/fail.sh" <<'SH'
read -r b
case $b in poison*) exit 65 ;; esac
if [ "$MQ_RECONSUME" -gt 0 ]; then sleep 30; fi
exit 3
SH
send f 0 fail1 fail2 fail3 poison1 poison2
spawn fpid mq-consume -b "$B1" -t f -g fg --from earliest --exec "sh $T/fail.sh" --concurrency 8 \
  --commit-interval 200ms >/dev/null 2>"$T/fg.log"
# sums over the queues of a topic in show: FIELD (5 max, 6 lag) TOPIC
show_sum() { off show -g fg -t f | awk -F'\t' -v t="$2" -v f="$1" '$1 == t { s += $f } END { print s + 0 }'; }
retried() { [[ $(show_sum 5 '%RETRY%fg') -eq 3 && $(show_sum 6 '%DLQ%fg') -eq 2 ]]; }
wait_until 20 retried || fail "show never had 3 retries and 2 dead letters: $(off show -g fg -t f)"
kill -STOP "$fpid"  # so that it cannot count its commands killed below as failed and finished
kill_tree -9 "$fpid"
off show -g fg -t f >"$T/show.fg" || fail "show fg"
awk -F'\t' '$1 == "%RETRY%fg" { c += $4; m += $5; l += $6 } END { exit !(c == 0 && m == 3 && l == 3) }' "$T/show.fg" ||
  fail "show: %RETRY%fg should have lag 3 (3 retries pulled, none finished): $(cat "$T/show.fg")"
awk -F'\t' '$1 == "%DLQ%fg" { l += $6; if ($4 != "-") bad = 1 } END { exit !(l == 2 && !bad) }' "$T/show.fg" ||
  fail "show: %DLQ%fg should have size 2 and no committed offset: $(cat "$T/show.fg")"
awk -F'\t' '$1 == "f" { c += $4; l += $6 } END { exit !(c == 5 && l == 0) }' "$T/show.fg" ||
  fail "show: f should be committed to its end (failures count as finished once sent back): $(cat "$T/show.fg")"
# groups adds up the lags show gives: the dead letters' too
[[ $(off groups | awk -F'\t' '$1 == "fg" { print $4 }') == 5 ]] ||
  fail "groups: fg's lag should be 5 (3 retries, 2 dead letters), as in show: $(off groups)"
# a retry that reached %RETRY%GROUP after the group's last member left: no offset there yet,
# and a member starts it at its first message, so it is lag, not nothing to do
send er 0 again
timeout 20 mq-consume -b "$B1" -t er -g eg --from earliest --exec 'exit 1' -e >/dev/null 2>&1 ||
  fail "eg: a failed message sent back should exit 0"
wait_until 20 bash -c "timeout 5 mq-offset -b '$B1' topics -t '%RETRY%eg' --format tsv 2>/dev/null | awk -F'\t' 'NR > 1 { s += \$6 } END { exit !(s >= 1) }'" ||
  fail "the retry never reached %RETRY%eg: $(off topics -t '%RETRY%eg')"
[[ $(off show -g eg | awk -F'\t' '$1 == "%RETRY%eg" { l += $6 } END { print l + 0 }') -eq 1 ]] ||
  fail "show: %RETRY%eg with no offset holds 1 retry, lag 1: $(off show -g eg)"
[[ $(off groups | awk -F'\t' '$1 == "eg" { print $4 }') == 1 ]] ||
  fail "groups: eg's lag should be 1 (a retry waiting): $(off groups)"

# ---- a reset while a group consumer runs
cat >"$T/live.sh" <<'SH'
read -r b
case $b in hold*) echo >>"$OUT/$b.started"; sleep 4 ;; esac
echo "$b" >>"$OUT/live.out"
SH
export OUT=$T
send r 0 1 2 3 4 5
spawn lpid mq-consume -b "$B1" -t r -g live --from earliest --exec "sh $T/live.sh" --commit-interval 200ms \
  >/dev/null 2>"$T/live.log"
lines() { [[ -f $T/live.out ]] && wc -l <"$T/live.out" || echo 0; }
wait_until 20 bash -c "[[ \$(wc -l <$T/live.out 2>/dev/null) -ge 5 ]]" || fail "live consumer processed $(lines) of 5"
wait_until 10 bash -c "[[ \$(timeout 5 mq-offset -b $B1 export -g live | awk -F'\t' '\$2 == \"r\" && \$4 == 0 { print \$5 }') == 5 ]]" ||
  fail "live consumer did not commit 5"
off reset -g live -t r --to 2 --queue 0 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "reset while running"
wait_until 15 bash -c "[[ \$(wc -l <$T/live.out) -ge 8 ]]" || fail "after the reset the consumer processed $(lines) (want 8)"
printf '%s\n' 1 2 3 4 5 3 4 5 | diff - "$T/live.out" >/dev/null || fail "live after reset: $(tr '\n' ' ' <"$T/live.out")"
sleep 1
expect_committed live r 0 5 "after reprocessing"
# a message in flight while the group is moved past it: its late finish must not pull the
# offset back, the messages skipped are not processed, and new ones are
send r 0 hold skip1 skip2
wait_until 10 test -f "$T/hold.started" || fail "hold never started"
off reset -g live -t r --to latest --queue 0 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "reset past a running message"
expect_committed live r 0 8 "--to latest while hold runs"
wait_until 15 grep -qx hold "$T/live.out" || fail "hold never finished"
sleep 1.5   # several commit intervals after hold finished
expect_committed live r 0 8 "a stale commit undid the reset"
send r 0 after
wait_until 15 grep -qx after "$T/live.out" || fail "message after the reset not processed: $(tr '\n' ' ' <"$T/live.out")"
# skip1 and skip2 were pulled and queued behind hold (one command at a time) when the reset
# notice came: neither may start
grep -q skip "$T/live.out" && fail "messages skipped by the reset were processed: $(tr '\n' ' ' <"$T/live.out")"
wait_until 10 bash -c "[[ \$(timeout 5 mq-offset -b $B1 export -g live | awk -F'\t' '\$2 == \"r\" && \$4 == 0 { print \$5 }') == 9 ]]" ||
  fail "commit after the reset: $(committed live r 0), expected 9"
# a reset back past a running message (hold2 at 9, b1 at 10 queued behind it, reset to 8):
# after, hold2 and b1 are pulled and run again, and the first run of hold2 finishing late
# must not count for the second (nothing pulled before the reset is committed)
send r 0 hold2 b1
wait_until 10 test -f "$T/hold2.started" || fail "hold2 never started"
off reset -g live -t r --to 8 --queue 0 --undo-dir "$T/undo" >/dev/null 2>&1 || fail "reset back past a running message"
twice() { [[ $(wc -l <"$T/hold2.started") -ge 2 ]]; }
wait_until 15 twice || fail "hold2 did not run again after the reset: $(tr '\n' ' ' <"$T/live.out")"
sleep 1   # several commit intervals into the second run of hold2
expect_committed live r 0 9 "the first run of hold2 counted for its second (committed while it runs)"
wait_until 15 bash -c "[[ \$(grep -c b1 $T/live.out) -ge 1 ]]" || fail "b1 not processed after the reset"
wait_until 10 bash -c "[[ \$(timeout 5 mq-offset -b $B1 export -g live | awk -F'\t' '\$2 == \"r\" && \$4 == 0 { print \$5 }') == 11 ]]" ||
  fail "commit after the second reset: $(committed live r 0), expected 11"
printf '%s\n' 1 2 3 4 5 3 4 5 hold after hold2 after hold2 b1 | diff - "$T/live.out" >/dev/null ||
  fail "live after the resets: $(tr '\n' ' ' <"$T/live.out")"
kill -TERM "$lpid"
timeout 15 tail --pid="$lpid" -f /dev/null || fail "live consumer did not stop"

# ---- --format json parses (one python run: it starts slowly on a loaded machine)
python3 -S - "$T" "$spid" <<'PY' || fail "--format json output"
import json, sys
t, spid = sys.argv[1], sys.argv[2]
load = lambda name: json.load(open(f"{t}/{name}.json"))
rows = [r for r in load("topics") if r["topic"] == "t"]
assert sorted((r["queue"], r["min"], r["max"], r["messages"]) for r in rows) == [(0, 0, 10, 10), (1, 0, 5, 5)], rows
assert all(isinstance(r["bytes"], int) and r["bytes"] > 0 for r in rows), rows
rows = load("reset")
assert sorted((r["queue"], r["old"], r["new"], r["result"]) for r in rows) == [(0, 10, 0, "dry-run"), (1, 5, 0, "dry-run")], rows
r = [r for r in load("show") if r["topic"] == "s" and r["queue"] == 0][0]
assert (r["committed"], r["max"], r["lag"], r["blocker"], r["reconsume"], r["waiting"]) == (0, 5, 5, 0, 0, 4), r
assert r["member"] and r["age"], r
rows = sorted((r["topic"], r["queue"], r["offset"]) for r in load("export") if r["topic"] == "t")
assert rows == [("t", 0, 4), ("t", 1, 5)], rows
assert all(r["group"] == "g" and ":" in r["broker"] for r in load("export")), load("export")
g = {r["group"]: r for r in load("groups")}
assert g["slow"]["members"] == 1 and f"pid {spid}" in g["slow"]["hosts"], g
assert g["g"]["members"] == 0 and g["g"]["hosts"] is None, g  # nothing to show is null, not "-"
assert all(r["slave"] is None and r["slave_lag_ms"] is None for r in load("topics")), load("topics")
PY

# ---- a reader gone before anything is written (| head that has exited): a normal end,
# status 0 and nothing on stderr, in every format (not death by SIGPIPE)
closed_stdout() {  # COMMAND...: prints its exit status and what it wrote on stderr
  python3 -c 'import os, subprocess, sys
r, w = os.pipe(); os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)
print(f"{p.returncode} {p.stderr.decode().strip()}".strip())' "$@"
}
for f in table tsv json; do
  for cmd in topics groups "show -g fg" "export -g g"; do
    got=$(closed_stdout mq-offset -b "$B1" --format $f $cmd)
    [[ $got == 0 ]] || fail "$cmd --format $f into a closed pipe: '$got', expected status 0 and no message"
  done
done
got=$(closed_stdout mq-offset -b "$B1" --format json reset -g g -t t --to latest --undo-dir "$T/undo.closed")
[[ $got == "0 mq-offset: undo file: "* ]] || fail "reset into a closed pipe: '$got'"

# ---- exit codes
[[ $(rc_of off show -g nosuch) -eq 1 ]] || fail "show of an unknown group should exit 1: $(cat "$T/rc.err")"
[[ $(rc_of off show -g g -t nosuch) -eq 1 ]] && grep -q 'topic nosuch does not exist' "$T/rc.err" ||
  fail "show of a missing topic: $(cat "$T/rc.err")"
[[ $(rc_of off export -g nosuch -t t) -eq 1 ]] && grep -q 'group nosuch has no offsets for topic t' "$T/rc.err" ||
  fail "export of a group without offsets on a topic: $(cat "$T/rc.err")"
[[ $(rc_of off show) -eq 2 ]] || fail "show without -g should exit 2"
[[ $(rc_of off nosuchcmd) -eq 2 ]] || fail "unknown command should exit 2"
[[ $(rc_of off --format yaml topics) -eq 2 ]] || fail "--format yaml should exit 2"
[[ $(rc_of off reset -g g -t t) -eq 2 ]] || fail "reset without a target should exit 2"
[[ $(rc_of off reset -g g -t t --to earliest --shift 1) -eq 2 ]] || fail "reset with two targets should exit 2"
[[ $(rc_of off reset -g g -t t --to soon) -eq 2 ]] || fail "reset --to soon should exit 2"
[[ $(rc_of off reset -g g -t t --shift 9223372036854775808) -eq 2 ]] && grep -q 'out of range' "$T/rc.err" ||
  fail "reset --shift 2^63 should exit 2 saying it is out of range: $(cat "$T/rc.err")"
[[ $(rc_of off reset -g g -t nosuch --to earliest) -eq 1 ]] || fail "reset of a missing topic should exit 1"
[[ $(rc_of timeout 15 mq-offset -b 127.0.0.1:1 --timeout 1s topics) -eq 1 ]] || fail "unreachable broker should exit 1"
echo "$TEST_NAME: ok"
