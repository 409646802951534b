"""E3: forgetting with dropout and EWC."""

import math
import os

from figures import run_folder, trace
from summaries import stats
from summaries.common import (as_float, figure_section, g, group, mean, missing_section, note, np,
                              plt, provenance, resolved_experiment, save, table, try_figure,
                              verdict_section)

# The archive keeps the resolved experiment (the dropout form) and derive(run)'s small arrays (the
# Fisher's zeros, each unit's largest state).
ARCHIVE_FILES = ("experiment.toml",)

LEARNED = 0.1  # a task is learned: test MSE at most 10 % of chance (predicting 0)


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


def phase_train(r, name):
    """The train table of phase `name` over the top-level one (the resolved experiment)."""
    e = resolved_experiment(r)
    t = dict(e.get("train") or {})
    for ph in e.get("phase") or []:
        if ph.get("name") == name:
            t.update(ph.get("train") or {})
    return t


def e3_dropout(r):
    """How task 1 was trained: (p, mode) with mode trial / step / fixed; p = 0 without dropout.
    Read from the resolved experiment (archived runs without one: the sweep axis, per trial)."""
    t = phase_train(r, (phase_names(r) or ["task1"])[0])
    if t:
        p = float(t.get("dropout", 0) or 0)
        mode = "fixed" if t.get("dropout_fixed") else "step" if t.get("dropout_per_step") else "trial"
        return (p, mode if p > 0 else "")
    v = r.axis("dropout")
    p = as_float(v) if v is not None else math.nan
    if not math.isfinite(p):
        return (None, "")  # neither the experiment nor an axis says
    return (p, "trial" if p > 0 else "")


def e3_method(r):
    """What guards task 1 during task 2: "ewc" (Kirkpatrick et al.'s, or none at lambda = 0),
    "course" (pycog's course trainer's EWC as its code reads, ewc.form = "course") or "joint"
    (task 2 trained with task-1 trials in every batch, train.rehearse: the upper reference)."""
    names = phase_names(r) or []
    if any(phase_train(r, n).get("rehearse") for n in names[1:]):
        return "joint"
    e = resolved_experiment(r)
    ewc = dict(e.get("ewc") or {})
    for ph in e.get("phase") or []:
        if names and ph.get("name") == names[0]:
            ewc.update(ph.get("ewc") or {})
    return "course" if ewc.get("form") == "course" else "ewc"


METHOD_LABEL = {"joint": "joint training (task 2 with task-1 trials in every batch, no EWC)",
                "course": "the course code's EWC (F from the current task-2 minibatch)"}


def dropout_order(d):
    return ({"": 0, "trial": 1, "step": 2, "fixed": 3}.get(d[1], 4), d[0] if d[0] is not None else -1)


def dropout_label(d):
    p, mode = d
    if p is None:
        return "dropout: as in the base file"
    if p == 0:
        return "no dropout"
    return {"trial": f"inverted dropout p = {p:g}, a mask per trial",
            "step": f"inverted dropout p = {p:g}, a mask per step",
            "fixed": f"pycog's fixed mask p = {p:g} (unscaled, one per phase)"}.get(mode, f"dropout {p:g}")


def ratio(r, key_loss, key_chance):
    loss, chance = r.get(key_loss), r.get(key_chance)
    return loss / chance if chance > 0 else math.nan


def e3_numbers(r):
    """task 1 before, task 1 after, task 2 after (each MSE / chance) and the retention."""
    t1, t2 = phase_names(r)[0], phase_names(r)[-1]
    return (ratio(r, f"test.after_{t1}.{t1}.loss", f"test.after_{t1}.{t1}.chance_loss"),
            ratio(r, f"test.after_{t2}.{t1}.loss", f"test.after_{t2}.{t1}.chance_loss"),
            ratio(r, f"test.after_{t2}.{t2}.loss", f"test.after_{t2}.{t2}.chance_loss"),
            r.get(f"test.retention.{t1}"))


def learned_both(r):
    b1, _, a2, _ = e3_numbers(r)
    return b1 <= LEARNED and a2 <= LEARNED


def derive(r):
    """The small arrays the mechanism rests on (kept in the archive): per weight matrix the share
    of its entries whose task-1 Fisher is exactly zero (and their count), and per unit the largest
    state on task-1 trials after task 1 and on task-2 trials after task 2."""
    d = os.path.join(r.dir, "derived")
    if os.path.isfile(os.path.join(d, "unit_max_task1.npy")):  # an archived run
        return {f[:-4]: np.load(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".npy")}
    out = {}
    fdir = os.path.join(r.dir, "fisher-task1")
    if os.path.isdir(fdir):
        w = [np.load(os.path.join(fdir, f)) for f in sorted(os.listdir(fdir)) if f.startswith("W_")]
        out["fisher_zero"] = np.array([sum(int(np.sum(v == 0)) for v in w), sum(v.size for v in w)])
    try:
        for key, name in (("task1_before", "unit_max_task1"), ("task2_after", "unit_max_task2"),
                          ("task1_after", "unit_max_task1_after")):
            x = np.load(os.path.join(r.dir, "arrays", f"{key}_trace_state_x.npy"))
            out[name] = x.reshape(-1, x.shape[-1]).max(axis=0)
    except (OSError, ValueError):
        pass
    return out


def mechanism(r):
    """From the run's saved (or archived) arrays: the share of weights whose task-1 Fisher is
    exactly zero, the units silent on task-1 trials after task 1, and how many of those task 2
    recruited (active on task-2 trials after task 2). None when the arrays are missing."""
    d = derive(r)
    if "unit_max_task1" not in d or "unit_max_task2" not in d:
        return None
    on1, on2 = d["unit_max_task1"] > 0, d["unit_max_task2"] > 0
    fz = d.get("fisher_zero")
    on1_after = d["unit_max_task1_after"] > 0 if "unit_max_task1_after" in d else None
    return {"fisher_zero": float(fz[0] / fz[1]) if fz is not None and fz[1] > 0 else math.nan,
            "silent_task1": int((~on1).sum()), "units": int(on1.size),
            "recruited": int((~on1 & on2).sum()), "silent_after_both": int((~on1 & ~on2).sum()),
            "woken_on_task1": int((~on1 & on1_after).sum()) if on1_after is not None else math.nan,
            "silenced_on_task1": int((on1 & ~on1_after).sum()) if on1_after is not None else math.nan}


def summarize_forgetting(sw, out, args):
    runs = [r for r in sw.runs if phase_names(r)]
    for r in sw.runs:
        if r not in runs:
            note(f"{r.name}: fewer than two phases in its training summary: left out")
    refs = [r for r in runs if e3_method(r) != "ewc"]  # the references, beside the lambda grid
    runs = [r for r in runs if e3_method(r) == "ewc"]
    md = [f"# E3 catastrophic forgetting: results\n\n{provenance(args, sw)}\n",
          "Errors are test MSE over chance (predicting 0) on fresh trials of each task. Task 1 "
          "before: after its own phase; after: after task 2. Retention = (E_chance - E_after) / "
          "(E_chance - E_before) of task 1 (1: nothing forgotten, 0: back to chance). Learned: "
          f"task 1 before and task 2 after each at most {LEARNED:g} of chance. Each number: mean "
          "over seeds with a 95 % bootstrap interval [lo, hi] (n seeds).\n\n"]
    rows, comps = [], []
    by = group(runs, lambda r: (e3_dropout(r), e3_lambda(r)))
    keys = sorted(by, key=lambda k: (dropout_order(k[0]), k[1]))
    for k in keys:
        rs = by[k]
        nums = [e3_numbers(r) for r in rs]
        rows.append((dropout_label(k[0]), g(k[1]), f"{sum(learned_both(r) for r in rs)}/{len(rs)}",
                     stats.ci([n[0] for n in nums]), stats.ci([n[1] for n in nums]),
                     stats.ci([n[2] for n in nums]), stats.ci([n[3] for n in nums])))
    md.append("## The paper's claim beside ours\n\nThe paper: EWC looked like no EWC; the network "
              "\"still somewhat remembers\" task 1. A correct EWC should trade task-2 error for "
              "task-1 retention as lambda grows, from fine-tuning (lambda = 0) towards keeping task "
              "1.\n\n")
    md.append(table(["dropout (task 1)", "EWC lambda", "learned", "task 1 before / chance",
                     "task 1 after / chance", "task 2 after / chance", "retention of task 1"], rows))
    for d in sorted({k[0] for k in keys}, key=dropout_order):
        lams = sorted(k[1] for k in keys if k[0] == d)
        base = {r.seed: e3_numbers(r) for r in by.get((d, 0.0), [])}
        if base:
            n0 = [v[0] for v in base.values()]
            comps.append(f"{dropout_label(d)}, lambda 0 (fine-tuning): task 1 learned (before task 2 "
                         f"at most {LEARNED:g} of chance) in {sum(x <= LEARNED for x in n0)} of "
                         f"{len(n0)} seeds, task 2 after its phase in "
                         f"{sum(v[2] <= LEARNED for v in base.values())} of {len(base)}")
        xs, ys = [], []
        for lam in lams:
            for r in by[(d, lam)]:
                xs.append(lam), ys.append(e3_numbers(r)[1])
        comps.append(f"{dropout_label(d)}: task-1 error after task 2 against lambda: "
                     f"{stats.trend(xs, ys)}")
        for lam in lams:
            if lam == 0 or not base:
                continue
            cur = {r.seed: e3_numbers(r) for r in by[(d, lam)]}
            seeds = sorted(set(cur) & set(base))
            comps.append(
                f"{dropout_label(d)}, lambda {g(lam)} against fine-tuning, same seeds: task-1 error "
                f"after {stats.ratio_paired([cur[s][1] for s in seeds], [base[s][1] for s in seeds])}; "
                f"task-2 error after {stats.ratio_paired([cur[s][2] for s in seeds], [base[s][2] for s in seeds])}")
    md.append(references_section(refs, by, comps))
    mech = [(r, mechanism(r)) for r in runs]
    mech = [(r, m) for r, m in mech if m]
    if mech:
        mrows = []
        for d, lam in sorted({(e3_dropout(r), e3_lambda(r)) for r, _ in mech},
                             key=lambda k: (dropout_order(k[0]), k[1])):
            ms = [m for r, m in mech if e3_dropout(r) == d and e3_lambda(r) == lam]
            mrows.append((dropout_label(d), g(lam), len(ms), stats.ci([m["fisher_zero"] for m in ms]),
                          stats.ci([m["silent_task1"] for m in ms]),
                          stats.ci([m["recruited"] for m in ms]),
                          stats.ci([m["silent_after_both"] for m in ms]),
                          stats.ci([m["woken_on_task1"] for m in ms]),
                          stats.ci([m["silenced_on_task1"] for m in ms]), ms[0]["units"]))
        md.append("\n### The mechanism, from the saved arrays\n\nFisher zero: the share of weight "
                  "entries (W_rec, W_in, W_out raw) whose diagonal Fisher of task 1 is exactly 0, "
                  "so EWC does not hold them at all. Silent on task 1: units whose state never "
                  "rises above 0 on 20 task-1 trials after task 1; recruited: of those, the units "
                  "active on 20 task-2 trials after task 2; woken: of those, the units active on "
                  "task-1 trials after task 2; silenced: units active on task 1 before and silent "
                  "on it after. Fisher zero: runs with lambda > 0 (a Fisher).\n\n"
                  + table(["dropout (task 1)", "EWC lambda", "runs", "Fisher zero", "units silent on task 1",
                           "recruited by task 2", "silent on both", "woken on task 1",
                           "silenced on task 1", "units"], mrows))
    figs = try_figure(e3_traces_figure, runs, out)
    figs += try_figure(e3_tradeoff_figure, by, keys, out, refs)
    figs += try_figure(e3_lambda_figure, by, keys, out)
    md.append("\n" + figure_section(figs) + "\n" + missing_section(sw) + "\n"
              + verdict_section(comps))
    return "".join(md)


def references_section(refs, by, comps):
    """Joint training and the course code's EWC, each per dropout setting, seed by seed against
    fine-tuning (lambda = 0, the same task-1 phase bit for bit)."""
    if not refs:
        return ""
    rows = []
    groups = group(refs, lambda r: (e3_method(r), e3_dropout(r)))
    for m, d in sorted(groups, key=lambda k: (k[0], dropout_order(k[1]))):
        rs = groups[(m, d)]
        nums = [e3_numbers(r) for r in rs]
        rows.append((METHOD_LABEL[m], dropout_label(d), f"{sum(learned_both(r) for r in rs)}/{len(rs)}",
                     stats.ci([n[0] for n in nums]), stats.ci([n[1] for n in nums]),
                     stats.ci([n[2] for n in nums]), stats.ci([n[3] for n in nums])))
        base = {r.seed: e3_numbers(r) for r in by.get((d, 0.0), [])}
        cur = {r.seed: e3_numbers(r) for r in rs}
        seeds = sorted(set(cur) & set(base))
        same = sum(cur[s][0] == base[s][0] for s in seeds)
        if seeds:
            comps.append(
                f"{METHOD_LABEL[m]}, {dropout_label(d)}, against fine-tuning on the same seeds "
                f"(task 1 before task 2 identical in {same} of {len(seeds)}): task-1 error after "
                f"{stats.ratio_paired([cur[s][1] for s in seeds], [base[s][1] for s in seeds])}; "
                f"task-2 error after {stats.ratio_paired([cur[s][2] for s in seeds], [base[s][2] for s in seeds])}")
    return ("\n## References: joint training and the course code's EWC\n\nJoint training bounds "
            "what any consolidation could keep: task 2 is trained with task-1 trials in half of "
            "every batch (train.rehearse). The course code's EWC (pycog's course trainer, "
            "`ewc.form = \"course\"`, lambda 500 on W_in, W_rec and W_out) recomputes its F at every "
            "task-2 step from the current task-2 minibatch. Each starts from the same task-1 "
            "network as fine-tuning in its seed.\n\n"
            + table(["method", "dropout (task 1)", "learned", "task 1 before / chance",
                     "task 1 after / chance", "task 2 after / chance", "retention of task 1"], rows))


def e3_trace(r, key, out):
    entry = (r.summary.get("analyses") or {}).get(key)
    if not isinstance(entry, dict):
        raise run_folder.Missing(f"{r.name} has no analysis '{key}'")
    an = run_folder.AnalysisView(r.plot_run(out), key, run_folder.analysis_kind(key, entry), entry)
    return trace.trace_arrays(an)


def e3_traces_figure(runs, out):
    """Task-1 outputs vs targets: before task 2, after with EWC (lambda 500, else the nearest
    positive), after without; dropout p = 0.5 runs preferred, the lowest seed."""
    def pick(pred):
        rs = [r for r in runs if pred(r)]
        rs.sort(key=lambda r: (dropout_order(e3_dropout(r)), r.seed))
        return rs[0] if rs else None
    lams = sorted({e3_lambda(r) for r in runs if e3_lambda(r) > 0}, key=lambda x: abs(x - 500))
    ewc = pick(lambda r: lams and e3_lambda(r) == lams[0])
    if ewc is None:
        raise run_folder.Missing("no run with EWC (lambda > 0)")
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


def e3_tradeoff_figure(by, keys, out, refs=()):
    """Kirkpatrick et al.'s trade-off: task-1 error after task 2 against task-2 error, one curve
    per dropout setting through the lambdas (seeds as dots, means joined), fine-tuning (lambda = 0)
    at one end; joint training (stars) and the course code's EWC (triangles) in their setting's
    colour; task 1 before task 2 and chance as references."""
    if not keys:
        raise run_folder.Missing("no finished run")
    fig, ax = plt.subplots(figsize=(10.5, 5.2), constrained_layout=True)
    drops = sorted({k[0] for k in keys}, key=dropout_order)
    before = []
    for i, d in enumerate(drops):
        c = f"C{i}"
        lams = sorted(k[1] for k in keys if k[0] == d)
        mx, my = [], []
        for lam in lams:
            nums = [e3_numbers(r) for r in by[(d, lam)]]
            before += [n[0] for n in nums]
            xs, ys = [n[2] for n in nums], [n[1] for n in nums]
            ax.plot(xs, ys, ls="none", marker="o", ms=3.5, color=c, alpha=0.45)
            mx.append(stats.ci(xs).mean), my.append(stats.ci(ys).mean)
        ax.plot(mx, my, color=c, lw=1.6, marker="s", ms=5, label=dropout_label(d))
        for lam, x, y in zip(lams, mx, my):
            ax.annotate(f"{g(lam)}", (x, y), textcoords="offset points", xytext=(4, 3),
                        fontsize=7, color=c)
        for m, marker in (("joint", "*"), ("course", "^")):
            nums = [e3_numbers(r) for r in refs if e3_method(r) == m and e3_dropout(r) == d]
            if not nums:
                continue
            xs, ys = [n[2] for n in nums], [n[1] for n in nums]
            ax.plot(xs, ys, ls="none", marker=marker, ms=5, color=c, alpha=0.4)
            ax.plot([stats.ci(xs).mean], [stats.ci(ys).mean], ls="none", marker=marker, ms=12,
                    color=c, markeredgecolor="k", label=f"{m}: {dropout_label(d)}")
    ax.axhline(1.0, color="0.4", ls=":", lw=1.0, label="chance (predicting 0)")
    b = stats.ci(before)
    if b.n:
        ax.axhline(b.mean, color="k", ls="--", lw=1.0, label=f"task 1 before task 2 ({g(b.mean)})")
    ax.axvline(LEARNED, color="#c0392b", ls=":", lw=1.0, label=f"task 2 learned ({LEARNED:g})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("task-2 MSE / chance after task 2 (log)")
    ax.set_ylabel("task-1 MSE / chance after task 2 (log)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(frameon=False, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the data
    ax.set_title("E3: what EWC trades (labels: lambda; dots: seeds)")
    return save(fig, out, "tradeoff")


def e3_lambda_figure(by, keys, out):
    if not keys:
        raise run_folder.Missing("no finished run")
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
    ax_r.set_yscale("symlog", linthresh=1)
    ax_r.axhline(1, color="0.5", lw=0.8, ls=":")
    ax_r.axhline(0, color="0.5", lw=0.8, ls=":")
    ax_r.set_ylabel("retention of task 1 (symlog)")
    ax_r.set_title("task-1 retention after task 2 (1: kept, 0: chance)", fontsize=10)
    ax_2.set_yscale("log")
    ax_2.set_ylabel("task-2 MSE after task 2 (log)")
    ax_2.set_title("does task 2 still learn?", fontsize=10)
    fig.suptitle("E3: retention and task-2 error against the EWC strength (dots: seeds)")
    return save(fig, out, "retention_vs_lambda")


summarize = summarize_forgetting
