#!/usr/bin/python3
"""The cellc vs PyTorch table from one run of scripts/bench_grid.sh.

usage: /usr/bin/python3 bench/compare.py cellc.json torch.json

Per cell, n and batch B: training steps/s of cellc (bench/bench_grid.cpp) and of the best PyTorch
variant (bench/torch_baseline.py), their ratio, and cellc's matmul rate (the GEMM FLOPs of its
forward and backward plans times steps/s) as a fraction of the same run's SGEMM rate on one core
and on all cores; and the roofline (bench/Roofline.h): each point's bound in this run (GEMM at the
machine's best SGEMM rate, or memory at the triad bandwidth of the level that holds its working
set: L2, L3 or DRAM) and the fraction of it reached.
Standard library only.
"""
import json
import sys


def fmt(x):
    if x is None:
        return "–"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def ratio_grid(ratios):
    """cellc / PyTorch per cell (rows) and n (columns), the batches of a point joined by " / "
    (the README's table)."""
    cells = list(dict.fromkeys(k[0] for k in ratios))
    ns = sorted({k[1] for k in ratios})
    bs = sorted({k[2] for k in ratios})
    head = "| cell | " + " | ".join(f"n = {n}, B = {' / '.join(map(str, bs))}" for n in ns) + " |"
    lines = [head, "|---|" + "---|" * len(ns)]
    for c in cells:
        row = []
        for n in ns:
            row.append(" / ".join(f"{ratios[(c, n, b)]:.3g}x" if (c, n, b) in ratios else "–" for b in bs))
        lines.append(f"| {c} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[1]) as f:
        cc = json.load(f)
    with open(sys.argv[2]) as f:
        th = json.load(f)
    torch_pts = {(p["cell"], p["n"], p["batch"]): p for p in th["points"]}
    sg = cc["sgemm_gflops"]
    one = sg.get("1")
    many_key = max(sg, key=int)
    many = sg[many_key]
    print(f"PyTorch {th['torch']} on {', '.join(th['blas']) or 'an unknown BLAS'}; "
          f"PyTorch SGEMM 1024^3: " + ", ".join(f"{v:.1f} GFLOP/s on {k} thread(s)" for k, v in th["sgemm_gflops"].items()))
    print(f"cellc SGEMM 1024^3 (Eigen): {one:.1f} GFLOP/s on 1 thread, {many:.1f} on {many_key}; "
          f"cellc runs on {cc['threads']} thread(s)")
    lim = cc.get("limits")
    if lim:
        blas = f"{lim['sgemm_gflops_blas']:.1f} through {lim['blas']}" if lim["sgemm_gflops_blas"] > 0 else "no BLAS given"
        print(f"machine limits on {lim['threads']} thread(s), this run: SGEMM {lim['sgemm_gflops_cellc']:.1f} GFLOP/s "
              f"(cellc), {blas}; triad " +
              (f"L2 {lim['l2_triad_gbs']:.1f} GB/s ({lim['l2_bytes'] / 1e6:.1f} MB), "
               f"L3 {lim['l3_triad_gbs']:.1f} GB/s ({lim['l3_bytes'] / 1e6:.1f} MB), " if "l2_triad_gbs" in lim else "") +
              f"DRAM {lim['stream_triad_gbs']:.1f} GB/s")
    print()
    print("| cell | n | B | cellc steps/s | PyTorch steps/s (best variant) | cellc / PyTorch | "
          "matmul GFLOP/s | of SGEMM 1 core | of SGEMM all | bound | of bound | BPTT segment |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    ratios = []
    for p in cc["points"]:
        key = (p["cell"], p["n"], p["batch"])
        t = torch_pts.get(key)
        if "skipped" in p:
            print(f"| {p['cell']} | {p['n']} | {p['batch']} | skipped ({p['skipped']}) | "
                  f"{t.get('skipped', 'not compared') if t else 'not run'} | – | – | – | – | – | – | – |")
            continue
        rate = p["steps_per_s"]
        gf = p["matmul_flops"] * rate / 1e9
        if t and "best_steps_per_s" in t:
            tr = t["best_steps_per_s"]
            torch_cell = f"{fmt(tr)} ({t['best']})"
            ratio = rate / tr
            ratios.append((key, ratio))
            ratio_cell = f"{ratio:.2f}x"
        else:
            torch_cell = t.get("skipped", "–") if t else "not run"
            ratio_cell = "–"
        gf_cells = (f"{gf:.2f}", f"{gf / one:.0%}", f"{gf / many:.0%}") if gf > 0 else ("–", "–", "–")
        bound = (p.get("bound", "–"), f"{p['bound_fraction']:.0%}" if "bound_fraction" in p else "–")
        print(f"| {p['cell']} | {p['n']} | {p['batch']} | {fmt(rate)} | {torch_cell} | {ratio_cell} | "
              f"{gf_cells[0]} | {gf_cells[1]} | {gf_cells[2]} | {bound[0]} | {bound[1]} | {p['segment']}/{p['steps']} |")
    if ratios:
        print()
        print(ratio_grid(dict(ratios)))
        worst = min(ratios, key=lambda kv: kv[1])
        print()
        print(f"slowest relative point: {worst[0][0]} n={worst[0][1]} B={worst[0][2]} at {worst[1]:.2f}x")
    compile_ms = {}
    init_ms = {}
    for p in (p for p in cc["points"] if "skipped" not in p):
        compile_ms[p["cell"]] = max(compile_ms.get(p["cell"], 0), 1e3 * p["compile_s"])
        init_ms[(p["cell"], p["n"])] = 1e3 * p["init_s"]
    print()
    print("compile (ms, slowest over the grid): " + ", ".join(f"{c} {v:.0f}" for c, v in compile_ms.items()))
    print("initialization (ms, per n): " + ", ".join(
        f"{c} n={n} {v:.0f}" for (c, n), v in sorted(init_ms.items())))


if __name__ == "__main__":
    main()
