#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets with clang-14 (ASan + UBSan) in
# $FUZZ_BUILD and runs each for $FUZZ_SECONDS on a copy of its seed corpus
# (tests/fuzz/corpus/<name>; generated inputs stay in $FUZZ_BUILD/fuzz-work).
# One line per target; any crash, leak, timeout or OOM artifact fails the run
# and its path is printed. Add a crash input to tests/fuzz/corpus/<name>/
# once fixed: the fuzz-regress-<name> tests of `make test` replay it.
#   FUZZ_SECONDS=60  FUZZ_BUILD=build-fuzz  FUZZ_TARGETS="frame record"  FUZZ_JOBS=1 (targets at once)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-1}
cores=${JOBS:-$(nproc)}

missing=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "make fuzz: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -f $build/build.ninja ]]; then
  # -O1 without NDEBUG: asserts stay on, the build stays quick.
  CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DMQ_FUZZ=ON >/dev/null
fi
cmake --build "$build" --target fuzz-targets -j "$cores"

targets=${FUZZ_TARGETS:-$(cd tests/fuzz/corpus && ls)}
work=$src/$build/fuzz-work
failed=0
run_one() {
  local name=$1 bin=$src/$build/bin/fuzz_$1 dir=$work/$1
  rm -rf "$dir/artifacts"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -n "$src/tests/fuzz/corpus/$name/"* "$dir/corpus/" 2>/dev/null || true
  local dict=()
  [[ -f $src/fuzz/$name.dict ]] && dict=("-dict=$src/fuzz/$name.dict")
  local t0=$SECONDS
  (cd "$dir" && "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
     -artifact_prefix="$dir/artifacts/" "${dict[@]}" corpus >"$dir/log" 2>&1) || true
  local runs crashes
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  crashes=$(find "$dir/artifacts" -type f | wc -l)
  printf 'fuzz %-15s runs=%-9s crashes=%s corpus=%s time=%ss\n' "$name" "${runs:-?}" "$crashes" \
    "$(find "$dir/corpus" -type f | wc -l)" "$((SECONDS - t0))"
  if [[ $crashes -gt 0 ]]; then
    find "$dir/artifacts" -type f -printf '  artifact: %p\n'
    echo "  log: $dir/log"
  fi
  if [[ -n $runs && $crashes -eq 0 ]]; then echo ok >"$dir/status"; else echo failed >"$dir/status"; fi
}
for name in $targets; do
  rm -f "$work/$name/status"
  if [[ $jobs -gt 1 ]]; then
    while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do sleep 1; done
    run_one "$name" &
  else
    run_one "$name"
  fi
done
wait
for name in $targets; do
  [[ $(cat "$work/$name/status" 2>/dev/null) == ok ]] || failed=1
done
if [[ $failed -ne 0 ]]; then
  echo "make fuzz: FAILED (fix, then add each artifact to tests/fuzz/corpus/<name>/)" >&2
  exit 1
fi
echo "make fuzz: no crashes"
