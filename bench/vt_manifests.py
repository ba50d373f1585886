#!/usr/bin/env python3
"""Benign manifests cut to the validation and test parts, to scan only what an evaluation reads.

    bench/vt_manifests.py stub MALICIOUS.jsonl OUT.jsonl
        MALICIOUS.jsonl (`cerebro-dataset sequences` with a header-only manifest) plus one line
        per benign row of data/benign-*.csv with an empty sequence: the split of benign groups
        depends only on their names and on the malware, so `cerebro-dataset parts` on this
        file gives every package the part it has in the full dataset.
    bench/vt_manifests.py filter PARTS.csv OUT_DIR
        data/benign-pypi.csv and data/benign-npm.csv keeping the rows whose part (from
        `cerebro-dataset parts`) is valid or test, as OUT_DIR/benign-{pypi,npm}-vt.csv.
Run from the repository root. Reads manifests and JSON only.
"""
import csv
import json
import sys

MANIFESTS = (("data/benign-pypi.csv", "top-pypi", "benign-pypi"),
             ("data/benign-npm.csv", "top-npm", "benign-npm"))


def stub(malicious, out_path):
    with open(out_path, "w") as out:
        for line in open(malicious):
            out.write(line)
        for path, source, _ in MANIFESTS:
            for r in csv.DictReader(open(path)):
                out.write(json.dumps({
                    "label": "benign", "ecosystem": r["ecosystem"], "source": source,
                    "name": r["name"], "version": r["version"], "file": r["file"],
                    "sha256": r["sha256"], "added": None, "rank": int(r["rank"]),
                    "sequence": [], "files_parsed": 0, "error": None}) + "\n")


def keep(parts_csv, out_dir):
    parts = {r["sha256"]: r["part"] for r in csv.DictReader(open(parts_csv))}
    for path, _, name in MANIFESTS:
        rows = list(csv.DictReader(open(path)))
        kept = [r for r in rows if parts.get(r["sha256"]) in ("valid", "test")]
        with open(f"{out_dir}/{name}-vt.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(kept)
        print(f"{name}: {len(rows)} -> {len(kept)}")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("stub", "filter"):
        sys.exit(__doc__)
    (stub if sys.argv[1] == "stub" else keep)(sys.argv[2], sys.argv[3])
