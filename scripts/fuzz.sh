#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a given time each (default 600 s), on the stable toolchain
# (libFuzzer's coverage guidance without a sanitizer). Found crashes are kept under
# fuzz/artifacts/<target>/ and fail the script; each becomes a regression test.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
seconds="${1:-600}"
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked >/dev/null
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== $t (${seconds}s)"
  if ! (cd fuzz && cargo fuzz run --sanitizer none "$t" -- -max_total_time="$seconds" -max_len=65536 2>&1 | tail -4); then
    status=1
  fi
  if [ -n "$(ls -A "fuzz/artifacts/$t" 2>/dev/null)" ]; then
    echo "fuzz: $t found inputs that fail: fuzz/artifacts/$t" >&2
    status=1
  fi
done
exit $status
