#!/usr/bin/python3
"""Markdown tables from cellc_bench's JSON output (--benchmark_out=FILE --benchmark_out_format=json).

usage: /usr/bin/python3 bench/table.py bench.json

With --benchmark_repetitions the median of the repetitions is used, else the single run.
Rates (steps/s, GFLOP/s) are per second of CPU time, as Google Benchmark's rate counters are.
Standard library only.
"""
import json
import sys
from collections import defaultdict

TIME_SCALE_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def load_runs(path):
    """run name -> one benchmark entry (the median aggregate when there are repetitions)."""
    with open(path) as f:
        data = json.load(f)
    medians, singles = {}, defaultdict(list)
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            print(f"warning: {b['name']}: {b.get('error_message', 'error')}", file=sys.stderr)
            continue
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = b
        else:
            singles[name].append(b)
    runs = {}
    for name, entries in singles.items():
        if len(entries) == 1:
            runs[name] = entries[0]
        else:  # repetitions without aggregates: take the median entry by CPU time
            entries = sorted(entries, key=lambda e: e["cpu_time"])
            runs[name] = entries[len(entries) // 2]
    runs.update(medians)
    return data.get("context", {}), runs


def si(x):
    if x is None:
        return "–"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def num(x, fmt="{:.1f}"):
    return "–" if x is None else fmt.format(x)


def counter(runs, name, key):
    b = runs.get(name)
    return None if b is None else b.get(key)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    context, runs = load_runs(sys.argv[1])

    # Step benchmarks: BM_Generated/<cell>/n/B and BM_EigenGru/n/B.
    dims = set()
    for name in runs:
        parts = name.split("/")
        if parts[0] == "BM_Generated" and len(parts) == 4:
            dims.add((int(parts[2]), int(parts[3])))
        elif parts[0] == "BM_EigenGru" and len(parts) == 3:
            dims.add((int(parts[1]), int(parts[2])))

    host = context.get("host_name", "?")
    cpus = context.get("num_cpus", "?")
    mhz = context.get("mhz_per_cpu", "?")
    print(f"cellc_bench on {host} ({cpus} CPUs, {mhz} MHz), {context.get('date', '')}; "
          "float32, one forward + one backward step per iteration; rates per second of CPU time;")
    print("GFLOP/s counts matrix-product FLOPs only (2·M·N·K, forward + backward).")
    print()
    if dims:
        print("| n | B | GRU generated steps/s | GRU Eigen steps/s | generated / Eigen "
              "| GRU generated GFLOP/s | GRU Eigen GFLOP/s | dale_rnn steps/s | dale_rnn GFLOP/s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, B in sorted(dims):
            gen = f"BM_Generated/gru/{n}/{B}"
            eig = f"BM_EigenGru/{n}/{B}"
            dale = f"BM_Generated/dale_rnn/{n}/{B}"
            gs, es = counter(runs, gen, "steps"), counter(runs, eig, "steps")
            ratio = gs / es if gs and es else None
            print(f"| {n} | {B} | {si(gs)} | {si(es)} | {num(ratio, '{:.2f}')} "
                  f"| {num(counter(runs, gen, 'GFLOP'))} | {num(counter(runs, eig, 'GFLOP'))} "
                  f"| {si(counter(runs, dale, 'steps'))} | {num(counter(runs, dale, 'GFLOP'))} |")
        print()

    compiles = sorted(n for n in runs if n.startswith("BM_Compile/"))
    if compiles:
        print("Compile time (lower + compileCell<float>, forward and backward, default dims); "
              "goal < 100 ms per cell:")
        print()
        print("| cell | CPU ms | wall ms | < 100 ms |")
        print("|---|---:|---:|:---:|")
        for name in compiles:
            b = runs[name]
            scale = TIME_SCALE_MS[b.get("time_unit", "ns")]
            cpu, wall = b["cpu_time"] * scale, b["real_time"] * scale
            print(f"| {name.split('/', 1)[1]} | {cpu:.1f} | {wall:.1f} | "
                  f"{'yes' if cpu < 100 else 'no'} |")


if __name__ == "__main__":
    main()
