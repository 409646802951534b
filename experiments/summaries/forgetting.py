"""E3: forgetting with dropout and EWC."""

import math

from summaries.common import (as_float, figure_section, g, group, mean, missing_section, note, np,
                              plot, plt, provenance, save, spread, table, try_figure,
                              verdict_section)


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


summarize = summarize_forgetting
