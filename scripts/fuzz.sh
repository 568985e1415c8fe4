#!/usr/bin/env bash
# Runs every cargo-fuzz target of mi_sdk (fuzz/fuzz_targets) for FUZZ_SECONDS each
# (default 60), two at a time, with AddressSanitizer, starting from the committed
# seeds (fuzz/seeds/<target>) and the corpus kept in target/fuzz-corpus/<target>.
# Installs cargo-fuzz when missing; needs the nightly toolchain. A crash fails the
# run and leaves its input in fuzz/artifacts/<target>/: make it a regression test.
# With --build, only builds the targets (the suite builds them while other tests wait).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
mkdir -p target/tmp target/fuzz-logs
build_only=0
[ "${1:-}" = "--build" ] && build_only=1
if ! cargo +nightly --version >/dev/null 2>&1; then
  [ "$build_only" = 1 ] && exit 0
  msg="SKIPPED: fuzzing needs the nightly toolchain (rustup toolchain install nightly); the fuzz targets did not run"
  echo "$msg"
  echo "$msg" >>target/tmp/skipped.txt
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
targets=$(cargo +nightly fuzz list)
echo "== cargo fuzz build ($(echo $targets))"
if ! cargo +nightly fuzz build >target/fuzz-logs/build.log 2>&1; then
  tail -40 target/fuzz-logs/build.log
  echo "fuzz: the targets did not build"
  exit 1
fi
[ "$build_only" = 1 ] && exit 0

run() {
  local t=$1
  mkdir -p "target/fuzz-corpus/$t"
  cargo +nightly fuzz run "$t" "target/fuzz-corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"target/fuzz-logs/$t.log" 2>&1
}

failed=0
summarise() {
  local t=$1 rc=$2
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "target/fuzz-logs/$t.log" | grep -o '[0-9]*$' || echo "?")
  if [ "$rc" = 0 ]; then
    echo "fuzz $t: $runs executions in ${secs} s, no crash"
  else
    failed=1
    echo "fuzz $t: FAILED (exit $rc) after $runs executions; the end of its log:"
    tail -40 "target/fuzz-logs/$t.log"
    ls fuzz/artifacts/"$t"/ 2>/dev/null | sed 's/^/  input saved: fuzz\/artifacts\/'"$t"'\//'
  fi
}

set -- $targets
while [ $# -gt 0 ]; do
  a=$1; shift
  b=${1:-}; [ $# -gt 0 ] && shift
  run "$a" & pa=$!
  if [ -n "$b" ]; then run "$b" & pb=$!; fi
  rc=0; wait $pa || rc=$?; summarise "$a" $rc
  if [ -n "$b" ]; then rc=0; wait $pb || rc=$?; summarise "$b" $rc; fi
done
exit $failed
