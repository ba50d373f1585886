#!/usr/bin/env bash
# Benchmark: what the install guard adds to a pip or npm install (issue 4's budget: with a warm
# guard cache at most 1.2 times the bare install and under 1 s added; cold, reported).
#
#   bench/guard-overhead.sh [RUNS] [pip|npm|both]
#
# RUNS defaults to 10, the managers to both. A tree of 61 synthetic packages per ecosystem
# (bench-root -> 6 mids -> 9 leaves each; CEREBRO_BENCH_MIDS / CEREBRO_BENCH_LEAVES change it)
# is served on loopback by the ignored test `overhead_fixture_server` in tests/guard_pip.rs.
# Then, each into a fresh venv / project:
#   bare     the real manager, pointed at the loopback registry
#   cold     cerebro <manager> -- install ..., the guard's cache emptied before each run
#   warm     the same with the guard's cache kept from a previous run
# The managers' own caches are off (pip) or emptied before each run (npm) in every variant, so
# the guard's cache is the only thing that differs. Timed with hyperfine when installed
# (`apt-get install hyperfine`), else with bench/guard_overhead.py's loop. Results:
# target/bench/guard-overhead/{pip,npm}.json and summary.md (also printed); the script exits 1
# when a warm install is over budget. Before timing, one install of each variant is checked to
# put the whole tree into the venv / project (and the last timed run is checked again), so a
# run that installs nothing cannot pass for a fast one. Nothing here leaves loopback: every
# variable that could name another index or config is reset.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
which_managers="${2:-both}"
root="$PWD"
out="$root/target/bench/guard-overhead"
rm -rf "$out"
mkdir -p "$out/home"

# CEREBRO_BENCH_PROFILE=debug measures a debug build instead (only to try the script out);
# CEREBRO_BIN times another guard binary, CEREBRO_BENCH_SERVER uses a fixture server already
# built (the guard_pip test binary); with both set nothing is built.
profile="${CEREBRO_BENCH_PROFILE:-release}"
profile_flag=()
[ "$profile" = release ] && profile_flag=(--release)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${CEREBRO_BIN:-}" ]; then
    echo "building cerebro ($profile)" >&2
    cargo build "${profile_flag[@]}" --locked -q
fi
cerebro="${CEREBRO_BIN:-$target_dir/$profile/cerebro}"
server_bin="${CEREBRO_BENCH_SERVER:-}"
if [ -z "$server_bin" ]; then
    echo "building the fixture server" >&2
    server_bin="$(cargo test "${profile_flag[@]}" --locked -q --test guard_pip --no-run \
        --message-format=json 2>/dev/null | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "guard_pip":
        print(m["executable"])')"
fi
[ -x "$server_bin" ] || { echo "error: no fixture server (the guard_pip test binary)" >&2; exit 1; }

# A clean environment: no user config, no proxies, no other index.
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CERT PIP_REQUIRE_VIRTUALENV \
    PYTHONPATH VIRTUAL_ENV CI http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY \
    no_proxy NO_PROXY CEREBRO_POLICY
for v in $(env | sed -n 's/^\(npm_config_[^=]*\)=.*/\1/p'); do unset "$v"; done
export HOME="$out/home" TMPDIR="$out/tmp" NO_COLOR=1
mkdir -p "$TMPDIR"
export CEREBRO_CONFIG_DIR="$out/cerebro-config" CEREBRO_CACHE_DIR="$out/cerebro-cache"
export CEREBRO_POLICY=block

"$server_bin" --ignored --exact overhead_fixture_server --nocapture >"$out/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    grep -q '^READY' "$out/server.log" 2>/dev/null && break
    sleep 0.1
done
grep -q '^READY' "$out/server.log" || { cat "$out/server.log" >&2; exit 1; }
pypi_index="$(sed -n 's/^PYPI_INDEX=//p' "$out/server.log")"
npm_registry="$(sed -n 's/^NPM_REGISTRY=//p' "$out/server.log")"
pypi_packages="$(sed -n 's/.*PYPI_PACKAGES=\([0-9]*\).*/\1/p' "$out/server.log")"
npm_packages="$(sed -n 's/.*NPM_PACKAGES=\([0-9]*\).*/\1/p' "$out/server.log")"
echo "fixture server: $pypi_index ($pypi_packages wheels), $npm_registry ($npm_packages tarballs)" >&2

# Times each "name|prepare|command" triple; writes hyperfine's JSON to $1.
time_commands() {
    local json="$1"
    shift
    if command -v hyperfine >/dev/null; then
        local args=(--runs "$runs" --warmup 1 --shell bash --export-json "$json" --style basic)
        local spec name prepare command
        for spec in "$@"; do
            IFS='|' read -r name prepare command <<<"$spec"
            args+=(--prepare "$prepare" -n "$name" "$command")
        done
        hyperfine "${args[@]}" >&2
    else
        # pyenv's python3 shim puts its own bin folder first on PATH, where another pip
        # lives: the timed commands get this script's PATH back from BENCH_PATH.
        BENCH_PATH="$PATH" python3 bench/guard_overhead.py time --runs "$runs" --json "$json" "$@"
    fi
}

# Checks that one install of the tree through the guard installs all of it (so that the timings
# below time a whole install): $1 is what to count, $2 the number expected.
expect_installed() {
    local found="$1" expected="$2" what="$3"
    if [ "$found" != "$expected" ]; then
        echo "error: $what installed $found of $expected packages; not timing it" >&2
        exit 1
    fi
}

manifests=()

if [ "$which_managers" = pip ] || [ "$which_managers" = both ]; then
    python3 -m venv "$out/venv-template"
    export PIP_INDEX_URL="$pypi_index" PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
    template="$out/venv-template"
    venv="$out/venv"
    # A fresh venv: a copy of the template with its scripts pointed at the copy.
    fresh_venv="rm -rf '$venv' && cp -a '$template' '$venv' && sed -i '1s#$template/#$venv/#' '$venv'/bin/pip*"
    # The guard finds the venv's pip on PATH, as the shim would.
    export PATH="$venv/bin:$PATH"
    count_pip() { find "$venv"/lib/python*/site-packages -maxdepth 1 -name 'bench_*.dist-info' | wc -l; }
    bash -c "$fresh_venv"
    "$venv/bin/pip" install -q bench-root >&2
    expect_installed "$(count_pip)" "$pypi_packages" "bare pip"
    bash -c "$fresh_venv && rm -rf '$CEREBRO_CACHE_DIR'"
    "$cerebro" pip -- install -q bench-root >&2
    expect_installed "$(count_pip)" "$pypi_packages" "cerebro pip"
    time_commands "$out/pip.json" \
        "pip (bare)|$fresh_venv|'$venv/bin/pip' install -q bench-root" \
        "cerebro pip, cold cache|$fresh_venv && rm -rf '$CEREBRO_CACHE_DIR'|'$cerebro' pip -- install -q bench-root" \
        "cerebro pip, warm cache|$fresh_venv|'$cerebro' pip -- install -q bench-root"
    expect_installed "$(count_pip)" "$pypi_packages" "cerebro pip (warm, last timed run)"
    manifests+=("pip=$out/pip.json")
fi

if [ "$which_managers" = npm ] || [ "$which_managers" = both ]; then
    project="$out/project"
    export npm_config_userconfig="$out/npmrc" npm_config_globalconfig="$out/npmrc-global" \
        npm_config_cache="$out/npm-cache"
    printf 'registry=%s\naudit=false\nfund=false\nupdate-notifier=false\nprogress=false\n' \
        "$npm_registry" >"$out/npmrc"
    : >"$out/npmrc-global"
    mkdir -p "$out/project-template"
    printf '{\n  "name": "bench-project",\n  "version": "1.0.0",\n  "private": true\n}\n' \
        >"$out/project-template/package.json"
    cp "$out/npmrc" "$out/project-template/.npmrc"
    fresh_project="rm -rf '$project' '$npm_config_cache' && cp -a '$out/project-template' '$project'"
    count_npm() { find "$project/node_modules" -maxdepth 1 -name 'bench-*' | wc -l; }
    bash -c "$fresh_project"
    (cd "$project" && npm install --silent bench-root-js) >&2
    expect_installed "$(count_npm)" "$npm_packages" "bare npm"
    bash -c "$fresh_project && rm -rf '$CEREBRO_CACHE_DIR'"
    (cd "$project" && "$cerebro" npm -- install --silent bench-root-js) >&2
    expect_installed "$(count_npm)" "$npm_packages" "cerebro npm"
    time_commands "$out/npm.json" \
        "npm (bare)|$fresh_project|cd '$project' && npm install --silent bench-root-js" \
        "cerebro npm, cold cache|$fresh_project && rm -rf '$CEREBRO_CACHE_DIR'|cd '$project' && '$cerebro' npm -- install --silent bench-root-js" \
        "cerebro npm, warm cache|$fresh_project|cd '$project' && '$cerebro' npm -- install --silent bench-root-js"
    expect_installed "$(count_npm)" "$npm_packages" "cerebro npm (warm, last timed run)"
    manifests+=("npm=$out/npm.json")
fi

python3 bench/guard_overhead.py summary --packages "pip=$pypi_packages" \
    --packages "npm=$npm_packages" "${manifests[@]}" | tee "$out/summary.md"
