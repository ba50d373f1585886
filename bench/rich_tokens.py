#!/usr/bin/env python3
"""Rich tokens in a sequences file, and how two extractions of the same packages compare.

    python3 bench/rich_tokens.py target/dsr/malicious.jsonl target/dsr/benign.jsonl
        per rich token, the share of malicious and benign packages that have it (in the
        sequence or any unit): the table of docs/EVALUATION.md, "Rich tokens".
    python3 bench/rich_tokens.py --compare OLD.jsonl NEW.jsonl
        packages of NEW (rich tokens dropped to their features) whose sequence or units
        differ from OLD's: the extraction's repeatability across runs.
    python3 bench/rich_tokens.py --which P3.drop target/dsd/benign.jsonl
        the packages that have the token, with the files of the units that carry it.
"""
import collections
import json
import sys


def base(tokens):
    return [t.split(".")[0] if "." in t and not t.startswith("[") else t for t in tokens or []]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def shares(paths):
    count = collections.Counter()
    having = {"malicious": collections.Counter(), "benign": collections.Counter()}
    for path in paths:
        for r in load(path):
            count[r["label"]] += 1
            seen = {t for t in r["sequence"] or [] if "." in t}
            for u in r.get("units") or []:
                seen |= {t for t in u["sequence"] if "." in t}
            for t in seen:
                having[r["label"]][t] += 1
    print(f"| token | malicious ({count['malicious']:,}) | benign ({count['benign']:,}) |")
    print("| --- | --- | --- |")
    tokens = set(having["malicious"]) | set(having["benign"])
    for t in sorted(tokens, key=lambda t: -having["malicious"][t] / max(count["malicious"], 1)):
        m = 100 * having["malicious"][t] / max(count["malicious"], 1)
        b = 100 * having["benign"][t] / max(count["benign"], 1)
        print(f"| `{t}` | {m:.1f}% | {b:.1f}% |")


def which(token, path):
    for r in load(path):
        files = [u["file"] for u in r.get("units") or [] if token in u["sequence"]]
        if files or token in (r["sequence"] or []):
            print(f"{r['ecosystem']} {r['name']} {r['version']}: {', '.join(files[:3])}")


def compare(old_path, new_path):
    old = {(r["file"], r["label"]): r for r in load(old_path)}
    differ = units_differ = missing = total = 0
    for r in load(new_path):
        total += 1
        o = old.get((r["file"], r["label"]))
        if o is None:
            missing += 1
            continue
        differ += (o["sequence"] or []) != base(r["sequence"])
        units_differ += [u["sequence"] for u in o.get("units") or []] != [
            base(u["sequence"]) for u in r.get("units") or []
        ]
    print(f"{total} packages: sequence differs {differ}, units differ {units_differ}, "
          f"not in the old file {missing}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"] and len(sys.argv) == 4:
        compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["--which"] and len(sys.argv) == 4:
        which(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1:
        shares(sys.argv[1:])
    else:
        sys.exit(__doc__)
