#!/usr/bin/python3
"""ctest driver for experiments/plot.py on synthetic run folders (no training needed).

    python3 tests/experiments/test_plot.py SOURCE_DIR

Checks, each in a fresh temporary folder:
  1. a full fake E1 run: exit 0, every expected PNG written, non-empty, a real PNG, and listed on
     stdout;
  2. --only: only the named figures are drawn;
  3. metrics.csv with two phases whose steps restart: learning_curve.png is drawn;
  4. a folder with only summary.json: exit 0, no PNG, stderr says what is missing;
  5. an unreadable summary.json: exit 1.
Exit status 0 if all pass, 1 otherwise.
"""

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


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    src = os.path.abspath(sys.argv[1])
    fake = os.path.join(src, "tests", "experiments", "make_fake_run.py")
    plot = os.path.join(src, "experiments", "plot.py")
    tmp = tempfile.mkdtemp(prefix="cellc_plot_test_")
    try:
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
