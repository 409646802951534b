"""learning_curve, drawn for every run: training loss and validation error vs step from
metrics.csv; without validation (copy_first), the minibatch loss vs samples seen (step x batch)
with the first steps below the milestones."""

import math
import os

import numpy as np
import matplotlib.pyplot as plt

from readfiles import Damaged, csv_rows, read_text
from .run_folder import Missing, note, fmt_num


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
