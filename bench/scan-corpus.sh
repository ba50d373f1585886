#!/usr/bin/env bash
# Benchmark: `cerebro scan --json` over the whole training corpus (about 11,000 archives).
#
#   bench/scan-corpus.sh [CORPUS] [JOBS]
#
# CORPUS defaults to ../shared/corpus, JOBS to all cores. Prints wall time, peak memory
# (max RSS), per-package median and 95th percentile, unreadable archives, and the malicious
# packages whose sequence came out empty (blind spots), with their paths in
# target/bench/empty.txt. The corpus is read as bytes only: nothing in it is run.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:-../shared/corpus}"
jobs="${2:-$(nproc)}"
out=target/bench
mkdir -p "$out"

cargo build --release --locked -q
/usr/bin/time -v -o "$out/time.txt" \
    target/release/cerebro scan --json -q --jobs "$jobs" "$corpus" > "$out/corpus.jsonl" || true

python3 bench/summarise.py "$out/corpus.jsonl" "$out/time.txt" "$out/empty.txt"
