#!/usr/bin/env bash
# Side by side with wrk, as the peer gateways are measured (docs/performance.md, "Against the
# peers"): a bare Node HTTP echo ("direct") and `steward serve` in front of a Python stdio echo,
# with the bench policy deciding every call and strict audit (each decision row committed before
# the call is forwarded). Needs wrk, node and python3; uses target/release/steward.
#   bench/peers.sh [SECONDS]     (default 10 per case)
# PEERS_STORE overrides the gateway's store, e.g. PEERS_STORE='{ postgres: { url: "postgres://…" } }'.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
steward="${STEWARD_BIN:-${CARGO_TARGET_DIR:-target}/release/steward}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w "%{http_code}" "$1")" != 000 ] && return 0; sleep 0.1; done; echo "no answer at $1" >&2; exit 1; }

# An MCP session at $1: initialize, notifications/initialized; prints its id.
session() {
  local sid
  sid=$(curl -fsS -D - -o /dev/null -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"steward-bench","version":"1"}}}' \
    "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
  curl -fsS -o /dev/null -H 'content-type: application/json' -H "mcp-session-id: $sid" -H 'MCP-Protocol-Version: 2025-06-18' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$1"
  echo "$sid"
}

# wrk at concurrency $2 against $1; prints "rps p50 p90 p99 errors".
load() {
  local url=$1 c=$2 sid out threads=2
  sid=$(session "$url")
  [ "$c" = 1 ] && threads=1
  out=$(wrk -t"$threads" -c"$c" -d"${secs}s" --latency -s bench/peers/call.lua "$url" -- "$sid")
  local rps p50 p90 p99 errs socket
  rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '/^LAT_P50_US/{print $2}' <<<"$out"); p90=$(awk '/^LAT_P90_US/{print $2}' <<<"$out")
  p99=$(awk '/^LAT_P99_US/{print $2}' <<<"$out"); errs=$(awk '/^MCP_ERRORS/{print $2}' <<<"$out")
  socket=$(awk '/Socket errors|Non-2xx/{print}' <<<"$out")
  [ -n "$socket" ] && echo "  ($url c=$c: $socket)" >&2
  echo "$rps $p50 $p90 $p99 $errs"
}

direct_port=$(free_port)
node bench/peers/echo_http.js "$direct_port" & pids+=($!)
wait_http "http://127.0.0.1:$direct_port/"

gw_port=$(free_port)
store_yaml="${PEERS_STORE:-"{ sqlite: $work/steward.db }"}"
cat >"$work/steward.yaml" <<YAML
listen: 127.0.0.1:$gw_port
store: $store_yaml
policy: $PWD/bench/policy.yaml
auth: { none: true }
servers:
  bench: { command: python3, args: ["$PWD/bench/peers/echo_stdio.py"] }
YAML
"$steward" serve --config "$work/steward.yaml" >"$work/serve.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$gw_port/healthz"

printf '%-44s %10s %9s %9s %9s %7s\n' "path (wrk, ${secs}s)" "req/s" "p50 µs" "p90 µs" "p99 µs" "errors"
declare -A rps
for c in 1 16; do
  for target in direct steward; do
    if [ "$target" = direct ]; then url="http://127.0.0.1:$direct_port/mcp"; name="direct: node HTTP echo";
    else url="http://127.0.0.1:$gw_port/mcp/bench"; name="steward serve → python stdio echo"; fi
    read -r r p50 p90 p99 e < <(load "$url" "$c")
    rps[$target$c]=$r
    printf '%-44s %10s %9s %9s %9s %7s\n' "$name, c=$c" "$r" "$p50" "$p90" "$p99" "$e"
  done
  python3 -c "import sys; print(f'  steward / direct at c=$c: {100*float(sys.argv[1])/float(sys.argv[2]):.0f} %')" "${rps[steward$c]}" "${rps[direct$c]}"
done
if [ -z "${PEERS_STORE:-}" ]; then
  # Every call must have been allowed and answered by the echo: a refusal is not a measurement.
  sqlite3 "$work/steward.db" "select 'audit rows: ' || kind || ' ' || coalesce(effect, '') || ' ' || count(*) from audit_events group by kind, effect" 2>/dev/null || true
fi
