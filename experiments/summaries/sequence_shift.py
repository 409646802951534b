"""E1 at the paper's criterion: how each way of training reaches (or not) validation RMSE 0.1,
beside the task's noise floor (experiments/sequence_noise_floor.py), and whether the trained
networks still show the sequence shift."""

import math
import os

import sequence_noise_floor
from figures import column_shift, learning_curve, run_folder
from summaries import archive, stats
from summaries.common import (count, figure_section, g, group, mean, missing_section, note, np,
                              plt, provenance, resolved_experiment, save, table, try_figure,
                              verdict_section)

CRITERION = 0.1  # pycog's min_error for this task


def setting(r):
    train = resolved_experiment(r).get("train", {})
    opt, om = train.get("optimizer", "?"), train.get("omega", "?")
    return f"{opt}, Omega {g(om) if isinstance(om, (int, float)) else om}"


def metrics(r):
    """(step, val_error, grad_norm) arrays of one run's training phase, or None: from its
    metrics.csv, else (an archived run) from its thinned curve (grad_norm then per block)."""
    try:
        c = learning_curve.read_metric_columns(run_folder.Run(r.dir, r.summary))
    except (run_folder.Missing, OSError):
        c = archive.read_curve_columns(r.dir)
        if c is None or not (np.isfinite(c["val_error"]).any() or np.isfinite(c["grad_norm"]).any()):
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


PRESENT = 0.25  # an output shows its bump when its peak reaches this share of the target's height


def derive(r):
    """What the archive keeps of the analysis trial (800 KB at N_out = 100): per output the peak of
    the trained network on the noiseless trial at the analysis dt and at the training dt, and the
    target's peak; and the trial's MSE over the zero prediction at each dt. The shift analysis
    integrates at a finer dt than training: whether the learned sequence survives that is what
    says if the shift statistics read it."""
    d = os.path.join(r.dir, "derived")
    if os.path.isfile(os.path.join(d, "peaks_by_dt.npy")):  # an archived run
        return {f[:-4]: np.load(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".npy")}
    try:
        a = {k: np.load(os.path.join(r.dir, "arrays", f"{k}.npy")) for k in
             ("trial_output", "trial_target", "trained_output", "trained_target")}
    except (OSError, ValueError):
        return {}
    fit = lambda o, t: float(np.mean((o - t) ** 2) / np.mean(t ** 2))  # noqa: E731
    return {"peaks_by_dt": np.stack([a["trial_output"].max(axis=0), a["trained_output"].max(axis=0),
                                     a["trial_target"].max(axis=0)]),
            "fit_by_dt": np.array([fit(a["trial_output"], a["trial_target"]),
                                   fit(a["trained_output"], a["trained_target"])])}


def sequence_at_dt(r):
    """(outputs showing their bump at the analysis dt, at the training dt, outputs, trial MSE over
    the zero prediction at the analysis dt, at the training dt), or None without the arrays."""
    d = derive(r)
    if "peaks_by_dt" not in d:
        return None
    pk, fit = d["peaks_by_dt"], d["fit_by_dt"]
    shown = lambda row: int(np.sum(row >= PRESENT * pk[2]))  # noqa: E731
    return shown(pk[0]), shown(pk[1]), pk.shape[1], float(fit[0]), float(fit[1])


def failure_fraction(r):
    an = shift_view(r)
    f = an.array("failures", 2)
    n = r.get("cell.dims.n_out")
    return float(f.sum() / (f.size * n)) if n > 0 else math.nan


def mse_over_chance(r):
    loss, chance = r.get("test.loss"), r.get("test.chance_loss")
    return loss / chance if chance > 0 else math.nan


SEED_FIGURES = (column_shift.draw_sequence_heatmap, column_shift.draw_traces,
                column_shift.draw_shift_vs_column, column_shift.draw_shift_vs_value)


def seed_figures(r, out):
    """The paper's Fig. 2 (heatmap before and after the example edit; input, outputs, targets)
    and Fig. 3 (shift against column for four v; against v for four columns) of one seed, in
    out/figures-<case>-seed<N>/. A run read from the archive has no trial traces to draw them
    from: the figures an earlier summary drew from its live folder are linked instead."""
    folder = os.path.join(out, f"figures-case{'ii' if '100' in case(r) else 'i'}-seed{r.seed}")
    try:
        an = shift_view(r)
        pr = r.plot_run(folder)
        return [fn(pr, an) for fn in SEED_FIGURES]
    except run_folder.Missing:
        kept = [os.path.join(folder, f"{fn.__name__[len('draw_'):]}.png") for fn in SEED_FIGURES]
        if all(os.path.isfile(k) for k in kept):
            return kept
        raise


def shift_section(sw, out):
    runs = [r for r in sw.runs if isinstance((r.summary.get("analyses") or {}).get("column_shift"), dict)
            and r.get("test.loss") == r.get("test.loss")]
    untrained = group([r for r in runs if r.get("training.steps", 0) == 0], case)
    by = group([r for r in runs if r.get("training.steps", 0) > 0], case)
    if not by:
        return "", [], []
    md = ["## The shift claim, per seed\n\n"
          f"Learned: test MSE at most {LEARNED:g} of chance on 200 fresh trials (at the training "
          "dt). The shift analysis integrates the trained network at a finer dt (0.5 ms, as "
          "pycog's analysis did): beside it, how many outputs still reach "
          f"{PRESENT:g} of their target's height on the noiseless trial at each dt, and that "
          "trial's MSE over the zero prediction; the statistics are read only where at least 90 % "
          "of the outputs do. Sign "
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
        lost, unchecked = [], []
        for r in rs:
            try:
                o, sm, nm, n95, p = sign_null(r)
                ff = failure_fraction(r)
            except run_folder.Missing as e:
                rows.append((r.seed, "n/a", "n/a", f"missing: {e}", "", "", "", ""))
                continue
            learned = mse_over_chance(r) <= LEARNED
            sq = sequence_at_dt(r)
            # The statistics read the learned sequence only where it survives the analysis dt;
            # where the arrays are gone (older archives) this cannot be checked here.
            kept = sq is None or sq[0] >= 0.9 * sq[2]
            if learned and not kept:
                lost.append(r.seed)
            if learned and sq is None:
                unchecked.append(r.seed)
            rows.append((r.seed, g(mse_over_chance(r)), "yes" if learned else "no",
                         "n/a" if sq is None else f"{sq[0]} / {sq[1]} of {sq[2]} (MSE / zero {g(sq[3])} / {g(sq[4])})",
                         g(o), f"{g(nm)} (95th pct {g(n95)})", g(p), g(sm), g(ff),
                         g(r.get("analyses.column_shift.measured.coherent_fraction"))))
            if learned and kept:
                obs.append(o), nulls.append(nm), fails.append(ff), same.append(sm)
                by_seed[r.seed] = o
                coh.append(r.get("analyses.column_shift.measured.coherent_fraction"))
            try:
                figs += seed_figures(r, out)
            except run_folder.Missing as e:
                note(f"figures of {r.name}: {e}")
        md.append(f"### {lab}\n\n" + table(
            ["seed", "test MSE / chance", "learned", "outputs with their bump, analysis / training dt",
             "sign consistency", "null (permuted v)", "p", "same sign", "failure fraction",
             "coherent fraction"], rows) + "\n")
        if lost:
            comps.append(f"{lab}: the learned sequence does not survive the analysis dt in seeds "
                         f"{', '.join(map(str, lost))} (fewer than 90 % of the outputs reach "
                         f"{PRESENT:g} of their target's height on the noiseless trial): their shift "
                         "statistics do not read the learned sequence and are left out")
        if unchecked:
            comps.append(f"{lab}: seeds {', '.join(map(str, unchecked))} were archived without the "
                         "analysis trial's arrays: whether their sequence survives the analysis dt is "
                         "not checked here (their traces.png shows it)")
        if obs:
            kept_how = "at the analysis dt is not checked here" if unchecked else "survives the analysis dt"
            comps.append(f"{lab}, learned networks whose sequence {kept_how}: sign "
                         f"consistency {stats.ci(obs)} against its permutation null {stats.ci(nulls)}: "
                         f"{stats.paired(obs, nulls)}")
        else:
            comps.append(f"{lab}: no learned network's sequence survives the analysis dt: the "
                         "shift claim cannot be tested here")
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
            if seeds:
                comps.append(f"{lab}: sign consistency, learned against the same seed untrained: "
                             f"{stats.paired([by_seed[s_] for s_ in seeds], [ctrl[s_][0] for s_ in seeds])}")
        if obs:
            comps.append(f"{lab}, the same networks: share of moved edits where v > 0 brings the "
                         f"sequence earlier {stats.ci(same)}; failures (|shift| > tau / 2) "
                         f"{stats.ci(fails)} of output-edits; coherent edits {stats.ci(coh)}")
        comps.append(f"{lab}: {sum(1 for r in rs if mse_over_chance(r) <= LEARNED)} of {len(rs)} "
                     f"seeds learned (test MSE / chance {stats.ci([mse_over_chance(r) for r in rs])})")
    return "".join(md), comps, figs


def summarize_sequence_shift(sw, out, args):
    # Case i and case ii are different tasks (10 or 100 targets): their noise floors and their
    # training rows are kept apart.
    floors = {c: noise_floor(rs) for c, rs in group(sw.runs, case).items()}
    by = group([r for r in sw.runs if r.get("training.steps", 0) > 0], lambda r: f"{case(r)}, {setting(r)}")
    labels = sorted(by)
    md = [f"# E1 at the paper's criterion: results\n\n{provenance(args, sw)}\n",
          "Validation RMSE on 100 fresh trials every 500 steps; each run keeps its best "
          "parameters. The column-shift analysis runs on those. Each number: mean over seeds with "
          "a 95 % bootstrap interval [lo, hi] (n seeds).\n\n",
          "## The criterion beside the noise floor\n\n"
          f"pycog stops at validation RMSE <= {CRITERION}. No network can do better on average "
          "than the best causal prediction of the targets from the noisy input: RMSE "
          + ", ".join(f"**{g(f)}** in {c} ({g(so)} if the pulse's amplitude is not used to place "
                      "the onset within its 10 ms step)" for c, (f, so) in sorted(floors.items()))
          + " (experiments/sequence_noise_floor.py).\n\n"]
    rows, comps = [], []
    for lab in labels:
        rs = by[lab]
        best = [r.get("training.best_validation_error") for r in rs]
        rows.append((lab, len(rs), stats.ci(best),
                     stats.ci([r.get("training.steps") for r in rs]).fmt(count),
                     stats.ci([clipped_fraction(r) for r in rs]),
                     stats.ci([r.get("analyses.column_shift.measured.sign_consistency") for r in rs]),
                     stats.ci([r.get("training.seconds") for r in rs]).fmt(count)))
        floor = floors[case(rs[0])][0]
        comps.append(f"{lab}: best validation RMSE {stats.ci(best)}, "
                     f"{g(mean(best) / floor) if math.isfinite(floor) else 'n/a'} x the floor")
    md.append(table(["training", "runs", "best validation RMSE", "steps", "steps clipped",
                     "column-shift sign consistency", "seconds"], rows))
    text, more, seed_figs = shift_section(sw, out)
    md.append("\n" + text)
    comps += more
    figs = try_figure(curves_figure, by, labels, floors, out)
    md.append("\n" + figure_section(figs + seed_figs, out) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def curves_figure(by, labels, floors, out):
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
    for k, (c, (floor, _)) in enumerate(sorted(floors.items())):
        if math.isfinite(floor):
            ax.axhline(floor, color="k", lw=1.2, ls=["-", "-."][k % 2], label=f"noise floor, {c}: {floor:.3f}")
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
