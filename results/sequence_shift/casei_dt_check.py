"""E1 case i: does the learned sequence survive the analysis dt? A one-off check for the seeds whose
run folders are gone (their trial arrays were not archived): the archived trained params are run
through the dale_rnn step (noise off) on the analysis trial at dt = 0.5 ms (alpha 0.01) and at the
training dt (10 ms, alpha 0.2), with the inputs of a case-ii run (the same task input; the trial is
deterministic). Validated first against a case-ii run's stored outputs.
  /usr/bin/python3 results/sequence_shift/casei_dt_check.py <case-ii run folder> results/sequence_shift/runs/sequence_shift_seeds
"""
import os
import sys

import numpy as np


def sim(pdir, u, alpha):
    """cells/dale_rnn.cell's step without noise or dropout: x' = (1 - a) x + a (W_rec relu(x) + relu(W_in) u),
    z = relu(W_out) relu(x'), W_rec = relu(W_rec_raw * (1 - I)) * ei."""
    P = {k[:-4]: np.load(os.path.join(pdir, k)) for k in os.listdir(pdir) if k.endswith(".npy")}
    n = P["x0"].size
    ei = np.where(np.arange(n) < int(0.8 * n), 1.0, -1.0)
    W = np.maximum(P["W_rec_raw"] * (1 - np.eye(n)), 0) * ei[None, :]
    win, wout = np.maximum(P["W_in_raw"], 0), np.maximum(P["W_out_raw"], 0)
    x, out = P["x0"].astype(np.float64).copy(), []
    for t in range(u.shape[0]):
        x = (1 - alpha) * x + alpha * (W @ np.maximum(x, 0) + win @ u[t])
        out.append(wout @ np.maximum(x, 0))
    return np.array(out)


ref, archive = sys.argv[1], sys.argv[2]
inputs = {}
for k, alpha in (("trial", 0.01), ("trained", 0.2)):
    u = np.load(os.path.join(ref, "arrays", f"{k}_input.npy"))
    inputs[k] = (u.reshape(u.shape[0], -1), alpha)
    z = sim(os.path.join(ref, "params"), *inputs[k])
    o = np.load(os.path.join(ref, "arrays", f"{k}_output.npy"))
    print(f"validation on {ref} ({k}): max |sim - stored| {np.abs(z - o).max():.2g} (outputs up to {np.abs(o).max():.3g})")
HEIGHT, PRESENT = 12.0, 0.25  # the task's bump height; summaries/sequence_shift.py's PRESENT
print("seed | outputs >= 0.25 of the target height, analysis dt / training dt | peaks at the analysis dt")
for run in sorted(os.listdir(archive), key=lambda s: int(s.split("=")[1]) if "=" in s else 0):
    p = os.path.join(archive, run, "params")
    if not os.path.isdir(p):
        continue
    pk = {k: sim(p, *inputs[k]).max(axis=0) for k in inputs}
    shown = {k: int(np.sum(v >= PRESENT * HEIGHT)) for k, v in pk.items()}
    print(f"{run} | {shown['trial']} / {shown['trained']} of {pk['trial'].size} | "
          + " ".join(f"{v:.1f}" for v in pk["trial"]))
