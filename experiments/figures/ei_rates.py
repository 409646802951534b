"""The figure of an ei_rates analysis (E2, runtime/analysis/EiRates.cpp): mean E and I rates over
time and their ratio."""

import math

import numpy as np
import matplotlib.pyplot as plt

from .run_folder import Missing, need_same_length


def draw_ei_rates(run, an):
    e = an.array("ei_rate_e", 1)
    i = an.array("ei_rate_i", 1)
    ratio = an.array("ei_ratio", 1)
    try:
        t = an.array("ei_step", 1)
    except Missing:
        t = np.arange(e.shape[0], dtype=float)
    need_same_length("ei_rates", e, i, ratio, t)
    m = an.entry.get("measured") if isinstance(an.entry.get("measured"), dict) else {}
    fig, (ax_r, ax_q) = plt.subplots(2, 1, figsize=(7.6, 5.6), sharex=True,
                                     constrained_layout=True)
    ax_r.plot(t, e, color="#c0392b", lw=1.4, label="mean excitatory rate")
    ax_r.plot(t, i, color="#2471a3", lw=1.4, label="mean inhibitory rate")
    ax_r.set_ylabel("rate relu(x)")
    ax_r.grid(True, alpha=0.3)
    ax_r.legend(frameon=False)
    ax_q.plot(t, ratio, color="k", lw=1.3, label="E / I per step")
    rom = m.get("ratio_of_means")
    if isinstance(rom, (int, float)) and math.isfinite(rom):
        ax_q.axhline(rom, color="C1", ls="--", lw=1.1, label=f"over the trial: {rom:.3g}")
    ax_q.set_xlabel("time step")
    ax_q.set_ylabel("E / I rate ratio")
    ax_q.grid(True, alpha=0.3)
    ax_q.legend(frameon=False)
    trials = an.entry.get("trials")
    ax_r.set_title(f"{run.name}: mean E and I rates"
                   + (f" over {trials} trials" if isinstance(trials, int) else ""))
    return run.save(fig, an.fig("ei_rates"))
