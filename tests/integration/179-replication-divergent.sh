#!/usr/bin/env bash
# A slave whose log is not a prefix of its master's is refused, never spliced or counted:
# (1) the master's data replaced while the slave holds more: sync sends are SLAVE_NOT_AVAILABLE,
# not SEND_OK for records the slave never gets; (2) the master's data replaced by as many bytes
# again, record boundaries alike: the slave's log is not extended with the other log's records;
# (3) the slave's data moved away: it copies the master afresh; (4)-(6) see below.
. "$(dirname "$0")/lib.sh"

logs_equal() { same_logs "$T/m" "$T/s"; }
log_after() { tail -n +"$(($2 + 1))" "$T/$1.log" | grep -q -- "$3"; }  # NAME LINES PATTERN

start_broker m --replication sync --replication-timeout 1s
start_broker s --role slave --master "$M"
seq -w 1000 1999 | sed 's/^/A-/' | timeout 30 mq-send -b "$M" -t d --receipts >"$T/r1" || fail "first send: exit $?"
wait_until 20 logs_equal || fail "the slave did not catch up"

# --- 1. the master's data wiped: the slave is ahead
stop_broker m -TERM
rm -rf "$T/m"
lines=$(count_lines "$T/s.log")
start_broker m --replication sync --replication-timeout 1s
wait_until 20 log_after s "$lines" "master refuses this slave: the slave's log ends at .*, past this master's log end" ||
  fail "the slave did not say its master refused it: $(tail -n 3 "$T/s.log")"
grep -q "refused slave .*past this master's log end" "$T/m.log" || fail "the master did not log the refusal"
rc=0; timeout 20 mq-send -b "$M" -t d2 --receipts new-1 new-2 >"$T/r2" 2>/dev/null || rc=$?
[[ $rc -eq 1 && $(grep -c $'\tSLAVE_NOT_AVAILABLE$' "$T/r2") -eq 2 ]] ||
  fail "sync sends with a refused slave: exit $rc, $(cat "$T/r2") (SEND_OK would count a slave that has not got them)"
[[ $(timeout 10 mq-offset -b "$M" topics --format tsv | awk -F'\t' '$1 == "d2" { print $10 }' | sort -u) != connected ]] ||
  fail "the refused slave is shown connected"

# --- 2. the master's data replaced by as many bytes again, records of the same sizes
stop_broker s -TERM
stop_broker m -TERM
rm -rf "$T/m"
start_broker m
seq -w 1000 3999 | sed 's/^/B-/' | timeout 30 mq-send -b "$M" -t d --receipts >"$T/r3" || fail "second log: exit $?"
lines=$(count_lines "$T/s.log")
restart_broker s
wait_until 20 log_after s "$lines" "master refuses this slave: the slave's log differs from this master's before position" ||
  fail "a divergent slave was not refused: $(tail -n 3 "$T/s.log")"
sleep 1
stop_broker m -TERM  # (with its master up, a client of the slave reads the master)
timeout 20 mq-consume -b "$S" -t d --from earliest -e >"$T/s-read" 2>/dev/null || fail "read the slave: exit $?"
[[ $(count_lines "$T/s-read") -eq 1000 && $(grep -c '^A-' "$T/s-read") -eq 1000 ]] ||
  fail "the slave's log was spliced: $(count_lines "$T/s-read") messages, $(grep -c '^B-' "$T/s-read") of the other log"

# --- 3. what the message says to do: the slave's data moved away, it copies the master afresh
stop_broker s -TERM
mv "$T/s" "$T/s.old"
mkdir "$T/s"
restart_broker m
restart_broker s
wait_until 30 logs_equal || fail "a fresh slave did not copy the master"

# --- 4. the master's data replaced while the slave was stopped (SIGSTOP): it reconnects without
# having seen its connection go, and its first request brought no log tail to compare, so only
# the log ends were: the slave's log was extended with the other log's records (helper-32)
stop_broker m -TERM
cp -a "$T/m" "$T/m.bak"
rm -f "$T/m.bak/LOCK"
restart_broker m
seq 1000 1099 | sed 's/^/L/' | timeout 30 mq-send -b "$M" -t d -q || fail "the L records"
wait_until 20 logs_equal || fail "the slave did not copy the L records"
kill -STOP "${PIDS[s]}"
stop_broker m -TERM
rm -rf "$T/m"
mv "$T/m.bak" "$T/m"
restart_broker m
seq 1000 1299 | sed 's/^/N/' | timeout 30 mq-send -b "$M" -t d -q || fail "the N records"
lines=$(count_lines "$T/s.log")
kill -CONT "${PIDS[s]}"
wait_until 20 log_after s "$lines" "master refuses this slave: the slave's log differs from this master's before position" ||
  fail "a slave that reconnected after a stop was not refused: $(tail -n 3 "$T/s.log")"
stop_broker m -TERM
timeout 20 mq-consume -b "$S" -t d --from earliest -e >"$T/s-read4" 2>/dev/null || fail "read the slave: exit $?"
[[ $(grep -c '^N' "$T/s-read4") -eq 0 && $(grep -c '^L' "$T/s-read4") -eq 100 ]] ||
  fail "the slave's log was spliced: $(grep -c '^N' "$T/s-read4") records of the other log"
stop_broker s -TERM

# --- 5. a master whose first segments retention deleted (checked a second after its start, and
# said in its log): a new slave copies it from its first kept byte, each queue from its first
# kept offset, the same offsets as on the master, also after a kill -9 and a restart; a queue
# with no record kept counts on from the master's offset
start_broker old --segment-size 64KiB --retention 2s
seq 1 10 | timeout 30 mq-send -b "$OLD" -t gone --queue 0 -q || fail "records of a topic retention deletes whole"
seq -w 1 4000 | timeout 30 mq-send -b "$OLD" -t o -q || fail "the old master's records"
stop_broker old -TERM
sleep 3
restart_broker old
wait_until 20 grep -q "retention: deleted [0-9]* log segment" "$T/old.log" || fail "retention did not run at the start: $(tail -n 2 "$T/old.log")"
# what it deleted, said in a size that is not 0 (it said '0 MiB' below a MiB)
grep -qE "retention: deleted [0-9]+ log segments? \([0-9.]+ (bytes|KiB|MiB|GiB)\)" "$T/old.log" ||
  fail "retention's line: $(grep 'retention: deleted' "$T/old.log" | head -n 1)"
start_broker fresh --role slave --master "$OLD"
wait_until 20 grep -q "kept its log from position [1-9][0-9]* on .*this slave's log starts there" "$T/fresh.log" ||
  fail "a new slave of a master without its first segment: $(tail -n 2 "$T/fresh.log")"
seq -w 5001 5100 | timeout 30 mq-send -b "$OLD" -t o -q || fail "records after the slave's start"
wait_until 20 same_logs "$T/old" "$T/fresh" || fail "the slave did not copy the master's kept log"
read_all() { timeout 20 mq-consume -b "$1" -t o --from earliest -e --format '%q %o %s\n' 2>/dev/null | sort; }
read_all "$OLD" >"$T/old-read"
n=$(count_lines "$T/old-read")
[[ $n -gt 100 && $n -lt 4100 && $(awk '$2 == 0' "$T/old-read" | wc -l) -eq 0 ]] ||
  fail "the master's kept messages: $n, $(awk '$2 == 0' "$T/old-read" | wc -l) at offset 0 (retention should have deleted those)"
# a tail or replay asked for offsets retention deleted says so, and where it starts (it was silent)
min0=$(timeout 20 mq-offset -b "$OLD" topics -t o --format tsv | awk '$2 == 0 { print $4 }')
[[ $min0 -gt 0 ]] || fail "queue 0 of o kept its first offset: min '$min0'"
timeout 20 mq-consume -b "$OLD" -t o --from 0 -e >/dev/null 2>"$T/tail-gone.err" || fail "tail from 0"
grep -q "o:0 on .*: offsets 0 to $((min0 - 1)) were deleted (--retention): starting at $min0" "$T/tail-gone.err" ||
  fail "a tail from deleted offsets: $(cat "$T/tail-gone.err")"
timeout 20 mq-replay -b "$OLD" -t o --queue 0 --from 0 >/dev/null 2>"$T/replay-gone.err" || fail "replay from 0"
grep -q "o:0 on .*: offsets 0 to $((min0 - 1)) were deleted (--retention): starting at $min0" "$T/replay-gone.err" ||
  fail "a replay from deleted offsets: $(cat "$T/replay-gone.err")"
stop_broker fresh -9
restart_broker fresh
stop_broker old -TERM  # (with its master up, a client of the slave reads the master)
read_all "$FRESH" >"$T/fresh-read"
cmp -s "$T/old-read" "$T/fresh-read" ||
  fail "the slave started mid-log serves other offsets or messages than its master: $(diff "$T/old-read" "$T/fresh-read" | head -n 4)"
# a topic none of whose records the master kept: known to the slave, its queue counting on from 10
# (what consumers committed there), not from 0
gone=$(timeout 20 mq-offset -b "$FRESH" topics -t gone --format tsv | awk '$2 == 0 { print $4, $5 }')
[[ $gone == "10 10" ]] || fail "the slave's queue of a topic without kept records: '$gone' (min max), expected '10 10'"

# --- 6. a slave whose log ends below where its master's starts now (stopped for longer than
# the master's retention) is refused saying so, not left waiting as "connected" for ever
stop_broker fresh -TERM
restart_broker old
seq -w 1 4000 | timeout 30 mq-send -b "$OLD" -t o -q || fail "more of the old master's records"
stop_broker old -TERM
sleep 3
lines=$(count_lines "$T/old.log")
restart_broker old
wait_until 20 log_after old "$lines" "retention: deleted [0-9]* log segment" || fail "retention did not run at the second start"
restart_broker fresh
wait_until 20 grep -q "master refuses this slave: its log starts at byte [1-9][0-9]* .*this slave's log ends at byte [1-9]" "$T/fresh.log" ||
  fail "a slave below its master's log start: $(tail -n 2 "$T/fresh.log")"
grep -q "refused slave .*below this master's log start" "$T/old.log" || fail "the master did not log the refusal"

# --- 7. a slave that holds no record but whose log starts elsewhere than its master's (its first
# copy from a master's later start failed after its log had moved there, and the master's
# retention went on since): it asks from 0 again and copies from the master's start now, instead of
# asking from its own start, which the master cannot check (no tail to compare) and refuses for ever
stop_broker fresh -TERM
start_broker moved
stop_broker moved -TERM
seg=$(ls "$T/moved/commitlog")
[[ $seg == 00000000000000000000 ]] || fail "a new broker's log: $seg"
mv "$T/moved/commitlog/$seg" "$T/moved/commitlog/00000000000000004096"
restart_broker moved --role slave --master "$OLD"
wait_until 20 same_logs "$T/old" "$T/moved" ||
  fail "a slave without records at another start did not copy its master: $(tail -n 2 "$T/moved.log")"
grep -q "kept its log from position [1-9][0-9]* on .*this slave's log starts there" "$T/moved.log" ||
  fail "the slave did not say where its log starts now"
echo "$TEST_NAME: ok"
