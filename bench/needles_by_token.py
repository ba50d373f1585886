#!/usr/bin/env python3
"""Needle-test recall of two models, split by whether the needle carries a rich token.

    python3 bench/needles_by_token.py NEEDLES.jsonl TOKEN \\
        OLD_PREDICTIONS.jsonl:PYPI_PACKAGE_T:PYPI_UNIT_T NEW_PREDICTIONS.jsonl:PYPI_PACKAGE_T:PYPI_UNIT_T

NEEDLES.jsonl is `cerebro-dataset needles` output; each predictions file is written by
`cerebro-train eval --model M --data NEEDLES.jsonl --every-part --units --predictions P`, in
the needles' order, and the thresholds are the model's PyPI package and unit thresholds
(printed by `cerebro-train ensemble`). A needle is caught when its package score or its
best unit reaches the threshold, as the product judges. Prints, for the PyPI needles with
and without TOKEN in any unit: how many, and how many each model catches
(docs/EVALUATION.md, "`P3.drop`").
"""
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    needles_path, token, *models = sys.argv[1:]
    needles = load(needles_path)
    runs = []
    for spec in models:
        path, package_t, unit_t = spec.rsplit(":", 2)
        rows = load(path)
        if len(rows) != len(needles):
            sys.exit(f"{path}: {len(rows)} predictions for {len(needles)} needles")
        runs.append((path, rows, float(package_t), float(unit_t)))
    counts = {True: [0] * (1 + len(runs)), False: [0] * (1 + len(runs))}
    for i, needle in enumerate(needles):
        if needle["ecosystem"] != "pypi":
            continue
        has = any(token in (u.get("sequence") or []) for u in needle.get("units") or [])
        counts[has][0] += 1
        for k, (_, rows, package_t, unit_t) in enumerate(runs):
            row = rows[i]
            if row["name"] != needle["name"]:
                sys.exit(f"prediction {i} is {row['name']}, the needle {needle['name']}")
            if row["score"] >= package_t or (row.get("unit_max") or 0) >= unit_t:
                counts[has][k + 1] += 1
    for has in (True, False):
        n, *caught = counts[has]
        label = f"with {token}" if has else f"without {token}"
        shown = ", ".join(f"{c} ({c / max(n, 1):.0%})" for c in caught)
        print(f"{label}: {n} PyPI needles; caught: {shown}")


if __name__ == "__main__":
    main()
