#!/usr/bin/env python3
"""Which packages' behaviour sequences differ between two `cerebro-dataset sequences` files.

    bench/compare_sequences.py OLD.jsonl NEW.jsonl [--list]

Packages are matched by (label, ecosystem, name, version, sha256). Prints how many sequences
changed per label and ecosystem; with --list, each change (old -> new, first 80 characters).
What an extractor change did to the training data, before any retraining. Reads JSON only.
"""
import collections
import json
import sys


def load(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        key = (r["label"], r["ecosystem"], r["name"], r["version"], r["sha256"])
        out[key] = " ".join(r.get("sequence") or [])
    return out


def main(old_path, new_path, show):
    old, new = load(old_path), load(new_path)
    changed = collections.Counter()
    for key, seq in new.items():
        if key in old and old[key] != seq:
            changed[key[:2]] += 1
            if show:
                label, eco, name, version, _ = key
                print(f"{label:9} {eco:4} {name} {version}: {old[key][:80]!r} -> {seq[:80]!r}")
    print(f"{len(new)} packages, {sum(changed.values())} sequences changed")
    for (label, eco), n in sorted(changed.items()):
        print(f"  {label:9} {eco:4} {n}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--list"]
    if len(args) != 2:
        sys.exit(__doc__)
    main(args[0], args[1], "--list" in sys.argv)
