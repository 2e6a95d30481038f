#!/usr/bin/env bash
# Reading while a master is down (issue 7), without a group:
# 1. A tail (mq-consume without -g) started with the master up continues on the slave when the
#    master is killed (-9), and back on the master when it returns; each queue continues at
#    exactly its next offset: the output is every message once, in offset order per queue.
# 2. mq-offset show and export read from the slave while the master is down (the replicated
#    committed offsets), saying so on stderr; reset fails naming the master (exit 1).
. "$(dirname "$0")/lib.sh"

logs_equal() { same_logs "$T/m" "$T/s"; }
lines_at_least() { [[ -f $1 && $(count_lines "$1") -ge $2 ]]; }
# committed FILE GROUP TOPIC: the sum of GROUP's committed offsets on TOPIC in an offsets.json
committed() {
  [[ -s $1 ]] || { echo 0; return; }
  jq -r --arg g "$2" --arg t "$3" '[.offsets[] | select(.group == $g and .topic == $t) | .offset] | add // 0' "$1"
}
committed_is() { [[ $(committed "$1" "$2" "$3") -eq $4 ]]; }
# send FIRST LAST: bodies FIRST..LAST, one acknowledged send each; appends "QUEUE OFFSET BODY"
# per message (from the receipts) to $T/sent
send() {
  seq "$1" "$2" | timeout 20 mq-send -b "$M" -t tl --mode sync --receipts >"$T/receipts" \
    || fail "send $1..$2 exited $?"
  awk -v base=$(($1 - 1)) '$6 == "SEND_OK" { print $4, $5, $1 + base }' "$T/receipts" >>"$T/sent"
  [[ $(count_lines "$T/sent") -eq $2 ]] || fail "receipts of $1..$2: $(head -n 2 "$T/receipts")"
}

start_broker m --flush sync
start_broker s --role slave --master "$M"
: >"$T/sent"

# --- 1. a running tail across the master's death and return --------------------------------
send 1 300
wait_until 20 logs_equal || fail "slave did not catch up with 300 messages"  # and is known to the master
spawn tpid mq-consume -b "$M" -t tl --from earliest -n 900 --format '%q %o %s\n' >"$T/tail.out" 2>"$T/tail.log"
wait_until 20 lines_at_least "$T/tail.out" 300 || fail "tail printed $(count_lines "$T/tail.out") of 300"
# Hold the tail while more arrives and the master dies: what it has not read yet must come
# from the slave, continuing at each queue's next offset.
kill -STOP "$tpid"
send 301 600
wait_until 20 logs_equal || fail "slave did not catch up with 600 messages"
# a group's commits, for part 2
timeout 20 mq-consume -b "$M" -t tl -g grp --from earliest -n 250 >/dev/null 2>"$T/grp.log" || fail "group consumer exited $?"
wait_until 10 committed_is "$T/s/offsets.json" grp tl 250 \
  || fail "slave holds $(committed "$T/s/offsets.json" grp tl) committed, expected 250"
stop_broker m -9
kill -CONT "$tpid"
wait_until 20 lines_at_least "$T/tail.out" 600 \
  || fail "tail stuck at $(count_lines "$T/tail.out") of 600 with the master down"
grep -q "$M unreachable: continuing on $S" "$T/tail.log" || fail "tail did not say it moved to the slave"

# --- 2. mq-offset from the slave while the master is down ------------------------------------
timeout 10 mq-offset -b "$M,$S" show -g grp --format json >"$T/show.json" 2>"$T/show.log" \
  || fail "show with the master down exited $?: $(cat "$T/show.log")"
[[ $(jq '[.[] | select(.topic == "tl") | .committed] | add' "$T/show.json") -eq 250 ]] \
  || fail "show from the slave: $(jq -c '[.[] | select(.topic == "tl") | [.queue, .broker, .committed]]' "$T/show.json")"
[[ $(jq -r '[.[] | .broker] | unique | join(",")' "$T/show.json") == "$M" ]] || fail "show rows not named by the master"
grep -q "master $M is unreachable: read from its slave $S" "$T/show.log" || fail "show did not say it read from the slave"
[[ $(count_lines "$T/show.log") -eq 1 ]] || fail "show said more than one line: $(cat "$T/show.log")"
timeout 10 mq-offset -b "$M,$S" export -g grp >"$T/export.tsv" 2>/dev/null || fail "export with the master down exited $?"
[[ $(awk -v m="$M" '$2 == "tl" && $3 == m { n += $5 } END { print n + 0 }' "$T/export.tsv") -eq 250 ]] \
  || fail "export from the slave: $(cat "$T/export.tsv")"
timeout 10 mq-offset -b "$M,$S" topics -t tl --format tsv >/dev/null 2>&1 || fail "topics with the master down exited $?"
rc=0
timeout 10 mq-offset -b "$M,$S" reset -g grp -t tl --to earliest >/dev/null 2>"$T/reset.log" || rc=$?
[[ $rc -eq 1 ]] || fail "reset with the master down exited $rc: $(cat "$T/reset.log")"
grep -q "master $M is unreachable: reset needs it" "$T/reset.log" || fail "reset error: $(cat "$T/reset.log")"
rc=0
timeout 10 mq-offset -b "$M,$S" import <"$T/export.tsv" >/dev/null 2>"$T/import.log" || rc=$?
[[ $rc -eq 1 ]] || fail "import with the master down exited $rc: $(cat "$T/import.log")"
grep -q "nothing imported.*$M" "$T/import.log" || fail "import error: $(cat "$T/import.log")"
[[ $(committed "$T/s/offsets.json" grp tl) -eq 250 ]] || fail "a failed reset or import changed the slave's offsets"
# a tail started while the master is down reads the slave and says so (it was silent)
# and names the master as each message's broker (%b): the queue is the master's
timeout 20 mq-consume -b "$M,$S" -t tl --from earliest -n 10 --format '%b\n' >"$T/late-tail.out" 2>"$T/late-tail.log" ||
  fail "a tail of the slave exited $?"
grep -q "master $M is unreachable: read from its slave $S" "$T/late-tail.log" ||
  fail "a tail reading the slave did not say so: $(cat "$T/late-tail.log")"
[[ $(sort -u "$T/late-tail.out") == "$M" ]] || fail "the tail of the slave named $(sort -u "$T/late-tail.out" | tr '\n' ' ')"
# ... as does a group member reading it
timeout 30 mq-consume -b "$M,$S" -t tl -g late --from earliest -n 10 --format json 2>"$T/late-group.log" |
  jq -r .broker | sort -u >"$T/late-group.out" || true
[[ $(cat "$T/late-group.out") == "$M" ]] || fail "a group member reading the slave named $(tr '\n' ' ' <"$T/late-group.out")"
grep -q "master $M is unreachable: read from its slave $S" "$T/late-group.log" ||
  fail "a group member reading the slave did not say so: $(cat "$T/late-group.log")"

# --- 1, continued: back to the master ------------------------------------------------------
restart_broker m
wait_until 20 grep -q "$M is back: continuing on it" "$T/tail.log" || fail "tail did not move back to the master"
send 601 900
timeout 20 tail --pid="$tpid" -f /dev/null || fail "tail did not stop after 900 messages"
wait "$tpid" || fail "tail exited $?: $(tail -n 3 "$T/tail.log")"
[[ $(count_lines "$T/tail.out") -eq 900 ]] || fail "tail printed $(count_lines "$T/tail.out") lines"
awk '{ print $3 }' "$T/tail.out" | sort -n | diff -q - <(seq 900) >/dev/null \
  || fail "tail output is not exactly 1..900: $(awk '{ print $3 }' "$T/tail.out" | sort -n | uniq -d | head -n 3 | tr '\n' ' ')"
# in offset order per queue, from each queue's first offset, none skipped
awk '{ if (($1 in next_) && $2 != next_[$1]) { print "queue " $1 ": offset " $2 " after " next_[$1] - 1; bad = 1 }
       next_[$1] = $2 + 1 } END { exit bad }' "$T/tail.out" >"$T/order" || fail "tail out of order: $(head -n 3 "$T/order")"
# and each message where the broker stored it
diff -q <(sort "$T/tail.out") <(sort "$T/sent") >/dev/null || fail "tail output does not match the receipts"
echo "$TEST_NAME: ok"
