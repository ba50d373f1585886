#!/usr/bin/env python3
"""Threshold rules and score averages over `--predictions` files, without retraining.

    bench/thresholds.py PRED.jsonl [PRED2.jsonl ...]

Each file is the `predictions.jsonl` of a `cerebro-train` run or the `--predictions` output of
`cerebro-train eval` / `baseline` (one JSON object per validation and test package; the
quantized score is used where there is one). With several files the scores are averaged per
package (an ensemble). Thresholds are chosen on the validation part, and the test part is
reported at them, for three rules:

  single     one threshold, best mean per-ecosystem F1, <= 0.5% false positives on all
             benign validation packages together (the first model's rule);
  joint      a pair of thresholds under that one shared budget (tried, not shipped);
  own 0.5%   each ecosystem's best F1 with <= 0.5% false positives on its own benign
             validation packages (`choose_thresholds`, what the shipped model uses).

Ties go to the lowest threshold, as in crates/cerebro-train/src/train/metrics.rs. Reads scores only.
"""
import json
import sys

BUDGET = 0.005


def load(path):
    out = {}
    for line in open(path):
        x = json.loads(line)
        s = x.get("score_quantized")
        s = x["score"] if s is None else s
        out[(x["part"], x["ecosystem"], x["label"], x["name"], x["version"])] = s
    return out


def candidates(v):
    s = sorted({x for x, _ in v})
    return [(a + b) / 2 for a, b in zip(s, s[1:])] + [0.5, (s[-1] + 1) / 2]


def counts(v, t):
    tp = sum(1 for s, m in v if s >= t and m)
    fp = sum(1 for s, m in v if s >= t and not m)
    fn = sum(1 for s, m in v if s < t and m)
    tn = sum(1 for s, m in v if s < t and not m)
    return tp, fp, fn, tn


def f1(c):
    tp, fp, fn, _ = c
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def best(options, fpr_ok):
    top = None
    for key, ts in options:
        if fpr_ok(ts) and (top is None or key > top[0]):
            top = (key, ts)
    return top[1]


def main(files):
    ds = [load(f) for f in files]
    keys = set(ds[0]).intersection(*ds[1:])
    rows = [(k, sum(d[k] for d in ds) / len(ds)) for k in keys]
    part = lambda p, e: [(s, k[2] == "malicious") for k, s in rows if k[0] == p and k[1] == e]
    vp, vn = part("valid", "pypi"), part("valid", "npm")
    tp_, tn_ = part("test", "pypi"), part("test", "npm")
    benign = sum(1 for _, m in vp + vn if not m)

    def show(label, t1, t2):
        out = [f"{label:<9} t={t1:.3f}/{t2:.3f}"]
        for name, v, t in (("pypi", tp_, t1), ("npm", tn_, t2)):
            c = counts(v, t)
            out.append(f"{name} F1 {f1(c):.4f} R {c[0] / (c[0] + c[2]):.3f} "
                       f"FP {c[1]} ({100 * c[1] / (c[1] + c[3]):.2f}%)")
        print("  ".join(out))

    pooled = lambda c1, c2: (c1[1] + c2[1]) / benign <= BUDGET
    single = [((f1(counts(vp, t)) + f1(counts(vn, t))) / 2, (t, t)) for t in candidates(vp + vn)]
    show("single", *best(single, lambda ts: pooled(counts(vp, ts[0]), counts(vn, ts[1]))))
    cp = [(t, counts(vp, t)) for t in candidates(vp)]
    cn = [(t, counts(vn, t)) for t in candidates(vn)]
    joint = [((f1(c1) + f1(c2)) / 2, (t1, t2)) for t1, c1 in cp for t2, c2 in cn if pooled(c1, c2)]
    show("joint", *best(joint, lambda ts: True))

    def own(v):
        nb = sum(1 for _, m in v if not m)
        return best([(f1(counts(v, t)), t) for t in candidates(v)],
                    lambda t: counts(v, t)[1] / nb <= BUDGET)

    show("own 0.5%", own(vp), own(vn))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
