#!/usr/bin/env bash
# The gateway's acknowledgement benchmark (docs/benchmarks.md): installs wrk when missing,
# makes sure PostgreSQL and Redis answer, and runs the release benchmark. Extra arguments go
# to the benchmark (e.g. --seconds 10 --connections 8,32 --dispatch false).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
bash scripts/services.sh
cargo run --release -p ponte-tests --bin gateway-bench -- "$@"
