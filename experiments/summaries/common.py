"""Shared by the experiment summaries (experiments/summarize.py): reading sweep folders, numbers
with their seed spread, markdown tables, figure helpers and the sections every summary has."""

import math
import os
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # experiments/
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from figures import run_folder  # noqa: E402  (the per-run figures' helpers)
import readfiles  # noqa: E402  (strict reading: a damaged file is one line naming it)

np = run_folder.np
plt = run_folder.plt

PROG = "summarize.py"
DPI = 110
run_folder.DPI = DPI  # figures drawn through plot.py's helpers (figures/) stay small too
run_folder.PROG = PROG


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
        r = run_folder.Run(self.dir, self.summary)
        r.fig_dir = fig_dir
        return r


def resolved_experiment(r):
    """The run's resolved experiment (its experiment.toml, profile and --set applied) as a dict,
    or {} when it has none or it does not parse."""
    try:
        with open(os.path.join(r.dir, "experiment.toml"), "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


class Sweeps:
    def __init__(self):
        self.runs = []        # RunRec of finished runs
        self.missing = []     # (sweep, run, status)
        self.meta = []        # (sweep dir, sweep.json dict or {})
        self.tables = []      # sweep.csv paths


def plain_run_name(name):
    """A run name read from a table is joined onto paths (the run's folder, its archive): one path
    component, as `cellc sweep` makes it; an absolute or '..' name would lead outside."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "\0" not in name
            and os.path.basename(name) == name and not (os.altsep and os.altsep in name))


def read_sweep(d, out):
    """Adds the runs of sweep folder d to out; False if the folder has neither table nor runs."""
    meta = {}
    mpath = os.path.join(d, "sweep.json")
    if os.path.isfile(mpath):
        try:
            meta = readfiles.read_json(mpath)
        except (OSError, ValueError) as e:
            note(f"{mpath} unreadable ({e}): the run list comes from sweep.csv alone")
    out.meta.append((d, meta if isinstance(meta, dict) else {}))
    rows = []
    cpath = os.path.join(d, "sweep.csv")
    if os.path.isfile(cpath):
        try:  # a damaged table (not UTF-8, not CSV) is left out whole, with one line saying where
            lines = list(readfiles.csv_rows(cpath, readfiles.read_text(cpath)))
        except (OSError, ValueError) as e:
            run_folder.note(f"error: {e}: the table is ignored")  # once, though read twice
            lines = None
        header = (lines[0][1] if lines else None) or []
        if lines is None:
            pass
        elif "run" not in header or "status" not in header:
            note(f"{cpath}: no 'run' and 'status' columns: ignored")
        else:
            axes = header[header.index("run") + 1:header.index("status")]
            for line, fields in lines[1:]:
                if len(fields) != len(header):
                    if any(x.strip() for x in fields):
                        note(f"{cpath} line {line}: {len(fields)} fields, the "
                             f"header has {len(header)}: row skipped")
                    continue
                r = dict(zip(header, fields))
                rows.append((r["run"], {a: r[a] for a in axes}, r["status"].strip()))
            out.tables.append(cpath)
    listed = {name for name, _, _ in rows}
    for r in (meta.get("runs") or []) if isinstance(meta.get("runs"), list) else []:
        if isinstance(r, dict) and r.get("name") not in listed:
            point = r.get("point") if isinstance(r.get("point"), dict) else {}
            rows.append((r.get("name"), {k: str(v) for k, v in point.items()}, "not in sweep.csv"))
    if not rows:  # no table: every subfolder with a summary.json is a run
        if not os.path.isdir(d):
            return False
        for name in sorted(os.listdir(d)):
            if os.path.isfile(os.path.join(d, name, "summary.json")):
                rows.append((name, {}, "finished"))
        if not rows:
            return False
    for name, point, status in rows:
        if not plain_run_name(name):
            note(f"{d}: run name {name!r} is not a plain folder name: skipped")
            continue
        spath = os.path.join(d, name, "summary.json")
        if status != "finished" or not os.path.isfile(spath):
            out.missing.append((d, name, status if status != "finished" else "no summary.json"))
            continue
        try:
            summary = readfiles.read_json(spath)
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


# Where the summary's hand-written part goes: summarize.py puts the text of the results folder's
# verdict.md here (the readings of the numbers and the verdict, under its own headings).
VERDICT_PLACEHOLDER = "## Verdict\n\n_To be written by the integrator from the comparisons above._\n"


def verdict_section(comparisons):
    body = "".join(f"- {c}\n" for c in comparisons) or "- (no comparison could be made yet)\n"
    return "## Measured comparisons\n\n" + body + "\n" + VERDICT_PLACEHOLDER


def figure_section(paths, base=None):
    """Links to the figures, relative to base (the results folder) when given, else by name."""
    def rel(p):
        return os.path.relpath(p, base) if base else os.path.basename(p)
    return "## Figures\n\n" + "".join(f"![{rel(p)}]({rel(p)})\n\n" for p in paths)


def try_figure(fn, *a):
    """A figure whose inputs are missing is skipped with a note; never a crash."""
    try:
        out = fn(*a)
        return [p for p in (out if isinstance(out, list) else [out]) if p]
    except run_folder.Missing as e:
        note(f"skipped {fn.__name__}: {e}")
    except Exception as e:  # an odd run folder must not stop the summary
        note(f"skipped {fn.__name__}: {type(e).__name__}: {e}")
    finally:
        plt.close("all")
    return []


def group(runs, key):
    """Runs by key(run), each list in seed order."""
    out = {}
    for r in runs:
        out.setdefault(key(r), []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r.seed)
    return out
