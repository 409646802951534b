"""Synthetic run folders of E2-E5 (copy_first, multi_sequence, forgetting, readout) and a fake
sweep folder of them, with the arrays' shapes and summary.json keys the C++ writes (see
runtime/analysis/*.cpp, runtime/run/Runner.cpp, runtime/sweep/Table.cpp). Used by
make_fake_run.py; no training."""

import csv
import json
import math
import os

import numpy as np


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def save(run, name, a):
    d = os.path.join(run, "arrays")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, name + ".npy"), np.asarray(a, dtype=np.float64))


def metrics(run, rng, phases, steps, start, floor, val_every=0, every=10):
    """metrics.csv: a decaying noisy loss per phase, steps restarting at 0 in each phase."""
    with open(os.path.join(run, "metrics.csv"), "w") as f:
        f.write("phase,step,loss,val_error,grad_norm,seconds\n")
        sec = 0.0
        for ph in phases:
            for s in range(0, steps + 1, every):
                base = floor + start * math.exp(-s / (steps / 4))
                loss = base * math.exp(0.2 * rng.standard_normal())
                sec += 0.05
                val = f"{math.sqrt(base):.6g}" if val_every and s % val_every == 0 else ""
                f.write(f"{ph},{s},{loss:.6g},{val},{min(1.0, loss):.4g},{sec:.3f}\n")


def training(phase, steps, batch, last, stop="max-steps", best=None, target=None, **extra):
    t = {"phase": phase, "steps": steps, "stop_reason": stop, "best_validation_error": best,
         "target_error": target, "seconds": 12.5, "resumed": False, "samples": steps * batch,
         "last_loss": last}
    t.update(extra)
    return t


def test_single(loss, chance, trials=200):
    return {"loss": loss, "rmse": math.sqrt(loss), "chance_loss": chance, "trials": trials}


def trace_arrays(run, prefix, u, z, y, states=None):
    save(run, prefix + "trace_input", u)
    save(run, prefix + "trace_target", z)
    save(run, prefix + "trace_output", y)
    for k, v in (states or {}).items():
        save(run, prefix + "trace_state_" + k, v)


def bumps(t, centers, height, width):
    return height * np.exp(-(t[:, None] - centers[None, :]) ** 2 / (2.0 * width ** 2))


# ---------------------------------------------------------------------------------------------

PARAMS = {"gru": 3, "brc": 2, "nbrc": 2, "plastic_gru": 4, "plastic_gru_clip": 4, "pbrc": 3,
          "pbrc_split": 3}
PLASTIC = {"plastic_gru": "square", "plastic_gru_clip": "square", "pbrc": "square",
           "pbrc_split": "split"}


def copy_first(run, seed=1, cell="nbrc", T=30, D=4, H=8, window=1):
    """summary.json records the setting (D, H) as given; the arrays stay small (T, D, H capped).
    window > 1: a run of the matched sweeps, stopped on the mean of `window` losses."""
    rng = np.random.default_rng(seed)
    n_in, H_given = D, H
    T, D, H = min(T, 40), min(D, 6), min(H, 8)
    os.makedirs(run, exist_ok=True)
    quality = {"gru": 0.3, "brc": 0.05, "nbrc": 0.01, "pbrc": 0.008}.get(cell, 0.02)
    test = quality * math.exp(0.3 * rng.standard_normal())
    steps, batch = 400, 128
    stop = "loss-target" if test < 0.02 else "max-steps"
    states = ["h"] + (["hebb"] if cell in PLASTIC else [])
    H_dims = H_given
    n_params = PARAMS.get(cell, 3) * H * (H + D + 1) + D * (H + 1)
    s05 = int(rng.integers(40, 120))
    write_json(os.path.join(run, "summary.json"), {
        "experiment": {"name": "copy_first", "file": "experiments/copy_first.toml",
                       "description": "E5 (fake)", "seed": seed},
        "cell": {"file": f"../cells/{cell}.cell", "name": cell,
                 "dims": {"n_in": n_in, "n_out": n_in, "n": H_dims}, "params": n_params},
        "training": training("train", steps, batch, test, stop,
                              first_step_loss={"below_0.5": s05,
                                               "below_0.1": s05 * 2 if test < 0.1 else None},
                              **({"loss_window": window,
                                  "first_seconds_loss": {"below_0.5": 0.05 * s05,
                                                         "below_0.1": 0.1 * s05 if test < 0.1 else None}}
                                 if window > 1 else {})),
        "analyses": {"trace": {"kind": "trace", "trials": 1, "steps": T, "states": states,
                               "output": "y"}},
        "test": test_single(test, 1.0 + 0.01 * rng.standard_normal(), 10000),
        "seconds": 30.0})
    metrics(run, rng, ["train"], steps, 1.0, test)
    u = rng.standard_normal((1, T, D))
    z = np.zeros((1, T, D))
    z[:, -1] = u[:, 0]
    y = np.cumsum(0.05 * rng.standard_normal((1, T, D)), axis=1)
    y[:, -1] = u[:, 0] + math.sqrt(test) * rng.standard_normal((1, D))
    st = {"h": np.tanh(np.cumsum(0.3 * rng.standard_normal((1, T, H)), axis=1))}
    if cell in PLASTIC:
        cols = H if PLASTIC[cell] == "square" else H // 2
        hebb = np.zeros((1, T, H, cols))
        for t in range(1, T):
            hebb[0, t] = 0.97 * hebb[0, t - 1] + 0.03 * np.outer(st["h"][0, t], st["h"][0, t - 1, :cols])
        st["hebb"] = hebb
    trace_arrays(run, "", u, z, y, st)
    return run


def multi_sequence(run, seed=1, K=2, N=40, T=100):
    rng = np.random.default_rng(seed)
    os.makedirs(run, exist_ok=True)
    nE = int(0.8 * N)
    W = rng.gamma(5, 0.02, (N, N)) * (rng.random((N, N)) < 0.6)
    W[:, nE:] *= -(1.0 + 0.1 * K)
    edges = np.linspace(W.min(), W.max(), 101)
    he = np.histogram(W[:, :nE], edges)[0]
    hi = np.histogram(W[:, nE:], edges)[0]

    def stats(v):
        v = np.sort(v.ravel())
        q = lambda f: float(v[int(f * (v.size - 1))])  # noqa: E731
        return {"mean": float(v.mean()), "std": float(v.std()),
                "zero_fraction": float(np.mean(v == 0)), "q05": q(0.05), "median": q(0.5),
                "q95": q(0.95), "entries": int(v.size)}
    t = np.arange(T, dtype=float)
    e_rate = 0.5 + 0.2 * np.sin(t / 15) + 0.05 * rng.random(T)
    i_rate = (0.3 + 0.05 * K) * (1 + 0.1 * np.cos(t / 10))
    ratio = e_rate / i_rate
    test = 0.02 * K * math.exp(0.2 * rng.standard_normal())
    write_json(os.path.join(run, "summary.json"), {
        "experiment": {"name": "multi_sequence", "file": "experiments/multi_sequence.toml",
                       "description": "E2 (fake)", "seed": seed},
        "cell": {"file": "../cells/dale_rnn.cell", "name": "dale_rnn",
                 "dims": {"n": N, "n_in": 1, "n_out": 5 * K}, "params": N * N + 5 * K * N + N},
        "training": training("train", 2000, 20, test, "target",
                             math.sqrt(test), 0.1),
        "analyses": {
            "weight_histogram": {"kind": "weight_histogram", "matrix": "W_rec",
                                 "measured": {"excitatory": stats(W[:, :nE]),
                                              "inhibitory": stats(W[:, nE:])},
                                 "paper_claim": "alike across K"},
            "ei_rates": {"kind": "ei_rates", "trials": 200, "state": "x",
                         "measured": {"mean_rate_e": float(e_rate.mean()),
                                      "mean_rate_i": float(i_rate.mean()),
                                      "ratio_of_means": float(e_rate.sum() / i_rate.sum()),
                                      "mean_of_step_ratios": float(ratio.mean())},
                         "paper_claim": "falls with K"},
            "trace": {"kind": "trace", "trials": K, "steps": T, "states": [], "output": "z"}},
        "test": test_single(test, 0.5),
        "seconds": 60.0})
    metrics(run, rng, ["train"], 2000, 2.0, test, val_every=500)
    save(run, "weight_edges", edges)
    save(run, "weight_hist_e", he)
    save(run, "weight_hist_i", hi)
    save(run, "weight_matrix", W)
    save(run, "ei_step", t)
    save(run, "ei_rate_e", e_rate)
    save(run, "ei_rate_i", i_rate)
    save(run, "ei_ratio", ratio)
    ts = 15
    u = np.zeros((K, T, 1))
    z = np.zeros((K, T, 5 * K))
    for k in range(K):
        u[k, ts:, 0] = 0.2 + 2 * (k + 1) * np.exp(-(t[ts:] - ts) / 40)
        z[k, :, 5 * k:5 * k + 5] = bumps(t, ts + 10 * (np.arange(5) + 2), 4.0, 10.0)
    y = z + 0.1 * rng.standard_normal(z.shape)
    trace_arrays(run, "", u, z, y)
    return run


def forgetting(run, seed=1, lam=500.0, dropout=0.5, N=30, T=100, joint=False):
    rng = np.random.default_rng(seed)
    os.makedirs(run, exist_ok=True)
    chance = 0.35
    before1 = 0.02 * math.exp(0.2 * rng.standard_normal())
    keep = lam / (lam + 200.0) * (1.2 if dropout else 1.0)
    if joint:  # task 2 trained with task-1 trials (train.rehearse): task 1 nearly kept
        keep = 0.95
        with open(os.path.join(run, "experiment.toml"), "w") as f:
            f.write(f'[[phase]]\nname = "task1"\ntrain.dropout = {dropout:g}\n'
                    '[[phase]]\nname = "task2"\ntrain.rehearse = "task1"\n')
    after1 = chance - min(keep, 1.0) * (chance - before1)
    after2 = 0.02 * (1 + lam / 2000.0)
    retention = (chance - after1) / (chance - before1)
    phases = [training("task1", 300, 20, before1, best=math.sqrt(before1)),
              training("task2", 300, 20, after2, best=math.sqrt(after2))]
    if lam > 0:
        phases[0]["ewc_lambda"] = lam
    loss = lambda x: {"loss": x, "rmse": math.sqrt(x), "chance_loss": chance}  # noqa: E731
    write_json(os.path.join(run, "summary.json"), {
        "experiment": {"name": "forgetting", "file": "experiments/forgetting.toml",
                       "description": "E3 (fake)", "seed": seed},
        "cell": {"file": "../cells/dale_rnn.cell", "name": "dale_rnn",
                 "dims": {"n": N, "n_in": 1, "n_out": 10}, "params": N * N + 11 * N},
        "training": {"phases": phases},
        "analyses": {
            "task1_before": {"kind": "trace", "trials": 1, "steps": T, "states": ["x"],
                             "output": "z"},
            "task1_after": {"kind": "trace", "trials": 1, "steps": T, "states": ["x"],
                            "output": "z"}},
        "test": {"after_task1": {"task1": loss(before1), "task2": loss(chance * 1.1)},
                 "after_task2": {"task1": loss(after1), "task2": loss(after2)},
                 "retention": {"task1": retention}, "trials": 40},
        "seconds": 50.0})
    metrics(run, rng, ["task1", "task2"], 300, 1.0, 0.02, val_every=50)
    t = np.arange(T, dtype=float)
    u = np.zeros((1, T, 1))
    u[0, 15:, 0] = 0.2 + 4 * np.exp(-(t[15:] - 15) / 50) * (2 + np.sin(2 * np.pi * (t[15:] - 15) / 25))
    z = bumps(t, 15 + 6 * (np.arange(10) + 1), 4.0, 2.0)[None]
    x_state = rng.standard_normal((1, T, N))
    trace_arrays(run, "task1_before_", u, z, z + 0.05 * rng.standard_normal(z.shape),
                 {"x": x_state})
    trace_arrays(run, "task1_after_", u, z, (1 - min(keep, 1.0)) * 0 + min(keep, 1.0) * z
                 + 0.1 * rng.standard_normal(z.shape), {"x": x_state})
    return run


def readout(run, seed=1, fixed=True, N=30, T=100):
    rng = np.random.default_rng(seed)
    os.makedirs(run, exist_ok=True)
    n = 10
    tpeak = np.full(n, 12.0)
    peak = tpeak * rng.uniform(0.8, 1.1, n)
    if fixed:
        peak[[2, 7][:1 + seed % 2]] = 0.0
    threshold = 1.2
    silent = [int(i) for i in np.nonzero(peak < threshold)[0]]
    val = (0.6 if fixed else 0.15) * math.exp(0.1 * rng.standard_normal())
    write_json(os.path.join(run, "summary.json"), {
        "experiment": {"name": "readout", "file": "experiments/readout.toml",
                       "description": "E4 (fake)", "seed": seed},
        "cell": {"file": "../cells/dale_rnn.cell", "name": "dale_rnn",
                 "dims": {"n": N, "n_in": 1, "n_out": n}, "params": N * N + 11 * N},
        "training": training("train", 200, 20, val ** 2, "max-steps", val, 0.1),
        "analyses": {
            "readout_activity": {"kind": "readout_activity", "trials": 200, "silent": silent,
                                 "measured": {"silent_outputs": len(silent), "outputs": n,
                                              "threshold": threshold},
                                 "paper_claim": "some peaks stay at 0"},
            "trace": {"kind": "trace", "trials": 1, "steps": T, "states": [], "output": "z"}},
        "test": test_single(val ** 2 * 1.1, 20.0, 50),
        "seconds": 20.0})
    metrics(run, rng, ["train"], 200, 20.0, val ** 2, val_every=50)
    save(run, "readout_peak", peak)
    save(run, "readout_target_peak", tpeak)
    t = np.arange(T, dtype=float)
    z = bumps(t, 15 + 8 * (np.arange(n) + 1), 12.0, 2.0)[None]
    u = np.zeros((1, T, 1))
    u[0, 15:, 0] = 4 * np.exp(-(t[15:] - 15) / 80)
    y = z * (peak / tpeak)[None, None, :]
    trace_arrays(run, "", u, z, y)
    return run


E1_TASK = """[task]
kind = "sequence"
dt = 10
duration = 1000
onset_min = 100
onset_max = 200
baseline = 0.2
tau_in = 100
sigma_in = 0.01
input_amp = 4
input_decay = 800
input_sign = -1
outputs = 10
height = 12
offset = 80
spacing = 80
width = 20
"""


def sequence_shift(run, seed=1, optimizer="sgd", omega=0.0):
    """E1 trained one way: experiment.toml (the summary reads the optimizer, Omega and the task
    from it), a validation curve and the column-shift numbers."""
    rng = np.random.default_rng(seed)
    os.makedirs(run, exist_ok=True)
    with open(os.path.join(run, "experiment.toml"), "w") as f:
        f.write(f'[experiment]\nname = "sequence_shift"\nseed = {seed}\n\n'
                f'[train]\noptimizer = "{optimizer}"\nomega = {omega:g}\n\n' + E1_TASK)
    best = (0.9 if optimizer == "sgd" else 0.25) + 0.01 * seed
    write_json(os.path.join(run, "summary.json"), {
        "experiment": {"name": "sequence_shift", "seed": seed},
        "cell": {"file": "../cells/dale_rnn.cell", "name": "dale_rnn"},
        "training": training("train", 200, 20, best ** 2, "max-steps", best, 0.1),
        "analyses": {"column_shift": {"kind": "column_shift",
                                      "measured": {"sign_consistency": 0.6 + 0.1 * seed}}},
        "seconds": 20.0})
    metrics(run, rng, ["train"], 200, 20.0, best ** 2, val_every=50)
    return run


MAKERS = {"copy_first": copy_first, "multi_sequence": multi_sequence,
          "forgetting": forgetting, "readout": readout, "sequence_shift": sequence_shift}


# ---------------------------------------------------------------------------------------------
# A fake sweep folder: run folders, sweep.json, sweep.csv (as runtime/sweep/Table.cpp writes it)
# ---------------------------------------------------------------------------------------------

def sweep_points(experiment):
    """[(run name, {axis key: value as shown}, maker kwargs)] of a small grid per experiment."""
    pts = []
    if experiment == "copy_first":
        for cell in ("gru", "nbrc", "pbrc", "pbrc_split"):
            for (T, D, H) in ((300, 32, 48), (100, 1, 8)):
                for seed in (1, 2):
                    pts.append((f"cell={cell},steps={T},dim={D},n={H},seed={seed}",
                                {"cell.file": cell, "task.steps": str(T), "task.dim": str(D),
                                 "cell.dims.n": str(H), "experiment.seed": str(seed)},
                                {"cell": cell, "T": T, "D": D, "H": H, "seed": seed}))
        # Two runs of a matched sweep (stopped on a window's mean): the robust section's, never
        # pooled with the grid's nbrc at the same setting and seeds. Before the grid's last two,
        # which make_sweep leaves unfinished.
        for seed in (1, 2):
            pts.insert(len(pts) - 2, (f"cell=nbrc,steps=100,dim=1,n=8,window=100,seed={seed}",
                                      {"cell.file": "nbrc", "task.steps": "100", "task.dim": "1",
                                       "cell.dims.n": "8", "experiment.seed": str(seed)},
                                      {"cell": "nbrc", "T": 100, "D": 1, "H": 8, "seed": seed,
                                       "window": 100}))
    elif experiment == "multi_sequence":
        for K in (1, 2, 4):
            for seed in (1, 2):
                pts.append((f"tasks={K},seed={seed}",
                            {"task.tasks": str(K), "experiment.seed": str(seed)},
                            {"K": K, "seed": seed}))
    elif experiment == "forgetting":
        for p in (0.5, 0):
            if p == 0:  # the joint-training reference, beside the no-dropout grid
                for seed in (1, 2):
                    pts.append((f"joint,seed={seed}",
                                {"phase.task1.train.dropout": "0", "phase.task1.ewc.lambda": "0",
                                 "experiment.seed": str(seed)},
                                {"lam": 0.0, "dropout": 0, "seed": seed, "joint": True}))
            for lam in (0, 100, 500, 10000):
                for seed in (1, 2):
                    pts.append((f"dropout={p:g},lambda={lam:g},seed={seed}",
                                {"phase.task1.train.dropout": f"{p:g}",
                                 "phase.task1.ewc.lambda": f"{lam:g}",
                                 "experiment.seed": str(seed)},
                                {"lam": float(lam), "dropout": p, "seed": seed}))
    elif experiment == "readout":
        for frozen in ("true", "false"):
            for seed in (1, 2, 3):
                pts.append((f"frozen={frozen},seed={seed}",
                            {"params.W_out_raw.frozen": frozen, "experiment.seed": str(seed)},
                            {"fixed": frozen == "true", "seed": seed}))
    elif experiment == "sequence_shift":
        for opt, om in (("sgd", 0), ("sgd", 2), ("adam", 2)):
            for seed in (1, 2):
                pts.append((f"optimizer={opt},omega={om},seed={seed}",
                            {"train.optimizer": opt, "train.omega": str(om),
                             "experiment.seed": str(seed)},
                            {"optimizer": opt, "omega": float(om), "seed": seed}))
    return pts


def flatten(j, name, out):
    if isinstance(j, dict):
        for k, v in j.items():
            flatten(v, f"{name}.{k}" if name else k, out)
    elif isinstance(j, list):
        if len(j) <= 64:
            for i, v in enumerate(j):
                flatten(v, f"{name}.{i}" if name else str(i), out)
    elif isinstance(j, bool):
        out[name] = 1.0 if j else 0.0
    elif isinstance(j, (int, float)):
        out[name] = float(j)


def make_sweep(out, experiment, unfinished=2):
    """The grid of sweep_points; the last `unfinished` runs are left unfinished (one interrupted
    with a folder but no summary, the others never started)."""
    os.makedirs(out, exist_ok=True)
    pts = sweep_points(experiment)
    runs, statuses = [], []
    for i, (name, point, kw) in enumerate(pts):
        d = os.path.join(out, name)
        left = len(pts) - i
        if left <= unfinished:
            statuses.append("interrupted" if left == unfinished else "")
            if left == unfinished:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "metrics.csv"), "w") as f:
                    f.write("phase,step,loss,val_error,grad_norm,seconds\n")
        else:
            MAKERS[experiment](d, **kw)
            statuses.append("finished")
        runs.append({"name": name, "point": point,
                     "sets": [f"{k}={v}" for k, v in point.items()]})
    axes = list(pts[0][1].keys())
    write_json(os.path.join(out, "sweep.json"), {
        "name": f"{experiment}_sweep", "file": f"experiments/{experiment}_sweep.toml",
        "base": f"{experiment}.toml", "profile": "quick", "sets": [],
        "axes": [{"keys": [a]} for a in axes], "runs": runs, "plots": [],
        "seed_key": "experiment.seed"})
    values, columns = [], []
    for r, st in zip(runs, statuses):
        v = {}
        if st == "finished":
            with open(os.path.join(out, r["name"], "summary.json")) as f:
                flatten(json.load(f), "", v)
        for k in v:
            if k not in columns and k not in axes:
                columns.append(k)
        values.append(v)
    with open(os.path.join(out, "sweep.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["run"] + axes + ["status", "exit_code"] + columns)
        for r, st, v in zip(runs, statuses, values):
            w.writerow([r["name"]] + [r["point"][a] for a in axes]
                       + [st, "0" if st == "finished" else ""]
                       + [repr(v[c]) if c in v else "" for c in columns])
    return out
