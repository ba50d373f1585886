#!/usr/bin/env python3
"""Small counts over `--predictions` files and sequence files, for figures in the docs.

    bench/predictions.py bands PRED.jsonl PYPI_T NPM_T
        benign test packages per ecosystem at or above the threshold (malicious) and between
        half of it and it (suspicious, the verdict bands of crates/cerebro-scan/src/detect.rs)
    bench/predictions.py range PRED.jsonl ECOSYSTEM LO HI
        malicious test packages of ECOSYSTEM scoring in [LO, HI), and the most common score
    bench/predictions.py compare A.jsonl B.jsonl PYPI_T NPM_T
        largest |score difference| of the packages in both, and how many change side of the
        thresholds (f32 against quantized)
    bench/predictions.py missed RUN_DIR... -- NAME[@VERSION]...
        per run (RUN_DIR/metrics.json thresholds, RUN_DIR/predictions.jsonl), which of the
        named npm test malware it catches, and the highest score any run gave each
    bench/predictions.py distinct SEQUENCES.jsonl
        malicious sequences and distinct malicious sequences
    bench/predictions.py empty PRED.jsonl
        benign test packages per ecosystem, and how many have no behaviour (an empty sequence;
        the `predictions.jsonl` of a training run, which carries the sequences)

    bench/predictions.py needles PRED.jsonl PYPI_T NPM_T
        validation only: per ecosystem, benign packages at or above the threshold, recall on
        plain malware and on needles (source `needle`), and the benign 99th percentile score

PRED files are `predictions.jsonl` of a training run or `--predictions` of `cerebro-train
eval` (the quantized score where there is one). Reads JSON only.
"""
import collections
import json
import sys

from thresholds import load


def rows(path):
    for line in open(path):
        x = json.loads(line)
        q = x.get("score_quantized")
        x["s"] = x["score"] if q is None else q
        yield x


def bands(path, tp, tn):
    t = {"pypi": float(tp), "npm": float(tn)}
    for eco in ("pypi", "npm"):
        b = [x["s"] for x in rows(path)
             if x["part"] == "test" and x["ecosystem"] == eco and x["label"] == "benign"]
        mal = sum(1 for s in b if s >= t[eco])
        sus = sum(1 for s in b if t[eco] / 2 <= s < t[eco])
        print(f"{eco}: {len(b)} benign, malicious {mal}, suspicious {sus} ({100 * sus / len(b):.2f}%)")


def score_range(path, eco, lo, hi):
    lo, hi = float(lo), float(hi)
    m = [x["s"] for x in rows(path)
         if x["part"] == "test" and x["ecosystem"] == eco and x["label"] == "malicious"]
    inside = [s for s in m if lo <= s < hi]
    common, n = collections.Counter(round(s, 4) for s in m).most_common(1)[0]
    print(f"{len(inside)} of {len(m)} in [{lo}, {hi}); most common score {common} ({n} packages)")


def compare(a, b, tp, tn):
    t = {"pypi": float(tp), "npm": float(tn)}
    da, db = load(a), load(b)
    keys = set(da) & set(db)
    diff = max(abs(da[k] - db[k]) for k in keys)
    flips = sum(1 for k in keys if (da[k] >= t[k[1]]) != (db[k] >= t[k[1]]))
    print(f"{len(keys)} packages, largest |difference| {diff:.4f}, decisions changed {flips}")


def missed(args):
    cut = args.index("--")
    runs, wanted = args[:cut], args[cut + 1:]
    best = {}
    for run in runs:
        metrics = json.load(open(f"{run}/metrics.json"))
        # Runs of the first model had one threshold for both ecosystems.
        t = metrics["thresholds"]["npm"] if "thresholds" in metrics else metrics["threshold"]
        caught = []
        for x in rows(f"{run}/predictions.jsonl"):
            if x["part"] != "test" or x["ecosystem"] != "npm" or x["label"] != "malicious":
                continue
            for w in wanted:
                name, _, version = w.partition("@")
                if x["name"] == name and version in ("", x["version"]):
                    key = f"{x['name']}@{x['version']}"
                    if x["s"] > best.get(key, (-1.0, ""))[0]:
                        best[key] = (x["s"], run)
                    if x["s"] >= t:
                        caught.append(key)
        print(f"{run}: npm threshold {t:.4f}, caught {caught or 'none'}")
    for key, (score, run) in sorted(best.items()):
        print(f"highest score of {key}: {score:.4f} ({run})")


def distinct(path):
    seqs = [tuple(json.loads(l).get("sequence") or []) for l in open(path)
            if json.loads(l)["label"] == "malicious"]
    print(f"{len(seqs)} malicious sequences, {len(set(seqs))} distinct")


def empty(path):
    for eco in ("pypi", "npm"):
        b = [x for x in rows(path)
             if x["part"] == "test" and x["ecosystem"] == eco and x["label"] == "benign"]
        if any("sequence" not in x for x in b):
            sys.exit(f"{path}: no sequences; give the predictions.jsonl of a training run")
        none = sum(1 for x in b if not x["sequence"].strip())
        print(f"{eco}: {len(b)} benign test packages, {none} with no behaviour")


def needles(path, tp, tn):
    t = {"pypi": float(tp), "npm": float(tn)}
    v = [x for x in rows(path) if x["part"] == "valid"]
    for eco in ("pypi", "npm"):
        ben = sorted(x["s"] for x in v if x["ecosystem"] == eco and x["label"] == "benign")
        mal = [x for x in v if x["ecosystem"] == eco and x["label"] == "malicious"]
        rec = lambda xs: sum(x["s"] >= t[eco] for x in xs) / max(1, len(xs))
        plain = [x for x in mal if x.get("source") != "needle"]
        ned = [x for x in mal if x.get("source") == "needle"]
        print(f"{eco}: benign >= t {sum(s >= t[eco] for s in ben)} of {len(ben)}, "
              f"plain recall {rec(plain):.3f} ({len(plain)}), needle recall {rec(ned):.3f} "
              f"({len(ned)}), benign p99 {ben[int(0.99 * len(ben))]:.3f}")


def main(argv):
    if not argv:
        sys.exit(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "bands" and len(args) == 3:
        bands(*args)
    elif cmd == "range" and len(args) == 4:
        score_range(*args)
    elif cmd == "compare" and len(args) == 4:
        compare(*args)
    elif cmd == "missed" and "--" in args:
        missed(args)
    elif cmd == "distinct" and len(args) == 1:
        distinct(*args)
    elif cmd == "needles" and len(args) == 3:
        needles(*args)
    elif cmd == "empty" and len(args) == 1:
        empty(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
