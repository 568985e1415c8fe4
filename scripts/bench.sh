#!/usr/bin/env bash
# The performance suite (examples/bench.rs): every figure of docs/performance.md as
# a ratio against a baseline measured in the same run, rounds interleaved, medians.
#
#   scripts/bench.sh            # full sizes (a million-row journal, a million calls): ~10 min
#   scripts/bench.sh --quick    # smaller sizes: ~2 min
#   scripts/bench.sh --only sync,submit --rounds 9
#   scripts/bench.sh --bridge   # the database bridge against direct calls (tests/bridge.rs,
#                               # a PostgreSQL server of its own): ~2 min
#
# Needs openssl on the PATH for the crypto baseline. Prints the machine first so a
# table can be compared with the one in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "disk of the temp folder: $(df -h "${TMPDIR:-/tmp}" | awk 'NR==2 {print $1, $2}')"
echo "rustc: $(rustc --version)"
if [ "${1:-}" = --bridge ]; then
  exec cargo test --release -p mi_sdk --test bridge -- --ignored --exact bridge_benchmark --nocapture
fi
cargo build --release --example bench
exec target/release/examples/bench "$@"
