"""E1 at the paper's criterion: how each way of training reaches (or not) validation RMSE 0.1,
beside the task's noise floor (experiments/sequence_noise_floor.py), and whether the trained
networks still show the sequence shift."""

import math
import os

import sequence_noise_floor
from figures import column_shift, learning_curve, run_folder
from summaries import stats
from summaries.common import (count, figure_section, g, group, mean, missing_section, note, np,
                              plt, provenance, resolved_experiment, save, table, try_figure,
                              verdict_section)

CRITERION = 0.1  # pycog's min_error for this task


def setting(r):
    train = resolved_experiment(r).get("train", {})
    opt, om = train.get("optimizer", "?"), train.get("omega", "?")
    return f"{opt}, Omega {g(om) if isinstance(om, (int, float)) else om}"


def metrics(r):
    """(step, val_error, grad_norm) arrays of one run's training phase, or None."""
    try:
        c = learning_curve.read_metric_columns(run_folder.Run(r.dir, r.summary))
    except (run_folder.Missing, OSError):
        return None
    nan = np.full(len(c["step"]), math.nan)
    return c["step"], c.get("val_error", nan), c.get("grad_norm", nan)


def clipped_fraction(r, clip=1.0):
    m = metrics(r)
    if m is None:
        return math.nan
    gn = m[2][np.isfinite(m[2])]
    return float(np.mean(gn > clip)) if gn.size else math.nan


def noise_floor(runs):
    """The floor for the runs' task (best causal RMSE, RMSE with t_s known to its step), from the
    first run's resolved experiment; NaN when there is none."""
    path = next((os.path.join(r.dir, "experiment.toml") for r in runs
                 if os.path.isfile(os.path.join(r.dir, "experiment.toml"))), None)
    if path is None:
        return math.nan, math.nan
    per_trial, step_only, _ = sequence_noise_floor.floor(sequence_noise_floor.task_of(path),
                                                         trials=600, grid=2000, seed=1)
    return math.sqrt(per_trial.mean()), step_only


# What the archive keeps of each run (experiments/summaries/archive.py): the trained (and, for the
# untrained control, initial) params, for the distance from initialization, and the shift arrays
# the sign statistics and their null are computed from.
ARCHIVE_FILES = ("experiment.toml", "params/*.npy", "arrays/readout_*.npy",
                 "arrays/shift_values.npy", "arrays/shift_columns.npy",
                 "arrays/peak_shift.npy", "arrays/centroid_shift.npy", "arrays/failures.npy",
                 "arrays/peak_shift_per_output.npy")

LEARNED = 0.1  # a network learned the sequence: test MSE at most 10 % of chance (predicting 0)
N_NULL = 2000   # label permutations of the sign-consistency null


def case(r):
    n_out = r.get("cell.dims.n_out")
    return "case ii (N_out = 100)" if n_out == 100 else "case i (N_out = 10)"


def shift_view(r):
    entry = (r.summary.get("analyses") or {}).get("column_shift")
    if not isinstance(entry, dict):
        raise run_folder.Missing("no column_shift analysis")
    return run_folder.AnalysisView(run_folder.Run(r.dir, r.summary), "column_shift", "column_shift", entry)


def sign_counts(peak, vals, dt):
    """(same, opposite) over the edits (column, v != 0) that moved the mean peak by at least one
    analysis step, as the C++ analysis counts them."""
    v = np.broadcast_to(vals[None, :], peak.shape)
    moved = (v != 0) & np.isfinite(peak) & (np.abs(peak) >= dt)
    same = int(np.sum(moved & ((peak > 0) == (v > 0))))
    return same, int(np.sum(moved)) - same


def sign_null(r, seed=0):
    """The run's sign consistency max(same, opposite) / moved, its share 'same', and the
    consistency the same shifts give when v's labels are permuted within each column (the
    chance level of the statistic, which cannot fall below 0.5): (observed, same share, null
    mean, null 95th percentile, p = share of permutations at least as consistent)."""
    an = shift_view(r)
    vals, peak = an.array("shift_values", 1), an.array("peak_shift", 2)
    dt = float(an.entry.get("dt", 0.5))
    same, opp = sign_counts(peak, vals, dt)
    if same + opp == 0:
        return (math.nan,) * 5
    obs = max(same, opp) / (same + opp)
    rng = np.random.default_rng(seed)
    null = np.empty(N_NULL)
    for k in range(N_NULL):
        perm = np.array([row[rng.permutation(len(vals))] for row in peak])
        a, b = sign_counts(perm, vals, dt)
        null[k] = max(a, b) / (a + b) if a + b else math.nan
    null = null[np.isfinite(null)]
    return (obs, same / (same + opp), float(null.mean()), float(np.quantile(null, 0.95)),
            float((1 + np.sum(null >= obs - 1e-12)) / (1 + null.size)))


def distance_from_init(r, init):
    """||theta - theta_0|| over the trainable params (params/*.npy of the run and of the same seed
    untrained), or NaN: how far the solution lies from where training started. Clipped SGD moves
    at most the learning rate per step, so it needs at least this / lr steps to get there."""
    try:
        names = [f for f in os.listdir(os.path.join(r.dir, "params")) if f.endswith(".npy")]
        total = 0.0
        for f in names:
            d = np.load(os.path.join(r.dir, "params", f)) - np.load(os.path.join(init.dir, "params", f))
            total += float(np.sum(d * d))
        return math.sqrt(total) if names else math.nan
    except (OSError, ValueError):
        return math.nan


def failure_fraction(r):
    an = shift_view(r)
    f = an.array("failures", 2)
    n = r.get("cell.dims.n_out")
    return float(f.sum() / (f.size * n)) if n > 0 else math.nan


def mse_over_chance(r):
    loss, chance = r.get("test.loss"), r.get("test.chance_loss")
    return loss / chance if chance > 0 else math.nan


def seed_figures(r, out):
    """The paper's Fig. 2 (heatmap before and after the example edit; input, outputs, targets)
    and Fig. 3 (shift against column for four v; against v for four columns) of one seed, in
    out/figures-<case>-seed<N>/."""
    an = shift_view(r)
    pr = r.plot_run(os.path.join(out, f"figures-case{'ii' if '100' in case(r) else 'i'}-seed{r.seed}"))
    return [fn(pr, an) for fn in (column_shift.draw_sequence_heatmap, column_shift.draw_traces,
                                  column_shift.draw_shift_vs_column, column_shift.draw_shift_vs_value)]


def shift_section(sw, out):
    runs = [r for r in sw.runs if isinstance((r.summary.get("analyses") or {}).get("column_shift"), dict)
            and r.get("test.loss") == r.get("test.loss")]
    untrained = group([r for r in runs if r.get("training.steps", 0) == 0], case)
    by = group([r for r in runs if r.get("training.steps", 0) > 0], case)
    if not by:
        return "", [], []
    md = ["## The shift claim, per seed\n\n"
          f"Learned: test MSE at most {LEARNED:g} of chance on 200 fresh trials. Sign "
          "consistency: among edits (column, v != 0) that move the mean peak by at least one "
          "analysis step, the share whose shift has the majority's sign relation to v; it cannot "
          "fall below 0.5, so beside it stands its null: the same statistic with v's labels "
          f"permuted within each column ({N_NULL} permutations; p: the share of permutations at "
          "least as consistent). Same sign: the share of moved edits where v > 0 brings the "
          "sequence earlier. Failures: outputs whose peak moved by more than tau / 2 (pycog "
          "dropped them). Coherent: edits in which every output moved the same way.\n\n"]
    comps, figs = [], []
    for lab in sorted(by):
        rs = by[lab]
        rows, obs, nulls, fails, coh, same, by_seed = [], [], [], [], [], [], {}
        for r in rs:
            try:
                o, sm, nm, n95, p = sign_null(r)
                ff = failure_fraction(r)
            except run_folder.Missing as e:
                rows.append((r.seed, "n/a", "n/a", f"missing: {e}", "", "", "", ""))
                continue
            learned = mse_over_chance(r) <= LEARNED
            rows.append((r.seed, g(mse_over_chance(r)), "yes" if learned else "no", g(o),
                         f"{g(nm)} (95th pct {g(n95)})", g(p), g(sm), g(ff),
                         g(r.get("analyses.column_shift.measured.coherent_fraction"))))
            if learned:
                obs.append(o), nulls.append(nm), fails.append(ff), same.append(sm)
                by_seed[r.seed] = o
                coh.append(r.get("analyses.column_shift.measured.coherent_fraction"))
            try:
                figs += seed_figures(r, out)
            except run_folder.Missing as e:
                note(f"figures of {r.name}: {e}")
        md.append(f"### {lab}\n\n" + table(
            ["seed", "test MSE / chance", "learned", "sign consistency", "null (permuted v)",
             "p", "same sign", "failure fraction", "coherent fraction"], rows) + "\n")
        comps.append(f"{lab}, learned networks: sign consistency {stats.ci(obs)} against its "
                     f"permutation null {stats.ci(nulls)}: {stats.paired(obs, nulls)}")
        ctrl = {}
        for r in untrained.get(lab, []):
            try:
                ctrl[r.seed] = sign_null(r)
            except run_folder.Missing:
                pass
        dist = [distance_from_init(r, c) for r in rs for c in untrained.get(lab, []) if c.seed == r.seed]
        if any(math.isfinite(d) for d in dist):
            comps.append(f"{lab}: distance of the trained params from their own initialization "
                         f"{stats.ci(dist)}; pycog's clipped SGD (learning rate 1e-3, every step "
                         f"clipped) moves at most 1e-3 per step, so it needs at least "
                         f"{count(min(d for d in dist if math.isfinite(d)) / 1e-3)} steps to get "
                         "that far even in a straight line")
        if ctrl:
            seeds = sorted(set(by_seed) & set(ctrl))
            md.append(f"Untrained control ({lab}, the same seeds before any step): sign consistency "
                      + ", ".join(f"seed {s_}: {g(ctrl[s_][0])} (null {g(ctrl[s_][2])}, p {g(ctrl[s_][4])})"
                                  for s_ in sorted(ctrl)) + "\n\n")
            comps.append(f"{lab}: sign consistency, learned against the same seed untrained: "
                         f"{stats.paired([by_seed[s_] for s_ in seeds], [ctrl[s_][0] for s_ in seeds])}")
        comps.append(f"{lab}, learned networks: share of moved edits where v > 0 brings the "
                     f"sequence earlier {stats.ci(same)}; failures (|shift| > tau / 2) "
                     f"{stats.ci(fails)} of output-edits; coherent edits {stats.ci(coh)}")
        comps.append(f"{lab}: {sum(1 for r in rs if mse_over_chance(r) <= LEARNED)} of {len(rs)} "
                     f"seeds learned (test MSE / chance {stats.ci([mse_over_chance(r) for r in rs])})")
    return "".join(md), comps, figs


def summarize_sequence_shift(sw, out, args):
    floor, step_only = noise_floor(sw.runs)
    by = group([r for r in sw.runs if r.get("training.steps", 0) > 0], setting)
    labels = sorted(by)
    md = [f"# E1 at the paper's criterion: results\n\n{provenance(args, sw)}\n",
          "Validation RMSE on 100 fresh trials every 500 steps; each run keeps its best "
          "parameters. The column-shift analysis runs on those. Each number: mean over seeds with "
          "a 95 % bootstrap interval [lo, hi] (n seeds).\n\n",
          "## The criterion beside the noise floor\n\n"
          f"pycog stops at validation RMSE <= {CRITERION}. No network can do better on average "
          f"than the best causal prediction of the targets from the noisy input: RMSE "
          f"**{g(floor)}** (experiments/sequence_noise_floor.py; {g(step_only)} if the pulse's "
          "amplitude is not used to place the onset within its 10 ms step).\n\n"]
    rows, comps = [], []
    for lab in labels:
        rs = by[lab]
        best = [r.get("training.best_validation_error") for r in rs]
        rows.append((lab, len(rs), stats.ci(best),
                     stats.ci([r.get("training.steps") for r in rs]).fmt(count),
                     stats.ci([clipped_fraction(r) for r in rs]),
                     stats.ci([r.get("analyses.column_shift.measured.sign_consistency") for r in rs]),
                     stats.ci([r.get("training.seconds") for r in rs]).fmt(count)))
        comps.append(f"{lab}: best validation RMSE {stats.ci(best)}, "
                     f"{g(mean(best) / floor) if math.isfinite(floor) else 'n/a'} x the floor")
    md.append(table(["training", "runs", "best validation RMSE", "steps", "steps clipped",
                     "column-shift sign consistency", "seconds"], rows))
    text, more, seed_figs = shift_section(sw, out)
    md.append("\n" + text)
    comps += more
    figs = try_figure(curves_figure, by, labels, floor, out)
    md.append("\n" + figure_section(figs + seed_figs, out) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def curves_figure(by, labels, floor, out):
    if not labels:
        raise run_folder.Missing("no finished run")
    fig, (ax, axg) = plt.subplots(1, 2, figsize=(11.5, 4.0), constrained_layout=True)
    for i, lab in enumerate(labels):
        for k, r in enumerate(by[lab]):
            m = metrics(r)
            if m is None:
                continue
            step, val, gn = m
            ok = np.isfinite(val)
            ax.plot(step[ok], val[ok], color=f"C{i}", lw=1.2, alpha=0.85, ls=["-", "--", ":"][k % 3],
                    label=f"{lab}" if k == 0 else None)
            ok = np.isfinite(gn)
            axg.plot(step[ok], gn[ok], color=f"C{i}", lw=0.6, alpha=0.5)
    if math.isfinite(floor):
        ax.axhline(floor, color="k", lw=1.2, label=f"noise floor {floor:.3f}")
    ax.axhline(CRITERION, color="#c0392b", ls="--", lw=1.0, label=f"pycog's criterion {CRITERION}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("validation RMSE")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    axg.axhline(1.0, color="#c0392b", ls="--", lw=1.0)
    axg.set_yscale("log")
    axg.set_xlabel("step")
    axg.set_ylabel("gradient norm before clipping (dashed: clip)")
    axg.grid(True, which="both", alpha=0.3)
    fig.suptitle("E1: validation error by training (seeds: line styles)")
    return save(fig, out, "training_curves")


summarize = summarize_sequence_shift
