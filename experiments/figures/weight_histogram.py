"""The figure of a weight_histogram analysis (E2, runtime/analysis/WeightHistogram.cpp): the E and
I entries of W_rec,eff on shared bins."""

import matplotlib.pyplot as plt

from .run_folder import Missing


LOG_COUNTS = False  # --log-counts


def weight_hist_arrays(an):
    edges = an.array("weight_edges", 1)
    he = an.array("weight_hist_e", 1)
    hi = an.array("weight_hist_i", 1)
    if not (he.shape == hi.shape and edges.shape[0] == he.shape[0] + 1):
        raise Missing(f"weight_edges {edges.shape}, weight_hist_e {he.shape} and weight_hist_i "
                      f"{hi.shape} do not fit (edges = bins + 1)")
    return edges, he, hi


def draw_weight_histogram(run, an):
    edges, he, hi = weight_hist_arrays(an)
    m = an.entry.get("measured") if isinstance(an.entry.get("measured"), dict) else {}
    fig, ax = plt.subplots(figsize=(7.6, 4.2), constrained_layout=True)
    draw_ei_hist(ax, edges, he, hi, m, LOG_COUNTS)
    mat = an.entry.get("matrix")
    ax.set_title(f"{run.name}: trained {mat + ' ' if isinstance(mat, str) else ''}(effective) "
                 f"entries, E and I columns apart")
    return run.save(fig, an.fig("weight_histogram"))


def draw_ei_hist(ax, edges, he, hi, measured, log_counts):
    """The E and I histograms on shared bins; the legend gives each side's mean and zeros."""
    for h, lab, c in ((he, "excitatory columns", "#c0392b"), (hi, "inhibitory columns", "#2471a3")):
        st = measured.get("excitatory" if lab[0] == "e" else "inhibitory") or {}
        extra = []
        if isinstance(st.get("mean"), (int, float)):
            extra.append(f"mean {st['mean']:.3g}")
        if isinstance(st.get("zero_fraction"), (int, float)):
            extra.append(f"{100 * st['zero_fraction']:.0f}% zero")
        ax.stairs(h, edges, color=c, lw=1.3, fill=False,
                  label=lab + (f" ({', '.join(extra)})" if extra else ""))
        ax.stairs(h, edges, color=c, alpha=0.18, fill=True)
    if log_counts:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.8)
    ax.axvline(0, color="0.4", lw=0.7)
    ax.set_xlabel("entry of W_rec,eff")
    ax.set_ylabel("count" + (" (log)" if log_counts else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
