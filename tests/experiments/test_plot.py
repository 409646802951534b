#!/usr/bin/python3
"""ctest driver for experiments/plot.py on synthetic run folders (no training needed).

    python3 tests/experiments/test_plot.py SOURCE_DIR [plot|summarize|all]

plot: checks 1-7 (experiments/plot.py); summarize: check 8 (experiments/summarize.py); all (the
default): both.

Checks, each in a fresh temporary folder:
  1. a full fake E1 run: exit 0, every expected PNG written, non-empty, a real PNG, and listed on
     stdout;
  2. --only: only the named figures are drawn;
  3. metrics.csv with two phases whose steps restart: learning_curve.png is drawn;
  4. a folder with only summary.json: exit 0, no PNG, stderr says what is missing;
  5. an unreadable summary.json: exit 1;
  6. fake E2-E5 runs (make_fake_run.py --experiment ...): every figure of their analyses drawn,
     dispatched on each entry's kind, named analyses' figures prefixed with their name, no note;
  7. a malformed metrics.csv row is skipped with a note naming its line;
  8. summarize.py on a fake sweep of each experiment, with two runs unfinished: summary.md with
     the seed spreads, the published numbers and the missing runs named, the figures, no arrays;
  9. the archive summarize.py leaves (runs/): enough to make the same summary without the sweep;
 10. run names in a crafted sweep.csv (absolute, ../) are skipped: nothing outside --out is written;
 11. damaged files (invalid UTF-8, cut short) in a sweep or a run: one line naming the file and the
     line from summarize.py, plot_sweep.py and plot.py, never a traceback.
Exit status 0 if all pass, 1 otherwise.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

EXPECTED = ["learning_curve.png", "sequence_heatmap.png", "traces.png", "traces_trained.png",
            "shift_vs_column.png",
            "shift_vs_value.png", "shift_map.png"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(args):
    p = subprocess.run([sys.executable] + args, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def is_png(path):
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        return os.path.getsize(path) > 1000 and head == PNG_MAGIC
    except OSError:
        return False


E2_E5_FIGURES = {
    "copy_first": ["learning_curve.png", "trace.png", "plastic.png"],
    "multi_sequence": ["learning_curve.png", "weight_histogram.png", "ei_rates.png", "trace.png"],
    "forgetting": ["learning_curve.png", "task1_before_trace.png", "task1_after_trace.png"],
    "readout": ["learning_curve.png", "readout_activity.png", "trace.png"],
}


def figures_in(d):
    f = os.path.join(d, "figures")
    return sorted(os.listdir(f)) if os.path.isdir(f) else []


def check_e2_e5(fake, plot, tmp):
    for exp, expected in E2_E5_FIGURES.items():
        d = os.path.join(tmp, exp)
        rc, _, err = run([fake, d, "--experiment", exp])
        check(rc == 0, f"make_fake_run.py --experiment {exp} (rc={rc}) {err.strip()}")
        rc, out, err = run([plot, d])
        drawn = figures_in(d)
        check(rc == 0 and drawn == sorted(expected) and not err.strip(),
              f"{exp}: exactly {expected} drawn, no note (rc={rc}, drawn={drawn}) {err.strip()}")
        for name in expected:
            check(is_png(os.path.join(d, "figures", name)), f"{exp}: {name} is a PNG")

    # A non-plastic copy_first cell: no Hebbian trace, so no plastic figure and no note about it.
    d = os.path.join(tmp, "copy_first_nbrc")
    run([fake, d, "--experiment", "copy_first", "--cell", "nbrc"])
    rc, _, err = run([plot, d])
    check(rc == 0 and "plastic.png" not in figures_in(d) and not err.strip(),
          f"copy_first with nbrc: no plastic figure, no note (drawn={figures_in(d)}) {err}")
    # pbrc_split records a non-square trace [T, n, n/2]: still drawn
    d = os.path.join(tmp, "copy_first_split")
    run([fake, d, "--experiment", "copy_first", "--cell", "pbrc_split"])
    rc, _, err = run([plot, d, "--only", "plastic"])
    check(rc == 0 and figures_in(d) == ["plastic.png"],
          f"pbrc_split's [n, n/2] trace is drawn (drawn={figures_in(d)}) {err}")

    # --only takes a named analysis' figure name, or the analysis' name
    d = os.path.join(tmp, "forgetting")
    shutil.rmtree(os.path.join(d, "figures"))
    rc, _, err = run([plot, d, "--only", "task1_after_trace.png"])
    check(rc == 0 and figures_in(d) == ["task1_after_trace.png"],
          f"--only task1_after_trace.png (rc={rc}, drawn={figures_in(d)}) {err}")
    shutil.rmtree(os.path.join(d, "figures"))
    rc, _, err = run([plot, d, "--only", "task1_before"])
    check(rc == 0 and figures_in(d) == ["task1_before_trace.png"],
          f"--only task1_before (rc={rc}, drawn={figures_in(d)}) {err}")

    # The figure follows the entry's kind, not its key: an analysis named "w" of kind
    # weight_histogram, arrays prefixed w_, draws w_weight_histogram.png.
    d = os.path.join(tmp, "multi_sequence")
    shutil.rmtree(os.path.join(d, "figures"))
    with open(os.path.join(d, "summary.json")) as f:
        summary = json.load(f)
    summary["analyses"]["w"] = summary["analyses"].pop("weight_histogram")
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(summary, f)
    for a in ("weight_edges", "weight_hist_e", "weight_hist_i", "weight_matrix"):
        os.rename(os.path.join(d, "arrays", a + ".npy"), os.path.join(d, "arrays", f"w_{a}.npy"))
    rc, _, err = run([plot, d, "--only", "weight_histogram", "--log-counts"])
    check(rc == 0 and figures_in(d) == ["w_weight_histogram.png"],
          f"kind dispatch with a named analysis (rc={rc}, drawn={figures_in(d)}) {err}")


def check_malformed_metrics(fake, plot, tmp):
    d = os.path.join(tmp, "malformed")
    run([fake, d, "--experiment", "readout"])
    path = os.path.join(d, "metrics.csv")
    with open(path) as f:
        n = sum(1 for _ in f)
    with open(path, "a") as f:
        f.write("train,210,0.5\n")             # line n+1: too few fields
        f.write("train,220,abc,,0.1,9.0\n")    # line n+2: loss not a number
        f.write("train,230,0.4,,0.1,9.5\n")    # well formed
    rc, _, err = run([plot, d, "--only", "learning_curve"])
    check(rc == 0 and is_png(os.path.join(d, "figures", "learning_curve.png")),
          f"malformed rows: the learning curve is still drawn (rc={rc})")
    check(f"metrics.csv line {n + 1}: 3 fields, the header has 6" in err
          and f"metrics.csv line {n + 2}: loss is not a number ('abc')" in err
          and f"line {n + 3}" not in err,
          f"malformed rows are named by line, the good one is kept: {err.strip()}")


SUMMARY_FIGURES = {
    "copy_first": ["test_mse.png", "learning_curves.png", "plastic_trace.png", "plastic_trace_pbrc.png",
                   "time_to_target.png"],
    "multi_sequence": ["weight_histograms.png", "ei_ratio_vs_k.png", "trained_trials.png"],
    "forgetting": ["task1_before_after.png", "tradeoff.png", "retention_vs_lambda.png"],
    "readout": ["readout_comparison.png", "readout_peaks.png"],
    "sequence_shift": ["training_curves.png"],
}
# numbers the fake sweeps make, as summary.md must show them (mean [min, max] (n))
SUMMARY_TEXT = {
    "copy_first": ["| nbrc T=300 D=32 H=48 | 0.0072 |", "| pbrc_split T=300 D=32 H=48 | 0.0075 |",
                   "cell=pbrc_split,steps=100,dim=1,n=8,seed=1` | interrupted",
                   # seed by seed: the fake split PBRC never reaches the target, nBRC does
                   "| T=300 D=32 H=48 | pbrc_split / nbrc | 1 | 100 / 100 | 200 / 200 | never / 400 |",
                   "pbrc_split at the target first in 0, nbrc in 2",
                   # the matched sweep's windowed nbrc: in the robust section only, never pooled
                   # with the grid's nbrc at the same setting and seeds (n = 2, not 4)
                   "| T=100 D=1 H=8 | nbrc | 169 | 0.0108 [0.0106, 0.0111] (n=2) |",
                   "| T=100 D=1 | nbrc H=8 | 169 | 0.5 | 2/2 | 74 [48, 100] (n=2) |"],
    "multi_sequence": ["| 1 | 2 |", "| 2 | 2 |", "tasks=4,seed=2"],
    "forgetting": ["| inverted dropout p = 0.5, a mask per trial | 500 |", "| 0.857 [0.857, 0.857] (n=2) |",
                   "dropout=0,lambda=10000,seed=1",
                   # the joint reference: its own table row, paired with fine-tuning seed by seed
                   "| joint training (task 2 with task-1 trials in every batch, no EWC) | no dropout | 2/2 |",
                   "no dropout, against fine-tuning on the same seeds (task 1 before task 2 identical in 2 of 2)"],
    "readout": ["| fixed | 3 |", "| 1.67 [1, 2] (n=3) |", "| learned | 1 |",
                "frozen=false,seed=3"],
    "sequence_shift": ["| case i (N_out = 10), sgd, Omega 0 | 2 | 0.915 [0.91, 0.92] (n=2) |",
                       "| case i (N_out = 10), sgd, Omega 2 | 2 |",
                       "RMSE **0.12", "optimizer=adam,omega=2,seed=1` | interrupted"],
}


def check_summarize(fake, summarize, tmp):
    for exp, figs in SUMMARY_FIGURES.items():
        sweep = os.path.join(tmp, "sweep_" + exp)
        out = os.path.join(tmp, "results_" + exp)
        rc, _, err = run([fake, sweep, "--experiment", exp, "--sweep"])
        check(rc == 0, f"make_fake_run.py --sweep {exp} (rc={rc}) {err.strip()}")
        rc, stdout, err = run([summarize, sweep, "--experiment", exp, "--out", out])
        check(rc == 0, f"summarize.py {exp}: exit 0 on a partial sweep (rc={rc}) {err.strip()}")
        files = sorted(os.listdir(out)) if os.path.isdir(out) else []
        check(files == sorted(figs + ["runs", "summary.md", "sweep.csv"]),
              f"summarize.py {exp}: writes {sorted(figs)}, runs/, summary.md, sweep.csv ({files})")
        for name in figs:
            check(is_png(os.path.join(out, name))
                  and os.path.getsize(os.path.join(out, name)) < 400_000,
                  f"summarize.py {exp}: {name} is a small PNG")
        text = open(os.path.join(out, "summary.md")).read() if "summary.md" in files else ""
        for want in SUMMARY_TEXT[exp] + ["## Missing runs", "## Verdict", "2 run(s) not finished"]:
            where = text if not want.endswith("not finished") else err
            check(want in where, f"summarize.py {exp}: summary says {want!r}")
    # Run folders without sweep.csv or sweep.json (and so without the dropout axis): the runs are
    # found by their summary.json, lambda comes from the training summary, and the runs of one
    # lambda are pooled.
    bare = os.path.join(tmp, "bare_forgetting")
    shutil.copytree(os.path.join(tmp, "sweep_forgetting"), bare,
                    ignore=shutil.ignore_patterns("sweep.csv", "sweep.json"))
    out = os.path.join(tmp, "results_bare")
    rc, _, err = run([summarize, bare, "--experiment", "forgetting", "--out", out])
    text = open(os.path.join(out, "summary.md")).read() if rc == 0 else ""
    check(rc == 0 and "| dropout: as in the base file | 500 |" in text
          and "| 0.786 [0.714, 0.857] (n=4) |" in text,
          f"summarize.py on bare run folders pools by lambda (rc={rc}) {err.strip()}")

    # The hand-written part (results/NAME/verdict.md) stands where the empty verdict would, and
    # is read, never written: a summary made again keeps it.
    out = os.path.join(tmp, "results_readout")
    hand = "In words: the fixed readout loses a bump.\n\n## Verdict\n\nIt holds.\n"
    with open(os.path.join(out, "verdict.md"), "w") as f:
        f.write(hand)
    for attempt in (1, 2):
        rc, _, err = run([summarize, os.path.join(tmp, "sweep_readout"), "--experiment", "readout",
                          "--out", out])
        text = open(os.path.join(out, "summary.md")).read() if rc == 0 else ""
        check(rc == 0 and text.endswith("\n" + hand) and "_To be written" not in text
              and text.count("## Verdict") == 1
              and open(os.path.join(out, "verdict.md")).read() == hand,
              f"summarize.py puts verdict.md in place of the empty verdict (run {attempt}, rc={rc})")

    check_archive(summarize, tmp)
    check_crafted_names(summarize, tmp)
    here = os.path.dirname(summarize)
    check_damaged_files(summarize, os.path.join(here, "plot_sweep.py"), os.path.join(here, "plot.py"), tmp)

    rc, _, err = run([summarize, os.path.join(tmp, "no_such_sweep"), "--experiment", "readout",
                      "--out", os.path.join(tmp, "r")])
    check(rc == 1 and "no_such_sweep" in err, f"summarize.py on a missing folder: exit 1 ({rc})")
    rc, _, _ = run([summarize, tmp, "--experiment", "nope", "--out", os.path.join(tmp, "r")])
    check(rc == 2, f"summarize.py with an unknown experiment: usage error (rc={rc})")


def tables_of(path):
    text = open(path).read()
    return text[text.find("## Beside"):text.find("## Figures")]


def check_archive(summarize, tmp):
    """9. The archive (results/NAME/runs/): every finished run's summary.json and thinned curve
    and the sweep's table; with the live sweep folder gone, the same tables and a learning-curve
    figure from the archive alone; a live folder holding only some runs is filled from it."""
    sweep = os.path.join(tmp, "sweep_copy_first")
    out = os.path.join(tmp, "results_copy_first")
    arch = os.path.join(out, "runs", "sweep_copy_first")
    first = tables_of(os.path.join(out, "summary.md"))
    finished = sorted(n for n in os.listdir(sweep)
                      if os.path.isfile(os.path.join(sweep, n, "summary.json")))
    archived = sorted(n for n in os.listdir(arch) if os.path.isdir(os.path.join(arch, n)))
    check(finished and archived == finished and os.path.isfile(os.path.join(arch, "sweep.csv")),
          f"archive: one folder per finished run ({archived} vs {finished}) and sweep.csv")
    curve = os.path.join(arch, finished[0], "curve.csv")
    rows = open(curve).read().splitlines() if os.path.isfile(curve) else []
    check(rows and rows[0] == "phase,step,loss,rows,val_error,grad_norm" and 1 < len(rows) <= 401,
          f"archive: a thinned curve.csv with its header ({len(rows)} lines)")
    # the validation points survive the thinning (E1's fake runs validate every 500 steps; its
    # training figure and clipped share read them from the archive once the live folder is gone)
    e1 = os.path.join(tmp, "results_sequence_shift", "runs", "sweep_sequence_shift")
    e1_curves = sorted(glob.glob(os.path.join(e1, "*", "curve.csv")))
    kept = [r.split(",")[4] for r in open(e1_curves[0]).read().splitlines()[1:]] if e1_curves else []
    live = os.path.join(tmp, "sweep_sequence_shift", os.path.basename(os.path.dirname(e1_curves[0])),
                        "metrics.csv") if e1_curves else ""
    logged = [r.split(",")[3] for r in open(live).read().splitlines()[1:]] if os.path.isfile(live) else []
    check(logged and sorted(float(v) for v in kept if v) == sorted(float(v) for v in logged if v),
          f"archive: the thinned curve keeps every validation error ({sum(1 for v in kept if v)} "
          f"of {sum(1 for v in logged if v)})")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(arch) for f in fs)
    check(size < 200_000 * len(finished), f"archive: small files only ({size} bytes)")
    gone = sweep + "_moved"
    os.rename(sweep, gone)
    os.remove(os.path.join(out, "learning_curves.png"))
    rc, _, err = run([summarize, sweep, "--experiment", "copy_first", "--out", out])
    check(rc == 0 and tables_of(os.path.join(out, "summary.md")) == first
          and is_png(os.path.join(out, "learning_curves.png")),
          f"archive: the live folder gone, the same tables and curves from runs/ (rc={rc}) {err}")
    # A live folder with one finished run and the rest unfinished: the archive fills the rest.
    os.makedirs(sweep)
    shutil.copy(os.path.join(gone, "sweep.json"), sweep)
    shutil.copytree(os.path.join(gone, finished[0]), os.path.join(sweep, finished[0]))
    with open(os.path.join(gone, "sweep.csv")) as f:
        lines = f.read().splitlines()
    with open(os.path.join(sweep, "sweep.csv"), "w") as f:
        f.write("\n".join(lines[:1] + [ln.replace(",finished,", ",pending,")
                                        if not ln.startswith(f'"{finished[0]}"') else ln
                                        for ln in lines[1:]]) + "\n")
    rc, _, err = run([summarize, sweep, "--experiment", "copy_first", "--out", out])
    check(rc == 0 and tables_of(os.path.join(out, "summary.md")) == first,
          f"archive: a partial live folder pooled with the archive (rc={rc}) {err}")
    shutil.rmtree(sweep)
    os.rename(gone, sweep)


def check_crafted_names(summarize, tmp):
    """10. Run names in a crafted sweep.csv are never joined onto paths: an absolute name and a
    '../' one, each naming a finished run outside the sweep, are skipped with a note, and nothing
    outside --out is written (the archive rewrote their summary.json and added a curve.csv)."""
    import csv
    sweep = os.path.join(tmp, "crafted", "x", "sweep_copy_first")
    out = os.path.join(tmp, "results_crafted")  # its runs/sweep_copy_first is as deep as sweep
    shutil.copytree(os.path.join(tmp, "sweep_copy_first"), sweep)
    with open(os.path.join(sweep, "sweep.csv"), newline="") as f:
        rows = list(csv.reader(f))
    done = next(r for r in rows[1:] if "finished" in r)
    victims = {os.path.join(tmp, "victim_abs"): None, os.path.join(tmp, "victim_rel"): None}
    for v in victims:
        shutil.copytree(os.path.join(sweep, done[0]), v)
        with open(os.path.join(v, "summary.json")) as f:
            text = json.dumps(json.load(f))  # one line: the archive's copy would be indented
        with open(os.path.join(v, "summary.json"), "w") as f:
            f.write(text)
        victims[v] = text
    for name in (os.path.join(tmp, "victim_abs"), "../../../victim_rel"):
        rows.append([name] + done[1:])
    with open(os.path.join(sweep, "sweep.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    rc, _, err = run([summarize, sweep, "--experiment", "copy_first", "--out", out])
    kept = all(open(os.path.join(v, "summary.json")).read() == text
               and not os.path.exists(os.path.join(v, "curve.csv")) for v, text in victims.items())
    check(rc == 0 and kept and err.count("is not a plain folder name: skipped") == 2,
          f"summarize.py: absolute and '../' run names in sweep.csv are skipped, nothing written "
          f"outside --out (rc={rc}, kept={kept}) {err.strip()}")


def check_damaged_files(summarize, plot_sweep, plot, tmp):
    """11. Damaged files (invalid UTF-8, cut short) get one line naming the file and the line, never
    a traceback: summarize.py goes on without them (exit 0), plot_sweep.py and plot.py stop (exit 1)
    when what they need is damaged."""
    src = os.path.join(tmp, "sweep_copy_first")
    with open(os.path.join(src, "sweep.csv"), "rb") as f:
        table = f.read()
    n_lines = table.count(b"\n")
    with open(os.path.join(src, "sweep.json"), "rb") as f:
        manifest = f.read()
    run_name = next(d for d in sorted(os.listdir(src)) if os.path.isfile(os.path.join(src, d, "metrics.csv")))
    with open(os.path.join(src, run_name, "metrics.csv"), "rb") as f:
        metrics = f.read()
    cases = {  # name: (file, new bytes, the line the message must name)
        "csv_utf8": ("sweep.csv", table + b"bad\xff\xfe,finished\n", n_lines + 1),
        "csv_quote": ("sweep.csv", table + b'"open quote,finished', None),
        "json_cut": ("sweep.json", manifest[:len(manifest) // 2], None),
        "json_utf8": ("sweep.json", b"{\n  \"name\": \"\xff\"\n}\n", 2),
        "metrics_utf8": (os.path.join(run_name, "metrics.csv"), metrics + b"train,\xff\n",
                         metrics.count(b"\n") + 1),
    }
    for name, (rel, data, line) in cases.items():
        d = os.path.join(tmp, "damaged_" + name)
        shutil.copytree(src, d)
        with open(os.path.join(d, rel), "wb") as f:
            f.write(data)
        where = os.path.join(d, rel) + (f" line {line}:" if line else " line ")
        rc, _, err = run([summarize, d, "--experiment", "copy_first", "--out", os.path.join(tmp, "results_" + name)])
        check(rc == 0 and "Traceback" not in err and where in err,
              f"summarize.py with a damaged {rel} ({name}): one line naming {where!r}, exit 0 "
              f"(rc={rc}) {err.strip()[-600:]}")
        if rel.startswith("sweep."):
            rc, _, err = run([plot_sweep, d, "--metric", "training.steps", "--x", "experiment.seed"])
            lines = [x for x in err.splitlines() if x.strip()]
            if name == "csv_quote":  # a row cut short is left out, saying where; the figure is drawn
                ok = rc == 0 and lines == [f"plot_sweep.py: {os.path.join(d, rel)} line {n_lines + 1}: "
                                           "1 fields, the header has " + str(table.split(b"\n")[0].count(b",") + 1)
                                           + ": row skipped"]
            else:
                ok = (rc == 1 and len(lines) == 1
                      and lines[0].startswith("plot_sweep.py: error: " + os.path.join(d, rel) + " line "))
            check(ok and "Traceback" not in err,
                  f"plot_sweep.py with a damaged {rel} ({name}): one line naming the file and line "
                  f"(rc={rc}) {err.strip()[-600:]}")
        else:
            rc, _, err = run([plot, os.path.join(d, run_name)])
            check("Traceback" not in err and where in err,
                  f"plot.py with a damaged {rel}: a line naming {where!r}, no traceback (rc={rc}) {err.strip()[-600:]}")
    # A summary.json that is not UTF-8: plot.py exits 1 with one line naming it.
    d = os.path.join(tmp, "damaged_summary")
    shutil.copytree(os.path.join(src, run_name), d)
    with open(os.path.join(d, "summary.json"), "ab") as f:
        f.write(b"\xff")
    rc, _, err = run([plot, d])
    check(rc == 1 and "Traceback" not in err and "summary.json line " in err and "not UTF-8" in err,
          f"plot.py with a non-UTF-8 summary.json: exit 1, one line (rc={rc}) {err.strip()[-400:]}")


PARTS = ("plot", "summarize", "all")


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in PARTS):
        print(__doc__, file=sys.stderr)
        return 1
    part = sys.argv[2] if len(sys.argv) == 3 else "all"
    src = os.path.abspath(sys.argv[1])
    fake = os.path.join(src, "tests", "experiments", "make_fake_run.py")
    plot = os.path.join(src, "experiments", "plot.py")
    tmp = tempfile.mkdtemp(prefix="cellc_plot_test_")
    try:
        if part == "summarize":
            check_summarize(fake, os.path.join(src, "experiments", "summarize.py"), tmp)
            return finish()
        # 1. full fake run
        d = os.path.join(tmp, "full")
        rc, _, err = run([fake, d])
        check(rc == 0, f"make_fake_run.py {d} (rc={rc}) {err.strip()}")
        rc, out, err = run([plot, d])
        check(rc == 0, f"plot.py on a full fake run exits 0 (rc={rc})")
        if rc != 0 or err.strip():
            print(err, file=sys.stderr)
        listed = {os.path.basename(line.strip()) for line in out.splitlines() if line.strip()}
        for name in EXPECTED:
            path = os.path.join(d, "figures", name)
            check(is_png(path), f"{name} exists, non-empty PNG")
            check(name in listed, f"{name} listed on stdout")

        # 2. --only
        d2 = os.path.join(tmp, "only")
        shutil.copytree(d, d2, ignore=shutil.ignore_patterns("figures"))
        rc, out, err = run([plot, d2, "--only", "traces", "shift_vs_value.png"])
        drawn = sorted(os.listdir(os.path.join(d2, "figures"))) if rc == 0 else []
        check(rc == 0 and drawn == ["shift_vs_value.png", "traces.png"],
              f"--only draws just the named figures (rc={rc}, drawn={drawn})")
        rc, _, _ = run([plot, d2, "--only", "no_such_figure"])
        check(rc == 2, f"--only with an unknown name is a usage error (rc={rc})")

        # 3. several phases, steps restarting at 0
        d3 = os.path.join(tmp, "phases")
        rc, _, err = run([fake, d3, "--phases", "task1,task2"])
        check(rc == 0, f"make_fake_run.py --phases (rc={rc}) {err.strip()}")
        rc, out, err = run([plot, d3, "--only", "learning_curve"])
        check(rc == 0 and is_png(os.path.join(d3, "figures", "learning_curve.png")),
              f"learning_curve.png with two phases (rc={rc}) {err.strip()}")

        # 4. summary.json only
        d4 = os.path.join(tmp, "summary_only")
        rc, _, err = run([fake, d4, "--summary-only"])
        check(rc == 0, f"make_fake_run.py --summary-only (rc={rc}) {err.strip()}")
        rc, out, err = run([plot, d4])
        figs = os.path.join(d4, "figures")
        pngs = [f for f in os.listdir(figs) if f.endswith(".png")] if os.path.isdir(figs) else []
        check(rc == 0, f"summary-only folder: exit 0 (rc={rc})")
        check(not pngs and not out.strip(), f"summary-only folder: nothing drawn ({pngs})")
        check("metrics.csv missing" in err and "trial_output.npy missing" in err,
              "summary-only folder: stderr names what is missing")
        print("     stderr was:\n" + "".join("       " + l + "\n" for l in err.splitlines()))

        # 5. unreadable summary.json
        d5 = os.path.join(tmp, "broken")
        os.makedirs(d5)
        with open(os.path.join(d5, "summary.json"), "w") as f:
            f.write("{not json")
        rc, _, err = run([plot, d5])
        check(rc == 1, f"unreadable summary.json: exit 1 (rc={rc})")
        rc, _, _ = run([plot, os.path.join(tmp, "does_not_exist")])
        check(rc == 1, f"missing run folder: exit 1 (rc={rc})")

        check_e2_e5(fake, plot, tmp)
        check_malformed_metrics(fake, plot, tmp)
        if part == "all":
            check_summarize(fake, os.path.join(src, "experiments", "summarize.py"), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


def finish():
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
