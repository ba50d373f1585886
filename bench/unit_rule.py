#!/usr/bin/env python3
"""The unit rule judged on the validation part: a package is malicious when the package
network's score reaches its threshold OR the unit network's most malicious unit reaches the
unit threshold. Reads the validation part only (the test part is never read).

    bench/unit_rule.py PACKAGE_PRED.jsonl UNIT_PRED.jsonl [--rule cp90]

PACKAGE_PRED: `cerebro-train eval --predictions` of the package model (its `score`).
UNIT_PRED: `cerebro-train eval --units --predictions` of the unit model (its `unit_max`; a
package without units never fires the unit rule).
Both over a sequences file with validation needles (source `needle`), such as
target/dataset/sequences-n.jsonl.

Per ecosystem, the pair (package threshold, unit threshold) is chosen as the shipped rule
chooses one threshold: the best F1 on validation packages (plain and needles together) with
at most the FP bound of false positives on benign validation packages (cp90: the largest k
whose one-sided Clopper-Pearson 90% upper bound is within 0.5%). Prints, for the package
network alone, the unit network alone and the two together: the thresholds, F1, plain recall,
needle recall and false positives.
"""
import json
import sys

from threshold_rules import RULES, allowed  # bench/ is on sys.path
from thresholds import candidates, f1


def load(path, field):
    out = {}
    for line in open(path):
        x = json.loads(line)
        if x["part"] != "valid":
            continue
        if field == "score":
            s = x.get("score_quantized")
            s = x["score"] if s is None else s
        else:
            s = x.get("unit_max")
            s = 0.0 if s is None else s
        key = (x["ecosystem"], x["label"], x["source"], x["name"], x["version"])
        out[key] = s
    return out


def tally(rows, tp_, tu):
    """rows: (package score, unit score, malicious, needle)."""
    c = {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "plain": 0, "plain_n": 0, "needle": 0, "needle_n": 0}
    for s, u, m, nd in rows:
        hit = s >= tp_ or u >= tu
        if m:
            c["tp" if hit else "fn"] += 1
            k = "needle" if nd else "plain"
            c[k + "_n"] += 1
            c[k] += hit
        else:
            c["fp" if hit else "tn"] += 1
    return c


def best(rows, kmax, p_cands, u_cands):
    top = None
    for tp_ in p_cands:
        for tu in u_cands:
            c = tally(rows, tp_, tu)
            if c["fp"] > kmax:
                continue
            key = (f1((c["tp"], c["fp"], c["fn"], c["tn"])), -tp_, -tu)
            if top is None or key > top[0]:
                top = (key, tp_, tu, c)
    return top


def thin(values, n=400):
    c = candidates([(v, None) for v in values])
    if len(c) <= n:
        return c
    c = sorted(c)
    return [c[int(i * (len(c) - 1) / (n - 1))] for i in range(n)] + [1.01]


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    rule = "cp90"
    if "--rule" in argv:
        rule = argv[argv.index("--rule") + 1]
    conf = dict(RULES)[rule]
    pkg, unit = load(argv[0], "score"), load(argv[1], "unit")
    keys = sorted(set(pkg) & set(unit))
    print(f"validation packages in both files: {len(keys)} (rule {rule})")
    for eco in ("pypi", "npm"):
        rows = [(pkg[k], unit[k], k[1] == "malicious", k[2] == "needle") for k in keys if k[0] == eco]
        benign = sum(1 for r in rows if not r[2])
        kmax = allowed(benign, conf)
        ps, us = [r[0] for r in rows], [r[1] for r in rows]
        for name, pc, uc in (
            ("package", thin(ps), [1.01]),
            ("unit", [1.01], thin(us)),
            ("both", thin(ps, 120), thin(us, 120)),
        ):
            _, tp_, tu, c = best(rows, kmax, pc, uc)
            print(
                f"{eco:<4} {name:<7} t_pkg {tp_:.4f} t_unit {tu:.4f}  "
                f"F1 {f1((c['tp'], c['fp'], c['fn'], c['tn'])):.4f}  "
                f"plain {c['plain']}/{c['plain_n']}  needles {c['needle']}/{c['needle_n']}  "
                f"FP {c['fp']}/{benign} (bound {kmax})"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
