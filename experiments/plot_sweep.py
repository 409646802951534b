#!/usr/bin/env python3
"""Draws one metric of a sweep against one of its axes (cellc sweep, docs/sweeps.md).

    python3 experiments/plot_sweep.py SWEEP_DIR --metric KEY --x AXIS [--group AXIS] [--log]

Reads SWEEP_DIR/sweep.csv (one row per run) and SWEEP_DIR/sweep.json (the axes). One line per
group: by default every combination of the axes other than --x and the seed; with --group, one
line per value of that axis (the other axes then pool with the seeds). Each line is the mean over
its runs at each x; every run is drawn as a point, so the spread over seeds shows. Only finished
runs count. Writes SWEEP_DIR/figures/<metric>_vs_<x>.png (with _by_<group> when given).
"""
import argparse
import difflib
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from readfiles import Damaged, csv_rows, read_json, read_text  # noqa: E402


def fail(msg):
    print(f"plot_sweep.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def as_number(text):
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("--metric", required=True, help="a column of sweep.csv, e.g. training.best_validation_error")
    ap.add_argument("--x", required=True, help="the axis on the horizontal axis, e.g. cell.dims.n")
    ap.add_argument("--group", default="", help="one line per value of this axis")
    ap.add_argument("--log", action="store_true", help="log scale for the metric")
    ap.add_argument("--out", default="", help="the figure's path (default SWEEP_DIR/figures/...)")
    a = ap.parse_args()

    table = os.path.join(a.sweep_dir, "sweep.csv")
    manifest = os.path.join(a.sweep_dir, "sweep.json")
    if not os.path.exists(table) or not os.path.exists(manifest):
        fail(f"{a.sweep_dir} holds no sweep.csv and sweep.json (is it a cellc sweep folder?)")
    # A damaged file (not UTF-8, cut short) is one line naming it and the line, not a traceback.
    try:
        sweep = read_json(manifest)
        lines = list(csv_rows(table, read_text(table)))
    except OSError as e:
        fail(f"cannot read {e.filename}: {e.strerror}")
    except Damaged as e:
        fail(str(e))
    if (not isinstance(sweep, dict) or not isinstance(sweep.get("axes"), list)
            or not all(isinstance(x, dict) and isinstance(x.get("keys"), list) for x in sweep["axes"])):
        fail(f"{manifest}: no list of axes with their keys: not a cellc sweep.json, or damaged")
    header = lines[0][1] if lines else []
    if "status" not in header:
        fail(f"{table} line 1: no 'status' column: not a cellc sweep.csv, or damaged")
    rows = []
    for line, fields in lines[1:]:
        if len(fields) != len(header):  # a row cut short: left out, saying where
            if any(x.strip() for x in fields):
                print(f"plot_sweep.py: {table} line {line}: {len(fields)} fields, the header has "
                      f"{len(header)}: row skipped", file=sys.stderr)
            continue
        rows.append(dict(zip(header, fields)))
    columns = header
    axes = [k for axis in sweep["axes"] for k in axis["keys"]]
    seed = sweep.get("seed_key", "experiment.seed")
    for name, what in ((a.x, "--x"), (a.group, "--group")):
        if name == "seed":
            name = seed
        if name and name not in axes:
            fail(f"{what} {name}: not an axis of the sweep (it has: {', '.join(axes)})")
    x = seed if a.x == "seed" else a.x
    group = seed if a.group == "seed" else a.group
    if a.metric not in columns:
        near = difflib.get_close_matches(a.metric, list(columns), n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        fail(f"--metric {a.metric}: no such column in {table}{hint}")

    done = [r for r in rows if r["status"] == "finished" and as_number(r[a.metric]) is not None]
    if not done:
        fail(f"no finished run has a value of {a.metric}")
    if group:
        group_keys = [group]
    else:
        group_keys = [k for k in axes if k not in (x, seed)]
    numeric_x = all(as_number(r[x]) is not None for r in done)
    x_order = []
    for r in done:
        if r[x] not in x_order:
            x_order.append(r[x])
    if numeric_x:
        x_order.sort(key=float)
    xpos = {v: (float(v) if numeric_x else i) for i, v in enumerate(x_order)}

    groups = {}
    for r in done:
        label = ", ".join(f"{k}={r[k]}" for k in group_keys) or a.metric
        groups.setdefault(label, {}).setdefault(r[x], []).append(as_number(r[a.metric]))

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, (label, by_x) in enumerate(groups.items()):
        color = f"C{i % 10}"
        xs = [v for v in x_order if v in by_x]
        means = [sum(by_x[v]) / len(by_x[v]) for v in xs]
        ax.plot([xpos[v] for v in xs], means, "-", color=color, label=label, lw=1.8)
        for v in xs:
            ax.plot([xpos[v]] * len(by_x[v]), by_x[v], "o", color=color, alpha=0.45, ms=4)
    if not numeric_x:
        ax.set_xticks(range(len(x_order)))
        ax.set_xticklabels(x_order, rotation=20)
    if a.log:
        if all(v > 0 for by_x in groups.values() for vs in by_x.values() for v in vs):
            ax.set_yscale("log")
        else:
            print("plot_sweep.py: --log ignored: the metric has values <= 0", file=sys.stderr)
    ax.set_xlabel(x)
    ax.set_ylabel(a.metric)
    n = len(done)
    ax.set_title(f"{sweep.get('name', '')}: {a.metric} (line: mean; points: each run, {n} runs)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = a.out
    if not out:
        stem = f"{a.metric}_vs_{x}" + (f"_by_{group}" if group else "")
        out = os.path.join(a.sweep_dir, "figures", re.sub(r"[^A-Za-z0-9._=-]", "_", stem) + ".png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"figure: {out}")


if __name__ == "__main__":
    main()
