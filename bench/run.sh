#!/usr/bin/env bash
# The whole benchmark harness in one command (see docs/performance.md):
#   1. builds `steward` and `steward-bench` in release mode;
#   2. runs the criterion benches: policy decisions (steward-policy) and audit append/verify
#      (steward-store); set SKIP_CRITERION=1 to reuse the results already in target/criterion;
#   3. runs `steward-bench all`: stdio proxy, HTTP gateway, audit, memory. It prints the table
#      and writes bench/results/latest.json. Arguments are passed on (e.g. --seconds 5).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

cargo build --release -p steward -p steward-bench
if [ "${SKIP_CRITERION:-0}" != 1 ]; then
    cargo bench -p steward-policy --bench decide -- --warm-up-time 1 --measurement-time 3
    cargo bench -p steward-store --bench audit -- --warm-up-time 1 --measurement-time 5
fi
exec "$target/release/steward-bench" all --steward "$target/release/steward" "$@"
