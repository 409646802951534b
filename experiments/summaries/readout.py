"""E4: fixed vs learned readout."""

import math

from matplotlib.ticker import MaxNLocator

from figures import run_folder
from summaries import stats
from summaries.common import (count, figure_section, finite, g, group, mean, missing_section, np,
                              plt, provenance, resolved_experiment, save, seed_jitter, table,
                              try_figure, verdict_section)


# What the archive keeps of each run: each output's peak over the test trials (silent outputs).
ARCHIVE_FILES = ("arrays/readout_*.npy", "experiment.toml")


def e4_label(r):
    """fixed or learned, from the run's resolved experiment ([params.W_out_raw] frozen), else
    its sweep axis: E1 case i's runs are the fixed arm, sweeps/readout.toml's the learned one."""
    w = (resolved_experiment(r).get("params") or {}).get("W_out_raw") or {}
    if "frozen" in w:
        return "fixed" if w["frozen"] else "learned"
    f = r.axis("W_out_raw.frozen")
    if f is not None:
        return "fixed" if f.strip().lower() in ("true", "1") else "learned"
    v = r.axis("W_out_raw.value")
    if v is not None:
        return "fixed" if "identity" in v else "learned"
    rest = {k: v for k, v in r.point.items() if k != "experiment.seed"}
    return ",".join(f"{k}={v}" for k, v in rest.items()) or "base"


def silent_outputs(r):
    return r.get("analyses.readout_activity.measured.silent_outputs")


def summarize_readout(sw, out, args):
    by = group(sw.runs, e4_label)
    labels = sorted(by, key=lambda s: (s != "fixed", s != "learned", s))
    md = [f"# E4 fixed vs learned readout: results\n\n{provenance(args, sw)}\n",
          "Each number: mean over seeds with a 95 % bootstrap interval [lo, hi] (n seeds). "
          "Silent: an output whose largest value over fresh trials stays below the threshold (a "
          "fraction of the largest target). Test MSE / chance: chance is predicting 0.\n\n",
          "## The paper's claim beside ours\n\nAppendix D: with the readout fixed to a partial "
          "identity, some outputs' peaks stay at 0.\n\n"]
    rows, comps = [], []
    for lab in labels:
        rs = by[lab]
        sil = [silent_outputs(r) for r in rs]
        n_out = mean([r.get("analyses.readout_activity.measured.outputs") for r in rs])
        some = sum(1 for s in finite(sil) if s > 0)
        rows.append((lab, len(rs), stats.ci([r.get("training.best_validation_error") for r in rs]),
                     stats.ci([r.get("test.rmse") for r in rs]),
                     stats.ci([r.get("test.loss") / r.get("test.chance_loss") for r in rs]),
                     stats.ci(sil), f"{some}/{len(finite(sil))}", g(n_out),
                     stats.ci([r.get("training.steps") for r in rs]).fmt(count)))
    md.append(table(["readout", "runs", "best validation RMSE", "test RMSE", "test MSE / chance",
                     "silent outputs", "runs with any silent", "outputs", "steps"], rows))
    if "fixed" in by and "learned" in by:
        kf = sum(1 for s in finite(silent_outputs(r) for r in by["fixed"]) if s > 0)
        kl = sum(1 for s in finite(silent_outputs(r) for r in by["learned"]) if s > 0)
        nf, nl = len(finite(silent_outputs(r) for r in by["fixed"])), len(finite(silent_outputs(r) for r in by["learned"]))
        comps.append(f"runs with a silent output, fixed against learned readout: "
                     f"{stats.fisher(kf, nf, kl, nl)}")
        comps.append("silent outputs per run, fixed against learned: "
                     f"{stats.unpaired([silent_outputs(r) for r in by['fixed']], [silent_outputs(r) for r in by['learned']])}")
        f = {r.seed: r.get("test.rmse") for r in by["fixed"]}
        l_ = {r.seed: r.get("test.rmse") for r in by["learned"]}
        seeds = sorted(set(f) & set(l_))
        comps.append(f"test RMSE, fixed minus learned, same seed (same trials): "
                     f"{stats.paired([f[s] for s in seeds], [l_[s] for s in seeds])}")
    for lab in labels:
        rs = by[lab]
        comps.append(f"{lab} readout: silent outputs per seed "
                     + ", ".join(f"{r.seed}: {g(silent_outputs(r))}" for r in rs))
    figs = try_figure(e4_figure, by, labels, out)
    figs += try_figure(e4_peaks, by, labels, out)
    md.append("\n" + figure_section(figs) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def e4_figure(by, labels, out):
    if not labels:
        raise run_folder.Missing("no finished run")
    metrics = [("training.best_validation_error", "best validation RMSE", True),
               ("test.rmse", "test RMSE", True),
               ("analyses.readout_activity.measured.silent_outputs", "silent outputs", False)]
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.8), constrained_layout=True)
    for ax, (key, name, logy) in zip(axes, metrics):
        for i, lab in enumerate(labels):
            ys = [r.get(key) for r in by[lab]]
            xs = [i + seed_jitter(j, len(ys), 0.3) for j in range(len(ys))]
            ax.plot(xs, ys, ls="none", marker="o", ms=5, color=f"C{i}", alpha=0.8)
            m = mean(ys)
            if math.isfinite(m):
                ax.plot([i - 0.25, i + 0.25], [m, m], color=f"C{i}", lw=2.2)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        vals = [v for lab in labels for v in finite(r.get(key) for r in by[lab])]
        if logy and vals and all(v > 0 for v in vals):
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("E4: fixed vs learned readout (dots: seeds; bars: mean)")
    return save(fig, out, "readout_comparison")


def e4_peaks(by, labels, out):
    if not labels:
        raise run_folder.Missing("no finished run")
    fig, axes = plt.subplots(1, len(labels), figsize=(5.2 * len(labels), 3.6), sharey=True,
                             squeeze=False, constrained_layout=True)
    for ax, lab in zip(axes[0], labels):
        # the figure shows the claim where it happens: the first seed with a silent output
        r = next((x for x in by[lab] if silent_outputs(x) > 0), by[lab][0])
        entry = (r.summary.get("analyses") or {}).get("readout_activity")
        entry = entry if isinstance(entry, dict) else {}
        an = run_folder.AnalysisView(run_folder.Run(r.dir, r.summary), "readout_activity",
                               "readout_activity", entry)
        try:
            peak = an.array("readout_peak", 1)
        except run_folder.Missing as e:
            ax.text(0.5, 0.5, f"missing:\n{e}", ha="center", va="center", fontsize=7,
                    transform=ax.transAxes)
            continue
        th = (entry.get("measured") or {}).get("threshold")
        silent = peak < th if isinstance(th, (int, float)) else np.zeros(peak.shape, bool)
        idx = np.arange(peak.size)
        ax.bar(idx, peak, color=np.where(silent, "0.65", "C0"), width=0.7)
        if silent.any():
            ax.plot(idx[silent], np.zeros(silent.sum()), ls="none", marker="x", ms=9, mew=2,
                    color="#c0392b", clip_on=False, zorder=5)
        if isinstance(th, (int, float)):
            ax.axhline(th, color="#c0392b", ls="--", lw=1.0)
        ax.set_title(f"{lab} (seed {r.seed}): {int(silent.sum())} silent", fontsize=10)
        ax.set_xlabel("output unit")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("peak output (x: silent)")
    fig.suptitle("E4: peak of each output on fresh trials (dashed: threshold)")
    return save(fig, out, "readout_peaks")


summarize = summarize_readout
