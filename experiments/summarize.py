#!/usr/bin/python3
"""Summarize a finished (or partial) sweep of one experiment beside the published numbers.

    python3 experiments/summarize.py SWEEP_DIR [SWEEP_DIR ...] \\
        --experiment {copy_first,forgetting,multi_sequence,readout} --out results/NAME/

Reads each SWEEP_DIR's sweep.csv (one row per run: `run`, one column per sweep axis, `status`,
`exit_code`, then the numbers of the run's summary.json with dotted keys), sweep.json (the runs the
sweep has, for the ones not finished) and the run folders (SWEEP_DIR/RUN/summary.json, metrics.csv,
arrays/). Several sweep folders of one experiment are pooled (e.g. the published grid and the
parameter-matched runs). Writes small files only into --out:

  summary.md     every number with its seed spread (mean [min, max] n), beside the published
                 numbers; the runs that are missing; the measured comparisons, plainly; and an
                 empty verdict section for the integrator
  sweep.csv      a copy of each sweep's table (sweep-NAME.csv when there are several)
  *.png          the experiment's figures (dpi 110)

Unfinished runs (no summary.json, or a status other than finished) are listed as missing and left
out of every number. Exit status: 0 (also for a partial sweep), 1 if no sweep folder is readable,
2 on a usage error. Only the standard library, numpy and matplotlib are used.
"""

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import plot  # noqa: E402  (the per-run figures: its drawing helpers are reused here)

np = plot.np
plt = plot.plt
Line2D = plot.Line2D

PROG = "summarize.py"
DPI = 110
plot.DPI = DPI  # figures drawn through plot.py's helpers stay small too
plot.PROG = PROG
EXPERIMENTS = ("copy_first", "forgetting", "multi_sequence", "readout")


def note(msg):
    print(f"{PROG}: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Reading sweeps
# --------------------------------------------------------------------------------------------

def flatten(j, name="", out=None):
    """summary.json as {dotted key: float}, as the sweep table flattens it (bools 0/1, arrays
    indexed, strings and nulls left out)."""
    out = {} if out is None else out
    sub = (lambda k: f"{name}.{k}" if name else str(k))
    if isinstance(j, dict):
        for k, v in j.items():
            flatten(v, sub(k), out)
    elif isinstance(j, list):
        if len(j) <= 64:
            for i, v in enumerate(j):
                flatten(v, sub(i), out)
    elif isinstance(j, bool):
        out[name] = 1.0 if j else 0.0
    elif isinstance(j, (int, float)):
        out[name] = float(j)
    return out


class RunRec:
    """One finished run: its folder, its point (axis key -> value as shown), its numbers."""

    def __init__(self, sweep, name, point, summary):
        self.sweep, self.name, self.point, self.summary = sweep, name, point, summary
        self.dir = os.path.join(sweep, name)
        self.num = flatten(summary)

    def get(self, key, default=math.nan):
        v = self.num.get(key)
        return default if v is None else v

    def axis(self, suffix):
        """The value of the axis whose key ends with `suffix` (as shown), or None."""
        for k, v in self.point.items():
            if k == suffix or k.endswith("." + suffix) or k.endswith(suffix):
                return v
        return None

    @property
    def seed(self):
        s = self.point.get("experiment.seed")
        if s is None:
            s = (self.summary.get("experiment") or {}).get("seed")
        try:
            return int(float(s))
        except (TypeError, ValueError):
            return 0

    @property
    def cell(self):
        c = self.summary.get("cell") or {}
        f = c.get("file")
        if isinstance(f, str) and f:
            return os.path.splitext(os.path.basename(f))[0]
        return str(c.get("name") or self.axis("cell.file") or "?")

    def plot_run(self, fig_dir):
        r = plot.Run(self.dir, self.summary)
        r.fig_dir = fig_dir
        return r


class Sweeps:
    def __init__(self):
        self.runs = []        # RunRec of finished runs
        self.missing = []     # (sweep, run, status)
        self.meta = []        # (sweep dir, sweep.json dict or {})
        self.tables = []      # sweep.csv paths


def read_sweep(d, out):
    """Adds the runs of sweep folder d to out; False if the folder has neither table nor runs."""
    meta = {}
    mpath = os.path.join(d, "sweep.json")
    if os.path.isfile(mpath):
        try:
            with open(mpath) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            note(f"{mpath} unreadable ({e}): the run list comes from sweep.csv alone")
    out.meta.append((d, meta if isinstance(meta, dict) else {}))
    rows = []
    cpath = os.path.join(d, "sweep.csv")
    if os.path.isfile(cpath):
        with open(cpath, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None) or []
            if "run" not in header or "status" not in header:
                note(f"{cpath}: no 'run' and 'status' columns: ignored")
            else:
                axes = header[header.index("run") + 1:header.index("status")]
                for fields in reader:
                    if len(fields) != len(header):
                        if any(x.strip() for x in fields):
                            note(f"{cpath} line {reader.line_num}: {len(fields)} fields, the "
                                 f"header has {len(header)}: row skipped")
                        continue
                    r = dict(zip(header, fields))
                    rows.append((r["run"], {a: r[a] for a in axes}, r["status"].strip()))
                out.tables.append(cpath)
    listed = {name for name, _, _ in rows}
    for r in (meta.get("runs") or []) if isinstance(meta.get("runs"), list) else []:
        if isinstance(r, dict) and r.get("name") not in listed:
            point = r.get("point") if isinstance(r.get("point"), dict) else {}
            rows.append((r["name"], {k: str(v) for k, v in point.items()}, "not in sweep.csv"))
    if not rows:  # no table: every subfolder with a summary.json is a run
        if not os.path.isdir(d):
            return False
        for name in sorted(os.listdir(d)):
            if os.path.isfile(os.path.join(d, name, "summary.json")):
                rows.append((name, {}, "finished"))
        if not rows:
            return False
    for name, point, status in rows:
        spath = os.path.join(d, name, "summary.json")
        if status != "finished" or not os.path.isfile(spath):
            out.missing.append((d, name, status if status != "finished" else "no summary.json"))
            continue
        try:
            with open(spath) as f:
                summary = json.load(f)
            if not isinstance(summary, dict):
                raise ValueError("top level is not an object")
        except (OSError, ValueError) as e:
            out.missing.append((d, name, f"summary.json unreadable ({e})"))
            continue
        out.runs.append(RunRec(d, name, point, summary))
    return True


# --------------------------------------------------------------------------------------------
# Numbers and tables
# --------------------------------------------------------------------------------------------

def finite(xs):
    return [float(x) for x in xs if x is not None and isinstance(x, (int, float))
            and math.isfinite(x)]


def g(x):
    """A number, 3 significant digits."""
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}"


def count(x):
    return f"{int(x):,}" if isinstance(x, (int, float)) and math.isfinite(x) else "n/a"


def spread(xs, fmt=g):
    """mean [min, max] (n) of the finite values; n counts the values."""
    v = finite(xs)
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{fmt(v[0])} (n=1)"
    return f"{fmt(sum(v) / len(v))} [{fmt(min(v))}, {fmt(max(v))}] (n={len(v)})"


def mean(xs):
    v = finite(xs)
    return sum(v) / len(v) if v else math.nan


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def as_float(s, default=math.nan):
    try:
        return float(s)
    except (TypeError, ValueError):
        return default


def save(fig, out, name):
    path = os.path.join(out, name + ".png")
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def seed_jitter(k, n, width=0.5):
    return 0.0 if n <= 1 else width * (k / (n - 1) - 0.5)


def provenance(args, sw):
    try:
        commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", HERE, "status", "--porcelain"], capture_output=True,
                               text=True, timeout=20).stdout.strip()
        commit = (commit + (" (with uncommitted changes)" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    lines = [f"Made by `experiments/summarize.py {' '.join(args.sweeps)} --experiment "
             f"{args.experiment} --out {args.out}` at commit {commit}."]
    for d, meta in sw.meta:
        if meta:
            sets = meta.get("sets") or []
            prof = meta.get("profile")
            lines.append(f"Sweep `{d}`: `cellc sweep {meta.get('file', '?')}`"
                         + (f" --profile {prof}" if prof else "")
                         + "".join(f" --set {s}" for s in sets) + f" (base {meta.get('base', '?')}).")
        else:
            lines.append(f"Sweep `{d}` (no sweep.json).")
    n_all = len(sw.runs) + len(sw.missing)
    lines.append(f"\n{len(sw.runs)} of {n_all} runs finished.")
    return "\n".join(lines) + "\n"


def missing_section(sw):
    if not sw.missing:
        return "## Missing runs\n\nNone: every run of the sweep finished.\n"
    rows = [(f"`{os.path.basename(os.path.normpath(d))}/{n}`", s) for d, n, s in sw.missing]
    return ("## Missing runs\n\nThese runs have not finished; every number above leaves them "
            "out.\n\n" + table(["run", "status"], rows))


def verdict_section(comparisons):
    body = "".join(f"- {c}\n" for c in comparisons) or "- (no comparison could be made yet)\n"
    return ("## Measured comparisons\n\n" + body + "\n## Verdict\n\n"
            "_To be written by the integrator from the comparisons above._\n")


def figure_section(paths):
    return "## Figures\n\n" + "".join(
        f"![{os.path.basename(p)}]({os.path.basename(p)})\n\n" for p in paths)


def try_figure(fn, *a):
    """A figure whose inputs are missing is skipped with a note; never a crash."""
    try:
        out = fn(*a)
        return [p for p in (out if isinstance(out, list) else [out]) if p]
    except plot.Missing as e:
        note(f"skipped {fn.__name__}: {e}")
    except Exception as e:  # an odd run folder must not stop the summary
        note(f"skipped {fn.__name__}: {type(e).__name__}: {e}")
    finally:
        plt.close("all")
    return []


def curve(run):
    """(x = samples seen or step, minibatch loss) of a single-phase run, or None."""
    try:
        phases, step, loss, _ = plot.read_metrics(plot.Run(run.dir, run.summary))
    except plot.Missing:
        return None
    batch = plot.samples_per_step(run.summary.get("training") or {})
    ok = np.isfinite(loss) & (loss > 0)
    if not ok.any():
        return None
    return step[ok] * (batch or 1.0), loss[ok], batch is not None


# --------------------------------------------------------------------------------------------
# E5: copy_first
# --------------------------------------------------------------------------------------------

CELL_ORDER = ["gru", "brc", "nbrc", "plastic_gru", "plastic_gru_clip", "pbrc", "pbrc_split"]
CELL_COLOR = {c: plt.get_cmap("tab10")(i) for i, c in enumerate(CELL_ORDER)}
# (cell file stem, T, D, H) -> (published test MSE, where it comes from)
E5_PUBLISHED = {
    ("nbrc", 300, 32, 48): (0.0072, "published log, nBRC D=32 H=48 (one seed)"),
    ("pbrc_split", 300, 32, 48): (0.0075, "published log, the code's PBRC (PlasticBistableCell2)"),
    ("nbrc", 300, 32, 64): (0.00045, "published log, nBRC D=32 H=64 (one seed)"),
    ("plastic_gru_clip", 300, 32, 64): (0.0064, "published log, the code's plastic GRU H=64"),
}
E5_QUALITATIVE = [
    ("gru", "near chance (0.8-1.0) at T >= 100 with D = 1 (reproductions of Vecoven et al.)"),
    ("brc", "learns at T >= 100 with D = 1 (Vecoven et al.)"),
    ("nbrc", "learns at T >= 100 with D = 1 (Vecoven et al.)"),
]


def e5_setting(r):
    T = r.get("analyses.trace.steps")
    shown = r.axis("task.steps")
    if shown is not None:
        T = as_float(shown, T)
    return (int(T) if math.isfinite(T) else -1, int(r.get("cell.dims.n_in", -1)),
            int(r.get("cell.dims.n", -1)))


def setting_label(s):
    T, D, H = s
    return f"T={T if T >= 0 else '?'} D={D} H={H}"


def cell_key(c):
    return (CELL_ORDER.index(c) if c in CELL_ORDER else len(CELL_ORDER), c)


def group(runs, key):
    out = {}
    for r in runs:
        out.setdefault(key(r), []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r.seed)
    return out


def milestone_text(rs, level):
    steps = [r.get(f"training.first_step_loss.below_{level:g}") for r in rs]
    reached = finite(steps)
    if not reached:
        return f"never (0/{len(rs)})"
    return f"{spread(reached, fmt=lambda x: f'{x:.0f}')}, {len(reached)}/{len(rs)} reached"


def summarize_copy_first(sw, out, args):
    by = group(sw.runs, lambda r: (e5_setting(r), r.cell))
    settings = sorted({s for s, _ in by}, key=lambda s: (-s[1], s[0], s[2]))
    md = [f"# E5 copy-first-input: results\n\n{provenance(args, sw)}\n",
          "Test MSE on fresh sequences after training (chance: predicting 0 scores about 1). "
          "Each number: mean [min, max] over seeds (n seeds).\n\n"]

    # beside the published numbers
    rows = []
    for (cell, T, D, H), (val, src) in E5_PUBLISHED.items():
        rs = by.get(((T, D, H), cell), [])
        rows.append((f"{cell} T={T} D={D} H={H}", f"{val:g}", src,
                     spread([r.get("test.loss") for r in rs]) if rs else "not run yet",
                     count(rs[0].get("cell.params")) if rs else "n/a"))
    for cell, claim in E5_QUALITATIVE:
        rs = [r for r in sw.runs if r.cell == cell and e5_setting(r)[1] == 1
              and e5_setting(r)[0] >= 100]
        by_t = group(rs, lambda r: e5_setting(r))
        ours = "; ".join(f"{setting_label(s)}: {spread([r.get('test.loss') for r in v])}"
                         for s, v in sorted(by_t.items())) or "not run yet"
        rows.append((f"{cell} D=1 T>=100", "qualitative", claim, ours, "-"))
    md.append("## Beside the published numbers\n\n")
    md.append(table(["cell and setting", "published", "source", "ours: test MSE", "params"],
                    rows))

    rows = []
    for s in settings:
        for cell in sorted({c for ss, c in by if ss == s}, key=cell_key):
            rs = by[(s, cell)]
            pub = E5_PUBLISHED.get((cell,) + s)
            stops = sum(1 for r in rs if (r.summary.get("training") or {}).get("stop_reason")
                        in ("loss-target", "target"))
            rows.append((setting_label(s), cell, count(rs[0].get("cell.params")),
                         spread([r.get("test.loss") for r in rs]),
                         g(pub[0]) if pub else "",
                         g(mean([r.get("test.chance_loss") for r in rs])),
                         milestone_text(rs, 0.5), milestone_text(rs, 0.1),
                         spread([r.get("training.steps") for r in rs], fmt=lambda x: f"{x:.0f}"),
                         f"{stops}/{len(rs)}"))
    md.append("\n## Every cell and setting\n\n`first < 0.5`: the first step whose minibatch loss "
              "fell below 0.5 (over the seeds that got there). `stopped early`: runs that reached "
              "the target loss before the step limit.\n\n")
    md.append(table(["setting", "cell", "params", "test MSE", "published", "chance",
                     "first < 0.5", "first < 0.1", "steps", "stopped early"], rows))

    figs = []
    figs += try_figure(e5_test_mse_figure, by, settings, out)
    figs += try_figure(e5_learning_curves, by, settings, out)
    figs += try_figure(e5_plastic_figure, sw.runs, out)
    md.append("\n" + figure_section(figs))

    comps = []
    for s in settings:
        cells = {c: [r.get("test.loss") for r in by[(s, c)]] for ss, c in by if ss == s}
        for plastic, base in (("pbrc", "nbrc"), ("pbrc_split", "nbrc"), ("plastic_gru", "gru"),
                              ("plastic_gru_clip", "gru")):
            if plastic in cells and base in cells:
                a, b = mean(cells[plastic]), mean(cells[base])
                ratio = f"{a / b:.2g}x" if b > 0 and math.isfinite(a) else "n/a"
                pa = count(by[(s, plastic)][0].get("cell.params"))
                pb = count(by[(s, base)][0].get("cell.params"))
                comps.append(f"{setting_label(s)}: {plastic} test MSE {spread(cells[plastic])} "
                             f"({pa} params) vs {base} {spread(cells[base])} ({pb} params): "
                             f"{ratio} of {base}'s")
        if s[1] == 1 and s[0] >= 100:
            for c, v in sorted(cells.items(), key=lambda kv: cell_key(kv[0])):
                chance = mean([r.get("test.chance_loss") for r in by[(s, c)]])
                comps.append(f"{setting_label(s)}: {c} test MSE {spread(v)} (chance {g(chance)})")
    md.append("\n" + missing_section(sw) + "\n" + verdict_section(comps))
    return "".join(md)


def e5_test_mse_figure(by, settings, out):
    if not settings:
        raise plot.Missing("no finished run")
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(settings) + 2.5), 4.8),
                           constrained_layout=True)
    cells_all = sorted({c for _, c in by}, key=cell_key)
    width = 0.8
    chance = []
    for i, s in enumerate(settings):
        cells = [c for c in cells_all if (s, c) in by]
        for j, c in enumerate(cells):
            x0 = i + (j - (len(cells) - 1) / 2) * width / max(len(cells), 1)
            rs = by[(s, c)]
            ys = [r.get("test.loss") for r in rs]
            xs = [x0 + seed_jitter(k, len(rs), 0.5 * width / max(len(cells), 1))
                  for k in range(len(rs))]
            col = CELL_COLOR.get(c, "0.3")
            ax.plot(xs, ys, ls="none", marker="o", ms=4.5, color=col, alpha=0.85)
            m = mean(ys)
            if math.isfinite(m):
                ax.plot([x0 - 0.3 * width / len(cells), x0 + 0.3 * width / len(cells)], [m, m],
                        color=col, lw=2.2)
            pub = E5_PUBLISHED.get((c,) + s)
            if pub:
                ax.plot([x0], [pub[0]], marker="*", ms=14, mfc="none", mec="k", mew=1.3,
                        ls="none", zorder=5)
            chance += [r.get("test.chance_loss") for r in rs]
    cm = mean(chance)
    if math.isfinite(cm):
        ax.axhline(cm, color="0.4", ls="--", lw=1.0)
    ax.set_yscale("log")
    ax.set_xticks(range(len(settings)))
    ax.set_xticklabels([setting_label(s).replace(" ", "\n") for s in settings], fontsize=8.5)
    ax.set_ylabel("test MSE (log)")
    ax.grid(True, axis="y", which="both", alpha=0.25)
    handles = [Line2D([], [], color=CELL_COLOR.get(c, "0.3"), marker="o", ls="-", lw=2, label=c)
               for c in cells_all]
    handles += [Line2D([], [], color="k", marker="*", mfc="none", ms=12, ls="none",
                       label="published (one seed)"),
                Line2D([], [], color="0.4", ls="--", label="chance (predict 0)")]
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    ax.set_title("E5 copy-first: test MSE per cell and setting (dots: seeds; bars: mean)")
    return save(fig, out, "test_mse")


def e5_learning_curves(by, settings, out):
    if not settings:
        raise plot.Missing("no finished run")
    n = len(settings)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows + 0.6),
                             squeeze=False, constrained_layout=True)
    per_sample = True
    cells_seen = set()
    for i, s in enumerate(settings):
        ax = axes[i // ncols, i % ncols]
        for c in sorted({c for ss, c in by if ss == s}, key=cell_key):
            for r in by[(s, c)]:
                cv = curve(r)
                if cv is None:
                    continue
                x, y, ps = cv
                per_sample &= ps
                w = max(1, x.size // 150)
                ys = np.exp(plot.smooth(np.log(y), w)) if w > 1 else y
                ax.plot(x[::w], ys[::w], color=CELL_COLOR.get(c, "0.3"), lw=0.8, alpha=0.8)
                cells_seen.add(c)
        ax.set_yscale("log")
        ax.set_title(setting_label(s), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel("minibatch loss")
        ax.set_xlabel("samples seen" if per_sample else "step")
    for k in range(n, nrows * ncols):
        axes[k // ncols, k % ncols].axis("off")
    fig.legend(handles=[Line2D([], [], color=CELL_COLOR.get(c, "0.3"), lw=1.5, label=c)
                        for c in sorted(cells_seen, key=cell_key)],
               loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle("E5 copy-first: learning curves (one line per seed, running mean)")
    return save(fig, out, "learning_curves")


def e5_plastic_figure(runs, out):
    """The plastic-cell trace figure from one run: the code's PBRC at the published setting if
    there, else any plastic cell."""
    pref = ["pbrc_split", "pbrc", "plastic_gru_clip", "plastic_gru"]
    cands = [r for r in runs if r.cell in pref]
    if not cands:
        raise plot.Missing("no finished run of a plastic cell")
    cands.sort(key=lambda r: (e5_setting(r) != (300, 32, 48), pref.index(r.cell), r.seed))
    for r in cands:
        entry = ((r.summary.get("analyses") or {}).get("trace"))
        if not isinstance(entry, dict):
            continue
        an = plot.AnalysisView(r.plot_run(out), "trace", "trace", entry)
        try:
            paths = plot.draw_plastic(an.run, an)
        except plot.Missing as e:
            note(f"plastic trace of {r.name}: {e}")
            continue
        if not paths:
            continue
        final = []
        for p in paths:
            dst = os.path.join(out, "plastic_trace" + os.path.basename(p)[len("plastic"):])
            os.replace(p, dst)
            final.append(dst)
        return final
    raise plot.Missing("no plastic run has a recorded matrix state")


# --------------------------------------------------------------------------------------------
# E3: forgetting
# --------------------------------------------------------------------------------------------

def phase_names(r):
    ph = (r.summary.get("training") or {}).get("phases")
    if isinstance(ph, list) and len(ph) >= 2:
        return [str(p.get("phase", f"phase{i}")) for i, p in enumerate(ph)]
    return None


def e3_lambda(r):
    v = r.axis("ewc.lambda")
    if v is not None:
        return as_float(v, 0.0)
    return r.get("training.phases.0.ewc_lambda", 0.0)


def e3_dropout(r):
    """The task-1 dropout of the sweep's axis; None when no axis sets it (the base file's)."""
    v = r.axis("dropout")
    v = as_float(v) if v is not None else math.nan
    return v if math.isfinite(v) else None


def dropout_order(p):
    return -p if p is not None else 0.0


def dropout_label(p):
    return "dropout: as in the base file" if p is None else (
        "no dropout" if p == 0 else f"dropout p = {p:g}")


def summarize_forgetting(sw, out, args):
    runs = [r for r in sw.runs if phase_names(r)]
    for r in sw.runs:
        if r not in runs:
            note(f"{r.name}: fewer than two phases in its training summary: left out")
    md = [f"# E3 catastrophic forgetting: results\n\n{provenance(args, sw)}\n",
          "MSE on fresh trials of each task (test stage). Task 1 before: after its own phase; "
          "after: after task 2. Retention = (E_chance - E_after) / (E_chance - E_before) of task "
          "1 (1: nothing forgotten, 0: back to chance). Each number: mean [min, max] (n seeds).\n\n"]
    rows, comps = [], []
    by = group(runs, lambda r: (e3_dropout(r), e3_lambda(r)))
    keys = sorted(by, key=lambda k: (dropout_order(k[0]), k[1]))
    for k in keys:
        rs = by[k]
        t1, t2 = phase_names(rs[0])[0], phase_names(rs[0])[-1]
        rows.append((dropout_label(k[0]), g(k[1]),
                     spread([r.get(f"test.after_{t1}.{t1}.loss") for r in rs]),
                     spread([r.get(f"test.after_{t2}.{t1}.loss") for r in rs]),
                     spread([r.get(f"test.after_{t1}.{t2}.loss") for r in rs]),
                     spread([r.get(f"test.after_{t2}.{t2}.loss") for r in rs]),
                     spread([r.get(f"test.retention.{t1}") for r in rs]),
                     g(mean([r.get(f"test.after_{t1}.{t1}.chance_loss") for r in rs]))))
    md.append("## The paper's claim beside ours\n\nThe paper: EWC looked like no EWC (retention "
              "poor). A correct EWC should show task-1 retention growing with lambda while task 2 "
              "still learns.\n\n")
    md.append(table(["dropout (task 1)", "EWC lambda", "task 1 before", "task 1 after",
                     "task 2 before", "task 2 after", "retention of task 1", "task-1 chance"],
                    rows))
    for p in sorted({k[0] for k in keys}, key=dropout_order):
        for lam in sorted(k[1] for k in keys if k[0] == p):
            rs = by[(p, lam)]
            t1, t2 = phase_names(rs[0])[0], phase_names(rs[0])[-1]
            comps.append(f"{dropout_label(p)}, lambda {g(lam)}: retention "
                         f"{spread([r.get(f'test.retention.{t1}') for r in rs])}, task-2 MSE "
                         f"after {spread([r.get(f'test.after_{t2}.{t2}.loss') for r in rs])}")
    figs = try_figure(e3_traces_figure, runs, out)
    figs += try_figure(e3_lambda_figure, by, keys, out)
    md.append("\n" + figure_section(figs) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def e3_trace(r, key, out):
    entry = (r.summary.get("analyses") or {}).get(key)
    if not isinstance(entry, dict):
        raise plot.Missing(f"{r.name} has no analysis '{key}'")
    an = plot.AnalysisView(r.plot_run(out), key, plot.analysis_kind(key, entry), entry)
    return plot.trace_arrays(an)


def e3_traces_figure(runs, out):
    """Task-1 outputs vs targets: before task 2, after with EWC (lambda 500, else the nearest
    positive), after without; dropout p = 0.5 runs preferred, the lowest seed."""
    def pick(pred):
        rs = [r for r in runs if pred(r)]
        rs.sort(key=lambda r: (e3_dropout(r) != 0.5, r.seed))
        return rs[0] if rs else None
    lams = sorted({e3_lambda(r) for r in runs if e3_lambda(r) > 0}, key=lambda x: abs(x - 500))
    ewc = pick(lambda r: lams and e3_lambda(r) == lams[0])
    if ewc is None:
        raise plot.Missing("no run with EWC (lambda > 0)")
    no = pick(lambda r: e3_lambda(r) == 0 and r.seed == ewc.seed
              and e3_dropout(r) == e3_dropout(ewc))
    panels = [("task 1 before task 2", ewc, "task1_before"),
              (f"after task 2, EWC lambda = {g(e3_lambda(ewc))}", ewc, "task1_after")]
    panels.append(("after task 2, no EWC", no, "task1_after") if no else
                  ("after task 2, no EWC: not run yet", None, None))
    fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.2), sharey=True, constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for ax, (title, r, key) in zip(axes, panels):
        if r is None:
            ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(title, fontsize=10)
            continue
        u, z, y = e3_trace(r, key, out)
        T, n = y.shape[1], y.shape[2]
        for i in range(n):
            c = cmap(0.92 * i / max(n - 1, 1))
            ax.plot(np.arange(T), z[0, :, i], color=c, ls="--", lw=1.0)
            ax.plot(np.arange(T), y[0, :, i], color=c, lw=1.2)
        rmse = float(np.sqrt(np.mean((y[0] - z[0]) ** 2)))
        ax.set_title(f"{title}\n{r.name}: RMSE {rmse:.3g}", fontsize=9.5)
        ax.set_xlabel("time step")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("task-1 outputs (solid) vs targets (dashed)")
    fig.suptitle("E3: task 1 before and after learning task 2 (dropout during task 1: "
                 f"{dropout_label(e3_dropout(ewc))})")
    return save(fig, out, "task1_before_after")


def e3_lambda_figure(by, keys, out):
    if not keys:
        raise plot.Missing("no finished run")
    fig, (ax_r, ax_2) = plt.subplots(1, 2, figsize=(11.5, 4.2), constrained_layout=True)
    drops = sorted({k[0] for k in keys}, key=dropout_order)
    for i, p in enumerate(drops):
        c = f"C{i}"
        ks = sorted([k for k in keys if k[0] == p], key=lambda k: k[1])
        for ax, metric in ((ax_r, "retention"), (ax_2, "task2")):
            xs, ms = [], []
            for k in ks:
                rs = by[k]
                t1, t2 = phase_names(rs[0])[0], phase_names(rs[0])[-1]
                key = f"test.retention.{t1}" if metric == "retention" else \
                    f"test.after_{t2}.{t2}.loss"
                ys = [r.get(key) for r in rs]
                ax.plot([k[1]] * len(ys), ys, ls="none", marker="o", ms=4, color=c, alpha=0.6)
                xs.append(k[1])
                ms.append(mean(ys))
            ax.plot(xs, ms, color=c, lw=1.6, label=dropout_label(p))
    for ax in (ax_r, ax_2):
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("EWC lambda (symlog: 0 is no EWC)")
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    ax_r.axhline(1, color="0.5", lw=0.8, ls=":")
    ax_r.axhline(0, color="0.5", lw=0.8, ls=":")
    ax_r.set_ylabel("retention of task 1")
    ax_r.set_title("task-1 retention after task 2 (1: kept, 0: chance)", fontsize=10)
    ax_2.set_yscale("log")
    ax_2.set_ylabel("task-2 MSE after task 2 (log)")
    ax_2.set_title("does task 2 still learn?", fontsize=10)
    fig.suptitle("E3: retention and task-2 error against the EWC strength (dots: seeds)")
    return save(fig, out, "retention_vs_lambda")


# --------------------------------------------------------------------------------------------
# E2: multi_sequence
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# E4: readout
# --------------------------------------------------------------------------------------------

def e4_label(r):
    f = r.axis("W_out_raw.frozen")
    if f is not None:
        return "fixed" if f.strip().lower() in ("true", "1") else "learned"
    v = r.axis("W_out_raw.value")
    if v is not None:
        return "fixed" if "identity" in v else "learned"
    rest = {k: v for k, v in r.point.items() if k != "experiment.seed"}
    return ",".join(f"{k}={v}" for k, v in rest.items()) or "base"


def summarize_readout(sw, out, args):
    by = group(sw.runs, e4_label)
    labels = sorted(by, key=lambda s: (s != "fixed", s != "learned", s))
    md = [f"# E4 fixed vs learned readout: results\n\n{provenance(args, sw)}\n",
          "Each number: mean [min, max] over seeds (n seeds). Silent: an output whose largest "
          "value over fresh trials stays below the threshold (a fraction of the largest "
          "target).\n\n",
          "## The paper's claim beside ours\n\nAppendix D: with the readout fixed to a partial "
          "identity, some outputs' peaks stay at 0.\n\n"]
    rows, comps = [], []
    for lab in labels:
        rs = by[lab]
        silent = [r.get("analyses.readout_activity.measured.silent_outputs") for r in rs]
        n_out = mean([r.get("analyses.readout_activity.measured.outputs") for r in rs])
        some = sum(1 for s in finite(silent) if s > 0)
        rows.append((lab, len(rs), spread([r.get("training.best_validation_error") for r in rs]),
                     spread([r.get("test.rmse") for r in rs]), spread(silent),
                     f"{some}/{len(finite(silent))}", g(n_out)))
        comps.append(f"{lab} readout: best validation RMSE "
                     f"{spread([r.get('training.best_validation_error') for r in rs])}, silent "
                     f"outputs {spread(silent)} of {g(n_out)}, runs with a silent output "
                     f"{some}/{len(finite(silent))}")
    md.append(table(["readout", "runs", "best validation RMSE", "test RMSE", "silent outputs",
                     "runs with any silent", "outputs"], rows))
    figs = try_figure(e4_figure, by, labels, out)
    figs += try_figure(e4_peaks, by, labels, out)
    md.append("\n" + figure_section(figs) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def e4_figure(by, labels, out):
    if not labels:
        raise plot.Missing("no finished run")
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
            ax.yaxis.set_major_locator(plot.MaxNLocator(integer=True))
        ax.set_title(name, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("E4: fixed vs learned readout (dots: seeds; bars: mean)")
    return save(fig, out, "readout_comparison")


def e4_peaks(by, labels, out):
    if not labels:
        raise plot.Missing("no finished run")
    fig, axes = plt.subplots(1, len(labels), figsize=(5.2 * len(labels), 3.6), sharey=True,
                             squeeze=False, constrained_layout=True)
    for ax, lab in zip(axes[0], labels):
        r = by[lab][0]
        entry = (r.summary.get("analyses") or {}).get("readout_activity")
        entry = entry if isinstance(entry, dict) else {}
        an = plot.AnalysisView(plot.Run(r.dir, r.summary), "readout_activity",
                               "readout_activity", entry)
        try:
            peak = an.array("readout_peak", 1)
        except plot.Missing as e:
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


# --------------------------------------------------------------------------------------------

SUMMARIZERS = {
    "copy_first": summarize_copy_first,
    "forgetting": summarize_forgetting,
    "multi_sequence": summarize_multi_sequence,
    "readout": summarize_readout,
}


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("sweeps", nargs="+", metavar="SWEEP_DIR", help="sweep folder(s)")
    p.add_argument("--experiment", required=True, choices=EXPERIMENTS)
    p.add_argument("--out", required=True, help="results folder, e.g. results/copy_first/")
    args = p.parse_args(argv)

    sw = Sweeps()
    readable = [d for d in args.sweeps if read_sweep(d, sw)]
    for d in args.sweeps:
        if d not in readable:
            note(f"error: {d}: no sweep.csv, sweep.json or run folder with a summary.json")
    if not readable:
        return 1
    if sw.missing:
        note(f"{len(sw.missing)} run(s) not finished: "
             + ", ".join(n for _, n, _ in sw.missing[:10])
             + (" ..." if len(sw.missing) > 10 else ""))
    os.makedirs(args.out, exist_ok=True)
    text = SUMMARIZERS[args.experiment](sw, args.out, args)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text)
    for path in sw.tables:
        name = "sweep.csv" if len(sw.tables) == 1 else \
            f"sweep-{os.path.basename(os.path.dirname(os.path.abspath(path)))}.csv"
        shutil.copyfile(path, os.path.join(args.out, name))
    for f in sorted(os.listdir(args.out)):
        print(os.path.join(args.out, f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
