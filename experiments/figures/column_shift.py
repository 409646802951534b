"""The figures of a column_shift analysis (E1, runtime/analysis/ColumnShift*): sequence_heatmap,
traces, traces_trained, shift_vs_column, shift_vs_value, shift_map."""

import numpy as np
import matplotlib.pyplot as plt
from matplotlib import colors as mcolors
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, MultipleLocator

from .run_folder import Missing, note, need_same_length, fmt_v


def cs_time(an, n):
    """trial_time.npy, or n samples at the analysis dt if the time array is missing."""
    try:
        t = an.array("trial_time", 1)
        if t.shape[0] != n:
            raise Missing(f"arrays/trial_time.npy has {t.shape[0]} samples, the outputs {n}")
        return t
    except Missing:
        dt = an.entry.get("dt")
        if isinstance(dt, (int, float)) and dt > 0:
            return np.arange(n) * float(dt)
        raise


def as_2d(a):
    return a[:, None] if a.ndim == 1 else a


def peak_shifts(t, y0, y1, max_shift):
    """Per output (t_peak original - t_peak edited); NaN where |shift| > max_shift."""
    s = t[np.argmax(y0, axis=0)] - t[np.argmax(y1, axis=0)]
    if max_shift is not None:
        s = np.where(np.abs(s) > max_shift, np.nan, s)
    return s


def draw_sequence_heatmap(run, an):
    a = an.entry
    y0 = as_2d(an.array("trial_output"))
    y1 = as_2d(an.array("edit_example_output"))
    if y0.ndim != 2 or y0.shape != y1.shape:
        raise Missing(f"trial_output {y0.shape} and edit_example_output {y1.shape} differ in shape")
    t = cs_time(an, y0.shape[0])
    ex = a.get("example") if isinstance(a.get("example"), dict) else {}
    # {"example": {"column", "value"}}; the TOML's flat example_column / example_value also do
    col = ex.get("column", a.get("example_column"))
    val = ex.get("value", a.get("example_value"))
    tau = a.get("tau")
    max_shift = 0.5 * float(tau) if isinstance(tau, (int, float)) else None

    def norm(y):
        m = np.nanmax(y, axis=0)
        m = np.where(np.isfinite(m) & (m > 0), m, 1.0)
        return (y / m).T  # [n_out, T]

    n_out = y0.shape[1]
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.4 + 0.06 * min(n_out, 60)), sharey=True,
                             gridspec_kw={"width_ratios": [1, 1, 0.28]},
                             constrained_layout=True)
    extent = [t[0], t[-1], n_out - 0.5, -0.5]
    ims = []
    for ax, y, ttl in ((axes[0], y0, "before the edit"), (axes[1], y1, "after the edit")):
        ims.append(ax.imshow(norm(y), aspect="auto", origin="upper", extent=extent,
                             cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest"))
        ax.set_xlabel("time (ms)")
        ax.set_title(ttl)
        ax.set_xlim(t[0], t[-1])
    axes[0].set_ylabel("output index")
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(n_out, 10)))
    if n_out <= 30:  # mark the peaks: before (open circles) on both panels, after (dots)
        p0 = t[np.argmax(y0, axis=0)]
        p1 = t[np.argmax(y1, axis=0)]
        rows = np.arange(n_out)
        for ax in axes[:2]:
            ax.plot(p0, rows, ls="none", marker="o", ms=6, mfc="none", mec="cyan", mew=1.1,
                    label="peak before the edit")
        axes[1].plot(p1, rows, ls="none", marker="o", ms=2.6, color="lime",
                     label="peak after the edit")
        axes[1].legend(loc="lower left", fontsize=7.5, framealpha=0.7)

    what = ""
    if col is not None and val is not None:
        try:
            what = f"column {int(col)}, v = {fmt_v(float(val))}"
        except (TypeError, ValueError):
            what = f"column {col}, v = {val}"
    axes[1].set_title("after the edit" + (f" ({what})" if what else ""))
    cb = fig.colorbar(ims[0], ax=axes[:2], shrink=0.95, pad=0.01, aspect=30)
    cb.set_label("output / its max")

    # per-output peak shift of the example edit: the whole sequence moves, each output alike
    ax = axes[2]
    shifts = peak_shifts(t, y0, y1, None)
    excluded = (np.abs(shifts) > max_shift) if max_shift is not None else np.zeros(n_out, bool)
    colors = np.where(shifts >= 0, "#b2182b", "#2166ac")
    rows = np.arange(n_out)
    ax.barh(rows[~excluded], shifts[~excluded], height=0.7, color=colors[~excluded])
    if excluded.any():
        ax.plot(np.zeros(excluded.sum()), rows[excluded], ls="none", marker="x", color="k",
                ms=6, label=f"excluded ({_tau_text(an)})")
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), fontsize=7, frameon=False)
    ax.axvline(0, color="0.3", lw=0.8)
    lim = float(np.max(np.abs(shifts[~excluded]))) if (~excluded).any() else 1.0
    ax.set_xlim(-1.15 * max(lim, 0.5), 1.15 * max(lim, 0.5))
    ax.set_xlabel("peak shift (ms)")
    ax.set_title("per output:\nt_before - t_after", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.tick_params(axis="y", labelleft=False)

    ok = ~excluded
    sup = f"{run.name}: outputs over time (each normalized to its own max), before and after " \
          f"the edit W_rec,eff[E rows, c] -= v"
    if ok.any():
        sup += f"\nmean peak shift of this edit: {np.mean(shifts[ok]):+.1f} ms (>0: earlier)"
        if (~ok).any():
            sup += f", {int((~ok).sum())} output(s) excluded"
    fig.suptitle(sup)
    return run.save(fig, an.fig("sequence_heatmap"))


def draw_traces(run, an):
    return _draw_traces(run, an, "trial", "original trial at the analysis dt, no noise", "traces")


def draw_traces_trained(run, an):
    return _draw_traces(run, an, "trained", "the same trial at the training dt, no noise",
                        "traces_trained")


def _draw_traces(run, an, prefix, what, name):
    y = as_2d(an.array(f"{prefix}_output"))
    z = as_2d(an.array(f"{prefix}_target"))
    u = an.array(f"{prefix}_input")
    if y.shape != z.shape:
        raise Missing(f"{prefix}_output {y.shape} and {prefix}_target {z.shape} differ in shape")
    u = as_2d(u)
    need_same_length(name, y, u)
    if prefix == "trial":
        t = cs_time(an, y.shape[0])
    else:
        t = an.array(f"{prefix}_time", 1)
        need_same_length(name, y, t)
    n_out = y.shape[1]

    fig, (ax_u, ax_y) = plt.subplots(2, 1, figsize=(8.0, 5.6), sharex=True,
                                     gridspec_kw={"height_ratios": [1, 2.6]},
                                     constrained_layout=True)
    for j in range(u.shape[1]):
        ax_u.plot(t, u[:, j], color="0.2", lw=1.2, label=f"u{j}" if u.shape[1] > 1 else None)
    ax_u.set_ylabel("input u (a.u.)")
    ax_u.set_title(f"{run.name}: input, outputs and targets ({what})")
    ax_u.set_ylim(bottom=min(0.0, float(np.nanmin(u))))
    ax_u.grid(True, alpha=0.3)
    if u.shape[1] > 1:
        ax_u.legend(frameon=False, ncol=min(u.shape[1], 4))

    cmap = plt.get_cmap("viridis")
    cnorm = mcolors.Normalize(vmin=0, vmax=max(n_out - 1, 1))
    lw = 1.3 if n_out <= 20 else 0.7
    for i in range(n_out):
        c = cmap(cnorm(i) * 0.92)  # stay off the palest yellow
        ax_y.plot(t, z[:, i], color=c, lw=lw, ls="--", alpha=0.9)
        ax_y.plot(t, y[:, i], color=c, lw=lw)
    ax_y.set_xlabel("time (ms)")
    ax_y.set_ylabel("output rate (a.u.)")
    ax_y.grid(True, alpha=0.3)
    ax_y.set_xlim(t[0], t[-1])
    ax_y.legend(handles=[Line2D([], [], color="0.3", lw=1.3, label="output"),
                         Line2D([], [], color="0.3", lw=1.3, ls="--", label="target")],
                loc="upper left", frameon=False)
    sm = plt.cm.ScalarMappable(norm=mcolors.Normalize(vmin=0, vmax=max(n_out - 1, 1) / 0.92),
                               cmap=cmap)
    cb = fig.colorbar(sm, ax=ax_y, pad=0.01, aspect=25)
    cb.set_label("output index")
    cb.ax.set_ylim(0, max(n_out - 1, 1))
    cb.locator = MaxNLocator(integer=True, nbins=min(n_out, 10))
    cb.update_ticks()
    rmse = float(np.sqrt(np.nanmean((y - z) ** 2)))
    ax_y.set_title(f"outputs (solid) vs targets (dashed): RMSE {rmse:.3g}", fontsize=10)
    return run.save(fig, an.fig(name))


def _shift_arrays(an):
    cols = an.array("shift_columns", 1)
    vals = an.array("shift_values", 1)
    peak = an.array("peak_shift", 2)
    C, V = cols.shape[0], vals.shape[0]
    if peak.shape != (C, V):
        raise Missing(f"arrays/peak_shift.npy has shape {peak.shape}, expected ({C}, {V})")
    optional = {}
    for name in ("centroid_shift", "failures"):  # optional: the figures do without them
        try:
            arr = an.array(name, 2)
            if arr.shape != (C, V):
                raise Missing(f"arrays/{name}.npy has shape {arr.shape}, expected ({C}, {V})")
            optional[name] = arr
        except Missing as e:
            note(f"shift figures drawn without {name}: {e}")
            optional[name] = None
    return cols, vals, peak, optional["centroid_shift"], optional["failures"]


def _pick(requested, available, count_default=4):
    """Indices into `available` nearest to each requested value (deduplicated, in order).
    Without a request, `count_default` evenly spread entries."""
    if isinstance(requested, (list, tuple)) and requested:
        out = []
        for r in requested:
            try:
                i = int(np.nanargmin(np.abs(available - float(r))))
            except (TypeError, ValueError):
                continue
            if i not in out:
                out.append(i)
        if out:
            return out
    n = available.shape[0]
    return sorted(set(np.linspace(0, n - 1, min(count_default, n)).round().astype(int).tolist()))


def _tau_text(an):
    tau = an.entry.get("tau")
    if isinstance(tau, (int, float)):
        return f"|shift| > 0.5 tau = {0.5 * tau:g} ms"
    return "|shift| too large"


def _draw_shift_lines(ax, x, series, labels, colors):
    """series: (peak, centroid or None, failures or None) per line. x marks points with some
    outputs excluded; an open triangle on the x axis marks points where every output was
    excluded (no mean). Returns (any failure, any point where every output failed)."""
    any_fail = all_fail = False
    for (p, c_, f), lab, col in zip(series, labels, colors):
        ax.plot(x, p, color=col, lw=1.6, marker="o", ms=3.2, label=lab)
        if c_ is not None:
            ax.plot(x, c_, color=col, lw=1.3, ls="--")
        if f is not None:
            bad = np.isfinite(f) & (f > 0)
            if bad.any():
                any_fail = True
                on = bad & np.isfinite(p)
                ax.plot(x[on], p[on], ls="none", marker="x", ms=8, mew=1.8, color=col, zorder=4)
                off = bad & ~np.isfinite(p)  # every output failed: no mean to draw
                if off.any():
                    all_fail = True
                    ax.plot(x[off], np.full(off.sum(), 0.0), ls="none", marker="v", ms=8,
                            mew=1.5, mfc="none", mec=col, transform=ax.get_xaxis_transform(),
                            zorder=4, clip_on=False)
    return any_fail, all_fail


def _style_legend(ax, have_centroid, fails, an, title):
    any_fail, all_fail = fails
    h, _ = ax.get_legend_handles_labels()
    blank = Line2D([], [], ls="none", label=" ")
    extra = [blank, Line2D([], [], color="0.3", lw=1.6, marker="o", ms=3.2,
                           label="peak shift (mean over outputs)")]
    if have_centroid:
        extra.append(Line2D([], [], color="0.3", lw=1.3, ls="--", label="centroid shift"))
    if any_fail:
        extra.append(Line2D([], [], color="0.3", ls="none", marker="x", ms=8, mew=1.8,
                            label=f"some outputs excluded\n({_tau_text(an)})"))
    if all_fail:
        extra.append(Line2D([], [], ls="none", marker="v", ms=8, mew=1.5, mfc="none",
                            mec="0.3", label="on the x axis: every output\nexcluded, no mean"))
    ax.legend(handles=h + extra, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, alignment="left")


def draw_shift_vs_column(run, an):
    a = an.entry
    cols, vals, peak, cent, fail = _shift_arrays(an)
    picks = _pick(a.get("plot_values"), vals)

    vmax = max(float(np.nanmax(np.abs(vals[picks]))), 1e-12)
    cmap = plt.get_cmap("coolwarm")
    fig, ax = plt.subplots(figsize=(8.4, 4.4), constrained_layout=True)
    ax.axhline(0, color="0.4", lw=0.9, zorder=0)
    series, labels, colors = [], [], []
    for j in sorted(picks, key=lambda j: vals[j]):
        series.append((peak[:, j], None if cent is None else cent[:, j],
                       None if fail is None else fail[:, j]))
        labels.append(f"v = {fmt_v(vals[j])}")
        # |v| sets the depth of the color; keep small |v| visible (not white).
        colors.append(cmap(0.5 + 0.5 * np.sign(vals[j]) * (0.35 + 0.65 * abs(vals[j]) / vmax)))
    fails = _draw_shift_lines(ax, cols, series, labels, colors)
    ax.set_xlabel("edited inhibitory column c")
    ax.set_ylabel("sequence shift (ms)\nt_peak before - t_peak after")
    span = float(np.nanmax(cols) - np.nanmin(cols)) if cols.size else 0.0
    ax.xaxis.set_major_locator(MultipleLocator(1 if span <= 12 else 2) if span <= 30
                               else MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{run.name}: shift vs edited column (W_rec,eff[E rows, c] -= v)\n"
                 "positive: the sequence comes earlier")
    _style_legend(ax, cent is not None, fails, an, "edit value")
    return run.save(fig, an.fig("shift_vs_column"))


def draw_shift_vs_value(run, an):
    a = an.entry
    cols, vals, peak, cent, fail = _shift_arrays(an)
    picks = _pick(a.get("plot_columns"), cols)

    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(8.4, 4.4), constrained_layout=True)
    ax.axhline(0, color="0.4", lw=0.9, zorder=0)
    ax.axvline(0, color="0.4", lw=0.9, zorder=0)
    series, labels, colors = [], [], []
    order = sorted(picks, key=lambda i: cols[i])
    for k, i in enumerate(order):
        series.append((peak[i, :], None if cent is None else cent[i, :],
                       None if fail is None else fail[i, :]))
        labels.append(f"column {int(round(cols[i]))}")
        colors.append(cmap(0.9 * k / max(len(order) - 1, 1)))
    fails = _draw_shift_lines(ax, vals, series, labels, colors)
    ax.set_xlabel("edit value v (W_rec,eff[E rows, c] -= v)")
    ax.set_ylabel("sequence shift (ms)\nt_peak before - t_peak after")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{run.name}: shift vs edit value, per edited column\n"
                 "positive: the sequence comes earlier")
    _style_legend(ax, cent is not None, fails, an, "edited column")
    return run.save(fig, an.fig("shift_vs_value"))


def draw_shift_map(run, an):
    cols, vals, peak, cent, fail = _shift_arrays(an)
    fin = peak[np.isfinite(peak)]
    if fin.size == 0:
        raise Missing("arrays/peak_shift.npy has no finite value")
    lim = float(np.max(np.abs(fin))) or 1.0
    fig, ax = plt.subplots(figsize=(7.6, 4.8), constrained_layout=True)

    def edges(c):
        if c.size == 1:
            return np.array([c[0] - 0.5, c[0] + 0.5])
        mid = 0.5 * (c[1:] + c[:-1])
        return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])

    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("0.75")
    mesh = ax.pcolormesh(edges(vals), edges(cols), np.ma.masked_invalid(peak), cmap=cmap,
                         vmin=-lim, vmax=lim, shading="flat")
    handles = []
    if fail is not None:
        ci, vi = np.nonzero(np.isfinite(fail) & (fail > 0))
        if ci.size:
            handles += ax.plot(vals[vi], cols[ci], ls="none", marker="x", ms=5, mew=1.1,
                               color="k", label=f"some outputs excluded ({_tau_text(an)})")
    if not np.all(np.isfinite(peak)):
        from matplotlib.patches import Patch
        handles.append(Patch(facecolor="0.75", edgecolor="0.5",
                             label="no mean: every output excluded (or not measured)"))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(-0.02, -0.11),
                  frameon=False)
    ax.set_xlabel("edit value v")
    ax.set_ylabel("edited inhibitory column c")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{run.name}: mean peak shift over all edits (W_rec,eff[E rows, c] -= v)")
    cb = fig.colorbar(mesh, ax=ax, pad=0.02)
    cb.set_label("mean peak shift (ms), >0: earlier")
    return run.save(fig, an.fig("shift_map"))
