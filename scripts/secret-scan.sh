#!/usr/bin/env bash
# Secret scan: runs the chaos run (every service and two gateways as `ponte serve` processes,
# tenant `loja` connected to Bling by OAuth, to Bitrix24 and to CPLUG, sales and product changes
# through faults, kills and restarts) with every process logging at `trace` and exporting its
# spans to a local OTLP receiver, then looks for every secret the run used or was issued (the
# apps' client secrets, the store's password and webhook secret, the Bitrix24 application
# token and webhook code, the sealing keys, every Bling access and refresh token and
# authorization code) in every log line and every span attribute. Any hit fails.
#
#   scripts/secret-scan.sh            # EVENTS (default 150), SEED (default 3)
#   scripts/secret-scan.sh --suite    # the whole test suite instead (tests/src/scan.rs)
#
# With --suite, the whole test suite (scripts/test.sh) runs once under PONTE_SCAN_DIR: every
# test process logs at `trace` and writes every span it exports; every `ponte serve` process
# the tests start logs at `trace` and exports its spans over OTLP to a local receiver
# (`otlp-sink`) unless the test reads them itself; the sandboxes and the harness list every
# credential they are configured with or issue. Then the same look-up.
#
# Needs PostgreSQL's server binaries (PONTE_PG_BIN) and redis-server, as the chaos run does.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0

# Looks for every line of $1/secrets.txt in the files $1/logs.txt and $1/spans.txt; fails on a hit.
scan() {
  local out=$1
  logs=$(wc -l <"$out/logs.txt")
  spans=$(wc -l <"$out/spans.txt")
  secrets=$(wc -l <"$out/secrets.txt")
  hits=$( (grep -F -c -f "$out/secrets.txt" "$out/logs.txt" "$out/spans.txt" || true) | awk -F: '{s += $2} END {print s + 0}')
  echo "secret-scan: ${secrets} secrets looked for in ${logs} log lines and ${spans} spans: ${hits} hits"
  if [[ $hits -ne 0 ]]; then
    # Which secret (by its first four characters only) and where.
    while read -r secret; do
      for f in logs.txt spans.txt; do
        n=$(grep -F -c -- "$secret" "$out/$f" || true)
        [[ $n -eq 0 ]] || echo "  ${secret:0:4}… ${n}× in ${f%.txt}; first: $(grep -F -m1 -- "$secret" "$out/$f" | cut -c1-160 | sed "s|$secret|<SECRET>|g")"
      done
    done <"$out/secrets.txt"
    return 1
  fi
}

if [[ "${1:-}" == "--suite" ]]; then
  cargo build -q -p ponte-tests --bin otlp-sink
  out=$(mktemp -d "${TMPDIR:-/tmp}/ponte-secret-scan.XXXXXX")
  trap 'kill "${sink:-}" 2>/dev/null || true; rm -rf "$out"' EXIT
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  target/debug/otlp-sink --addr "127.0.0.1:$port" --out "$out/received-spans.txt" &
  sink=$!
  set +e
  PONTE_SCAN_DIR="$out" PONTE_SCAN_OTLP="http://127.0.0.1:$port" bash scripts/test.sh >"$out/test-output.txt" 2>&1
  status=$?
  set -e
  sleep 2
  kill "$sink" 2>/dev/null || true
  grep -E '^test result:' "$out/test-output.txt" | awk '{p += $4; f += $6} END {print "secret-scan: the suite ran: " p " passed, " f " failed"}'
  [[ $status -eq 0 ]] || echo "secret-scan: note: the suite itself failed (exit $status); the scan covers what ran" >&2
  cat "$out"/secrets-*.txt | sort -u >"$out/secrets.txt"
  cat "$out"/logs-*.txt "$out"/proc-*.txt "$out/test-output.txt" >"$out/logs.txt" 2>/dev/null || true
  cat "$out"/spans-*.txt "$out/received-spans.txt" >"$out/spans.txt" 2>/dev/null || true
  if [[ ! -s "$out/secrets.txt" ]]; then
    echo "secret-scan: the suite listed no secrets" >&2
    exit 2
  fi
  echo "secret-scan: $(ls "$out"/proc-*.txt 2>/dev/null | wc -l) ponte serve processes, $(ls "$out"/logs-*.txt | wc -l) test processes"
  scan "$out"
  exit $?
fi

cargo build -q -p ponte -p ponte-tests --bin ponte --bin chaos

out=$(mktemp -d "${TMPDIR:-/tmp}/ponte-secret-scan.XXXXXX")
trap 'rm -rf "$out"' EXIT
set +e
target/debug/chaos --events "${EVENTS:-150}" --kills 2 --seed "${SEED:-3}" --timeout-secs 120 --log trace \
  --spans-out "$out/spans.txt" --secrets-out "$out/secrets.txt" >"$out/report.json" 2>"$out/logs.txt"
status=$?
set -e
if [[ ! -s "$out/secrets.txt" ]]; then
  echo "secret-scan: the run wrote no secrets list (exit $status):" >&2
  tail -n 20 "$out/logs.txt" >&2
  exit 2
fi
[[ $status -eq 0 ]] || echo "secret-scan: note: the chaos run itself reported differences (exit $status)" >&2

scan "$out"
