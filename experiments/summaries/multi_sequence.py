"""E2: K sequences in one network."""

import math

from summaries.common import (as_float, figure_section, g, group, mean, missing_section, note, np,
                              plot, plt, provenance, save, seed_jitter, spread, table, try_figure,
                              verdict_section)


def e2_k(r):
    v = r.axis("task.tasks")
    if v is not None:
        return int(as_float(v, -1))
    n_out = r.get("cell.dims.n_out")
    return int(n_out // 5) if math.isfinite(n_out) else -1


def ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the two ECDFs."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    if a.size == 0 or b.size == 0:
        return math.nan
    x = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, x, side="right") / a.size
                               - np.searchsorted(b, x, side="right") / b.size)))


def e2_weights(r, excit=0.8):
    """(E entries, I entries) of the trained W_rec,eff of run r (arrays/weight_matrix.npy)."""
    entry = (r.summary.get("analyses") or {}).get("weight_histogram")
    an = plot.AnalysisView(plot.Run(r.dir, r.summary), "weight_histogram", "weight_histogram",
                           entry if isinstance(entry, dict) else {})
    w = an.array("weight_matrix", 2)
    nE = int(math.floor(excit * w.shape[1]))
    return w[:, :nE], w[:, nE:]


def summarize_multi_sequence(sw, out, args):
    by = group(sw.runs, e2_k)
    ks = sorted(by)
    md = [f"# E2 one network, K sequences: results\n\n{provenance(args, sw)}\n",
          "Each number: mean [min, max] over seeds (n seeds). E/I ratio: mean excitatory rate over "
          "mean inhibitory rate (relu(x)) on fresh trials, over the whole trial. W_rec,eff: the "
          "trained effective recurrent weights, E and I columns apart.\n\n",
          "## The paper's claims beside ours\n\nThe paper: the E/I ratio falls as K grows; the "
          "weight distributions look alike across K.\n\n"]
    pre = "analyses.weight_histogram.measured"
    rows = []
    for k in ks:
        rs = by[k]
        rows.append((k, len(rs), spread([r.get("analyses.ei_rates.measured.ratio_of_means")
                                         for r in rs]),
                     spread([r.get("analyses.ei_rates.measured.mean_of_step_ratios")
                             for r in rs]),
                     spread([r.get(f"{pre}.excitatory.mean") for r in rs]),
                     spread([r.get(f"{pre}.excitatory.std") for r in rs]),
                     spread([r.get(f"{pre}.inhibitory.mean") for r in rs]),
                     spread([r.get(f"{pre}.inhibitory.std") for r in rs]),
                     spread([r.get(f"{pre}.excitatory.zero_fraction") for r in rs]),
                     spread([r.get("test.rmse") for r in rs]),
                     spread([r.get("training.best_validation_error") for r in rs])))
    md.append(table(["K", "runs", "E/I ratio (trial)", "E/I ratio (mean of steps)",
                     "E weights mean", "E weights std", "I weights mean", "I weights std",
                     "E zero fraction", "test RMSE", "best validation RMSE"], rows))
    comps = []
    ratios = {k: mean([r.get("analyses.ei_rates.measured.ratio_of_means") for r in by[k]])
              for k in ks}
    if len(ks) >= 2:
        seq = ", ".join(f"K={k}: {g(ratios[k])}" for k in ks)
        falls = all(ratios[a] > ratios[b] for a, b in zip(ks, ks[1:]))
        comps.append(f"E/I ratio (mean over seeds) by K: {seq}; "
                     f"{'falls at every step of K' if falls else 'does not fall at every step of K'}")
        x = np.log2([k for k in ks if math.isfinite(ratios[k])])
        y = np.array([ratios[k] for k in ks if math.isfinite(ratios[k])])
        if x.size >= 2:
            slope = float(np.polyfit(x, y, 1)[0])
            comps.append(f"least-squares slope of the E/I ratio per doubling of K: {slope:+.3g}")
    # weight distributions: KS distance of each K's entries to the smallest K's (same seed)
    if len(ks) >= 2:
        k0 = ks[0]
        for k in ks[1:]:
            de, di = [], []
            for r in by[k]:
                base = [b for b in by[k0] if b.seed == r.seed]
                if not base:
                    continue
                try:
                    (e1, i1), (e2, i2) = e2_weights(base[0]), e2_weights(r)
                except plot.Missing as e:
                    note(f"weight distributions of {r.name}: {e}")
                    continue
                de.append(ks_statistic(e1, e2))
                di.append(ks_statistic(np.abs(i1), np.abs(i2)))
            if de:
                comps.append(f"K={k} vs K={k0}, same seed: Kolmogorov-Smirnov distance of the E "
                             f"entries {spread(de)}, of the I entries {spread(di)} (0: alike, 1: "
                             f"disjoint)")
    figs = try_figure(e2_histograms, by, ks, out)
    figs += try_figure(e2_ratio_figure, by, ks, out)
    figs += try_figure(e2_trials, by, ks, out)
    md.append("\n" + figure_section(figs) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def e2_histograms(by, ks, out):
    if not ks:
        raise plot.Missing("no finished run")
    fig, axes = plt.subplots(1, len(ks), figsize=(3.8 * len(ks) + 0.6, 3.6), sharey=True,
                             squeeze=False, constrained_layout=True)
    for ax, k in zip(axes[0], ks):
        r = by[k][0]
        entry = (r.summary.get("analyses") or {}).get("weight_histogram")
        entry = entry if isinstance(entry, dict) else {}
        an = plot.AnalysisView(plot.Run(r.dir, r.summary), "weight_histogram",
                               "weight_histogram", entry)
        try:
            edges, he, hi = plot.weight_hist_arrays(an)
        except plot.Missing as e:
            ax.text(0.5, 0.5, f"missing:\n{e}", ha="center", va="center", fontsize=7,
                    transform=ax.transAxes, wrap=True)
            continue
        plot.draw_ei_hist(ax, edges, he, hi, entry.get("measured") or {}, True)
        ax.set_title(f"K = {k} (seed {r.seed})", fontsize=10)
        if ax is not axes[0][0]:
            ax.set_ylabel("")
    fig.suptitle("E2: trained W_rec,eff entries per K (E and I columns apart, log counts)")
    return save(fig, out, "weight_histograms")


def e2_ratio_figure(by, ks, out):
    if not ks:
        raise plot.Missing("no finished run")
    fig, ax = plt.subplots(figsize=(6.0, 4.0), constrained_layout=True)
    for key, lab, c in (("ratio_of_means", "over the trial", "C0"),
                        ("mean_of_step_ratios", "mean of per-step ratios", "C1")):
        ms = []
        for k in ks:
            ys = [r.get(f"analyses.ei_rates.measured.{key}") for r in by[k]]
            ax.plot([k * (1 + seed_jitter(j, len(ys), 0.12)) for j in range(len(ys))], ys,
                    ls="none", marker="o", ms=4, color=c, alpha=0.6)
            ms.append(mean(ys))
        ax.plot(ks, ms, color=c, lw=1.6, marker="s", ms=5, label=f"E/I ratio, {lab} (mean)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("number of sequences K")
    ax.set_ylabel("mean E rate / mean I rate")
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("E2: E/I rate ratio against K (dots: seeds)")
    return save(fig, out, "ei_ratio_vs_k")


def e2_trials(by, ks, out):
    if not ks:
        raise plot.Missing("no finished run")
    fig, axes = plt.subplots(2, len(ks), figsize=(4.0 * len(ks) + 0.5, 5.2), squeeze=False,
                             sharex=True, constrained_layout=True,
                             gridspec_kw={"height_ratios": [1, 2.4]})
    for j, k in enumerate(ks):
        r = by[k][0]
        entry = (r.summary.get("analyses") or {}).get("trace")
        ax_u, ax_y = axes[0, j], axes[1, j]
        try:
            an = plot.AnalysisView(plot.Run(r.dir, r.summary), "trace", "trace",
                                   entry if isinstance(entry, dict) else {})
            u, z, y = plot.trace_arrays(an)
        except plot.Missing as e:
            ax_y.text(0.5, 0.5, f"missing:\n{e}", ha="center", va="center", fontsize=7,
                      transform=ax_y.transAxes)
            continue
        b = y.shape[0] - 1  # the last sequence's trial
        T, n = y.shape[1], y.shape[2]
        t = np.arange(T)
        ax_u.plot(t, u[b, :, 0], color="0.3", lw=1.2)
        ax_u.set_title(f"K = {k}: trial of sequence {b} (seed {r.seed})", fontsize=9.5)
        cmap = plt.get_cmap("viridis")
        for i in range(n):
            c = cmap(0.92 * i / max(n - 1, 1))
            ax_y.plot(t, z[b, :, i], color=c, lw=0.9, ls="--")
            ax_y.plot(t, y[b, :, i], color=c, lw=1.1)
        ax_y.set_xlabel("time step")
        ax_y.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("the 5K outputs (solid)\nvs targets (dashed)")
    fig.suptitle("E2: one trained trial per K")
    return save(fig, out, "trained_trials")
