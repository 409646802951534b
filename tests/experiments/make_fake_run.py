#!/usr/bin/python3
"""Build a synthetic E1 run folder (summary.json, metrics.csv, arrays/*.npy) without training.

    python3 tests/experiments/make_fake_run.py OUT_DIR [--phases task1,task2] [--seed N]
                                               [--n-out 10|100] [--summary-only]

The outputs are Gaussian bumps that follow the E1 targets; the edited trials move every bump by a
column-dependent amount proportional to v (later outputs move more), so the shift arrays are
computed from the fake outputs exactly as the analysis defines them: per output
(argmax_t y_orig - argmax_t y_edit)*dt and the same with centroids, outputs with |shift| > 0.5 tau
counted in failures and left out of the means. A few (column, v) pairs fail on some or all outputs.

--phases writes metrics.csv with several phases whose steps restart at 0 (as E3 might).
--summary-only writes summary.json alone (no metrics.csv, no arrays).

    python3 tests/experiments/make_fake_run.py OUT_DIR --experiment EXP [--cell C] [--seed N]
    python3 tests/experiments/make_fake_run.py OUT_DIR --experiment EXP --sweep

--experiment copy_first|multi_sequence|forgetting|readout|sequence_shift writes a run of E5/E2/E3/E4 instead
(fake_runs_e2_e5.py: the arrays and summary keys their analyses write); --cell picks the
copy_first cell (a plastic one records the Hebbian trace). --sweep writes a sweep folder of such
runs (sweep.json, sweep.csv, run folders) with its last two runs unfinished.
"""

import argparse
import json
import os

import numpy as np

TAU, DT = 50.0, 0.5
T_MS, T_S = 1000.0, 150.0


def bumps(t, centers, amps, widths):
    return amps[None, :] * np.exp(-(t[:, None] - centers[None, :]) ** 2
                                  / (2.0 * widths[None, :] ** 2))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--phases", default="", help="comma-separated phase names (default: one, empty)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--summary-only", action="store_true")
    p.add_argument("--n-out", type=int, default=10,
                   help="10: E1 case i (bumps 80 ms apart); 100: case ii (8 ms apart)")
    p.add_argument("--experiment", default="e1",
                   choices=["e1", "copy_first", "multi_sequence", "forgetting", "readout",
                            "sequence_shift"])
    p.add_argument("--cell", default="pbrc", help="copy_first: the cell file's stem")
    p.add_argument("--sweep", action="store_true", help="a fake sweep folder of --experiment")
    a = p.parse_args()
    if a.experiment != "e1":
        import sys
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import fake_runs_e2_e5 as fr
        if a.sweep:
            fr.make_sweep(a.out, a.experiment)
        elif a.experiment == "copy_first":
            fr.copy_first(a.out, seed=a.seed, cell=a.cell)
        else:
            fr.MAKERS[a.experiment](a.out, seed=a.seed)
        return 0
    rng = np.random.default_rng(a.seed)
    N_OUT = a.n_out
    spacing = 80.0 if N_OUT <= 10 else 800.0 / N_OUT
    os.makedirs(a.out, exist_ok=True)

    cols = np.arange(80, 100, dtype=np.float64)
    vals = np.linspace(-0.2, 0.2, 21)
    example = {"column": 86, "value": 0.04}
    summary = {
        "experiment": {"name": "e1_sequence_shift (fake)", "file": "experiments/e1.toml"},
        "cell": {"file": "cells/dale_rnn.cell", "dims": {"N": 100, "N_in": 1, "N_out": N_OUT}},
        "training": {"steps": 42000, "stop_reason": "target reached",
                     "best_validation_error": 0.094, "target_error": 0.1, "seconds": 812.5},
        "analyses": {"column_shift": {
            "tau": TAU, "dt": DT, "example": example,
            "plot_values": [-0.12, -0.04, 0.04, 0.12], "plot_columns": [84, 88, 92, 96]}},
        "figures": ["learning_curve.png", "sequence_heatmap.png", "traces.png",
                    "shift_vs_column.png", "shift_vs_value.png"],
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if a.summary_only:
        return 0

    # ---- metrics.csv: a decaying, noisy loss; validation every 500 steps ----
    phases = a.phases.split(",") if a.phases else [""]
    steps_per_phase = 42000 // len(phases)
    with open(os.path.join(a.out, "metrics.csv"), "w") as f:
        f.write("phase,step,loss,val_error,grad_norm,seconds\n")
        sec = 0.0
        for k, ph in enumerate(phases):
            for s in range(0, steps_per_phase + 1, 10):
                base = 0.008 + (3.0 if k == 0 else 0.8) * np.exp(-s / 6000.0)
                loss = base * np.exp(0.25 * rng.standard_normal())
                sec += 0.19
                val = ""
                if s % 500 == 0:
                    val = f"{np.sqrt(base) * 0.9 * np.exp(0.05 * rng.standard_normal()):.6g}"
                gn = min(1.0, 5 * np.sqrt(loss)) * np.exp(0.1 * rng.standard_normal())
                f.write(f"{ph},{s},{loss:.6g},{val},{gn:.6g},{sec:.3f}\n")

    # ---- the fixed trial at dt = 0.5 ms ----
    arr = os.path.join(a.out, "arrays")
    os.makedirs(arr, exist_ok=True)
    t = np.arange(0.0, T_MS, DT)
    X = np.where(t > T_S, 4.0 * np.exp(-(t - T_S) / 800.0), 0.0)
    u = np.maximum(0.0, 0.2 + X)
    i = np.arange(N_OUT)
    centers = T_S + spacing * (i + 1)
    target = bumps(t, centers, np.full(N_OUT, 12.0), np.full(N_OUT, 20.0))
    c_net = centers + rng.normal(0.0, 3.0, N_OUT)
    a_net = 12.0 * rng.uniform(0.85, 1.05, N_OUT)
    w_net = 20.0 * rng.uniform(0.9, 1.2, N_OUT)
    # a little spill-over between neighbours, as a real network has
    output = bumps(t, c_net, a_net, w_net) + 0.6 * bumps(t, c_net + 45.0, a_net / 12, 1.6 * w_net)

    # column gain of the shift: how strongly each inhibitory column moves the sequence
    gain = rng.uniform(0.2, 1.4, cols.size)
    gain[cols == 99] = 3.5  # one column so strong that large |v| breaks every output

    def edited(c, v):
        g = gain[int(np.nonzero(cols == c)[0][0])]
        s = 100.0 * g * v * (0.6 + 0.8 * i / (N_OUT - 1)) + 40.0 * g * v * v
        amp = a_net * (1.0 - 0.8 * abs(v))
        return bumps(t, c_net - s, amp, w_net) + 0.6 * bumps(t, c_net - s + 45.0, amp / 12,
                                                             1.6 * w_net)

    def centroid(y):
        return (t[:, None] * y).sum(0) / y.sum(0)

    pk0, ce0 = t[np.argmax(output, 0)], centroid(output)
    C, V = cols.size, vals.size
    peak = np.full((C, V), np.nan)
    cent = np.full((C, V), np.nan)
    fail = np.zeros((C, V))
    per = np.zeros((C, V, N_OUT))
    for ci, c in enumerate(cols):
        for vi, v in enumerate(vals):
            y = edited(c, v)
            sp = pk0 - t[np.argmax(y, 0)]
            sc = ce0 - centroid(y)
            per[ci, vi] = sp
            ok = np.abs(sp) <= 0.5 * TAU
            fail[ci, vi] = (~ok).sum()
            if ok.any():
                peak[ci, vi] = sp[ok].mean()
                cent[ci, vi] = sc[ok].mean()

    np.save(os.path.join(arr, "trial_time.npy"), t)
    np.save(os.path.join(arr, "trial_input.npy"), u)
    np.save(os.path.join(arr, "trial_target.npy"), target)
    np.save(os.path.join(arr, "trial_output.npy"), output)
    # The same trial at the training time step (every 20th sample: dt 0.5 -> 10 ms).
    np.save(os.path.join(arr, "trained_time.npy"), t[::20])
    np.save(os.path.join(arr, "trained_input.npy"), u[::20])
    np.save(os.path.join(arr, "trained_target.npy"), target[::20])
    np.save(os.path.join(arr, "trained_output.npy"), output[::20])
    np.save(os.path.join(arr, "edit_example_output.npy"),
            edited(float(example["column"]), example["value"]))
    np.save(os.path.join(arr, "shift_columns.npy"), cols)
    np.save(os.path.join(arr, "shift_values.npy"), vals)
    np.save(os.path.join(arr, "peak_shift.npy"), peak)
    np.save(os.path.join(arr, "centroid_shift.npy"), cent)
    np.save(os.path.join(arr, "failures.npy"), fail)
    np.save(os.path.join(arr, "peak_shift_per_output.npy"), per)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
