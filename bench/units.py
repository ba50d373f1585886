#!/usr/bin/env python3
"""Units against whole packages, judged from `--predictions` files, without retraining.

    bench/units.py PRED.jsonl NEEDLES_PRED.jsonl PYPI_T NPM_T

PRED.jsonl: `cerebro-train eval --units --predictions` on the sequences file (validation and
test packages, each with `score` and `unit_max`, the highest score of its units).
NEEDLES_PRED.jsonl: `cerebro-train eval --units --every-part --predictions` on the file of
`cerebro-dataset needles` (test-part malware sewn into test-part benign packages).
PYPI_T / NPM_T: the model's own package thresholds.

Rules, per ecosystem:
  package   the shipped rule: score >= the model's threshold;
  either    package, or the highest unit score >= a unit threshold chosen on the validation
            part (best F1 of the combined rule with the false positives of the combined rule
            within 0.5% at a one-sided 90% Clopper-Pearson bound, as `FpBudget`);
  max       max(score, unit_max) >= one threshold chosen the same way.
Prints validation F1 and false positives, then test F1, recall and false positives, then the
needle recall at each rule's thresholds. Thresholds are chosen on validation only; the test
part and the needles are only reported.
"""
import json
import sys

from threshold_rules import allowed  # bench/ is on sys.path
from thresholds import candidates, f1


def load(path):
    rows = []
    for line in open(path):
        x = json.loads(line)
        um = x.get("unit_max")
        rows.append((x["part"], x["ecosystem"], x["label"] == "malicious",
                     x["score"], -1.0 if um is None else um))
    return rows


def counts(v, flag):
    tp = sum(1 for r in v if flag(r) and r[2])
    fp = sum(1 for r in v if flag(r) and not r[2])
    fn = sum(1 for r in v if not flag(r) and r[2])
    tn = sum(1 for r in v if not flag(r) and not r[2])
    return tp, fp, fn, tn


def choose(v, rule_of, cands):
    kmax = allowed(sum(1 for r in v if not r[2]), 0.9)
    best = None
    for t in cands:
        c = counts(v, rule_of(t))
        key = (c[1] <= kmax, f1(c) if c[1] <= kmax else -c[1])
        if best is None or key > best[0]:
            best = (key, t)
    return best[1]


def line(label, c):
    tp, fp, fn, tn = c
    r = tp / (tp + fn) if tp + fn else 0.0
    return f"{label} F1 {f1(c):.4f} R {r:.3f} FP {fp} of {fp + tn} ({100 * fp / max(1, fp + tn):.2f}%)"


def main(pred, needles, tp_, tn_):
    rows, nrows = load(pred), load(needles)
    shipped = {"pypi": float(tp_), "npm": float(tn_)}
    for eco in ("pypi", "npm"):
        valid = [r for r in rows if r[0] == "valid" and r[1] == eco]
        test = [r for r in rows if r[0] == "test" and r[1] == eco]
        nd = [r for r in nrows if r[1] == eco]
        T = shipped[eco]
        package = lambda t: (lambda r: r[3] >= t)
        either = lambda u: (lambda r: r[3] >= T or r[4] >= u)
        maxr = lambda t: (lambda r: max(r[3], r[4]) >= t)
        unit_scores = [(r[4], r[2]) for r in valid if r[4] >= 0]
        u = choose(valid, either, candidates(unit_scores) if unit_scores else [1.01])
        m = choose(valid, maxr, candidates([(max(r[3], r[4]), r[2]) for r in valid]))
        print(f"{eco}: {len(valid)} validation, {len(test)} test, {len(nd)} needles")
        for name, flag, t in (("package", package(T), f"{T:.4f}"),
                              ("either", either(u), f"{T:.4f} / unit {u:.4f}"),
                              ("max", maxr(m), f"{m:.4f}")):
            print(f"  {name:<8} t={t}")
            print(f"    {line('validation', counts(valid, flag))}")
            print(f"    {line('test      ', counts(test, flag))}")
            c = counts(nd, flag)
            print(f"    needles recall {c[0] / max(1, c[0] + c[2]):.3f} ({c[0]} of {c[0] + c[2]})")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
