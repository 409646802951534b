"""The results archive: what a finished run leaves in results/<experiment>/runs/, so a summary can be
made again after the machine that ran the sweep is gone.

A sweep's run folders hold checkpoints and arrays (tens of MB a run), so they live outside the
repository; the archive keeps, per sweep folder NAME and run RUN, only

    runs/NAME/sweep.csv          the sweep's table, every run (finished rows from wherever they are)
    runs/NAME/sweep.json         the sweep's description, when the live folder had one
    runs/NAME/RUN/summary.json   the run's summary, as written by `cellc run`
    runs/NAME/RUN/curve.csv      its learning curve, thinned: `phase,step,loss,rows,val_error,
                                 grad_norm`, where loss is the geometric mean of the minibatch
                                 losses of the `rows` logged steps ending at `step` (at most
                                 CURVE_ROWS rows per phase), val_error the last validation among
                                 them (empty if none), grad_norm the geometric mean of their
                                 gradient norms
    runs/NAME/RUN/...            the small files the experiment's summarizer names (ARCHIVE_FILES:
                                 e.g. params/*.npy, arrays/peak_shift.npy), each at most
                                 MAX_KEPT_BYTES
    runs/NAME/RUN/derived/*.npy  small arrays the summarizer derived from large ones (derive(run))

An archived folder is itself a sweep folder that read_sweep reads. summarize.py pools each sweep
folder it is given with runs/<its name>: a run finished in the live folder wins, the archive fills
the runs the live folder lacks (or the whole sweep, when the live folder is gone).
"""

import csv
import glob
import json
import math
import os
import shutil

from figures import learning_curve, run_folder
from summaries.common import Sweeps, note, np, read_sweep, readfiles

CURVE_ROWS = 400
CURVE_FILE = "curve.csv"
DERIVED = "derived"          # runs/NAME/RUN/derived/*.npy: small arrays a summarizer derived
MAX_KEPT_BYTES = 128 * 1024  # an archived file larger than this is left out, with a note


def _replace(path, write):
    """Writes path through write(file) into a temporary beside it, then renames it into place: an
    interrupted summary never leaves half a file in the archive."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        write(f)
    os.replace(tmp, path)


def _csv(header, rows):
    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return write


def _table(path):
    """(header, {run: row dict}) of a sweep.csv, or ([], {})."""
    if not os.path.isfile(path):
        return [], {}
    try:
        lines = list(readfiles.csv_rows(path, readfiles.read_text(path)))
    except (OSError, ValueError) as e:  # damaged: left out, saying where
        run_folder.note(f"error: {e}: the table is ignored")  # once, though read twice
        return [], {}
    header = (lines[0][1] if lines else None) or []
    rows = {}
    for _, fields in lines[1:]:
        if len(fields) == len(header) and "run" in header:
            r = dict(zip(header, fields))
            rows[r["run"]] = r
    return header, rows


def _merge_tables(live_path, arch_path, out_path):
    """The union of two sweep tables by run, a finished row over an unfinished one, the live row
    over the archived one when both finished; columns in the live table's order, then the rest."""
    lh, lrows = _table(live_path)
    ah, arows = _table(arch_path)
    if not lh and not ah:
        return False
    header = list(lh) + [c for c in ah if c not in lh]
    order = list(lrows) + [r for r in arows if r not in lrows]
    merged = []
    for name in order:
        lr, ar = lrows.get(name), arows.get(name)
        pick = lr
        if lr is None or (lr.get("status") != "finished" and ar is not None
                          and ar.get("status") == "finished"):
            pick = ar
        merged.append([pick.get(c, "") for c in header])
    _replace(out_path, _csv(header, merged))
    return True


CURVE_HEADER = ["phase", "step", "loss", "rows", "val_error", "grad_norm"]


def _geomean(seg):
    ok = seg[np.isfinite(seg) & (seg > 0)]
    return float(np.exp(np.mean(np.log(ok)))) if ok.size else math.nan


def thin_curve(run_dir, summary):
    """The run's metrics.csv as curve.csv rows [(phase, step, loss, rows, val_error, grad_norm)],
    or [] without one."""
    try:
        cols = learning_curve.read_metric_columns(run_folder.Run(run_dir, summary))
    except run_folder.Missing:
        return []
    phase = cols["phase"]
    step = np.asarray(cols["step"], dtype=float)
    nan = np.full(step.size, math.nan)
    loss = np.asarray(cols.get("loss", nan), dtype=float)
    val = np.asarray(cols.get("val_error", nan), dtype=float)
    grad = np.asarray(cols.get("grad_norm", nan), dtype=float)
    out = []
    start = 0
    while start < step.size:  # contiguous phases, each thinned on its own
        end = start
        while end < step.size and phase[end] == phase[start]:
            end += 1
        k = max(1, math.ceil((end - start) / CURVE_ROWS))
        for b in range(start, end, k):
            e = min(b + k, end)
            v = val[b:e][np.isfinite(val[b:e])]
            out.append((phase[start], int(step[e - 1]), _geomean(loss[b:e]), e - b,
                        float(v[-1]) if v.size else math.nan, _geomean(grad[b:e])))
        start = end
    return out


def read_curve_columns(run_dir):
    """curve.csv as {column: float array} (an empty field: NaN; a column an older archive lacks:
    all NaN), or None without one."""
    path = os.path.join(run_dir, CURVE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        lines = list(readfiles.csv_rows(path, readfiles.read_text(path)))
    except (OSError, ValueError) as e:
        note(f"{e}: the curve is left out")
        return None
    header = lines[0][1] if lines else []
    cols = {h: [] for h in CURVE_HEADER[1:]}
    for _, fields in lines[1:]:
        r = dict(zip(header, fields))
        for h in cols:
            try:
                cols[h].append(float(r[h]) if r.get(h, "").strip() else math.nan)
            except ValueError:
                cols[h].append(math.nan)
    return {h: np.asarray(v, dtype=float) for h, v in cols.items()} if cols["step"] else None


def read_curve(run_dir):
    """curve.csv as (step, loss) arrays over its rows with both, or None."""
    c = read_curve_columns(run_dir)
    if c is None:
        return None
    ok = np.isfinite(c["step"]) & np.isfinite(c["loss"])
    return (c["step"][ok], c["loss"][ok]) if ok.any() else None


def curve(run):
    """(x = samples seen or step, minibatch loss) of a single-phase run, or None: from its
    metrics.csv, else (an archived run) from its thinned curve.csv."""
    try:
        phases, step, loss, _ = learning_curve.read_metrics(run_folder.Run(run.dir, run.summary))
    except run_folder.Missing:  # an archived run: its thinned curve
        got = read_curve(run.dir)
        if got is None:
            return None
        step, loss = got
    batch = learning_curve.samples_per_step(run.summary.get("training") or {})
    ok = np.isfinite(loss) & (loss > 0)
    if not ok.any():
        return None
    return step[ok] * (batch or 1.0), loss[ok], batch is not None


def _write_run(run, dst, keep=(), derive=None):
    os.makedirs(dst, exist_ok=True)
    _replace(os.path.join(dst, "summary.json"),
             lambda f: json.dump(run.summary, f, indent=1, sort_keys=True))
    # The small files a summary's numbers rest on (the experiment's ARCHIVE_FILES, globs relative
    # to the run folder), and arrays derived from large ones (its derive(run): name -> array), so
    # the mechanism claims can be recomputed from the repository.
    for pattern in keep:
        for src in sorted(glob.glob(os.path.join(run.dir, pattern))):
            if os.path.getsize(src) > MAX_KEPT_BYTES:
                note(f"{src}: {os.path.getsize(src)} bytes, over {MAX_KEPT_BYTES}: not archived")
                continue
            rel = os.path.relpath(src, run.dir)
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copyfile(src, os.path.join(dst, rel))
    for name, arr in ((derive(run) or {}).items() if derive else ()):
        os.makedirs(os.path.join(dst, DERIVED), exist_ok=True)
        np.save(os.path.join(dst, DERIVED, name + ".npy"), np.asarray(arr))
    rows = thin_curve(run.dir, run.summary)
    if rows:
        num = lambda x: f"{x:.6g}" if math.isfinite(x) else ""  # noqa: E731
        _replace(os.path.join(dst, CURVE_FILE),
                 _csv(CURVE_HEADER, [(p, s, num(l), n, num(v), num(gn)) for p, s, l, n, v, gn in rows]))


def pool(sweep_dirs, archive, sw):
    """Reads each sweep folder into sw, filled from archive/<name>; returns the folders that gave
    anything. A run read from a live folder keeps its live path (write() archives it)."""
    readable = []
    for d in sweep_dirs:
        name = os.path.basename(os.path.normpath(d))
        a = os.path.join(archive, name)
        if os.path.isdir(d) and os.path.realpath(a) == os.path.realpath(d):
            a = None  # the archive itself was given
        live = Sweeps()
        got_live = read_sweep(d, live)
        arch = Sweeps()
        got_arch = a is not None and os.path.isdir(a) and read_sweep(a, arch)
        if not got_live and not got_arch:
            continue
        readable.append(d)
        have = {r.name for r in live.runs}
        from_arch = {r.name: r for r in arch.runs if r.name not in have}
        sw.runs += live.runs + list(from_arch.values())
        missing = [(dd, n, s) for dd, n, s in (live.missing if got_live else arch.missing)
                   if n not in from_arch and n not in have]
        if got_live:  # runs only the archive lists (a live folder of an older grid) stay missing
            listed = have | {n for _, n, _ in live.missing}
            missing += [(d, n, s) for _, n, s in arch.missing if n not in listed]
        sw.missing += missing
        sw.meta += live.meta if got_live and any(m for _, m in live.meta) else arch.meta
        sw.tables.append((d, a))
    # A grid's point that finished in another folder of the pool (a lane given its own --out,
    # since a folder takes one sweep at a time) is not missing.
    # Nor is one listed twice (two folders of the same grid).
    seen = {r.name for r in sw.runs}
    missing = []
    for m in sw.missing:
        if m[1] not in seen:
            seen.add(m[1])
            missing.append(m)
    sw.missing = missing
    return readable


def write(sw, archive, keep=(), derive=None):
    """Archives every run not already read from the archive (with the files `keep` names and the
    arrays `derive` makes), then merges each sweep's table into the archive; sw.tables becomes the
    merged tables' paths (what the results folder copies)."""
    root = os.path.realpath(archive)
    for run in sw.runs:
        if os.path.realpath(run.dir).startswith(root + os.sep):
            continue
        _write_run(run, os.path.join(archive, os.path.basename(os.path.normpath(run.sweep)),
                                     run.name), keep, derive)
    tables = []
    for d, a in sw.tables:
        a = a or os.path.join(archive, os.path.basename(os.path.normpath(d)))
        os.makedirs(a, exist_ok=True)
        live_json = os.path.join(d, "sweep.json")
        if os.path.isfile(live_json) and os.path.realpath(live_json) != \
                os.path.realpath(os.path.join(a, "sweep.json")):
            shutil.copyfile(live_json, os.path.join(a, "sweep.json"))
        out = os.path.join(a, "sweep.csv")
        if _merge_tables(os.path.join(d, "sweep.csv"), out, out):
            tables.append(out)
        else:
            note(f"{d}: no sweep.csv to archive")
    sw.tables = tables
