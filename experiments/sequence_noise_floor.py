#!/usr/bin/python3
"""The lowest validation RMSE any network can reach on E1's sequence task (issue 12, item 4).

The targets are bumps at t_s + offset + spacing (i + 1)... of width `width`, but t_s is drawn from
U(onset_min, onset_max) continuously while the network steps every dt (10 ms): from the input it
learns only the step after which the pulse began, plus whatever the pulse's amplitude,
X = amp exp(-(t - t_s) / decay), says about where in that step t_s fell. The input carries white
noise of standard deviation sqrt(2 tau_in / dt) sigma_in at every step, so that phase is known only
up to a posterior. The best causal prediction of each target at step t is its posterior mean given
the inputs up to t; its mean squared error is a floor for every network (recurrent noise and an
imperfect network only add to it). This script computes that floor by Monte Carlo with an exact
grid posterior over t_s, and, for comparison, the floor when the amplitude is ignored (t_s known
only to its step).

    /usr/bin/python3 experiments/sequence_noise_floor.py experiments/sequence_shift.toml
"""
import argparse
import sys
import tomllib

import numpy as np


def read(path):
    """The experiment file as a dict; a clear exit on an unreadable or malformed one."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        sys.exit(f"{path}: {e}")


def sequence_task(exp, path):
    """The experiment's [task] with the sequence task's defaults filled in."""
    task = exp.get("task", {})
    if task.get("kind") != "sequence":
        sys.exit(f"{path}: [task] kind must be \"sequence\", not {task.get('kind')!r}")
    defaults = {"baseline": 0.2, "tau_in": 100, "sigma_in": 0.01, "input_sign": -1}
    return {**defaults, **task}


def task_of(path):
    return sequence_task(read(path), path)


def floor(task, trials, grid, seed):
    dt, T = task["dt"], int(round(task["duration"] / task["dt"]))
    lo, hi = task["onset_min"], task["onset_max"]
    amp, decay, sign = task["input_amp"], task["input_decay"], task["input_sign"]
    sigma = np.sqrt(2 * task["tau_in"] / dt) * task["sigma_in"]
    n, height, width = task["outputs"], task["height"], task["width"]
    centers = task["offset"] + task["spacing"] * np.arange(n)  # bump centres after t_s

    t = np.arange(T) * dt                                   # step t reads the input at time t dt
    s = lo + (np.arange(grid) + 0.5) * (hi - lo) / grid     # the grid over t_s
    X = np.where(t[:, None] > s[None, :], amp * np.exp(sign * (t[:, None] - s[None, :]) / decay), 0.0)
    Y = height * np.exp(-(t[None, :, None] - s[None, None, :] - centers[:, None, None]) ** 2
                        / (2 * width ** 2))                 # [n, T, grid]

    rng = np.random.default_rng(seed)
    se_bayes, se_step = [], 0.0
    for _ in range(trials):
        k = rng.integers(grid)                              # t_s drawn on the grid (fine enough)
        u = np.maximum(0.0, task["baseline"] + X[:, k] + sigma * rng.standard_normal(T))
        # Gaussian log likelihood of every candidate t_s, accumulated over the steps seen so far.
        # relu(0.2 + noise) never clips here (0.2 is 4.5 sigma): no censoring term is needed.
        ll = np.cumsum(-((u[:, None] - task["baseline"] - X) ** 2) / (2 * sigma ** 2), axis=0)
        post = np.exp(ll - ll.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        pred = np.einsum("tg,itg->it", post, Y)
        se_bayes.append(((pred - Y[:, :, k]) ** 2).sum())
        # Amplitude ignored: t_s uniform over the candidates that switch the input on at the same step.
        same = (X > 0) == (X[:, k] > 0)[:, None]
        cand = np.cumprod(same, axis=0).astype(float)       # still consistent after step t
        cand /= cand.sum(axis=1, keepdims=True)
        se_step += ((np.einsum("tg,itg->it", cand, Y) - Y[:, :, k]) ** 2).sum()
    return np.array(se_bayes) / (T * n), np.sqrt(se_step / (trials * T * n)), np.sqrt((Y ** 2).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", help="an experiment file with a [task] of kind \"sequence\"")
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--grid", type=int, default=2000, help="grid points over [onset_min, onset_max)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    exp = read(args.experiment)
    task = sequence_task(exp, args.experiment)
    per_trial, step, zero = floor(task, args.trials, args.grid, args.seed)
    bayes = np.sqrt(per_trial.mean())
    print(f"RMSE of the best causal prediction (posterior mean of t_s from the noisy input): {bayes:.4f}")
    print(f"RMSE when t_s is known only to its step (amplitude ignored):                   {step:.4f}")
    print(f"RMSE of predicting 0 everywhere:                                                {zero:.4f}")
    # A validation draws `validation_batch` fresh trials: how low can its RMSE fall by luck alone?
    vb = int(exp.get("train", {}).get("validation_batch", 100))
    rng = np.random.default_rng(args.seed + 1)
    draws = np.sqrt(per_trial[rng.integers(len(per_trial), size=(20000, vb))].mean(axis=1))
    print(f"the same over one validation of {vb} trials: 1st percentile {np.percentile(draws, 1):.4f}, "
          f"median {np.median(draws):.4f}; P(RMSE <= 0.1) = {np.mean(draws <= 0.1):.4f}")
    print(f"({args.trials} trials, a grid of {args.grid} onsets; the Monte Carlo error is about "
          f"{100 / np.sqrt(args.trials):.0f}% of the first two numbers' squares)")


if __name__ == "__main__":
    main()
