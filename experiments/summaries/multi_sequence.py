"""E2: K sequences in one network."""

import math
import os

from figures import run_folder, trace
from summaries import stats
from summaries.common import (as_float, count, figure_section, group, missing_section, note,
                              np, plt, provenance, save, seed_jitter, table, try_figure,
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


QUANTILES = 2001  # the archive keeps each weight distribution as this many quantiles


def e2_weights(r, excit=0.8):
    """(E entries, I entries) of the trained W_rec,eff of run r (arrays/weight_matrix.npy), or for
    an archived run their QUANTILES quantiles (derived/), which the KS distances and the histograms
    read as well."""
    q = os.path.join(r.dir, "derived")
    if not os.path.isfile(os.path.join(r.dir, "arrays", "weight_matrix.npy")) and \
            os.path.isfile(os.path.join(q, "weight_quantiles_e.npy")):
        return (np.load(os.path.join(q, "weight_quantiles_e.npy")),
                np.load(os.path.join(q, "weight_quantiles_i.npy")))
    entry = (r.summary.get("analyses") or {}).get("weight_histogram")
    an = run_folder.AnalysisView(run_folder.Run(r.dir, r.summary), "weight_histogram", "weight_histogram",
                           entry if isinstance(entry, dict) else {})
    w = an.array("weight_matrix", 2)
    nE = int(math.floor(excit * w.shape[1]))
    return w[:, :nE], w[:, nE:]


def derive(r):
    """What the archive keeps of the weight matrix (316 KB at N = 200): its E and I entries'
    quantiles."""
    try:
        e, i = e2_weights(r)
    except run_folder.Missing:
        return {}
    p = np.linspace(0, 1, QUANTILES)
    return {"weight_quantiles_e": np.quantile(np.ravel(e), p),
            "weight_quantiles_i": np.quantile(np.ravel(i), p)}


def weight_quantiles(r):
    """(E, I) quantiles of run r's trained W_rec,eff: what the KS distances compare, the same
    from a live folder and from the archive."""
    d = derive(r)
    if not d:
        raise run_folder.Missing(f"{r.name}: no weight matrix")
    return d["weight_quantiles_e"], d["weight_quantiles_i"]


# What the archive keeps of each run: the E/I arrays (the two ratios) and the weight histograms.
ARCHIVE_FILES = ("arrays/ei_*.npy", "arrays/weight_edges.npy", "arrays/weight_hist_*.npy")

LEARNED = 0.1  # a network learned its tasks: test MSE at most 10 % of chance (predicting 0)


def mse_over_chance(r):
    loss, chance = r.get("test.loss"), r.get("test.chance_loss")
    return loss / chance if chance > 0 else math.nan


def trained(r):
    return r.get("training.steps", 0) > 0


def matched_steps(r):
    """A run of the matched-length control (every K trained as long as K = 8 took)."""
    return "matched_steps" in os.path.basename(os.path.normpath(r.sweep))


def summarize_multi_sequence(sw, out, args):
    runs = [r for r in sw.runs if trained(r) and not matched_steps(r)]
    controls = group([r for r in sw.runs if not trained(r)], e2_k)
    same_length = group([r for r in sw.runs if matched_steps(r)], e2_k)
    by = group(runs, e2_k)
    ks = sorted(by)
    md = [f"# E2 one network, K sequences: results\n\n{provenance(args, sw)}\n",
          "Each number: mean over seeds with a 95 % bootstrap interval [lo, hi] (n seeds). "
          f"Learned: test MSE at most {LEARNED:g} of chance (predicting 0) on fresh trials. E/I "
          "ratio: mean excitatory rate over mean inhibitory rate (relu(x)) on fresh trials, over "
          "the whole trial (ratio of means) and as the mean of the per-step ratios (pycog's "
          "`r4.txt`). Untrained: the same network and seed before any step (the control: what "
          "initialization alone gives). W_rec,eff: the effective recurrent weights, E and I "
          "columns apart.\n\n",
          "## The paper's claims beside ours\n\nThe paper: the E/I ratio falls as K grows; the "
          "weight distributions look alike across K.\n\n"]
    pre = "analyses.weight_histogram.measured"
    ei = "analyses.ei_rates.measured"
    rows = []
    for k in ks:
        rs = by[k]
        learned = [r for r in rs if mse_over_chance(r) <= LEARNED]
        cs = controls.get(k, [])
        rows.append((k, len(rs), f"{len(learned)}/{len(rs)}",
                     stats.ci([mse_over_chance(r) for r in rs]),
                     stats.ci([r.get("training.steps") for r in rs]).fmt(count),
                     stats.ci([r.get(f"{ei}.ratio_of_means") for r in learned]),
                     stats.ci([r.get(f"{ei}.mean_of_step_ratios") for r in learned]),
                     stats.ci([r.get(f"{ei}.ratio_of_means") for r in cs]),
                     stats.ci([r.get(f"{ei}.mean_of_step_ratios") for r in cs]),
                     stats.ci([r.get(f"{pre}.excitatory.mean") for r in learned]),
                     stats.ci([r.get(f"{pre}.inhibitory.mean") for r in learned]),
                     stats.ci([r.get(f"{pre}.excitatory.zero_fraction") for r in learned]),
                     stats.ci([r.get(f"{pre}.excitatory.zero_fraction") for r in cs])))
    md.append(table(["K", "runs", "learned", "test MSE / chance", "steps to the criterion",
                     "E/I ratio (trial), learned", "E/I ratio (mean of steps), learned",
                     "E/I (trial), untrained", "E/I (mean of steps), untrained",
                     "E weights mean", "I weights mean", "E entries at 0, learned",
                     "E entries at 0, untrained"], rows))
    comps = []
    for key, lab in (("ratio_of_means", "over the trial"),
                     ("mean_of_step_ratios", "mean of per-step ratios")):
        xs, ys, seq = [], [], []
        for k in ks:
            vals = [r.get(f"{ei}.{key}") for r in by[k] if mse_over_chance(r) <= LEARNED]
            xs += [k] * len(vals)
            ys += vals
            seq.append(f"K={k}: {stats.ci(vals)}")
        comps.append(f"E/I ratio ({lab}), learned networks: " + "; ".join(seq)
                     + f"; trend in K: {stats.trend(xs, ys)}")
        xs, ys = [], []
        for k in ks:
            vals = [r.get(f"{ei}.{key}") for r in controls.get(k, [])]
            xs += [k] * len(vals)
            ys += vals
        if ys:
            comps.append(f"E/I ratio ({lab}), untrained control: trend in K: {stats.trend(xs, ys)}")
        if len(ks) >= 2:
            k0, k1 = ks[0], ks[-1]
            a = {r.seed: r.get(f"{ei}.{key}") for r in by[k1] if mse_over_chance(r) <= LEARNED}
            b = {r.seed: r.get(f"{ei}.{key}") for r in by[k0] if mse_over_chance(r) <= LEARNED}
            seeds = sorted(set(a) & set(b))
            comps.append(f"E/I ratio ({lab}), K={k1} against K={k0}, same seed: "
                         f"{stats.paired([a[s] for s in seeds], [b[s] for s in seeds])}")
    if same_length:
        rows = []
        xs, ys = [], []
        for k in sorted(same_length):
            rs = same_length[k]
            vals = [r.get(f"{ei}.ratio_of_means") for r in rs if mse_over_chance(r) <= LEARNED]
            xs += [k] * len(vals)
            ys += vals
            rows.append((k, len(rs), f"{len(vals)}/{len(rs)}",
                         stats.ci([r.get("training.steps") for r in rs]).fmt(count),
                         stats.ci([mse_over_chance(r) for r in rs]), stats.ci(vals),
                         stats.ci([r.get(f"{ei}.mean_of_step_ratios") for r in rs
                                   if mse_over_chance(r) <= LEARNED])))
        md.append("\n### Control: every K trained equally long\n\nTrained to the criterion, larger K "
                  "trains longer; here every K trains as many steps as K = 8 took (no stop at the "
                  "criterion).\n\n" + table(["K", "runs", "learned", "steps", "test MSE / chance",
                                                "E/I ratio (trial), learned",
                                                "E/I ratio (mean of steps), learned"], rows))
        comps.append(f"E/I ratio (over the trial), every K trained {stats.ci([r.get('training.steps') for v in same_length.values() for r in v]).fmt(count)} steps: "
                     f"trend in K: {stats.trend(xs, ys)}")
    # weight distributions: KS distance of each K's entries to the smallest K's (same seed), and
    # of each trained network to its own initialization (how far training moved them)
    if len(ks) >= 2:
        k0 = ks[0]
        for k in ks[1:]:
            de, di = [], []
            for r in by[k]:
                base = [b for b in by[k0] if b.seed == r.seed]
                if not base:
                    continue
                try:
                    (e1, i1), (e2, i2) = weight_quantiles(base[0]), weight_quantiles(r)
                except run_folder.Missing as e:
                    note(f"weight distributions of {r.name}: {e}")
                    continue
                de.append(ks_statistic(e1, e2))
                di.append(ks_statistic(np.abs(i1), np.abs(i2)))
            if de:
                comps.append(f"K={k} vs K={k0}, same seed: Kolmogorov-Smirnov distance (between "
                             f"{QUANTILES} quantiles) of the E "
                             f"entries {stats.ci(de)}, of the I entries {stats.ci(di)} (0: alike, "
                             f"1: disjoint)")
    for k in ks:
        de = []
        for r in by[k]:
            init = [c for c in controls.get(k, []) if c.seed == r.seed]
            if not init:
                continue
            try:
                (e1, _), (e2, _) = weight_quantiles(init[0]), weight_quantiles(r)
            except run_folder.Missing:
                continue
            de.append(ks_statistic(e1, e2))
        if de:
            comps.append(f"K={k}: trained against untrained E entries, same seed: "
                         f"Kolmogorov-Smirnov distance {stats.ci(de)}")
    figs = try_figure(e2_histograms, by, ks, out)
    figs += try_figure(e2_ratio_figure, by, ks, controls, out)
    figs += try_figure(e2_trials, by, ks, out)
    md.append("\n" + figure_section(figs) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def e2_histograms(by, ks, out):
    """Per K, the trained W_rec,eff entries of every seed (E columns above zero, I below), 100
    bins over the range the entries span (the zeros of the diagonal and of rectified entries
    counted apart, in the legend), so the axes show the data."""
    if not ks:
        raise run_folder.Missing("no finished run")
    fig, axes = plt.subplots(1, len(ks), figsize=(3.8 * len(ks) + 0.6, 3.6), sharey=True,
                             squeeze=False, constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for ax, k in zip(axes[0], ks):
        mats = []
        for r in by[k]:
            try:
                e, i = e2_weights(r)
            except run_folder.Missing:
                continue
            mats.append((r.seed, np.concatenate([e.ravel(), i.ravel()])))
        if not mats:
            ax.text(0.5, 0.5, "no weight_matrix.npy", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
            continue
        nz = np.concatenate([m[m != 0] for _, m in mats])
        lo, hi = float(np.min(nz)), float(np.max(nz))
        edges = np.linspace(lo, hi, 101)
        zeros = []
        for j, (seed, m) in enumerate(mats):
            h, _ = np.histogram(m[m != 0], bins=edges)
            ax.stairs(h, edges, color=cmap(0.9 * j / max(len(mats) - 1, 1)), lw=0.9,
                      label=f"seed {seed}")
            zeros.append(float(np.mean(m == 0)))
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.axvline(0, color="0.5", lw=0.6)
        ax.set_title(f"K = {k}: {len(mats)} seeds (zeros {100 * np.mean(zeros):.1f} %)",
                     fontsize=9.5)
        ax.set_xlabel("W_rec,eff entry (I < 0 < E)")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("entries per bin (log)")
    axes[0][-1].legend(frameon=False, fontsize=7)
    fig.suptitle("E2: trained W_rec,eff entries per K, every seed (zero entries left out)")
    return save(fig, out, "weight_histograms")


def e2_ratio_figure(by, ks, controls, out):
    if not ks:
        raise run_folder.Missing("no finished run")
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.0), sharey=True, constrained_layout=True)
    for ax, (key, lab) in zip(axes, (("ratio_of_means", "ratio of trial means"),
                                     ("mean_of_step_ratios", "mean of per-step ratios"))):
        for src, name, c, mk in ((by, "trained (learned)", "C0", "o"),
                                 (controls, "untrained (control)", "0.5", "^")):
            ms, los, his, kk = [], [], [], []
            for k in ks:
                rs = [r for r in src.get(k, []) if src is controls or mse_over_chance(r) <= LEARNED]
                ys = [r.get(f"analyses.ei_rates.measured.{key}") for r in rs]
                ax.plot([k * (1 + seed_jitter(j, len(ys), 0.12)) for j in range(len(ys))], ys,
                        ls="none", marker=mk, ms=4, color=c, alpha=0.55)
                iv = stats.ci(ys)
                if iv.n:
                    kk.append(k), ms.append(iv.mean)
                    los.append(iv.mean - (iv.lo if iv.n > 1 else iv.mean))
                    his.append((iv.hi if iv.n > 1 else iv.mean) - iv.mean)
            if kk:
                ax.errorbar(kk, ms, yerr=[los, his], color=c, lw=1.6, marker="s", ms=5,
                            capsize=3, label=f"{name}: mean, 95 % interval")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.set_xlabel("number of sequences K")
        ax.set_title(f"E/I rate ratio, {lab}", fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("mean E rate / mean I rate")
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle("E2: E/I rate ratio against K (dots: seeds)")
    return save(fig, out, "ei_ratio_vs_k")


def e2_trials(by, ks, out):
    if not ks:
        raise run_folder.Missing("no finished run")
    fig, axes = plt.subplots(2, len(ks), figsize=(4.0 * len(ks) + 0.5, 5.2), squeeze=False,
                             sharex=True, constrained_layout=True,
                             gridspec_kw={"height_ratios": [1, 2.4]})
    for j, k in enumerate(ks):
        r = by[k][0]
        entry = (r.summary.get("analyses") or {}).get("trace")
        ax_u, ax_y = axes[0, j], axes[1, j]
        try:
            an = run_folder.AnalysisView(run_folder.Run(r.dir, r.summary), "trace", "trace",
                                   entry if isinstance(entry, dict) else {})
            u, z, y = trace.trace_arrays(an)
        except run_folder.Missing as e:
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


summarize = summarize_multi_sequence
