#!/usr/bin/env bash
# Benchmark: `cerebro audit` of a large real lockfile, cold (empty cache: every tarball
# downloaded, verified and judged) and warm (the same lockfile again: everything from the
# download cache and the verdict store).
#
#   bench/audit.sh [PACKAGE...]
#
# The lockfile is made by `npm install --package-lock-only --ignore-scripts` of the packages
# given (default: react-scripts@5.0.1, about 1,300 packages), in a scratch folder: npm
# resolves only, installs nothing and runs nothing. Needs the npm registry (the configured
# one). Results go to target/bench-audit, or to $BENCH_OUT; the cache is a fresh folder
# there. Prints the machine load, the package count, and wall time and peak memory of each
# run, then the verdict counts of the warm run.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${BENCH_OUT:-target/bench-audit}")"
packages=("${@:-react-scripts@5.0.1}")
rm -rf "$out" && mkdir -p "$out/project" "$out/cache"

cargo build --release --locked -q -p cerebro --bin cerebro
cerebro="$PWD/target/release/cerebro"

(cd "$out/project" && echo '{"name":"bench","version":"1.0.0","private":true}' > package.json \
    && npm install --package-lock-only --ignore-scripts --no-audit --no-fund -q "${packages[@]}" >/dev/null)
count=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["packages"]; print(sum(1 for k in p if k.startswith("node_modules/")))' "$out/project/package-lock.json")
echo "lockfile: ${packages[*]}: $count packages"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"

for run in cold warm; do
    echo "load before the $run run: $(cut -d' ' -f1-3 /proc/loadavg)"
    code=0
    CEREBRO_CACHE_DIR="$out/cache" /usr/bin/time -v -o "$out/time-$run.txt" \
        "$cerebro" audit --json -q "$out/project/package-lock.json" > "$out/$run.jsonl" || code=$?
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$out/time-$run.txt")
    rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f MiB", $2/1024}' "$out/time-$run.txt")
    echo "$run: exit $code, wall $wall, peak RSS $rss"
done
python3 - "$out/warm.jsonl" <<'PY'
import collections, json, sys
counts = collections.Counter(json.loads(l)["status"] for l in open(sys.argv[1]) if l.strip())
print("verdicts (warm run):", dict(counts))
PY
