#!/usr/bin/env python3
"""How many ordinary updates of popular packages the release diff flags.

    bench/release_pairs.py [--npm N] [--pypi N] [--releases K] [--cerebro BIN]
                           [--cache DIR] [--out FILE.jsonl] [--budget-s S] [--download-only]

Takes the N highest-ranked names of data/benign-npm.csv and data/benign-pypi.csv, downloads
their last K releases (stable versions only, newest last; npm tarballs, PyPI pure wheels when
every one of the K releases has one, else sdists) from the public registries, verifies each
against the registry's hash, and runs `cerebro scan --json --quiet --against OLD NEW` over each
pair of consecutive releases. Prints, per ecosystem, the pairs compared and how many changes
were judged malicious (the figure the target is zero for), suspicious, and how many releases
were judged malicious by the scan of the release alone; then each flagged pair with its
reasons. Every result goes to --out as one JSON object a line.

Downloads are cached in --cache (default ~/.cache/cerebro-bench/release-pairs), so a second
run costs the scans only. Network: registry.npmjs.org and pypi.org (benchmarks only; the
tests never reach the network). --budget-s stops starting new pairs after that many seconds.
"""
import argparse
import base64
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UA = {"User-Agent": "cerebro-bench (release_pairs.py)"}


def get(url, accept=None):
    headers = dict(UA)
    if accept:
        headers["Accept"] = accept
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as r:
        return r.read()


def version_key(v):
    """Numeric release tuple; None for pre-releases and anything not plainly numeric."""
    m = re.fullmatch(r"v?(\d+(?:\.\d+)*)(?:\.post\d+)?", v)
    if not m:
        return None
    return tuple(int(x) for x in m.group(1).split("."))


def names(csv_path, n):
    with open(csv_path, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["rank"]))
    out = []
    for r in rows[:0] if n <= 0 else rows:
        if r["name"] not in out:
            out.append(r["name"])
        if len(out) == n:
            break
    return out


def npm_releases(name, k):
    """[(version, url, check)] of the last k stable releases."""
    packument = "https://registry.npmjs.org/" + urllib.parse.quote(name, safe="@")
    doc = json.loads(get(packument, accept="application/vnd.npm.install-v1+json"))
    stable = [(version_key(v), v, meta) for v, meta in doc.get("versions", {}).items()
              if version_key(v) is not None and not meta.get("deprecated")]
    stable.sort()
    out = []
    for _, v, meta in stable[-k:]:
        dist = meta["dist"]
        out.append((v, urllib.parse.urljoin(packument, dist["tarball"]), ("sha512", dist.get("integrity")) if
                    dist.get("integrity", "").startswith("sha512-") else ("sha1", dist["shasum"])))
    return out


def pypi_releases(name, k):
    api = f"https://pypi.org/pypi/{name}/json"
    doc = json.loads(get(api))
    stable = sorted((version_key(v), v, files) for v, files in doc["releases"].items()
                    if version_key(v) is not None and files and
                    not all(f.get("yanked") for f in files))
    chosen = stable[-k:]

    def pure_wheel(files):
        return next((f for f in files if f["filename"].endswith("-py3-none-any.whl")), None)

    def sdist(files):
        return next((f for f in files if f["packagetype"] == "sdist"), None)

    pick = pure_wheel if all(pure_wheel(f) for _, _, f in chosen) else sdist
    out = []
    for _, v, files in chosen:
        f = pick(files)
        if f is None:
            return out[:0]  # a release without that kind of file: no comparable pairs
        # Mirrors write the links relative to the API document.
        out.append((v, urllib.parse.urljoin(api, f["url"]),
                    ("sha256", f["digests"]["sha256"])))
    return out


def verified(data, check):
    kind, value = check
    if kind == "sha512":
        return base64.b64encode(hashlib.sha512(data).digest()).decode() == value[len("sha512-"):]
    return hashlib.new(kind, data).hexdigest() == value


def download(cache, eco, name, version, url, check):
    folder = os.path.join(cache, eco, name.replace("/", "__"))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, os.path.basename(urllib.parse.urlparse(url).path))
    if os.path.exists(path):
        return path
    data = get(url)
    if not verified(data, check):
        raise RuntimeError(f"{url}: hash mismatch")
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def compare(cerebro, old, new):
    start = time.monotonic()
    p = subprocess.run([cerebro, "scan", "--json", "--quiet", "--against", old, new],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    report = None
    for line in p.stdout.splitlines():
        report = json.loads(line)
    return p.returncode, report, p.stderr.strip(), elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npm", type=int, default=60)
    ap.add_argument("--pypi", type=int, default=60)
    ap.add_argument("--releases", type=int, default=3)
    ap.add_argument("--cerebro", default=os.path.join(ROOT, "target", "release", "cerebro"))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/cerebro-bench/release-pairs"))
    ap.add_argument("--out", default="release-pairs.jsonl")
    ap.add_argument("--budget-s", type=float, default=1200)
    ap.add_argument("--download-only", action="store_true",
                    help="fill the cache and stop (no scans)")
    args = ap.parse_args()
    if not args.download_only and not os.path.exists(args.cerebro):
        sys.exit(f"{args.cerebro} not found: build it (cargo build --release -p cerebro) "
                 "or pass --cerebro")

    plan = [("npm", n) for n in names(os.path.join(ROOT, "data", "benign-npm.csv"), args.npm)]
    plan += [("pypi", n) for n in names(os.path.join(ROOT, "data", "benign-pypi.csv"), args.pypi)]
    stats = {}
    flagged = []
    start = time.monotonic()
    with open(args.out, "w") as out:
        for eco, name in plan:
            if time.monotonic() - start > args.budget_s:
                print(f"budget of {args.budget_s:.0f}s spent; stopping", file=sys.stderr)
                break
            s = stats.setdefault(eco, {"pairs": 0, "malicious": 0, "suspicious": 0,
                                       "release_malicious": 0, "errors": 0, "seconds": []})
            try:
                releases = (npm_releases if eco == "npm" else pypi_releases)(name, args.releases)
                paths = [(v, download(args.cache, eco, name, v, url, check))
                         for v, url, check in releases]
            except Exception as e:  # a registry hiccup costs one package, not the run
                print(f"{eco} {name}: skipped ({e})", file=sys.stderr)
                continue
            if args.download_only:
                print(f"{eco} {name}: {len(paths)} releases", file=sys.stderr)
                continue
            for (v_old, old), (v_new, new) in zip(paths, paths[1:]):
                code, report, err, elapsed = compare(args.cerebro, old, new)
                changes = (report or {}).get("changes")
                row = {"ecosystem": eco, "name": name, "from": v_old, "to": v_new,
                       "exit": code, "elapsed_s": round(elapsed, 3),
                       "verdict": (report or {}).get("verdict"),
                       "change": changes and changes["verdict"],
                       "reasons": changes and changes["reasons"],
                       "units": changes and len(changes["units"]),
                       "error": (report or {}).get("error") or (err if code in (1, 2) else None)}
                out.write(json.dumps(row) + "\n")
                out.flush()
                if changes is None:
                    s["errors"] += 1
                    print(f"{eco} {name} {v_old} -> {v_new}: error {row['error']}",
                          file=sys.stderr)
                    continue
                s["pairs"] += 1
                s["seconds"].append(elapsed)
                s[changes["verdict"]] = s.get(changes["verdict"], 0) + 1
                s["release_malicious"] += row["verdict"] == "malicious"
                if changes["verdict"] != "benign":
                    flagged.append(row)
                print(f"{eco} {name} {v_old} -> {v_new}: change {changes['verdict']}, "
                      f"release {row['verdict']}, {row['units']} changed files, "
                      f"{elapsed:.1f}s", file=sys.stderr)

    print(f"\n| ecosystem | pairs | change malicious | change suspicious | release malicious "
          f"| errors | median s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for eco, s in stats.items():
        secs = sorted(s["seconds"]) or [0]
        print(f"| {eco} | {s['pairs']} | {s['malicious']} | {s['suspicious']} | "
              f"{s['release_malicious']} | {s['errors']} | {secs[len(secs) // 2]:.2f} |")
    for row in flagged:
        print(f"\n{row['change']}: {row['ecosystem']} {row['name']} {row['from']} -> {row['to']}")
        for reason in row["reasons"] or []:
            print(f"  {reason}")


if __name__ == "__main__":
    main()
