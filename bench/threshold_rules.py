#!/usr/bin/env python3
"""Threshold rules and ensembles judged from `--predictions` files, without retraining.

    bench/threshold_rules.py halves NAME=PRED.jsonl [NAME=PRED.jsonl ...]
    bench/threshold_rules.py ensembles [--max-members K] [--valid-only] NAME=PRED.jsonl [...]

Each PRED file is the `predictions.jsonl` of a `cerebro-train` run or the `--predictions`
output of `cerebro-train eval` (validation and test packages; the quantized score where there
is one). An ensemble's score is the mean of its members' scores, as in an ensemble model file.

Rules (per ecosystem, on its own validation packages; the objective is the best F1, ties to
the lowest threshold, as in crates/cerebro-train/src/train/metrics.rs):
  measured  at most floor(0.5% of n) false positives (the rule of the shipped model until
            2026-11-21);
  cp80/90/95 at most the largest k whose one-sided Clopper-Pearson upper bound at 80/90/95%
            is within 0.5% (at least 0: above every benign score), `FpBudget`.

`halves` asks how a rule does on packages it did not choose on, using the validation part
only: 200 times, each ecosystem's validation packages are cut in two random halves (malicious
and benign separately); the threshold is chosen on one half and judged on the other. Prints,
per model and rule, how often the other half exceeds 0.5% false positives, and its mean
recall and false-positive rate. The test part is not read.

`ensembles` prints, for every ensemble of up to K members (default: all), the validation mean
F1 at the thresholds each rule chooses, then the test F1, recall and false positives at them,
sorted by rule and validation. Reads scores only. With `--valid-only` the test part is not
read at all: per ecosystem, the threshold, F1, recall and false positives on validation (what a
model is chosen by).
"""
import itertools
import math
import random
import sys

from thresholds import BUDGET, candidates, counts, f1, load  # bench/ is on sys.path
RULES = [("measured", None), ("cp80", 0.8), ("cp90", 0.9), ("cp95", 0.95)]


def binom_cdf(k, n, p):
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    lp, lq = math.log(p), math.log1p(-p)
    return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        + i * lp + (n - i) * lq) for i in range(k + 1))


def cp_upper(k, n, c):
    if k >= n:
        return 1.0
    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if binom_cdf(k, n, mid) > 1 - c:
            lo = mid
        else:
            hi = mid
    return hi


_ALLOWED = {}


def allowed(n, c):
    if c is None:
        return int(math.floor(BUDGET * n + 1e-9))
    if (n, c) not in _ALLOWED:
        k = 0
        while k < n and cp_upper(k + 1, n, c) <= BUDGET:
            k += 1
        _ALLOWED[(n, c)] = k
    return _ALLOWED[(n, c)]


def choose(v, c):
    kmax = allowed(sum(1 for _, m in v if not m), c)
    best = None
    for t in candidates(v):
        cc = counts(v, t)
        key = (cc[1] <= kmax, f1(cc) if cc[1] <= kmax else -cc[1])
        if best is None or key > best[0]:
            best = (key, t)
    return best[1]


def parse_models(args):
    models = {}
    for a in args:
        name, _, path = a.partition("=")
        if not path:
            sys.exit(f"{a}: give NAME=PRED.jsonl")
        models[name] = load(path)
    return models


def mean_of(models, names):
    keys = set.intersection(*[set(models[n]) for n in names])
    return {k: sum(models[n][k] for n in names) / len(names) for k in keys}


def part(d, p, e):
    return [(s, k[2] == "malicious") for k, s in d.items() if k[0] == p and k[1] == e]


def halves(models):
    for name, d in models.items():
        for e in ("pypi", "npm"):
            v = part(d, "valid", e)
            ben = [x for x in v if not x[1]]
            mal = [x for x in v if x[1]]
            cells = []
            for rule, c in RULES:
                rnd = random.Random(7)
                over = rec = fp = 0.0
                for _ in range(200):
                    rnd.shuffle(ben)
                    rnd.shuffle(mal)
                    a = ben[: len(ben) // 2] + mal[: len(mal) // 2]
                    b = ben[len(ben) // 2:] + mal[len(mal) // 2:]
                    tp, f, fn, tn = counts(b, choose(a, c))
                    rate = f / (f + tn)
                    over += rate > BUDGET
                    rec += tp / (tp + fn)
                    fp += rate
                cells.append(f"{rule} >0.5%: {over / 200:.2f} R {rec / 200:.3f} FP {100 * fp / 200:.2f}%")
            print(f"{name:<14} {e:<4} | " + " | ".join(cells))


def ensembles(models, k, valid_only=False):
    rows = []
    for n in range(1, k + 1):
        for names in itertools.combinations(models, n):
            d = mean_of(models, names)
            for rule, c in RULES:
                vf, out = [], []
                for e in ("pypi", "npm"):
                    v = part(d, "valid", e)
                    t = choose(v, c)
                    vf.append(f1(counts(v, t)))
                    tp, fp, fn, tn = counts(v if valid_only else part(d, "test", e), t)
                    out.append(f"{e} t={t:.3f} F1 {f1((tp, fp, fn, tn)):.4f} "
                               f"R {tp}/{tp + fn} FP {fp} ({100 * fp / (fp + tn):.2f}%)")
                rows.append((rule, -sum(vf) / 2, "+".join(names), " | ".join(out)))
    order = {r: i for i, (r, _) in enumerate(RULES)}
    for rule, neg, names, out in sorted(rows, key=lambda r: (order[r[0]], r[1])):
        print(f"{rule:<8} valid {-neg:.4f}  {names:<28} {out}")


def main(argv):
    if len(argv) < 2 or argv[0] not in ("halves", "ensembles"):
        sys.exit(__doc__)
    if argv[0] == "halves":
        halves(parse_models(argv[1:]))
    else:
        args = argv[1:]
        k, valid_only = None, False
        while args[:1] in (["--max-members"], ["--valid-only"]):
            if args[0] == "--valid-only":
                valid_only, args = True, args[1:]
            else:
                k, args = int(args[1]), args[2:]
        models = parse_models(args)
        ensembles(models, k or len(models), valid_only)


if __name__ == "__main__":
    main(sys.argv[1:])
