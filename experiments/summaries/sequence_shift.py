"""E1 at the paper's criterion: how each way of training reaches (or not) validation RMSE 0.1,
beside the task's noise floor (experiments/sequence_noise_floor.py), and whether the trained
networks still show the sequence shift."""

import math
import os
import tomllib

import sequence_noise_floor
from summaries.common import (count, figure_section, g, group, mean, missing_section, np, plot,
                              plt, provenance, save, spread, table, try_figure, verdict_section)

CRITERION = 0.1  # pycog's min_error for this task


def resolved(r):
    """The run's resolved experiment (its experiment.toml), or {}."""
    try:
        with open(os.path.join(r.dir, "experiment.toml"), "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def setting(r):
    train = resolved(r).get("train", {})
    opt, om = train.get("optimizer", "?"), train.get("omega", "?")
    return f"{opt}, Omega {g(om) if isinstance(om, (int, float)) else om}"


def metrics(r):
    """(step, val_error, grad_norm) arrays of one run's training phase, or None."""
    try:
        c = plot.read_metric_columns(plot.Run(r.dir, r.summary))
    except (plot.Missing, OSError):
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


def summarize_sequence_shift(sw, out, args):
    floor, step_only = noise_floor(sw.runs)
    by = group(sw.runs, setting)
    labels = sorted(by)
    md = [f"# E1 at the paper's criterion: results\n\n{provenance(args, sw)}\n",
          "Validation RMSE on 100 fresh trials every 500 steps; each run keeps its best "
          "parameters. The column-shift analysis runs on those. Each number: mean [min, max] "
          "(n seeds).\n\n",
          "## The criterion beside the noise floor\n\n"
          f"pycog stops at validation RMSE <= {CRITERION}. No network can do better on average "
          f"than the best causal prediction of the targets from the noisy input: RMSE "
          f"**{g(floor)}** (experiments/sequence_noise_floor.py; {g(step_only)} if the pulse's "
          "amplitude is not used to place the onset within its 10 ms step).\n\n"]
    rows, comps = [], []
    for lab in labels:
        rs = by[lab]
        best = [r.get("training.best_validation_error") for r in rs]
        rows.append((lab, len(rs), spread(best), spread([r.get("training.steps") for r in rs], count),
                     spread([clipped_fraction(r) for r in rs]),
                     spread([r.get("analyses.column_shift.measured.sign_consistency") for r in rs]),
                     spread([r.get("training.seconds") for r in rs], count)))
        comps.append(f"{lab}: best validation RMSE {spread(best)}, "
                     f"{g(mean(best) / floor) if math.isfinite(floor) else 'n/a'} x the floor")
    md.append(table(["training", "runs", "best validation RMSE", "steps", "steps clipped",
                     "column-shift sign consistency", "seconds"], rows))
    figs = try_figure(curves_figure, by, labels, floor, out)
    md.append("\n" + figure_section(figs) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def curves_figure(by, labels, floor, out):
    if not labels:
        raise plot.Missing("no finished run")
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
