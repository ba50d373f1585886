#!/usr/bin/env python3
"""npm malware caught at a threshold, by the phase its behaviour starts in.

    bench/npm_phases.py PREDICTIONS.jsonl SEQUENCES.jsonl THRESHOLD

PREDICTIONS is the `--predictions` output of `cerebro-train eval` (with `--all-npm-malware`
for every npm sample); SEQUENCES the `cerebro-dataset sequences` file it scored. Each npm
malware package (counted once) falls under `install` when its sequence has an install phase,
else `import`, else `run`, else `empty`. Reads JSON only.
"""
import collections
import json
import sys


def main(pred_path, seq_path, threshold):
    seqs = {}
    for line in open(seq_path):
        r = json.loads(line)
        if r["ecosystem"] == "npm" and r["label"] == "malicious":
            seqs[(r["name"], r["version"], r["source"])] = r.get("sequence") or []
    caught, total, seen = collections.Counter(), collections.Counter(), set()
    for line in open(pred_path):
        r = json.loads(line)
        key = (r["name"], r["version"], r["source"])
        if r["ecosystem"] != "npm" or r["label"] != "malicious" or key in seen:
            continue
        seen.add(key)
        s = seqs.get(key, [])
        phase = next((p.strip("[]").lower() for p in ("[INSTALL]", "[IMPORT]", "[RUN]") if p in s),
                     "empty")
        total[phase] += 1
        caught[phase] += r["score"] >= threshold
    print(f"{len(seen)} npm malware packages, {sum(caught.values())} at or above {threshold}")
    for phase in ("install", "import", "run", "empty"):
        print(f"  {phase:8} {caught[phase]} of {total[phase]}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
