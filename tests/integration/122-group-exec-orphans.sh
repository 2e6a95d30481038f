#!/usr/bin/env bash
# A member killed -9 while its --exec command runs: the command (and what it started) is
# terminated by the member's reaper instead of running on unseen, and the broker sees the
# member gone at once (the command does not hold the member's connection: it gets stdin,
# stdout and stderr only).
. "$(dirname "$0")/lib.sh"

start_broker b
timeout 10 mq-send -b "$B" -t o job || fail "send"
cat >"$T/job.sh" <<SH
ps -o pgid= -p \$\$ | tr -d ' ' >"$T/pgid.tmp" && mv "$T/pgid.tmp" "$T/pgid"  # the group of sh -c
ls -l /proc/\$\$/fd >"$T/fds"
sleep 30 &
wait
echo finished >"$T/finished"
SH
spawn cpid mq-consume -b "$B" -t o -g g --from earliest --exec "sh $T/job.sh"
wait_until 20 test -s "$T/pgid" || fail "the command did not start"
sleep 0.3
grep -q 'socket:' "$T/fds" && fail "the command holds a socket of its member: $(cat "$T/fds")"
members() { timeout 10 mq-offset -b "$B" groups | awk -F'\t' '$1 == "g" { print $2 }'; }
[[ $(members) -eq 1 ]] || fail "the member is not listed"
pg=$(cat "$T/pgid")
[[ $pg -gt 1 ]] && kill -0 -- "-$pg" || fail "no process group $pg"
AT_EXIT+=("kill -9 -- -$pg 2>/dev/null")
kill -9 "$cpid"
gone() { ! kill -0 -- "-$pg" 2>/dev/null; }
wait_until 5 gone || fail "the command's process group outlived its member: $(pgrep -a -g "$pg")"
wait_until 4 bash -c "[[ \$(timeout 10 mq-offset -b '$B' groups | awk -F'\t' '\$1 == \"g\" { print \$2 }') -eq 0 ]]" ||
  fail "the broker still lists the killed member"
sleep 0.5
[[ ! -e $T/finished ]] || fail "the command finished after its member was killed"
stop_broker b -TERM
echo "$TEST_NAME: ok"
