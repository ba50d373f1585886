#!/usr/bin/env python3
"""Helpers for bench/guard-overhead.sh.

    guard_overhead.py time --runs N --json OUT "name|prepare|command" ...
        Times each command N times after one warm-up run, running `prepare` (untimed) before
        every run, all through bash; writes hyperfine's JSON layout (results[].command, mean,
        stddev, median, min, max, times). The fallback when hyperfine is not installed.

    guard_overhead.py summary [--packages MANAGER=N ...] MANAGER=JSON ...
        Prints a markdown table of bare vs guarded (cold and warm) with the warm ratio and the
        time added, against the budget: warm at most 1.2x bare and under 1 s added.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

RATIO_BUDGET = 1.2
ADDED_BUDGET_S = 1.0


def bash(command):
    # The caller's PATH, as it was before a python3 shim (pyenv) put its own folder first.
    env = dict(os.environ)
    env["PATH"] = os.environ.get("BENCH_PATH", env.get("PATH", ""))
    return subprocess.run(["bash", "-c", command], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=env)


def time_commands(args):
    results = []
    for spec in args.specs:
        name, prepare, command = spec.split("|", 2)
        times = []
        for i in range(args.runs + 1):
            prep = bash(prepare)
            if prep.returncode != 0:
                sys.exit(f"error: prepare for {name!r} failed: {prep.stderr.strip()}")
            start = time.perf_counter()
            run = bash(command)
            elapsed = time.perf_counter() - start
            if run.returncode != 0:
                sys.exit(f"error: {name!r} exited {run.returncode}: {run.stderr.strip()[-2000:]}")
            if i > 0:  # the first run is the warm-up
                times.append(elapsed)
        results.append({
            "command": name,
            "mean": statistics.fmean(times),
            "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
            "median": statistics.median(times),
            "min": min(times),
            "max": max(times),
            "times": times,
        })
        print(f"{name}: median {results[-1]['median']:.3f} s over {len(times)} runs", file=sys.stderr)
    with open(args.json, "w") as f:
        json.dump({"results": results}, f, indent=2)


def pick(results, word):
    for r in results:
        if word in r["command"]:
            return r
    return None


def summary(args):
    packages = dict(p.split("=", 1) for p in args.packages or [])
    print("| manager | packages | bare | guard, cold cache | guard, warm cache | warm / bare | warm adds | budget (≤ 1.2×, < 1 s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    verdicts = []
    for spec in args.manifests:
        manager, path = spec.split("=", 1)
        with open(path) as f:
            results = json.load(f)["results"]
        bare, cold, warm = pick(results, "bare"), pick(results, "cold"), pick(results, "warm")

        def cell(r):
            return f"{r['median']:.2f} s ± {r['stddev']:.2f}" if r else "n/a"

        ratio = warm["median"] / bare["median"]
        added = warm["median"] - bare["median"]
        ok = ratio <= RATIO_BUDGET and added < ADDED_BUDGET_S
        verdicts.append(ok)
        print(f"| {manager} | {packages.get(manager, '?')} | {cell(bare)} | {cell(cold)} | {cell(warm)} "
              f"| {ratio:.2f}× | {added:+.2f} s | {'within' if ok else 'OVER'} |")
    print()
    print("Medians of the timed runs (± standard deviation); each run installs the whole tree into a")
    print("fresh venv / project from a registry on loopback, the managers' own caches off.")
    return 0 if all(verdicts) else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("--runs", type=int, default=10)
    t.add_argument("--json", required=True)
    t.add_argument("specs", nargs="+")
    s = sub.add_parser("summary")
    s.add_argument("--packages", action="append")
    s.add_argument("manifests", nargs="+")
    args = parser.parse_args()
    if args.cmd == "time":
        time_commands(args)
    else:
        sys.exit(summary(args))


if __name__ == "__main__":
    main()
