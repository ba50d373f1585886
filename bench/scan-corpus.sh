#!/usr/bin/env bash
# Benchmark: `cerebro scan --json` over the whole training corpus (about 11,000 archives).
#
#   bench/scan-corpus.sh [CORPUS] [JOBS] [SCAN FLAGS...]
#
# CORPUS defaults to ../shared/corpus, JOBS to all cores; further arguments go to `cerebro
# scan` (e.g. `--no-model`). Results go to target/bench, or to $BENCH_OUT. Prints the machine
# load before the run, wall time, peak memory (max RSS), per-package median and 95th
# percentile, verdicts, unreadable archives, and the malicious packages whose sequence came out
# empty (blind spots), with their paths in empty.txt. The corpus is read as bytes only:
# nothing in it is run.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:-../shared/corpus}"
jobs="${2:-$(nproc)}"
shift $(( $# < 2 ? $# : 2 ))
out="${BENCH_OUT:-target/bench}"
mkdir -p "$out"

cargo build --release --locked -q
echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
/usr/bin/time -v -o "$out/time.txt" \
    target/release/cerebro scan --json -q --jobs "$jobs" "$@" "$corpus" > "$out/corpus.jsonl" || true
echo "load after the run:  $(cut -d' ' -f1-3 /proc/loadavg)"

python3 bench/summarise.py "$out/corpus.jsonl" "$out/time.txt" "$out/empty.txt"
