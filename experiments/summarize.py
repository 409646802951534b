#!/usr/bin/python3
"""Summarize a finished (or partial) sweep of one experiment beside the published numbers.

    python3 experiments/summarize.py SWEEP_DIR [SWEEP_DIR ...] \\
        --experiment {copy_first,forgetting,multi_sequence,readout,sequence_shift} --out results/NAME/

Reads each SWEEP_DIR's sweep.csv (one row per run: `run`, one column per sweep axis, `status`,
`exit_code`, then the numbers of the run's summary.json with dotted keys), sweep.json (the runs the
sweep has, for the ones not finished) and the run folders (SWEEP_DIR/RUN/summary.json, metrics.csv,
arrays/). Several sweep folders of one experiment are pooled (e.g. the published grid and the
parameter-matched runs). Writes small files only into --out:

  summary.md     every number with its seed spread (mean [min, max] n), beside the published
                 numbers; the runs that are missing; the measured comparisons, plainly; then
                 the hand-written part, verdict.md (below), or an empty verdict section
  verdict.md     (read, never written) the summary's hand-written part, kept beside it: what the
                 numbers say in words, the verdict, caveats. It stands where the empty verdict
                 section would, so the summary is made again whole from the repository
  sweep.csv      a copy of each sweep's table (sweep-NAME.csv when there are several)
  *.png          the experiment's figures (dpi 110)
  runs/          the archive (experiments/summaries/archive.py): every finished run's summary.json
                 and thinned learning curve, and each sweep's table, so the summary can be made
                 again from the repository alone. Each SWEEP_DIR is pooled with runs/<its name>:
                 runs finished in the live folder win, the archive fills the rest (or stands in
                 for a live folder that is gone)

Unfinished runs (no summary.json, or a status other than finished) are listed as missing and left
out of every number. Exit status: 0 (also for a partial sweep), 1 if no sweep folder is readable,
2 on a usage error. Only the standard library, numpy and matplotlib are used.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summaries import archive  # noqa: E402
from summaries.common import PROG, VERDICT_PLACEHOLDER, Sweeps, note  # noqa: E402
from summaries import copy_first, forgetting, multi_sequence, readout, sequence_shift  # noqa: E402

# Each module: summarize(sw, out, args) -> the summary's text; optionally ARCHIVE_FILES (the small
# files of a run its numbers rest on) and derive(run) (small arrays made from large ones).
SUMMARIZERS = {
    "copy_first": copy_first,
    "forgetting": forgetting,
    "multi_sequence": multi_sequence,
    "readout": readout,
    "sequence_shift": sequence_shift,
}


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("sweeps", nargs="+", metavar="SWEEP_DIR", help="sweep folder(s)")
    p.add_argument("--experiment", required=True, choices=sorted(SUMMARIZERS))
    p.add_argument("--out", required=True, help="results folder, e.g. results/copy_first/")
    args = p.parse_args(argv)

    sw = Sweeps()
    runs_dir = os.path.join(args.out, "runs")
    readable = archive.pool(args.sweeps, runs_dir, sw)
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
    module = SUMMARIZERS[args.experiment]
    archive.write(sw, runs_dir, getattr(module, "ARCHIVE_FILES", ()), getattr(module, "derive", None))
    text = module.summarize(sw, args.out, args)
    hand = os.path.join(args.out, "verdict.md")
    if os.path.exists(hand):  # every summarizer ends with common.verdict_section's placeholder
        with open(hand) as f:
            text = text.replace(VERDICT_PLACEHOLDER, f.read())
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text)
    for path in sw.tables:
        name = "sweep.csv" if len(sw.tables) == 1 else \
            f"sweep-{os.path.basename(os.path.dirname(os.path.abspath(path)))}.csv"
        shutil.copyfile(path, os.path.join(args.out, name))
    for f in sorted(os.listdir(args.out)):
        if f != "runs":
            print(os.path.join(args.out, f))
    print(runs_dir + os.sep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
