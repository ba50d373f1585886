"""Summarises a `cerebro scan --json` run for docs/PERFORMANCE.md (see bench/scan-corpus.sh)."""
import collections
import json
import re
import statistics
import sys

lines_path, time_path, empty_path = sys.argv[1:4]
reports = [json.loads(line) for line in open(lines_path, encoding="utf-8")]
times = sorted(r["elapsed_ms"] for r in reports)
errors = [r for r in reports if "error" in r]
ok = [r for r in reports if "error" not in r]
empty = [r for r in ok if not r["sequence"]]


def pct(p):
    return times[min(len(times) - 1, int(p * len(times)))]


wall = rss = "?"
for line in open(time_path, encoding="utf-8"):
    if "Elapsed (wall clock)" in line:
        wall = line.rsplit(" ", 1)[1].strip()
    if "Maximum resident set size" in line:
        rss = f"{int(line.rsplit(' ', 1)[1]) / 1024:.0f} MB"

print(f"packages:        {len(reports)} ({len(errors)} unreadable)")
print(f"wall time:       {wall}")
print(f"peak memory:     {rss}")
print(f"per package:     median {statistics.median(times):.2f} ms, p95 {pct(0.95):.2f} ms, "
      f"p99 {pct(0.99):.2f} ms, max {times[-1]:.0f} ms")
scored = [r for r in ok if r.get("score") is not None]
if scored:
    verdicts = collections.Counter(r["verdict"] for r in scored)
    print(f"verdicts:        " + ", ".join(f"{verdicts[v]} {v}" for v in ("malicious", "suspicious", "benign")))
print(f"empty sequence:  {len(empty)}")

def why(r):
    if r["files_parsed"] == 0:
        return "no Python or JavaScript source file"
    return "source files without any mapped behaviour"

reasons = collections.Counter(why(r) for r in empty)
for reason, n in reasons.most_common():
    print(f"  {n:5d}  {reason}")
kinds = collections.Counter(re.sub(r" \(.*", "", e["error"].split(": ", 1)[-1])[:60] for e in errors)
if errors:
    print("unreadable:")
    for k, n in kinds.most_common(10):
        print(f"  {n:5d}  {k}")
with open(empty_path, "w", encoding="utf-8") as f:
    for r in empty:
        f.write(f"{r['path']}\t{why(r)}\n")
