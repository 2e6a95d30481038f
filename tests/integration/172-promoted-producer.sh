#!/usr/bin/env bash
# A running mq-send whose master dies and whose slave (listed, or named by the master at the
# start) is restarted as a master (promoted)
# sends the rest there: it asks the master's slaves again (hello, once a second) while the master
# cannot be reached, and the one that answers as a master takes the master's queues. Before, every
# later message failed ("cannot reach" the dead master) until mq-send was started again.
. "$(dirname "$0")/lib.sh"

addr_of() { cat "$T/$1.ready"; }
# trial MASTER SLAVE HOW: HOW = both (-b lists master and slave) or master (-b names the master
# only: the slave is the one the master named in hello at the start)
trial() {
  local mn=$1 sn=$2 how=$3 topic=p-$1 list M S
  start_broker "$mn" --replication sync
  M=$(addr_of "$mn")
  start_broker "$sn" --role slave --master "$M"
  S=$(addr_of "$sn")
  list=$M
  [[ $how == both ]] && list=$M,$S
  seq 1 3 | timeout 20 mq-send -b "$M" -t "$topic" -q || fail "first send"
  wait_until 20 same_logs "$T/$mn" "$T/$sn" || fail "the slave did not copy the master"
  ( for i in $(seq 1 300); do echo "$i"; sleep 0.02; done ) |
    timeout 120 mq-send -b "$list" -t "$topic" --receipts --timeout 5s >"$T/$mn.receipts" 2>"$T/$mn.send.err" &
  sender=$!
  EXTRA_PIDS+=("$sender")
  wait_until 20 awk -F'\t' -v b="$M" '$3 == b && $6 == "SEND_OK" { n++ } END { exit n < 20 }' "$T/$mn.receipts" ||
    fail "nothing was acknowledged by the master"
  stop_broker "$mn" -9
  stop_broker "$sn" -TERM
  start_broker "$sn" --role master
  [[ $(addr_of "$sn") == "$S" ]] || fail "the promoted slave moved to $(addr_of "$sn")"
  rc=0; wait "$sender" || rc=$?
  [[ $(count_lines "$T/$mn.receipts") -eq 300 ]] || fail "$(count_lines "$T/$mn.receipts") receipts of 300"
  on_s=$(awk -F'\t' -v b="$S" '$3 == b && $6 == "SEND_OK"' "$T/$mn.receipts" | wc -l)
  [[ $on_s -ge 100 ]] || fail "only $on_s messages went to the promoted slave (exit $rc): $(grep -v SEND_OK "$T/$mn.receipts" | head -n 2)"
  tail -n 50 "$T/$mn.receipts" | awk -F'\t' -v b="$S" '$3 != b || $6 != "SEND_OK" { bad = 1 } END { exit bad }' ||
    fail "the last messages did not all go to the promoted slave: $(tail -n 2 "$T/$mn.receipts")"
  grep -q "answers as a master now (promoted)" "$T/$mn.send.err" || fail "mq-send did not say it moved: $(tail -n 2 "$T/$mn.send.err")"
  # every acknowledged message is on the promoted broker
  awk -F'\t' '$6 == "SEND_OK" { print $2 }' "$T/$mn.receipts" | sort -u >"$T/$mn.acked"
  timeout 30 mq-consume -b "$S" -t "$topic" --from earliest -e --format '%i\n' | sort -u >"$T/$mn.stored"
  lost=$(comm -23 "$T/$mn.acked" "$T/$mn.stored" | wc -l)
  note "-b $how: exit $rc, $on_s on the promoted slave, lost $lost"
  [[ $lost -eq 0 ]] || fail "$lost acknowledged messages are not on the promoted broker"
}

trial m s both
trial m2 s2 master
echo "$TEST_NAME: ok"
