# Helpers shared by the fault scenarios (tests/integration/2[0-4]0-*.sh). Source after lib.sh:
#   . "$(dirname "$0")/lib.sh"; . "$MQ_SRC/tests/tools/fault.sh"
# TORTURE=1 (make torture) scales iterations and durations up; unset, every scenario stays short.
TOOLS="$MQ_SRC/tests/tools"
TORTURE=${TORTURE:-0}
[[ $TORTURE == 0 ]] && TORTURE=

# scale SHORT LONG: SHORT normally, LONG under TORTURE=1
scale() { if [[ -n $TORTURE ]]; then echo "$2"; else echo "$1"; fi; }

# gen_lines PREFIX RATE SECONDS: prints PREFIX-1, PREFIX-2, ... at about RATE lines/s for SECONDS
# (blocks when the reader is slower, which is what a producer's stdin does); stops early once the
# file $GEN_STOP (if set) exists
gen_lines() {
  python3 -c '
import os, sys, time
p, rate, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
stop = os.environ.get("GEN_STOP")
n, t0, step = 0, time.time(), 0.02
per = max(1, int(rate * step))
try:
    while time.time() - t0 < dur and not (stop and os.path.exists(stop)):
        out = []
        for _ in range(per):
            n += 1
            out.append(f"{p}-{n}\n")
        sys.stdout.write("".join(out)); sys.stdout.flush()
        time.sleep(step)
except BrokenPipeError:
    pass
' "$@"
}

# rand_sleep MIN_MS MAX_MS
rand_sleep() { sleep "$(awk -v a="$1" -v b="$2" -v r="$RANDOM" 'BEGIN { printf "%.3f", (a + (b - a) * r / 32767) / 1000 }')"; }

# figures NAME [mqcheck args...]: runs the checker, prints its line on stdout and in $T/figures,
# fails the test when the checker reports a broken promise
figures() {
  local name=$1; shift
  local rc=0
  python3 "$TOOLS/mqcheck.py" --name "$name" "$@" >"$T/fig.out" 2>"$T/fig.err" || rc=$?
  cat "$T/fig.out" | tee -a "$T/figures"
  [[ $rc -eq 0 ]] || fail "$name: $(cat "$T/fig.err")"
  FIG=$(cat "$T/fig.out")
}
# fig_get KEY: a number from the last figures line
fig_get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $FIG"; }

# start_proxy NAME TARGET [faultproxy args...] -> sets NAME (upper-cased) to the proxy address
# and NAME_CTL to its control address
start_proxy() {
  local name=$1 target=$2; shift 2
  local ready="$T/$name.ready"
  rm -f "$ready"
  python3 "$TOOLS/faultproxy.py" --target "$target" --ready-file "$ready" "$@" >>"$T/$name.log" 2>&1 &
  PIDS[$name]=$!
  wait_until 20 test -s "$ready" || fail "proxy $name not ready"
  printf -v "${name^^}" '%s' "$(sed -n 1p "$ready")"
  printf -v "${name^^}_CTL" '%s' "$(sed -n 2p "$ready")"
}

# proxy_ctl NAME COMMAND...: sends control commands to proxy NAME (fails the test on an error answer)
proxy_ctl() {
  local name=$1; shift
  local v="${name^^}_CTL"
  python3 "$TOOLS/faultproxy.py" ctl "${!v}" "$@" >>"$T/$name.ctl" || fail "proxy $name: $* -> $(tail -n 1 "$T/$name.ctl")"
  tail -n "$#" "$T/$name.ctl"
}

# freeze PID: SIGSTOP, then wait (bounded) until every thread of PID is stopped. kill returns
# before that: a thread inside fdatasync finishes it first, and until the group stop reaches it
# (milliseconds on a loaded machine) a running thread may start another fdatasync and ack it,
# so a disk copied right after kill could miss a write whose ack is still to come.
freeze() {
  kill -STOP "$1"
  local i t state all
  for i in $(seq 1 1000); do
    all=1
    for t in /proc/"$1"/task/*/stat; do
      state=$(sed 's/.*) \([A-Za-z]\).*/\1/' "$t" 2>/dev/null) || continue
      [[ $state == T || $state == t ]] || { all=0; break; }
    done
    [[ $all -eq 1 ]] && return 0
    sleep 0.01
  done
  fail "process $1 not stopped 10 s after SIGSTOP"
}

# rss_kb PID: resident set size in KiB
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
