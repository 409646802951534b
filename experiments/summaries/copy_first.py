"""E5: copy-first-input with plastic bistable cells (paper 003), its grid beside the logs."""

import math
import os

from figures import learning_curve, run_folder, trace
from matplotlib.lines import Line2D
from summaries import stats
from summaries.archive import curve
from summaries.common import (as_float, count, figure_section, finite, g, group,
                              mean, missing_section, note, np, plt, provenance, save,
                              readfiles, seed_jitter, spread, table, try_figure, verdict_section)


CELL_ORDER = ["gru", "brc", "nbrc", "plastic_gru", "plastic_gru_clip", "pbrc", "pbrc_split", "pbrc_v0",
              "pbrc_v1"]
CELL_COLOR = {c: plt.get_cmap("tab10")(i) for i, c in enumerate(CELL_ORDER)}
# (cell file stem, T, D, H) -> (published test MSE, where it comes from)
E5_PUBLISHED = {
    ("nbrc", 300, 32, 48): (0.0072, "published log, nBRC D=32 H=48 (one seed)"),
    ("pbrc_split", 300, 32, 48): (0.0075, "published log, the code's PBRC (PlasticBistableCell2)"),
    ("nbrc", 300, 32, 64): (0.00045, "published log, nBRC D=32 H=64 (one seed)"),
    ("plastic_gru_clip", 300, 32, 64): (0.0064, "published log, the code's plastic GRU H=64"),
    ("nbrc", 300, 1, 8): (0.825, "plasticgru's fixed experiments, nBRC D=1 H=8 (one seed)"),
    ("pbrc_v1", 300, 1, 8): (0.00053, "plasticgru's converged PBRC D=1 H=8 (one seed; the code at "
                                      "54c8fcc, or the one before it: pbrc_v0)"),
    ("pbrc_v0", 300, 1, 8): (0.00053, "the same run, if the code before 54c8fcc made it"),
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


def milestone_text(rs, level):
    reached = finite([reached_at(r, level) for r in rs])
    if not reached:
        return f"never (0/{len(rs)})"
    return f"{spread(reached, fmt=lambda x: f'{x:.0f}')}, {len(reached)}/{len(rs)} reached"


# Each plastic cell and the cell it adds a trace to.
PLASTIC_PAIRS = (("pbrc", "nbrc"), ("pbrc_split", "nbrc"), ("plastic_gru", "gru"),
                 ("plastic_gru_clip", "gru"))


def reached_at(r, what):
    """The first step below a minibatch loss (what: 0.5 or 0.1), or the step a run stopped at
    the target (what: "target"); inf when it never got there."""
    if what == "target":
        stop = (r.summary.get("training") or {}).get("stop_reason")
        return r.get("training.steps") if stop in ("loss-target", "target") else math.inf
    v = r.get(f"training.first_step_loss.below_{what:g}")
    return v if math.isfinite(v) else math.inf


def seed_by_seed(by, settings):
    """Each plastic cell against its cell without a trace, run by run on the same seed: the same
    training data, so a step count compares with its pair, not only with a spread."""
    rows, lines = [], []
    step = lambda x: "never" if math.isinf(x) else f"{x:.0f}"  # noqa: E731
    for s in settings:
        for plastic, base in PLASTIC_PAIRS:
            p = {r.seed: r for r in by.get((s, plastic), [])}
            b = {r.seed: r for r in by.get((s, base), [])}
            seeds = sorted(set(p) & set(b))
            if not seeds:
                continue
            first = {what: [0, 0] for what in (0.5, "target")}
            for k in seeds:
                cols = []
                for what in (0.5, 0.1, "target"):
                    x, y = reached_at(p[k], what), reached_at(b[k], what)
                    cols.append(f"{step(x)} / {step(y)}")
                    if what in first and x != y:
                        first[what][0 if x < y else 1] += 1
                rows.append((setting_label(s), f"{plastic} / {base}", str(k), *cols,
                             f"{g(p[k].get('test.loss'))} / {g(b[k].get('test.loss'))}"))
            def who(what, label):
                (a, c) = first[what]
                if a + c == 0:
                    return f"{label}: the same in every seed (never, or at one step)"
                return f"{plastic} {label} first in {a}, {base} in {c}"
            n = len(seeds)
            lines.append(f"- {setting_label(s)}, {plastic} against {base}, {n} seed"
                         f"{'s' if n > 1 else ''}: {who(0.5, 'below 0.5')}; "
                         f"{who('target', 'at the target')}\n")
    if not rows:
        return ""
    return ("\n## Seed by seed: each plastic cell against its cell without a trace\n\n"
            "The same seed draws the same training data for every cell, so each plastic run is "
            "set beside its pair: the step its minibatch loss first fell below 0.5 and below "
            "0.1, the step it reached the target (early stop), and its test MSE, as "
            "plastic / without. Ties (both never) count for neither.\n\n"
            + "".join(lines) + "\n"
            + table(["setting", "cells", "seed", "first < 0.5", "first < 0.1", "target at",
                     "test MSE"], rows))


# Robust time to target (issue 30): runs trained with train.loss_window W record, for each loss
# milestone, the first step (and its training seconds) where the mean of the last W minibatch
# losses fell below it; one lucky minibatch of 128 sequences cannot trigger it.
ROBUST_LEVELS = (0.5, 0.1, 0.005)


def windowed(r):
    return r.get("training.loss_window", 1) > 1


# Seconds per step of each cell measured in one sitting on one machine, cells alternated
# (scripts/bench_step_seconds.sh > results/copy_first/step_seconds.csv): the seconds a run records
# depend on what ran beside it, so the time comparisons in seconds use steps x this rate.
STEP_SECONDS = "step_seconds.csv"


def read_step_seconds(out):
    """{(T, D, cell, H): seconds per step} from out/step_seconds.csv, or {} without one."""
    path = os.path.join(out, STEP_SECONDS)
    if not os.path.isfile(path):
        return {}
    rates = {}
    try:
        lines = list(readfiles.csv_rows(path, readfiles.read_text(path)))
    except (OSError, ValueError) as e:
        note(f"{e}: the bench rates are left out")
        return {}
    header = lines[0][1] if lines else []
    for _, fields in lines[1:]:
        row = dict(zip(header, fields))
        try:
            rates[(int(row["T"]), int(row["D"]), row["cell"], int(row["H"]))] = float(row["seconds_per_step"])
        except (KeyError, ValueError):
            note(f"{path}: a row without T, D, cell, H and seconds_per_step is left out: {fields}")
    return rates


def time_to(r, level, unit, rates=None):
    """steps, samples, seconds (as recorded), bench seconds (steps x the measured rate of the cell
    at its setting; nan without one) or multiply-adds to the windowed milestone; inf if never."""
    step = r.get(f"training.first_step_loss.below_{level:g}")
    if not math.isfinite(step):
        return math.inf
    if unit == "steps":
        return step
    if unit == "bench seconds":
        T, D, H = e5_setting(r)
        rate = (rates or {}).get((T, D, r.cell, H))
        return step * rate if rate else math.nan
    if unit == "seconds":
        v = r.get(f"training.first_seconds_loss.below_{level:g}")
        return v if math.isfinite(v) else math.nan
    samples = step * r.get("training.samples") / max(r.get("training.steps"), 1)
    if unit == "samples":
        return samples
    return samples * work_per_sequence(r)  # "multiply-adds"


def work_per_sequence(r):
    """Multiply-adds of one training sequence, estimated: forward and backward touch every param
    and every trace entry about three times per step (forward, and the two products of the
    backward), over the T steps."""
    T = e5_setting(r)[0]
    dims = (r.summary.get("cell") or {}).get("dims") or {}
    n, k = dims.get("n", 0), dims.get("k")
    trace = 0 if r.cell in ("gru", "brc", "nbrc") else n * (k if k else n)
    return 3.0 * (r.get("cell.params") + trace) * T


def robust_key(r):
    s = e5_setting(r)
    return (s[0], s[1]), r.cell, s[2]


def robust_section(sw, rates=None):
    runs = [r for r in sw.runs if windowed(r)]
    if not runs:
        return "", [], []
    by = group(runs, robust_key)
    keys = sorted(by, key=lambda k: (k[0], cell_key(k[1]), k[2]))
    W = int(runs[0].get("training.loss_window"))
    rows, comps = [], []
    for k in keys:
        rs = by[k]
        for lvl in ROBUST_LEVELS:
            got = [r for r in rs if math.isfinite(time_to(r, lvl, "steps"))]
            rows.append((f"T={k[0][0]} D={k[0][1]}", f"{k[1]} H={k[2]}", count(rs[0].get("cell.params")),
                         f"{lvl:g}", f"{len(got)}/{len(rs)}",
                         stats.ci([time_to(r, lvl, "steps") for r in got]).fmt(count),
                         stats.ci([time_to(r, lvl, "samples") for r in got]).fmt(count),
                         stats.ci([time_to(r, lvl, "seconds") for r in got]),
                         stats.ci([time_to(r, lvl, "bench seconds", rates) for r in got]),
                         stats.ci([time_to(r, lvl, "macs") for r in got]),
                         stats.ci([r.get("test.loss") for r in rs])))
    # each cell against nBRC at the same T and D (every nBRC size there), seed by seed
    for (setting, cell, H) in keys:
        if cell == "nbrc":
            continue
        for (s2, c2, H2) in keys:
            if s2 != setting or c2 != "nbrc":
                continue
            a = {r.seed: r for r in by[(setting, cell, H)]}
            b = {r.seed: r for r in by[(s2, c2, H2)]}
            seeds = sorted(set(a) & set(b))
            for lvl in (ROBUST_LEVELS[-1],):
                both = [s_ for s_ in seeds if math.isfinite(time_to(a[s_], lvl, "steps"))
                        and math.isfinite(time_to(b[s_], lvl, "steps"))]
                only_a = sum(1 for s_ in seeds if math.isfinite(time_to(a[s_], lvl, "steps"))
                             and not math.isfinite(time_to(b[s_], lvl, "steps")))
                only_b = sum(1 for s_ in seeds if math.isfinite(time_to(b[s_], lvl, "steps"))
                             and not math.isfinite(time_to(a[s_], lvl, "steps")))
                head = (f"T={setting[0]} D={setting[1]}: {cell} H={H} "
                        f"({count(a[seeds[0]].get('cell.params')) if seeds else '?'} params) against "
                        f"nbrc H={H2} ({count(b[seeds[0]].get('cell.params')) if seeds else '?'}), "
                        f"to the windowed target {lvl:g}, same seeds: reached by both in {len(both)}, "
                        f"by {cell} alone in {only_a}, by nbrc alone in {only_b}")
                if len(both) >= 2:
                    for unit in ("steps", "seconds", "bench seconds"):
                        ra = [time_to(a[s_], lvl, unit, rates) for s_ in both]
                        rb = [time_to(b[s_], lvl, unit, rates) for s_ in both]
                        if all(math.isfinite(v) for v in ra + rb):
                            head += f"; {unit}: " + str(stats.ratio_paired(ra, rb))
                tl = stats.ratio_paired([a[s_].get("test.loss") for s_ in seeds],
                                        [b[s_].get("test.loss") for s_ in seeds])
                comps.append(head + f"; test MSE {tl}")
    md = ("\n## Time to the target, robust\n\nRuns trained with `train.loss_window` = "
          f"{W}: each milestone is the first step where the mean of the last {W} minibatch "
          "losses fell below it (the run stops at the last one), with the training seconds then "
          "(one machine, one run at a time per core, beside whatever else ran: not comparable "
          "across runs), the steps times the cell's seconds per step measured in one sitting with "
          "the cells alternated (bench seconds: `" + STEP_SECONDS + "`, scripts/bench_step_seconds.sh; "
          "empty without a rate), the samples seen and the multiply-adds "
          "(estimated: 3 x (params + trace entries) per sequence step). Means over the seeds that "
          "reached it, with 95 % bootstrap intervals.\n\n"
          + table(["setting", "cell", "params", "milestone", "reached", "steps", "samples",
                   "seconds (recorded)", "bench seconds", "multiply-adds", "test MSE"], rows))
    return md, comps, runs


def ablation_section(sw):
    """The trace_ablation analysis (issue 30, item 4): each plastic cell's test loss with its trace
    intact, frozen at its initial value, its rate set to 0, and shuffled across sequences, and how
    much of the trace the state's outer products explain."""
    pre = "analyses.trace_ablation.measured"
    runs = [r for r in sw.runs if math.isfinite(r.get(f"{pre}.loss_intact"))]
    if not runs:
        return "", []
    by = group(runs, robust_key)
    keys = sorted(by, key=lambda k: (k[0], cell_key(k[1]), k[2]))
    rows, comps = [], []
    for k in keys:
        rs = by[k]
        v = {m: [r.get(f"{pre}.{m}") for r in rs] for m in
             ("loss_intact", "loss_frozen", "loss_no_rate", "loss_shuffled", "r2_outer_last",
              "r2_running_outer")}
        rows.append((f"T={k[0][0]} D={k[0][1]}", f"{k[1]} H={k[2]}", len(rs),
                     stats.ci(v["loss_intact"]), stats.ci(v["loss_frozen"]),
                     stats.ci(v["loss_no_rate"]), stats.ci(v["loss_shuffled"]),
                     stats.ci(v["r2_outer_last"]), stats.ci(v["r2_running_outer"])))
        for m, what in (("loss_frozen", "frozen at its initial value"), ("loss_no_rate", "with eta = 0"),
                        ("loss_shuffled", "shuffled across sequences")):
            comps.append(f"T={k[0][0]} D={k[0][1]}, {k[1]} H={k[2]}: test loss with the trace {what} "
                         f"over intact: {stats.ratio_paired(v[m], v['loss_intact'])}")
    md = ("\n## Does the trace carry information?\n\nThe trained plastic cells on the test "
          "sequences (the analysis `trace_ablation`): the loss with the trace intact, frozen at its "
          "initial value after every step, with its rate eta set to 0, and handed to another "
          "sequence of the batch after every step; and the squared correlation, over sequences, of "
          "each trace entry at the last step with the state's outer product outer(h_{T-1}, h_T) "
          "and with that product's running average at the trained rate (mean over entries). A "
          "trace that only mirrors the state loses little when frozen or shuffled and is explained "
          "by the state's products (R^2 near 1).\n\n"
          + table(["setting", "cell", "runs", "intact", "frozen", "eta = 0", "shuffled",
                   "R^2 outer(h, h')", "R^2 running outer"], rows))
    return md, comps


def summarize_copy_first(sw, out, args):
    # The grid's tables read the runs that stop on one minibatch's loss; runs that stop on a
    # window's mean (train.loss_window) have their own section, so a windowed run of the same
    # cell, size and seed is never pooled with them.
    grid = [r for r in sw.runs if not windowed(r)]
    by = group(grid, lambda r: (e5_setting(r), r.cell))
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
        rs = [r for r in grid if r.cell == cell and e5_setting(r)[1] == 1
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
            stops = sum(math.isfinite(reached_at(r, "target")) for r in rs)
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

    md.append(seed_by_seed(by, settings))
    robust_md, robust_comps, robust_runs = robust_section(sw, read_step_seconds(out))
    md.append(robust_md)
    ablation_md, ablation_comps = ablation_section(sw)
    md.append(ablation_md)

    figs = []
    figs += try_figure(e5_test_mse_figure, by, settings, out)
    figs += try_figure(e5_learning_curves, by, settings, out)
    figs += try_figure(e5_plastic_figure, sw.runs, out)
    figs += try_figure(e5_time_to_target_figure, robust_runs, out)
    md.append("\n" + figure_section(figs))
    if PLASTIC_CAPTIONS:
        md.append("Trace figures (one test sequence, trial 0): " + "; ".join(
            f"`{f}` from {run}" for f, run in PLASTIC_CAPTIONS) + ".\n")

    comps = []
    for s in settings:
        cells = {c: [r.get("test.loss") for r in by[(s, c)]] for ss, c in by if ss == s}
        for plastic, base in (("pbrc", "nbrc"), ("pbrc_split", "nbrc"), ("plastic_gru", "gru"),
                              ("plastic_gru_clip", "gru")):
            if plastic in cells and base in cells:
                a, b = mean(cells[plastic]), mean(cells[base])
                ratio = f"{a / b:.2f}x" if b > 0 and math.isfinite(a) else "n/a"
                pa = count(by[(s, plastic)][0].get("cell.params"))
                pb = count(by[(s, base)][0].get("cell.params"))
                comps.append(f"{setting_label(s)}: {plastic} test MSE {spread(cells[plastic])} "
                             f"({pa} params) vs {base} {spread(cells[base])} ({pb} params): "
                             f"{ratio} of {base}'s")
        if s[1] == 1 and s[0] >= 100:
            for c, v in sorted(cells.items(), key=lambda kv: cell_key(kv[0])):
                chance = mean([r.get("test.chance_loss") for r in by[(s, c)]])
                comps.append(f"{setting_label(s)}: {c} test MSE {spread(v)} (chance {g(chance)})")
    md.append("\n" + missing_section(sw) + "\n" + verdict_section(robust_comps + ablation_comps + comps))
    return "".join(md)


def e5_test_mse_figure(by, settings, out):
    if not settings:
        raise run_folder.Missing("no finished run")
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
    """One panel per setting that has a curve; a run's curve comes from its metrics.csv or the
    archive. Settings whose runs have none (finished on a machine since lost) get no empty panel:
    the figure names them, and each panel says how many of its runs it lacks."""
    if not settings:
        raise run_folder.Missing("no finished run")
    curves, missing = {}, {}
    for s in settings:
        for c in sorted({c for ss, c in by if ss == s}, key=cell_key):
            for r in by[(s, c)]:
                cv = curve(r)
                if cv is None:
                    missing[s] = missing.get(s, 0) + 1
                else:
                    curves.setdefault(s, []).append((c, cv))
    shown = [s for s in settings if s in curves]
    if not shown:
        raise run_folder.Missing("no finished run has a learning curve")
    n = len(shown)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows + 0.9),
                             squeeze=False, constrained_layout=True)
    per_sample = True
    cells_seen = set()
    for i, s in enumerate(shown):
        ax = axes[i // ncols, i % ncols]
        for c, (x, y, ps) in curves[s]:
            per_sample &= ps
            w = max(1, x.size // 150)
            ys = np.exp(learning_curve.smooth(np.log(y), w)) if w > 1 else y
            ax.plot(x[::w], ys[::w], color=CELL_COLOR.get(c, "0.3"), lw=0.8, alpha=0.8)
            cells_seen.add(c)
        ax.set_yscale("log")
        lacking = f" ({missing[s]} run(s) without a curve)" if s in missing else ""
        ax.set_title(setting_label(s) + lacking, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel("minibatch loss")
        ax.set_xlabel("samples seen" if per_sample else "step")
    if missing:
        note(f"learning curves: {sum(missing.values())} run(s) have no metrics.csv or archived curve")
    for k in range(n, nrows * ncols):
        axes[k // ncols, k % ncols].axis("off")
    fig.legend(handles=[Line2D([], [], color=CELL_COLOR.get(c, "0.3"), lw=1.5, label=c)
                        for c in sorted(cells_seen, key=cell_key)],
               loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    title = "E5 copy-first: learning curves (one line per seed, running mean)"
    absent = [setting_label(s) for s in settings if s not in curves]
    if absent:
        title += "\nno curve kept for " + ", ".join(absent)
    fig.suptitle(title)
    return save(fig, out, "learning_curves")


PLASTIC_CAPTIONS = []  # (figure file, run) of the trace figures, for the summary's text


def e5_plastic_figure(runs, out):
    """The trace figures: plastic_trace.png from the code's PBRC, plastic_trace_pbrc.png from the
    paper's (else from a plastic GRU), each from a run that learned (test MSE below 0.05) if any,
    nearest the published setting (T = 300, D = 32, H = 48; then D = 32 at any H, the nearest H
    first; then the lowest seed), so that a newly finished run does not silently swap the figure
    the text describes."""
    PLASTIC_CAPTIONS.clear()
    published = (300, 32, 48)

    def nearness(r):
        T, D, H = e5_setting(r)
        learned = r.get("test.loss") < 0.05
        return (not learned, (T, D, H) != published, (T, D) != published[:2], abs(H - 48), r.seed)

    def draw(cells, name):
        for r in sorted((r for r in runs if r.cell in cells), key=lambda r: (cells.index(r.cell), nearness(r))):
            entry = ((r.summary.get("analyses") or {}).get("trace"))
            if not isinstance(entry, dict):
                continue
            an = run_folder.AnalysisView(r.plot_run(out), "trace", "trace", entry)
            try:
                paths = trace.draw_plastic(an.run, an)
            except run_folder.Missing as e:
                note(f"plastic trace of {r.name}: {e}")
                continue
            if not paths:
                continue
            final = []
            for p in paths:
                dst = os.path.join(out, name + os.path.basename(p)[len("plastic"):])
                os.replace(p, dst)
                final.append(dst)
            PLASTIC_CAPTIONS.append((os.path.basename(final[0]), f"{r.cell} {setting_label(e5_setting(r))} seed {r.seed}"))
            return final
        return []

    figs = draw(["pbrc_split"], "plastic_trace") + draw(["pbrc", "plastic_gru_clip", "plastic_gru"], "plastic_trace_pbrc")
    if not figs:
        raise run_folder.Missing("no plastic run has a recorded matrix state")
    return figs


summarize = summarize_copy_first


def e5_time_to_target_figure(runs, out):
    """Steps and seconds to the windowed target, per cell and setting (seeds as dots, the mean
    and its 95 % interval as a bar); runs that never got there are marked at the top."""
    if not runs:
        raise run_folder.Missing("no run with train.loss_window")
    by = group(runs, robust_key)
    keys = sorted(by, key=lambda k: (k[0], cell_key(k[1]), k[2]))
    lvl = ROBUST_LEVELS[-1]
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 0.8 * len(keys) + 4), 4.6),
                             constrained_layout=True)
    for ax, unit in zip(axes, ("steps", "seconds")):
        plotted = 0
        for i, k in enumerate(keys):
            rs = by[k]
            ys = [time_to(r, lvl, unit) for r in rs]
            col = CELL_COLOR.get(k[1], "0.3")
            fin = [y for y in ys if math.isfinite(y)]
            plotted += len(fin)
            xs = [i + seed_jitter(j, len(ys), 0.4) for j in range(len(ys))]
            ax.plot([x for x, y in zip(xs, ys) if math.isfinite(y)], fin, ls="none", marker="o",
                    ms=4.5, color=col, alpha=0.85)
            never = sum(1 for y in ys if not math.isfinite(y))
            if never:
                ax.annotate(f"{never} never", (i, 1.0), xycoords=("data", "axes fraction"),
                            ha="center", va="bottom", fontsize=7, color=col)
            iv = stats.ci(fin)
            if iv.n >= 2:
                ax.errorbar([i], [iv.mean], yerr=[[iv.mean - iv.lo], [iv.hi - iv.mean]], color=col,
                            marker="s", ms=6, capsize=4, lw=1.6)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{c}\nH={H}\nT={s[0]}" for s, c, H in keys], fontsize=7.5)
        if plotted:  # a log axis needs a value; with none, every run is marked "never" above
            ax.set_yscale("log")
        ax.set_ylabel(f"{unit} to the target" + (" (log)" if plotted else ""))
        ax.grid(True, axis="y", which="both", alpha=0.25)
    fig.suptitle(f"E5: time to a windowed mean loss below {lvl:g} (dots: seeds; squares: mean, 95 % interval)")
    return save(fig, out, "time_to_target")
