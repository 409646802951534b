"""Run folder access shared by every figure (and by the summaries): summary.json's analyses,
arrays/*.npy, figures/*.png, the one-line notes on stderr, number formats."""

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
