"""The figure of a readout_activity analysis (E4, runtime/analysis/ReadoutActivity.cpp): the peak
of each output vs the threshold, silent outputs marked."""

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from .run_folder import Missing, note, need_same_length


def draw_readout_activity(run, an):
    peak = an.array("readout_peak", 1)
    try:
        tpeak = an.array("readout_target_peak", 1)
        need_same_length("readout_activity", peak, tpeak)
    except Missing as e:
        note(f"readout_activity drawn without the target peaks: {e}")
        tpeak = None
    m = an.entry.get("measured") if isinstance(an.entry.get("measured"), dict) else {}
    th = m.get("threshold")
    if not isinstance(th, (int, float)):
        th = 0.1 * float(np.nanmax(tpeak)) if tpeak is not None else None
    silent = peak < th if th is not None else np.zeros(peak.shape, bool)
    n = peak.shape[0]
    fig, ax = plt.subplots(figsize=(max(6.0, min(14.0, 0.35 * n + 3)), 4.0),
                           constrained_layout=True)
    idx = np.arange(n)
    ax.bar(idx[~silent], peak[~silent], color="C0", width=0.7, label="peak output (active)")
    ax.bar(idx[silent], peak[silent], color="0.6", width=0.7, label="peak output (silent)")
    if silent.any():
        ax.plot(idx[silent], np.zeros(silent.sum()), ls="none", marker="x", ms=9, mew=2,
                color="#c0392b", label="silent: never above the threshold", zorder=5,
                clip_on=False)
    if tpeak is not None:
        ax.plot(idx, tpeak, ls="none", marker="_", ms=14, mew=2, color="k", label="target peak")
    if th is not None:
        ax.axhline(th, color="#c0392b", ls="--", lw=1.0, label=f"threshold {th:.3g}")
    ax.axhline(0, color="0.4", lw=0.7)
    ax.set_xlabel("output unit")
    ax.set_ylabel("largest value over steps and trials")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(f"{run.name}: {int(silent.sum())} of {n} outputs silent")
    return run.save(fig, an.fig("readout_activity"))
