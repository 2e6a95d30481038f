#!/usr/bin/env bash
# mq-offset and mq-replay with two masters A and B (B with a slave S) when B is down:
# 1. S answers: everything is read from S, said in one line on stderr, exit 0.
# 2. S is down too: what A holds is still printed, then exit 1 with one line naming B (and S
#    when listed); reset and re-publishing refuse before changing anything (exit 1).
# 3. A listed slave that is down while its master answers is no error (its master stands for it).
. "$(dirname "$0")/lib.sh"

rc_of() { local rc=0; "$@" >"$T/rc.out" 2>"$T/rc.err" || rc=$?; echo "$rc"; }
only_line() {  # FILE TEXT WHAT: FILE is exactly one line, holding TEXT
  [[ $(count_lines "$1") -eq 1 ]] && grep -qF -- "$2" "$1" || fail "$3: stderr is not one line with '$2': $(cat "$1")"
}
# committed FILE GROUP TOPIC: the sum of GROUP's committed offsets on TOPIC in an offsets.json
committed() {
  [[ -s $1 ]] || { echo 0; return; }
  jq -r --arg g "$2" --arg t "$3" '[.offsets[] | select(.group == $g and .topic == $t) | .offset] | add // 0' "$1"
}
committed_is() { [[ $(committed "$1" "$2" "$3") -eq $4 ]]; }
# sum of column 5 (offset) of export lines of BROKER
export_sum() { awk -F'\t' -v b="$2" '$3 == b { n += $5 } END { print n + 0 }' "$1"; }

start_broker a --flush async --queues 2
start_broker b --flush async --queues 2
start_broker s --role slave --master "$B"
seq 1 8 | timeout 20 mq-send -b "$A" -t multi --mode sync || fail "send to A"
seq 9 16 | timeout 20 mq-send -b "$B" -t multi --mode sync || fail "send to B"
timeout 20 mq-consume -b "$A,$B" -t multi -g MG --from earliest -n 16 >"$T/mg.out" 2>"$T/mg.log" || fail "consume MG"
timeout 20 mq-consume -b "$B" -t multi -g onlyb --from earliest -n 8 >/dev/null 2>"$T/onlyb.log" || fail "consume onlyb"
[[ $(count_lines "$T/mg.out") -eq 16 ]] || fail "MG consumed $(count_lines "$T/mg.out") of 16"
wait_until 20 same_logs "$T/b" "$T/s" || fail "slave did not catch up"
wait_until 20 committed_is "$T/s/offsets.json" MG multi 8 \
  || fail "slave holds $(committed "$T/s/offsets.json" MG multi) committed of MG, expected 8"
timeout 10 mq-offset -b "$A,$B" export -g MG >"$T/before.tsv" || fail "export with both masters up"
[[ $(export_sum "$T/before.tsv" "$A") -eq 8 && $(export_sum "$T/before.tsv" "$B") -eq 8 ]] \
  || fail "export before: $(cat "$T/before.tsv")"

# --- 1. B down, its slave listed and up: read from the slave --------------------------------
stop_broker b -9
[[ $(rc_of timeout 10 mq-offset -b "$A,$B,$S" export -g MG) -eq 0 ]] || fail "export from the slave: $(cat "$T/rc.err")"
cmp -s <(sort "$T/rc.out") <(sort "$T/before.tsv") || fail "export from the slave: $(cat "$T/rc.out")"
only_line "$T/rc.err" "master $B is unreachable: read from its slave $S" "export from the slave"
[[ $(rc_of timeout 10 mq-offset -b "$A,$B,$S" show -g MG --format json) -eq 0 ]] || fail "show from the slave: $(cat "$T/rc.err")"
[[ $(jq '[.[] | select(.topic == "multi") | .committed] | add' "$T/rc.out") -eq 16 ]] || fail "show from the slave: $(cat "$T/rc.out")"
only_line "$T/rc.err" "master $B is unreachable: read from its slave $S" "show from the slave"
[[ $(rc_of timeout 10 mq-replay -b "$A,$B,$S" -t multi) -eq 0 ]] || fail "replay from the slave: $(cat "$T/rc.err")"
sort -n "$T/rc.out" | cmp -s - <(seq 16) || fail "replay from the slave: $(tr '\n' ' ' <"$T/rc.out")"
only_line "$T/rc.err" "master $B is unreachable: read from its slave $S" "replay from the slave"

# --- 2. S down too: A's part, then exit 1 naming B --------------------------------------------
stop_broker s -9
for brokers in "$A,$B" "$B,$A"; do
  why="mq-offset: $B unreachable (Connection refused): its"
  [[ $(rc_of timeout 10 mq-offset -b "$brokers" show -g MG --format json) -eq 1 ]] || fail "show -b $brokers with B down: exit 0"
  only_line "$T/rc.err" "$why queues are not shown" "show -b $brokers"
  [[ $(jq -r '[.[] | select(.topic == "multi")] | "\(map(.broker) | unique | join(",")) \(map(.committed) | add)"' \
    "$T/rc.out") == "$A 8" ]] \
    || fail "show -b $brokers with B down did not print A's queues: $(cat "$T/rc.out")"
  [[ $(rc_of timeout 10 mq-offset -b "$brokers" export -g MG) -eq 1 ]] || fail "export -b $brokers with B down: exit 0"
  only_line "$T/rc.err" "$why offsets are not exported" "export -b $brokers"
  cmp -s <(sort "$T/rc.out") <(awk -F'\t' -v a="$A" '$3 == a' "$T/before.tsv" | sort) \
    || fail "export -b $brokers with B down: $(cat "$T/rc.out")"
  [[ $(rc_of timeout 10 mq-offset -b "$brokers" topics -t multi) -eq 1 ]] || fail "topics -b $brokers with B down: exit 0"
  only_line "$T/rc.err" "$why queues are not shown" "topics -b $brokers"
  [[ $(awk -F'\t' -v a="$A" 'NR > 1 && $1 == "multi" && $3 == a' "$T/rc.out" | wc -l) -eq 2 ]] \
    || fail "topics -b $brokers with B down: $(cat "$T/rc.out")"
  [[ $(rc_of timeout 10 mq-offset -b "$brokers" groups) -eq 1 ]] || fail "groups -b $brokers with B down: exit 0"
  only_line "$T/rc.err" "$why groups and lag are not counted" "groups -b $brokers"
  grep -qP '^MG\t' "$T/rc.out" || fail "groups -b $brokers with B down: $(cat "$T/rc.out")"
  # a reset needs every master: refused before anything changes, no undo file
  [[ $(rc_of timeout 10 mq-offset -b "$brokers" reset -g MG -t multi --to earliest --undo-dir "$T/undo") -eq 1 ]] \
    || fail "reset -b $brokers with B down: exit 0: $(cat "$T/rc.out")"
  only_line "$T/rc.err" "$why queues would not be reset (nothing reset)" "reset -b $brokers"
  [[ ! -s $T/rc.out ]] || fail "reset -b $brokers with B down printed: $(cat "$T/rc.out")"
  [[ $(rc_of timeout 10 mq-offset -b "$brokers" reset -g MG -t multi --to earliest --dry-run) -eq 1 ]] \
    || fail "reset --dry-run -b $brokers with B down: exit 0"
  # mq-replay to stdout: A's messages, then exit 1
  [[ $(rc_of timeout 10 mq-replay -b "$brokers" -t multi) -eq 1 ]] || fail "replay -b $brokers with B down: exit 0"
  only_line "$T/rc.err" "mq-replay: $B unreachable (Connection refused): its queues are not replayed" "replay -b $brokers"
  sort -n "$T/rc.out" | cmp -s - <(seq 8) || fail "replay -b $brokers with B down: $(tr '\n' ' ' <"$T/rc.out")"
  # re-publishing: refused, nothing sent
  [[ $(rc_of timeout 10 mq-replay -b "$brokers" -t multi --to-topic copy) -eq 1 ]] || fail "replay --to-topic -b $brokers with B down: exit 0"
  only_line "$T/rc.err" "mq-replay: $B unreachable (Connection refused): its queues would not be replayed (nothing published)" \
    "replay --to-topic -b $brokers"
done
[[ ! -e $T/undo ]] || [[ -z $(ls -A "$T/undo") ]] || fail "a refused reset wrote an undo file: $(ls "$T/undo")"
[[ $(rc_of timeout 10 mq-offset -b "$A" topics -t copy) -eq 1 ]] || fail "a refused replay --to-topic published: $(cat "$T/rc.out")"
timeout 10 mq-offset -b "$A" export -g MG >"$T/a.tsv" || fail "export -b A"
[[ $(export_sum "$T/a.tsv" "$A") -eq 8 ]] || fail "a refused reset changed A's offsets: $(cat "$T/a.tsv")"
# every listed broker down but A, the slave named too: both named, in -b order
[[ $(rc_of timeout 10 mq-offset -b "$A,$B,$S" show -g MG) -eq 1 ]] || fail "show -b A,B,S with B and S down: exit 0"
only_line "$T/rc.err" "mq-offset: $B (Connection refused) and $S (Connection refused) unreachable: their queues are not shown" \
  "show -b A,B,S"
# a group whose offsets are only on B: the missing broker is the error, not "no offsets"
[[ $(rc_of timeout 10 mq-offset -b "$A,$B" show -g onlyb) -eq 1 ]] || fail "show of B's group with B down: exit 0"
only_line "$T/rc.err" "mq-offset: $B unreachable (Connection refused): its queues are not shown" "show -g onlyb"

# --- 3. B back, S seen by it and down again: S is no error ------------------------------------
restart_broker b
restart_broker s
wait_until 20 same_logs "$T/b" "$T/s" || fail "slave did not catch up again"
wait_until 20 bash -c "timeout 10 mq-offset -b '$B' topics -t multi --format tsv | grep -qP '\tconnected\t'" \
  || fail "B does not list its slave"
stop_broker s -9
[[ $(rc_of timeout 10 mq-offset -b "$A,$B,$S" export -g MG) -eq 0 ]] || fail "export with a listed slave down: $(cat "$T/rc.err")"
cmp -s <(sort "$T/rc.out") <(sort "$T/before.tsv") || fail "export with a listed slave down: $(cat "$T/rc.out")"
[[ ! -s $T/rc.err ]] || fail "export with a listed slave down said: $(cat "$T/rc.err")"
[[ $(rc_of timeout 10 mq-replay -b "$A,$B,$S" -t multi) -eq 0 ]] || fail "replay with a listed slave down: $(cat "$T/rc.err")"
sort -n "$T/rc.out" | cmp -s - <(seq 16) || fail "replay with a listed slave down: $(tr '\n' ' ' <"$T/rc.out")"
[[ ! -s $T/rc.err ]] || fail "replay with a listed slave down said: $(cat "$T/rc.err")"
[[ $(rc_of timeout 10 mq-offset -b "$A,$B,$S" reset -g MG -t multi --to earliest --undo-dir "$T/undo") -eq 0 ]] \
  || fail "reset with a listed slave down: $(cat "$T/rc.err")"
echo "$TEST_NAME: ok"
