#!/usr/bin/python3
"""Draw the figures of a finished (or partial) cellc experiment run folder.

    python3 experiments/plot.py RUN_DIR [--only NAME ...] [--log-counts]

Reads RUN_DIR/summary.json, RUN_DIR/metrics.csv and RUN_DIR/arrays/*.npy, writes one PNG per figure
into RUN_DIR/figures/ and prints the files written, one per line, on stdout.

A figure whose inputs are missing (or malformed) is skipped with a one-line note on stderr; so is
a malformed metrics.csv row (a field count other than the header's, a non-numeric value), named by
its line. An analysis kind that this script does not know is skipped with a note. Exit status:
0 if at least one figure was drawn or nothing was drawable, 1 only if summary.json is unreadable,
2 on a usage error (unknown --only name).

Each entry of summary.json "analyses" is drawn by its "kind" (the key when the entry has none). A
named analysis (key != kind) reads its arrays as NAME_<array>.npy and writes NAME_<figure>.png,
e.g. the forgetting experiment's task1_after_trace.png.

Figures:
  learning_curve    (always)          training loss and validation error vs step; without
                                      validation (copy_first), the minibatch loss vs samples seen
                                      (step x batch) with the first steps below the milestones
  sequence_heatmap  (column_shift)    outputs over time before/after the example edit
  traces            (column_shift)    input, outputs and targets of the original trial
  shift_vs_column   (column_shift)    sequence shift vs edited column, one line per edit value v
  shift_vs_value    (column_shift)    sequence shift vs edit value v, one line per column
  shift_map         (column_shift)    mean peak shift over every (column, v), failures marked
  trace             (trace)           per trial (up to 8): outputs vs targets, input; copy-first
                                      trials (target at the last step only): first input vs last
                                      output per dimension
  plastic           (trace)           a matrix-shaped state (the Hebbian trace): its norm, a few
                                      entries, heatmaps at 3 times, the hidden state over time
  weight_histogram  (weight_histogram) E and I entries of W_rec,eff on shared bins (--log-counts)
  ei_rates          (ei_rates)        mean E and I rates over time and their ratio
  readout_activity  (readout_activity) peak per output vs the threshold, silent outputs marked

--only takes figure names (with or without .png), file names of named analyses' figures, analysis
names or analysis kinds.
Only the standard library, numpy and matplotlib are used.
"""

import argparse
import math
import os
import sys

try:
    import numpy as np
    import matplotlib
except ImportError as _e:  # e.g. a python3 other than Debian's, without python3-matplotlib
    print(f"plot.py: error: {_e}; run with /usr/bin/python3 (python3-numpy, python3-matplotlib)",
          file=sys.stderr)
    sys.exit(1)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator, MultipleLocator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from readfiles import Damaged, csv_rows, read_json, read_text  # noqa: E402

DPI = 150
PROG = "plot.py"

plt.rcParams.update({
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
})


class Missing(Exception):
    """An input a figure needs is absent or unusable: the figure is skipped with a note."""


_noted = set()


def note(msg):
    """One line on stderr; the same line only once."""
    if msg not in _noted:
        _noted.add(msg)
        print(f"{PROG}: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Run folder access
# --------------------------------------------------------------------------------------------

class Run:
    def __init__(self, run_dir, summary):
        self.dir = run_dir
        self.summary = summary
        self.fig_dir = os.path.join(run_dir, "figures")
        self._arrays = {}

    @property
    def name(self):
        exp = self.summary.get("experiment")
        if isinstance(exp, dict) and exp.get("name"):
            return str(exp["name"])
        return os.path.basename(os.path.normpath(self.dir))

    def analysis(self, kind):
        a = (self.summary.get("analyses") or {}).get(kind)
        return a if isinstance(a, dict) else {}

    def array(self, name, ndim=None):
        """arrays/NAME.npy as float64; raises Missing if absent, unreadable or of the wrong rank."""
        if name in self._arrays:
            a = self._arrays[name]
        else:
            path = os.path.join(self.dir, "arrays", name + ".npy")
            if not os.path.isfile(path):
                raise Missing(f"arrays/{name}.npy missing")
            try:
                a = np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
            except Exception as e:  # truncated file, bad header, object array...
                raise Missing(f"arrays/{name}.npy unreadable ({type(e).__name__}: {e})")
            self._arrays[name] = a
        if ndim is not None and a.ndim != ndim:
            raise Missing(f"arrays/{name}.npy has shape {a.shape}, expected {ndim} dimension(s)")
        return a

    def save(self, fig, name):
        os.makedirs(self.fig_dir, exist_ok=True)
        path = os.path.join(self.fig_dir, name + ".png")
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        return path


class AnalysisView:
    """One entry of summary.json "analyses": its key (the analysis' name), its kind, and its arrays.

    A named analysis (key != kind) saves its arrays as NAME_<array>.npy and its figures are written
    as NAME_<figure>.png, so two analyses of one kind keep theirs apart."""

    def __init__(self, run, key, kind, entry):
        self.run, self.key, self.kind = run, key, kind
        self.entry = entry if isinstance(entry, dict) else {}
        self.named = key != kind

    def array(self, name, ndim=None):
        if self.named:
            return self.run.array(f"{self.key}_{name}", ndim)
        try:
            return self.run.array(name, ndim)
        except Missing as plain:
            # An analysis whose name equals its kind was still named: its arrays are prefixed.
            if not os.path.isfile(os.path.join(self.run.dir, "arrays", f"{self.key}_{name}.npy")):
                raise plain
            return self.run.array(f"{self.key}_{name}", ndim)

    def has(self, name):
        base = os.path.join(self.run.dir, "arrays")
        return any(os.path.isfile(os.path.join(base, f + ".npy"))
                   for f in ((f"{self.key}_{name}",) if self.named else (name, f"{self.key}_{name}")))

    def fig(self, name):
        return f"{self.key}_{name}" if self.named else name


def analysis_kind(key, entry):
    """The kind the runner records in each entry; the key itself for older summaries."""
    kind = entry.get("kind") if isinstance(entry, dict) else None
    return kind if isinstance(kind, str) and kind else key


def need_same_length(what, *arrays):
    n = {a.shape[0] for a in arrays}
    if len(n) != 1:
        raise Missing(f"{what}: arrays disagree on their first dimension "
                      f"({', '.join(str(a.shape) for a in arrays)})")


def fmt_v(v):
    return f"{v:+.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:+.3g}"


def fmt_num(x):
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}"


# --------------------------------------------------------------------------------------------
# learning_curve: metrics.csv
# --------------------------------------------------------------------------------------------

def _float(s):
    try:
        return float(s) if s is not None and s.strip() != "" else math.nan
    except ValueError:
        return math.nan


MAX_ROW_NOTES = 5  # malformed rows named one by one; the rest counted


def read_metrics(run):
    """metrics.csv as (phases, step, loss, val_error): see read_metric_columns."""
    c = read_metric_columns(run)
    nan = np.full(len(c["step"]), math.nan)
    return c["phase"], c["step"], c.get("loss", nan), c.get("val_error", nan)


def read_metric_columns(run):
    """metrics.csv as {column: array} (`phase`: a list of names). A malformed row (a field count
    other than the header's, or a non-numeric value in a numeric column) is skipped with a note
    naming its line; an empty numeric field is a missing value (val_error between validations)."""
    path = os.path.join(run.dir, "metrics.csv")
    if not os.path.isfile(path):
        raise Missing("metrics.csv missing")
    bad = []
    try:
        rows = list(csv_rows(path, read_text(path)))
    except Damaged as e:  # said once, where it is; the figures that need the curve are skipped
        note(str(e))
        raise Missing(str(e)) from None
    header = rows[0][1] if rows else None
    if not header or "step" not in [h.strip() for h in header]:
        raise Missing("metrics.csv has no header with a 'step' column")
    header = [h.strip() for h in header]
    col = {h: i for i, h in enumerate(header)}
    cols = {h: [] for h in header}
    cols.setdefault("phase", [])
    for line, fields in rows[1:]:
        if not fields or all(not x.strip() for x in fields):
            continue  # a blank line (e.g. the file's end)
        if len(fields) != len(header):
            bad.append(f"line {line}: {len(fields)} fields, the header has {len(header)}")
            continue
        values, why = {}, None
        for h, i in col.items():
            if h == "phase":
                continue
            txt = fields[i].strip()
            if txt == "":
                if h == "step":
                    why = "no step"
                    break
                values[h] = math.nan
                continue
            try:
                values[h] = float(txt)
            except ValueError:
                why = f"{h} is not a number ({txt[:20]!r})"
                break
        if why is None and not math.isfinite(values["step"]):
            why = f"step is not finite ({fields[col['step']].strip()!r})"
        if why is not None:
            bad.append(f"line {line}: {why}")
            continue
        cols["phase"].append(fields[col["phase"]].strip() if "phase" in col else "")
        for h, v in values.items():
            cols[h].append(v)
    for b in bad[:MAX_ROW_NOTES]:
        note(f"metrics.csv {b}: row skipped")
    if len(bad) > MAX_ROW_NOTES:
        note(f"metrics.csv: {len(bad) - MAX_ROW_NOTES} more malformed row(s) skipped")
    if not cols["step"]:
        raise Missing("metrics.csv has no well-formed row with a step")
    return {h: (v if h == "phase" else np.array(v)) for h, v in cols.items()}


def smooth(y, window):
    """Running mean over finite values (centered), for a readable trend over a noisy loss."""
    if window <= 1 or y.size < 3 * window:
        return y
    ok = np.isfinite(y)
    yz = np.where(ok, y, 0.0)
    k = np.ones(window)
    num = np.convolve(yz, k, mode="same")
    den = np.convolve(ok.astype(float), k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def readable_log_ticks(ax):
    """On a log y axis spanning less than ~2 decades, label 2x and 5x ticks too."""
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 150:
        from matplotlib.ticker import FuncFormatter, LogLocator
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        fmt = FuncFormatter(lambda y, _: f"{y:g}")
        ax.yaxis.set_major_formatter(fmt)
        ax.yaxis.set_minor_formatter(fmt)


def multi_phase(training):
    return isinstance(training.get("phases"), list)


def samples_per_step(training):
    """The batch: training.samples / training.steps, or None when either is missing."""
    samples, steps = training.get("samples"), training.get("steps")
    if isinstance(samples, (int, float)) and isinstance(steps, (int, float)) and steps > 0 \
            and samples > 0:
        return float(samples) / float(steps)
    return None


def milestones(training):
    """[(loss level, first step below it or None)] from training.first_step_loss, by level."""
    ms = training.get("first_step_loss")
    out = []
    if isinstance(ms, dict):
        for k, v in ms.items():
            level = _float(k[len("below_"):]) if k.startswith("below_") else math.nan
            if math.isfinite(level):
                out.append((level, v if isinstance(v, (int, float)) else None))
    return sorted(out, reverse=True)


def mark_milestones(ax, training, batch):
    for k, (level, s) in enumerate(milestones(training)):
        c = plt.get_cmap("Dark2")(k % 8)
        ax.axhline(level, color=c, lw=0.8, ls=":")
        if s is None:
            ax.text(0.01, level, f" never below {level:g}", color=c, fontsize=8, va="bottom",
                    transform=ax.get_yaxis_transform())
            continue
        ax.axvline(s * batch, color=c, lw=0.9, ls="--")
        ax.plot([s * batch], [level], marker="o", ms=6, mfc="none", mec=c, mew=1.5, ls="none",
                label=f"first below {level:g}: step {int(s)} ({s * batch:.3g} samples)")


def draw_learning_curve(run):
    phases, step, loss, val = read_metrics(run)
    training = run.summary.get("training") or {}
    target = training.get("target_error")
    target = float(target) if isinstance(target, (int, float)) and math.isfinite(target) else None

    # Phases in order of first appearance. If a phase's steps restart (do not continue after the
    # previous phase's last step), lay the phases end to end on a cumulative step axis.
    order = list(dict.fromkeys(phases))
    masks = [np.array([p == ph for p in phases]) for ph in order]
    cumulative = any(step[m1].min() <= step[m0].max() for m0, m1 in zip(masks, masks[1:]))
    x = step.copy()
    boundaries = []
    if cumulative:
        offset = 0.0
        for k, m in enumerate(masks):
            if k:
                offset = x[masks[k - 1]].max() - step[m].min() + 1
                boundaries.append(x[masks[k - 1]].max() + 0.5)
            x[m] = step[m] + offset
    else:
        boundaries = [0.5 * (step[m0].max() + step[m1].min()) for m0, m1 in zip(masks, masks[1:])]

    has_loss = np.any(np.isfinite(loss) & (loss > 0))
    has_val = np.any(np.isfinite(val))
    if not has_loss and not has_val:
        raise Missing("metrics.csv has neither a positive loss nor a validation error")

    # Fresh data every step and no validation (copy_first): the minibatch loss against the samples
    # seen (step x batch), with the first steps below the loss milestones marked.
    batch = samples_per_step(training)
    per_sample = not has_val and not multi_phase(training) and batch is not None
    if per_sample:
        x = x * batch
        boundaries = [b * batch for b in boundaries]

    nrows = int(has_loss) + int(has_val)
    fig, axes = plt.subplots(nrows, 1, figsize=(7.0, 2.6 * nrows + 0.6), sharex=True,
                             squeeze=False)
    axes = list(axes[:, 0])
    multi = len(order) > 1
    colors = plt.get_cmap("tab10")

    def phase_label(ph):
        return ph if ph else "(no phase)"

    ax_i = 0
    if has_loss:
        ax = axes[ax_i]
        ax_i += 1
        for k, ph in enumerate(order):
            idx = np.array([p == ph for p in phases]) & np.isfinite(loss) & (loss > 0)
            if not idx.any():
                continue
            c = colors(k % 10) if multi else "C0"
            xs, ys = x[idx], loss[idx]
            o = np.argsort(xs, kind="stable")
            xs, ys = xs[o], ys[o]
            w = max(1, xs.size // 100)
            if w > 1:
                ax.plot(xs, ys, color=c, lw=0.6, alpha=0.25)
                ax.plot(xs, np.exp(smooth(np.log(ys), w)), color=c, lw=1.6,
                        label=(f"{phase_label(ph)}" if multi else "training loss")
                        + f" (running mean, {w} rows)")
            else:
                ax.plot(xs, ys, color=c, lw=1.2, marker="." if xs.size < 50 else None,
                        label=phase_label(ph) if multi else "training loss")
        ax.set_yscale("log")
        readable_log_ticks(ax)
        ax.set_ylabel("minibatch loss (MSE)" if per_sample else "training loss (MSE)")
        if per_sample:
            mark_milestones(ax, training, batch)
        ax.legend(loc="upper right", frameon=False)
        ax.grid(True, which="major", alpha=0.3)

    if has_val:
        ax = axes[ax_i]
        for k, ph in enumerate(order):
            idx = np.array([p == ph for p in phases]) & np.isfinite(val)
            if not idx.any():
                continue
            c = colors(k % 10) if multi else "C1"
            xs, ys = x[idx], val[idx]
            o = np.argsort(xs, kind="stable")
            ax.plot(xs[o], ys[o], color=c, lw=1.0, marker="o", ms=3.5,
                    label=(phase_label(ph) if multi else "validation error"))
        fin = val[np.isfinite(val)]
        if target is not None:
            ax.axhline(target, color="k", ls="--", lw=1.0, label=f"target = {fmt_num(target)}")
        # best validation error (per phase when there are several: each phase keeps its own)
        labelled = False
        for m in masks:
            mv = np.where(m, val, np.nan)
            if not np.isfinite(mv).any():
                continue
            b = int(np.nanargmin(mv))
            lab = None if labelled else (
                "best of each phase" if multi else f"best = {fmt_num(val[b])}")
            labelled = True
            ax.plot([x[b]], [val[b]], marker="*", ms=11, color="gold", mec="k", mew=0.6,
                    ls="none", zorder=5, label=lab)
        pos = fin[fin > 0]
        if pos.size and (target is None or target > 0) and pos.max() / pos.min() > 10:
            ax.set_yscale("log")
            readable_log_ticks(ax)
        ax.set_ylabel("validation error")
        ax.legend(loc="upper right", frameon=False)
        ax.grid(True, which="major", alpha=0.3)

    for ax in axes:
        for b in boundaries:
            ax.axvline(b, color="0.5", lw=0.8, ls=":")
    if per_sample:
        axes[-1].set_xlabel(f"samples seen (step x batch {batch:g})")
    else:
        axes[-1].set_xlabel("training step" + (" (phases laid end to end)" if cumulative else ""))

    steps = training.get("steps")
    stop = training.get("stop_reason")
    secs = training.get("seconds")
    sub = []
    if isinstance(steps, (int, float)):
        sub.append(f"{int(steps)} steps")
    if stop:
        sub.append(f"stopped: {stop}")
    if isinstance(secs, (int, float)) and math.isfinite(secs):
        sub.append(f"{secs / 60:.1f} min" if secs >= 120 else f"{secs:.0f} s")
    title = f"{run.name}: learning curve"
    if sub:
        title += "\n" + ", ".join(sub)
    axes[0].set_title(title)
    fig.tight_layout()
    return run.save(fig, "learning_curve")


# --------------------------------------------------------------------------------------------
# column_shift (E1)
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# trace (E2 trained trials, E3 before/after, E4, E5's plastic cell)
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# weight_histogram, ei_rates (E2); readout_activity (E4)
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

# Figures drawn for every run, whatever its analyses.
COMMON = [("learning_curve", draw_learning_curve)]

# One entry per analysis kind (summary.json "analyses".NAME.kind): its figures, in order. A figure
# function takes (run, AnalysisView) and returns the file written, or a list of them.
ANALYSES = {
    "column_shift": [
        ("sequence_heatmap", draw_sequence_heatmap),
        ("traces", draw_traces),
        ("traces_trained", draw_traces_trained),
        ("shift_vs_column", draw_shift_vs_column),
        ("shift_vs_value", draw_shift_vs_value),
        ("shift_map", draw_shift_map),
    ],
    "trace": [
        ("trace", draw_trace),
        ("plastic", draw_plastic),
    ],
    "weight_histogram": [("weight_histogram", draw_weight_histogram)],
    "ei_rates": [("ei_rates", draw_ei_rates)],
    "readout_activity": [("readout_activity", draw_readout_activity)],
}


def all_names():
    names = {n for n, _ in COMMON}
    for kind, figs in ANALYSES.items():
        names.add(kind)
        names.update(n for n, _ in figs)
    return names


def plan(summary):
    """[(analysis key, kind, figure name, file name, function, AnalysisView or None)], in order."""
    todo = [("", "", name, name, fn, None) for name, fn in COMMON]
    analyses = summary.get("analyses")
    if analyses is not None and not isinstance(analyses, dict):
        note("summary.json 'analyses' is not an object: no analysis figures")
        analyses = {}
    return todo, analyses or {}


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description="Draw the figures of a cellc run folder.")
    p.add_argument("run_dir", help="run folder (with summary.json)")
    p.add_argument("--only", nargs="+", action="extend", metavar="NAME", default=None,
                   help="draw only these figures (names, with or without .png) or analysis kinds")
    p.add_argument("--log-counts", action="store_true",
                   help="weight histograms with a log count axis")
    args = p.parse_args(argv)
    global LOG_COUNTS
    LOG_COUNTS = args.log_counts

    only = None
    if args.only:
        only = {n[:-4] if n.endswith(".png") else n for n in args.only}

    summary_path = os.path.join(args.run_dir, "summary.json")
    try:
        summary = read_json(summary_path)
        if not isinstance(summary, dict):
            raise ValueError("top level is not an object")
    except (OSError, ValueError) as e:
        note(f"error: cannot read {summary_path}: {e}")
        return 1

    run = Run(args.run_dir, summary)
    todo, analyses = plan(summary)
    for key, entry in analyses.items():
        kind = analysis_kind(key, entry)
        if kind not in ANALYSES:
            note(f"skipped analysis '{key}': no figures known for the kind '{kind}'")
            continue
        an = AnalysisView(run, key, kind, entry)
        todo.extend((key, kind, name, an.fig(name), fn, an) for name, fn in ANALYSES[kind])
    if only is not None:
        known = all_names() | {x for t in todo for x in t[:4] if x}
        unknown = sorted(only - known)
        if unknown:  # a usage error, as argparse reports them (exit 2)
            p.error(f"unknown figure or analysis name(s): {', '.join(unknown)} "
                    f"(known: {', '.join(sorted(known))})")
        todo = [t for t in todo if only & {t[0], t[1], t[2], t[3]}]
        found = {x for t in todo for x in t[:4]}
        for n in sorted(only - found):
            note(f"skipped {n}: its analysis is not in summary.json")

    written = []
    for _, _, _, fname, fn, an in todo:
        try:
            out = fn(run) if an is None else fn(run, an)
            written.extend(out if isinstance(out, list) else [out])
        except Missing as e:
            note(f"skipped {fname}: {e}")
        except Exception as e:  # never crash on an odd run folder; say what went wrong
            note(f"skipped {fname}: {type(e).__name__}: {e}")
        finally:
            plt.close("all")
    for w in written:
        print(w)
    if not written:
        note(f"no figure drawn for {args.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
