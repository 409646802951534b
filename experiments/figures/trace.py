"""The figures of a trace analysis (E2 trained trials, E3 before/after, E4, E5's plastic cell;
runtime/analysis/Trace*): trace (outputs vs targets per trial) and plastic (a matrix-shaped
state)."""

import math
import os

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from .run_folder import Missing


MAX_TRIALS = 8


def trace_arrays(an):
    """trace_input, trace_target, trace_output as [B, T, size], checked against each other."""
    u = an.array("trace_input", 3)
    z = an.array("trace_target", 3)
    y = an.array("trace_output", 3)
    if y.shape != z.shape:
        raise Missing(f"trace_output {y.shape} and trace_target {z.shape} differ in shape")
    if u.shape[:2] != y.shape[:2]:
        raise Missing(f"trace_input {u.shape} and trace_output {y.shape} differ in trials or steps")
    if y.shape[1] < 1:
        raise Missing("the trace has no time step")
    return u, z, y


def asked_at_last_step_only(z):
    """A copy-first trial: the target is zero everywhere but the last step."""
    return z.shape[1] > 1 and not np.any(z[:, :-1]) and np.any(z[:, -1])


def draw_trace(run, an):
    u, z, y = trace_arrays(an)
    if asked_at_last_step_only(z):
        return _draw_trace_last_step(run, an, u, z, y)
    B, T, n_out = y.shape
    shown = min(B, MAX_TRIALS)
    ncols = 1 if shown == 1 else 2
    nrows = math.ceil(shown / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 2.5 * nrows + 0.8),
                             squeeze=False, sharex=True, constrained_layout=True)
    t = np.arange(T)
    cmap = plt.get_cmap("viridis")
    lw = 1.2 if n_out <= 20 else 0.8
    for b in range(nrows * ncols):
        ax = axes[b // ncols, b % ncols]
        if b >= shown:
            ax.axis("off")
            continue
        for i in range(n_out):
            c = cmap(0.92 * i / max(n_out - 1, 1))
            ax.plot(t, z[b, :, i], color=c, lw=lw, ls="--", alpha=0.9)
            ax.plot(t, y[b, :, i], color=c, lw=lw)
        ax.grid(True, alpha=0.3)
        axu = ax.twinx()  # the input on its own scale, in grey, behind
        for j in range(u.shape[2]):
            axu.plot(t, u[b, :, j], color="0.55", lw=0.9, alpha=0.8)
        axu.set_ylabel("input", color="0.45", fontsize=8)
        axu.tick_params(axis="y", colors="0.45", labelsize=7)
        axu.spines["right"].set_visible(True)
        rmse = float(np.sqrt(np.nanmean((y[b] - z[b]) ** 2)))
        ax.set_title(f"trial {b}: RMSE {rmse:.3g}", fontsize=9)
        if b % ncols == 0:
            ax.set_ylabel("output")
        if b // ncols == nrows - 1 or b + ncols >= shown:
            ax.set_xlabel("time step")
    axes[0, 0].legend(handles=[Line2D([], [], color="0.3", lw=1.3, label="output"),
                               Line2D([], [], color="0.3", lw=1.3, ls="--", label="target"),
                               Line2D([], [], color="0.55", lw=0.9, label="input (right axis)")],
                      loc="upper right", frameon=False, fontsize=7.5)
    more = f" (first {shown} of {B})" if B > shown else ""
    fig.suptitle(f"{run.name}: {an.key}: outputs (solid, colour = output index) vs targets "
                 f"(dashed){more}")
    return run.save(fig, an.fig("trace"))


def _draw_trace_last_step(run, an, u, z, y):
    """Copy-first: the output only matters at the last step, so plot what it should copy (the
    first input) against what it gives (the last output), one point per trial and dimension."""
    B, T, D = y.shape
    first = u[:, 0, :D] if u.shape[2] >= D else z[:, -1, :]
    final = y[:, -1, :]
    mse = float(np.mean((final - z[:, -1, :]) ** 2))
    fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(11.0, 4.4), constrained_layout=True,
                                     gridspec_kw={"width_ratios": [1, 1.5]})
    lim = float(np.nanmax(np.abs(np.concatenate([first.ravel(), final.ravel()])))) * 1.08 or 1.0
    ax_s.plot([-lim, lim], [-lim, lim], color="0.5", lw=0.9, ls="--", label="perfect copy")
    for b in range(min(B, MAX_TRIALS)):
        ax_s.plot(first[b], final[b], ls="none", marker="o", ms=4, alpha=0.8,
                  label=f"trial {b}" if B > 1 else f"{D} dimension(s)")
    ax_s.set_xlim(-lim, lim)
    ax_s.set_ylim(-lim, lim)
    ax_s.set_aspect("equal")
    ax_s.set_xlabel("first input x_1 (the target)")
    ax_s.set_ylabel(f"output at the last step t = {T}")
    ax_s.set_title(f"one point per dimension: MSE {mse:.3g}", fontsize=10)
    ax_s.grid(True, alpha=0.3)
    ax_s.legend(frameon=False, fontsize=7.5)
    # the output over the sequence, for a few dimensions of trial 0; the target asked at the end
    t = np.arange(1, T + 1)
    for i in range(min(D, 4)):
        c = f"C{i}"
        ax_t.plot(t, y[0, :, i], color=c, lw=1.0, label=f"output {i}")
        ax_t.plot([T], [z[0, -1, i]], marker="*", ms=12, color=c, mec="k", mew=0.5, ls="none")
        ax_t.axhline(first[0, i], color=c, lw=0.6, ls=":")
    ax_t.set_xlabel("time step")
    ax_t.set_ylabel("output")
    ax_t.set_title("trial 0 over the sequence (star: the target, asked at the last step; "
                   "dotted: x_1)", fontsize=9)
    ax_t.grid(True, alpha=0.3)
    ax_t.legend(frameon=False, fontsize=7.5, ncol=2)
    fig.suptitle(f"{run.name}: {an.key}: copy the first input over {T} steps")
    return run.save(fig, an.fig("trace"))


def trace_states(an):
    """{name: array [B, T, ...]} of the recorded states (entry "states", else every file)."""
    names = an.entry.get("states")
    if not isinstance(names, list):
        prefix = (f"{an.key}_" if an.named else "") + "trace_state_"
        d = os.path.join(an.run.dir, "arrays")
        names = sorted(f[len(prefix):-4] for f in (os.listdir(d) if os.path.isdir(d) else [])
                       if f.startswith(prefix) and f.endswith(".npy"))
    out = {}
    for n in names:
        if isinstance(n, str):
            a = an.array(f"trace_state_{n}")
            if a.ndim < 3:
                raise Missing(f"trace_state_{n} has shape {a.shape}, expected [trials, steps, ...]")
            out[n] = a
    return out


def draw_plastic(run, an):
    """What a plastic cell does over one sequence: its matrix-shaped state (the Hebbian trace) and
    the hidden state it acts on. One figure per matrix state."""
    states = trace_states(an)
    mats = {k: v for k, v in states.items() if v.ndim == 4}
    if not mats:  # not a plastic cell, or its trace not recorded: nothing to draw, no note
        return []
    vecs = {k: v for k, v in states.items() if v.ndim == 3}
    hname = "h" if "h" in vecs else (next(iter(vecs)) if vecs else None)
    paths = []
    for mname, M in mats.items():
        name = "plastic" if len(mats) == 1 else f"plastic_{mname}"
        paths.append(_draw_plastic_one(run, an, name, mname, M[0],
                                       None if hname is None else (hname, vecs[hname][0])))
    return paths


def _draw_plastic_one(run, an, figname, mname, M, hstate):
    T, r, c = M.shape
    t = np.arange(1, T + 1)
    fig = plt.figure(figsize=(12.0, 9.6), constrained_layout=True)
    grid = fig.add_gridspec(3, 6, height_ratios=[1, 1.1, 1.1])
    ax_n = fig.add_subplot(grid[0, 0:3])
    ax_e = fig.add_subplot(grid[0, 3:6], sharex=ax_n)
    norm = np.sqrt((M ** 2).sum(axis=(1, 2)))
    ax_n.plot(t, norm, color="C3", lw=1.4, label=f"||{mname}_t|| (Frobenius)")
    ax_n.plot(t, np.abs(M).max(axis=(1, 2)), color="C7", lw=0.9, ls="--", label="max |entry|")
    ax_n.set_xlabel("time step")
    ax_n.set_title(f"the trace {mname} [{r} x {c}] over the sequence", fontsize=10)
    ax_n.grid(True, alpha=0.3)
    ax_n.legend(frameon=False)
    # the entries with the largest final magnitude
    flat = M.reshape(T, -1)
    top = np.argsort(-np.abs(flat[-1]))[:6]
    for k, j in enumerate(top):
        ax_e.plot(t, flat[:, j], lw=1.1, color=f"C{k}", label=f"[{j // c}, {j % c}]")
    ax_e.axhline(0, color="0.5", lw=0.7)
    ax_e.set_xlabel("time step")
    ax_e.set_title("six entries (the largest at the end)", fontsize=10)
    ax_e.grid(True, alpha=0.3)
    ax_e.legend(frameon=False, fontsize=7.5, ncol=2)
    # the trace as a matrix at three times
    times = sorted({max(0, T // 10 - 1), T // 2 - 1 if T > 1 else 0, T - 1})
    lim = float(np.max(np.abs(M))) or 1.0
    im = None
    for k, ti in enumerate(times):
        ax = fig.add_subplot(grid[1, 2 * k:2 * k + 2])
        im = ax.imshow(M[ti], cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto",
                       interpolation="nearest")
        ax.set_title(f"{mname} after step {ti + 1}", fontsize=10)
        ax.set_xlabel("column")
        if k == 0:
            ax.set_ylabel("row")
    if im is not None:
        fig.colorbar(im, ax=fig.axes[-len(times):], shrink=0.9, pad=0.01).set_label(mname)
    ax_h = fig.add_subplot(grid[2, :])
    if hstate is not None:
        hname, H = hstate
        hl = float(np.max(np.abs(H))) or 1.0
        im = ax_h.imshow(H.T, cmap="RdBu_r", vmin=-hl, vmax=hl, aspect="auto",
                         interpolation="nearest", extent=[0.5, T + 0.5, H.shape[1] - 0.5, -0.5])
        fig.colorbar(im, ax=ax_h, pad=0.01).set_label(hname)
        ax_h.set_ylabel("unit")
        ax_h.set_title(f"the hidden state {hname} over the sequence", fontsize=10)
    else:
        ax_h.text(0.5, 0.5, "no vector state recorded", ha="center", va="center",
                  transform=ax_h.transAxes)
    ax_h.set_xlabel("time step")
    fig.suptitle(f"{run.name}: {an.key}: what the plastic cell does over one sequence (trial 0)")
    return run.save(fig, an.fig(figname))
