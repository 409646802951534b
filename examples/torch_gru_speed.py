"""A cellc GRU inside a PyTorch model, trained in an ordinary torch loop, against torch.nn.GRU.

    PYTHONPATH=python /usr/bin/python3 examples/torch_gru_speed.py [--n 128] [--T 100] [--B 32]

Both models: a GRU of n units over [T, B, 1] inputs and a linear readout, trained with
torch.optim.Adam on the same data (the running mean of the input: a memory task). cellc runs each
direction as one native call over all T steps (the JIT forward, then the generated backward);
torch.nn.GRU runs ATen's CPU kernels step by step. Prints ms per training step and the final loss.

Fairness: torch uses the BLAS that libblas.so.3 resolves to. On Debian that may be the reference
BLAS (much slower GEMM) unless OpenBLAS is selected: see docs/python.md. The script prints which
one it loaded, and uses one thread for both (torch.set_num_threads(1), cellc.set_threads(1)).
"""
import argparse
import pathlib
import sys
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
import cellc  # noqa: E402
import cellc.torch  # noqa: E402


def blas_loaded():
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower()}
        return ", ".join(sorted(pathlib.Path(p).name for p in libs)) or "none found"
    except OSError:
        return "unknown"


class TorchGru(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.gru = torch.nn.GRU(1, n)
        self.out = torch.nn.Linear(n, 1)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.out(h)


class CellcGru(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        cell = cellc.compile(ROOT / "cells" / "gru.cell", dims={"n": n, "n_in": 1, "n_out": 1})
        self.rnn = cellc.torch.CellModule(cell, seed=0)  # its readout W_out, b_out is in the cell

    def forward(self, x):
        y, _ = self.rnn(x)
        return y


def train(model, x, target, steps):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[2:])) * 1e3, loss.item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cellc.set_threads(1)
    torch.manual_seed(0)
    x = torch.randn(args.T, args.B, 1)
    target = torch.cumsum(x, 0) / torch.arange(1, args.T + 1).view(-1, 1, 1)

    print(f"GRU n={args.n}, T={args.T}, B={args.B}, float32, {torch.get_num_threads()} thread (cellc: {cellc.threads()}); "
          f"torch {torch.__version__}, BLAS loaded: {blas_loaded()}")
    ms_torch, loss_torch = train(TorchGru(args.n), x, target, args.steps)
    ms_cellc, loss_cellc = train(CellcGru(args.n), x, target, args.steps)
    print(f"{'model':18} {'ms/step':>9} {'loss after':>12}")
    print(f"{'torch.nn.GRU':18} {ms_torch:9.2f} {loss_torch:12.5f}")
    print(f"{'cellc gru.cell':18} {ms_cellc:9.2f} {loss_cellc:12.5f}")
    print(f"cellc / torch time per step: {ms_cellc / ms_torch:.2f} (training step: forward, "
          f"backward, Adam; median of {args.steps - 2})")


if __name__ == "__main__":
    main()
