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
The figures themselves are in experiments/figures/, one module per figure kind.
Only the standard library, numpy and matplotlib are used.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from figures import weight_histogram  # noqa: E402  (the package selects matplotlib's backend)
from figures.registry import ANALYSES, COMMON, all_names  # noqa: E402
from figures.run_folder import (PROG, AnalysisView, Missing, Run, analysis_kind,  # noqa: E402
                                note, plt)
from readfiles import read_json  # noqa: E402


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
    weight_histogram.LOG_COUNTS = args.log_counts

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
