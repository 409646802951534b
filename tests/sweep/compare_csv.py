#!/usr/bin/env python3
"""Checks that two sweep.csv files hold the same runs and the same numbers: every column but
timings (names with "seconds") and whether a run was resumed. Exit 0 when equal."""
import csv
import sys


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["run"]: r for r in rows}


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    if sorted(a) != sorted(b):
        print(f"different runs: {sorted(a)} vs {sorted(b)}")
        return 1
    bad = 0
    for name in a:
        ra, rb = a[name], b[name]
        if ra["status"] != "finished" or rb["status"] != "finished":
            print(f"{name}: not finished ({ra['status']}, {rb['status']})")
            bad += 1
        cols = [c for c in set(ra) | set(rb) if "seconds" not in c and "resumed" not in c]
        if len(cols) < 5:
            print(f"{name}: too few columns to compare: {cols}")
            bad += 1
        for c in sorted(cols):
            if ra.get(c) != rb.get(c):
                print(f"{name}: {c}: {ra.get(c)} != {rb.get(c)}")
                bad += 1
    print(f"compared {len(a)} runs: {'equal' if not bad else str(bad) + ' differences'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
