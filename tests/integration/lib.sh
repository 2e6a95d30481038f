# Shared helpers for integration tests. Source it first:
#   . "$(dirname "$0")/lib.sh"
# Brokers run on 127.0.0.1:0 with --ready-file in a temp dir; every pid we start
# is recorded and killed by the EXIT trap; every wait is bounded by `timeout`.
set -euo pipefail

MQ_SRC=${MQ_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MQ_BIN=${MQ_BIN:-$MQ_SRC/build/bin}
export PATH="$MQ_BIN:$PATH"
export NO_COLOR=1
unset MQ_BROKER MQ_DATA

T=$(mktemp -d "${TMPDIR:-/tmp}/mq-it.XXXXXX")
declare -A PIDS=()
declare -A DATA=()
declare -A ARGS=()
EXTRA_PIDS=()
AT_EXIT=()   # commands run at exit after every process is killed (e.g. umount)
TEST_NAME=$(basename "$0" .sh)

# Sanitized binaries (make test SAN=1): every ASan/UBSan/LSan report of any process we run,
# background ones included, goes to $T/sanitizer.PID and makes the test fail at exit; waits
# (wait_until, timeout, broker start/stop) last MQ_SLOW times longer.
MQ_SLOW=1
if grep -qa __asan_init "$MQ_BIN/mq-broker" 2>/dev/null; then
  MQ_SLOW=${MQ_SAN_SLOW:-3}
  export ASAN_OPTIONS="log_path=$T/sanitizer:halt_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  # timeout DURATION CMD... with DURATION (N, N.N, Ns/m/h) scaled; options before it kept.
  timeout() {
    local opts=()
    while [[ $# -gt 0 && $1 == -* ]]; do
      case $1 in
        -s | -k | --signal | --kill-after) opts+=("$1" "$2"); shift 2 ;;
        *) opts+=("$1"); shift ;;
      esac
    done
    local d=$1
    shift
    [[ $d =~ ^([0-9.]+)([smhd]?)$ ]] && d=$(awk -v n="${BASH_REMATCH[1]}" -v f="$MQ_SLOW" 'BEGIN { print n * f }')${BASH_REMATCH[2]}
    command timeout "${opts[@]}" "$d" "$@"
  }
fi
export MQ_SLOW

# sanitizer_reports: prints every sanitizer report written so far; fails when there is none.
# ASan/LSan write to $T/sanitizer.PID; UBSan (inside the ASan runtime) ignores log_path and
# writes to stderr, which the tests send to files in $T (broker logs, captured stderr).
sanitizer_reports() {
  local f found=1
  for f in "$T"/*; do
    [[ -f $f ]] || continue
    if [[ $f == "$T"/sanitizer.* ]]; then
      echo "--- sanitizer report $f" >&2
      head -n 80 "$f" >&2
      found=0
    elif grep -qa -e 'runtime error: ' -e '==ERROR: [A-Za-z]*Sanitizer' "$f"; then
      echo "--- sanitizer report in $f" >&2
      grep -a -A 30 -e 'runtime error: ' -e '==ERROR: [A-Za-z]*Sanitizer' "$f" | head -n 80 >&2
      found=0
    fi
  done
  return $found
}

# slow_sleep SECONDS: sleep, MQ_SLOW times longer under sanitizers (for "let it get going" pauses).
slow_sleep() { sleep "$(awk -v n="$1" -v f="$MQ_SLOW" 'BEGIN { print n * f }')"; }

# kill_tree SIG PID: the process and every descendant (children first found, then killed).
kill_tree() {
  local sig=$1 pid=$2 child
  for child in $(pgrep -P "$pid" 2>/dev/null); do kill_tree "$sig" "$child"; done
  kill "$sig" "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  for name in "${!PIDS[@]}"; do kill -9 "${PIDS[$name]}" 2>/dev/null || true; done
  for p in "${EXTRA_PIDS[@]}"; do kill_tree -9 "$p"; done
  wait 2>/dev/null || true
  for c in "${AT_EXIT[@]}"; do eval "$c" || true; done
  if sanitizer_reports; then
    echo "$TEST_NAME: FAIL: sanitizer reports (above)" >&2
    rc=1
  fi
  if [[ $rc -eq 0 ]]; then rm -rf "$T"; else echo "$TEST_NAME: kept $T for inspection" >&2; fi
  exit "$rc"
}
trap cleanup EXIT

fail() { echo "$TEST_NAME: FAIL: $*" >&2; for f in "$T"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done; exit 1; }
note() { echo "$TEST_NAME: $*" >&2; }

# start_broker NAME [broker flags...] -> sets variable NAME (upper-cased) to HOST:PORT
# The data dir is $T/NAME unless --data is given; flags are remembered for restart_broker.
start_broker() {
  local name=$1; shift
  local data="$T/$name"
  local has_data=0
  for a in "$@"; do [[ $a == --data ]] && has_data=1; done
  mkdir -p "$data"
  DATA[$name]=$data
  ARGS[$name]="$*"
  local ready="$T/$name.ready"
  rm -f "$ready"
  local listen=${LISTEN[$name]:-127.0.0.1:0}
  if [[ $has_data -eq 1 ]]; then
    mq-broker --listen "$listen" --ready-file "$ready" "$@" >>"$T/$name.log" 2>&1 &
  else
    mq-broker --data "$data" --listen "$listen" --ready-file "$ready" "$@" >>"$T/$name.log" 2>&1 &
  fi
  PIDS[$name]=$!
  local i
  for i in $(seq 1 $((200 * MQ_SLOW))); do
    [[ -s $ready ]] && break
    kill -0 "${PIDS[$name]}" 2>/dev/null || fail "broker $name exited at start: $(tail -n 5 "$T/$name.log")"
    sleep 0.05
  done
  [[ -s $ready ]] || fail "broker $name not ready after $((10 * MQ_SLOW))s"
  local addr
  addr=$(head -n 1 "$ready")
  printf -v "${name^^}" '%s' "$addr"
  # restart on the same port
  declare -gA LISTEN
  LISTEN[$name]=$addr
}
declare -gA LISTEN=()

# stop_broker NAME [-9|-TERM]: kill and wait for exit (bounded).
stop_broker() {
  local name=$1 sig=${2:--TERM}
  local pid=${PIDS[$name]:-}
  [[ -n $pid ]] || return 0
  kill "$sig" "$pid" 2>/dev/null || true
  local rc=0
  timeout 20 tail --pid="$pid" -f /dev/null || fail "broker $name did not exit after $sig"
  wait "$pid" 2>/dev/null || rc=$?
  unset "PIDS[$name]"
  BROKER_EXIT=$rc
}

restart_broker() {
  local name=$1; shift
  # shellcheck disable=SC2086
  start_broker "$name" ${ARGS[$name]} "$@"
}

# spawn VAR CMD...: runs CMD in the background (no wrapper process, so VAR holds the pid of the
# program itself: kill -9 reaches it) and records it for cleanup.
spawn() {
  local var=$1; shift
  "$@" &
  printf -v "$var" '%s' "$!"
  EXTRA_PIDS+=("$!")
}

# count_lines FILE
count_lines() { wc -l <"$1" | tr -d ' '; }

# bounded wait until a command succeeds: wait_until SECONDS CMD...
wait_until() {
  local secs=$1; shift
  local end=$((SECONDS + secs * MQ_SLOW))
  while ! "$@" >/dev/null 2>&1; do
    [[ $SECONDS -ge $end ]] && return 1
    sleep 0.1
  done
}

# committed FILE GROUP TOPIC: the sum of GROUP's committed offsets on TOPIC in an offsets.json
# (a broker writes it at most every 200 ms: a kill -9 right after a commit may lose it)
committed() {
  [[ -s $1 ]] || { echo 0; return; }
  jq -r --arg g "$2" --arg t "$3" '[.offsets[] | select(.group == $g and .topic == $t) | .offset] | add // 0' "$1"
}
# committed_is FILE GROUP TOPIC N
committed_is() { [[ $(committed "$1" "$2" "$3") -eq $4 ]]; }

# same_logs DATA_A DATA_B: the commit logs of two data directories hold the same bytes (a master
# and its slave). A running broker keeps zeros written past its log end (preallocation, see
# mq-data(5)), each as far as it got: those are not part of the log and are not compared.
same_logs() {
  python3 - "$1/commitlog" "$2/commitlog" <<'PY'
import os, sys
def log(d):
    return b"".join(open(os.path.join(d, s), "rb").read() for s in sorted(os.listdir(d))).rstrip(b"\0")
sys.exit(0 if log(sys.argv[1]) == log(sys.argv[2]) else 1)
PY
}

# segment_records SEGMENT: "END SIZE ZEROS" for a commit log segment file: where its back-to-back
# records end, the file size, and 1 when everything after the records is zeros (else 0)
segment_records() {
  python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
pos = 0
while pos + 4 <= len(data):
    size = struct.unpack_from("<I", data, pos)[0]
    if size < 72 or pos + size > len(data): break
    pos += size
print(pos, len(data), int(data.count(0, pos) == len(data) - pos))
PY
}
