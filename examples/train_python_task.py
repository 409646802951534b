"""Train a cell on a task written in Python, then plot what it learned.

    PYTHONPATH=python /usr/bin/python3 examples/train_python_task.py [--steps 1500] [--out fig.png]

The task: a pulse of random height arrives at a random time; the network must hold its height
until the end of the trial (a working-memory task, as in neurogym's or PsychRNN's), seen through
a mask that ignores the first steps. The task is a plain function (batch, rng) -> (inputs,
targets, mask) of numpy arrays; cellc's trainer (BPTT, Adam, clipping) calls it for fresh trials.
"""
import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
import cellc  # noqa: E402

T = 40


def hold_task(batch, rng):
    onset = rng.integers(5, 15, size=batch)
    height = rng.uniform(-1, 1, size=batch)
    x = np.zeros((T, batch, 1))
    target = np.zeros((T, batch, 1))
    mask = np.zeros((T, batch, 1))
    for b in range(batch):
        x[onset[b]:onset[b] + 2, b, 0] = height[b]
        target[onset[b]:, b, 0] = height[b]
        mask[onset[b]:, b, 0] = 1
    return x, target, mask


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default=str(ROOT / "cells" / "gru.cell"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--out", default="hold_task.png")
    args = ap.parse_args()

    cell = cellc.compile(args.cell, dims={"n": 32})
    print(cell)
    print(cell.layout)
    result = cellc.train(cell, hold_task, optimizer="adam", learning_rate=3e-3, batch=32,
                         max_steps=args.steps, validate_every=250, validation_batch=128,
                         target_error=0.03, seed=1)
    print(f"stopped after {result['steps']} steps ({result['stop_reason']}); "
          f"best validation RMSE {result['best_error']:.4f}")

    x, target, mask = hold_task(4, np.random.default_rng(123))
    y, _ = cell.unroll(result["params"], x=x)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (python3-matplotlib): no figure")
        return
    fig, axes = plt.subplots(4, 1, figsize=(6, 7), sharex=True)
    for b, ax in enumerate(axes):
        ax.plot(x[:, b, 0], color="0.6", label="input")
        ax.plot(np.where(mask[:, b, 0] > 0, target[:, b, 0], np.nan), "k--", label="target")
        ax.plot(y[:, b, 0], color="C3", label=f"{cell.name} output")
        ax.set_ylim(-1.2, 1.2)
    axes[0].legend(loc="upper left", fontsize=8, ncol=3)
    axes[-1].set_xlabel("step")
    fig.suptitle(f"{cell.name} trained by cellc on a Python task")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
