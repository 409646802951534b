#!/usr/bin/python3
"""PyTorch baseline of cellc's training step, for bench/compare.py.

One training step: forward over T steps with a readout every step, MSE against a target at every
step, backward, Adam; float32. The same cells as cells/*.cell (dale_rnn without its noise term,
which the cellc side runs with zero noise), n_in = n_out = 1. Each point runs every variant and
reports the best: eager (a Python loop), TorchScript (the loop scripted), nn.GRU (gru only), on 1
and 2 threads.

Debian's python3-torch links libblas.so.3, the reference BLAS unless OpenBLAS is selected: run it
through scripts/bench_grid.sh, which puts OpenBLAS first on LD_LIBRARY_PATH for this process
only. The BLAS this process loaded is printed (from /proc/self/maps) and stored in the output.

Threads: torch.set_num_threads does not reach that OpenBLAS, which runs on every core unless told
(openblas_set_num_threads). Each point therefore runs every variant with torch on t threads and
the BLAS on b, for (t, b) in (1, 1), (1, max) and (max, max) of --threads, labelled "t" when b = t
and "t-blasb" otherwise: on two cores, torch on one thread with OpenBLAS on two is the fastest at
large n (torch on two threads beside OpenBLAS on two spins), and the one-core SGEMM rate is one
core's.

usage: /usr/bin/python3 bench/torch_baseline.py --out torch.json [--cells gru,pbrc] [--n 32,100]
       [--batch 1,16] [--steps 100] [--min-time 0.3] [--repeats 3] [--threads 1,2] [--max-gb 8]
Each point is timed in --repeats windows of at least --min-time seconds and the fastest counts, as
on cellc's side (bench_grid.cpp): a burst of another tenant's work only slows a window down.
"""
import argparse
import ctypes
import json
import math
import sys
import time

import torch
from torch import nn


def relu(x):
    return torch.relu(x)


class Cell(nn.Module):
    """A cell's params and its step; `prepare` computes what depends only on params (once per
    sequence, as a PyTorch user writes it)."""

    def __init__(self, n, n_in, n_out):
        super().__init__()
        self.n, self.n_in, self.n_out = n, n_in, n_out

    def p(self, *shape, scale=None):
        scale = scale if scale is not None else 1.0 / math.sqrt(shape[-1])
        return nn.Parameter(torch.randn(*shape) * scale)


class DaleRnn(Cell):
    def __init__(self, n, n_in, n_out):
        super().__init__(n, n_in, n_out)
        self.x0 = nn.Parameter(torch.full((n,), 0.1))
        self.W_rec_raw = nn.Parameter(torch.rand(n, n) * 0.1)
        self.W_in_raw = nn.Parameter(torch.rand(n, n_in) * 0.1)
        self.W_out_raw = nn.Parameter(torch.rand(n_out, n) * 0.1)
        ne = int(math.floor(0.8 * n + 1e-9))
        ei = torch.ones(n)
        ei[ne:] = -1
        self.register_buffer("ei", ei)
        self.register_buffer("no_self", 1 - torch.eye(n))
        self.alpha = 0.2

    def init_state(self, B):
        return [self.x0.expand(B, self.n)]

    def prepare(self):
        return [relu(self.W_rec_raw * self.no_self) * self.ei, relu(self.W_in_raw), relu(self.W_out_raw)]

    def step(self, s, u, w):
        x, = s
        W_rec, W_in, W_out = w
        xn = (1 - self.alpha) * x + self.alpha * (relu(x) @ W_rec.t() + u @ W_in.t())
        return [xn], relu(xn) @ W_out.t()


class Gru(Cell):
    def __init__(self, n, n_in, n_out):
        super().__init__(n, n_in, n_out)
        for g in "zrh":
            setattr(self, f"W_{g}h", self.p(n, n))
            setattr(self, f"W_{g}x", self.p(n, n_in))
            setattr(self, f"b_{g}", nn.Parameter(torch.zeros(n)))
        self.W_out = self.p(n_out, n)
        self.b_out = nn.Parameter(torch.zeros(n_out))

    def init_state(self, B):
        return [torch.zeros(B, self.n)]

    def prepare(self):
        return []

    def step(self, s, x, w):
        h, = s
        z = torch.sigmoid(h @ self.W_zh.t() + x @ self.W_zx.t() + self.b_z)
        r = torch.sigmoid(h @ self.W_rh.t() + x @ self.W_rx.t() + self.b_r)
        c = torch.tanh(r * (h @ self.W_hh.t()) + x @ self.W_hx.t() + self.b_h)
        hn = z * c + (1 - z) * h
        return [hn], hn @ self.W_out.t() + self.b_out


class Brc(Cell):
    def __init__(self, n, n_in, n_out):
        super().__init__(n, n_in, n_out)
        self.w_z = nn.Parameter(-torch.ones(n))
        self.w_r = nn.Parameter(torch.ones(n))
        for g in "zrh":
            setattr(self, f"W_{g}x", self.p(n, n_in))
            setattr(self, f"b_{g}", nn.Parameter(torch.zeros(n)))
        self.W_out = self.p(n_out, n)
        self.b_out = nn.Parameter(torch.zeros(n_out))

    def init_state(self, B):
        return [torch.zeros(B, self.n)]

    def prepare(self):
        return []

    def step(self, s, x, w):
        h, = s
        z = torch.sigmoid(self.w_z * h + x @ self.W_zx.t() + self.b_z)
        r = 1 + torch.tanh(self.w_r * h + x @ self.W_rx.t() + self.b_r)
        c = torch.tanh(r * h + x @ self.W_hx.t() + self.b_h)
        hn = z * c + (1 - z) * h
        return [hn], hn @ self.W_out.t() + self.b_out


class Nbrc(Cell):
    def __init__(self, n, n_in, n_out):
        super().__init__(n, n_in, n_out)
        for g in "zr":
            setattr(self, f"W_{g}h", self.p(n, n))
        for g in "zrh":
            setattr(self, f"W_{g}x", self.p(n, n_in))
            setattr(self, f"b_{g}", nn.Parameter(torch.zeros(n)))
        self.W_out = self.p(n_out, n)
        self.b_out = nn.Parameter(torch.zeros(n_out))

    def init_state(self, B):
        return [torch.zeros(B, self.n)]

    def prepare(self):
        return []

    def step(self, s, x, w):
        h, = s
        z = torch.sigmoid(h @ self.W_zh.t() + x @ self.W_zx.t() + self.b_z)
        r = 1 + torch.tanh(h @ self.W_rh.t() + x @ self.W_rx.t() + self.b_r)
        c = torch.tanh(r * h + x @ self.W_hx.t() + self.b_h)
        hn = z * c + (1 - z) * h
        return [hn], hn @ self.W_out.t() + self.b_out


class Pbrc(Nbrc):
    def __init__(self, n, n_in, n_out):
        super().__init__(n, n_in, n_out)
        self.A = nn.Parameter(torch.randn(n, n) * 0.01)
        self.eta = nn.Parameter(torch.tensor(0.03))

    def init_state(self, B):
        return [torch.zeros(B, self.n), torch.zeros(B, self.n, self.n)]

    def step(self, s, x, w):
        h, hebb = s
        z = torch.sigmoid(h @ self.W_zh.t() + x @ self.W_zx.t() + self.b_z)
        r = 1 + torch.tanh(h @ self.W_rh.t() + x @ self.W_rx.t() + self.b_r)
        plastic = torch.bmm(self.A * hebb, h.unsqueeze(2)).squeeze(2)
        c = torch.tanh(r * (h + plastic) + x @ self.W_hx.t() + self.b_h)
        hn = z * c + (1 - z) * h
        hebbn = (1 - self.eta) * hebb + self.eta * (hn.unsqueeze(2) * h.unsqueeze(1))
        return [hn, hebbn], hn @ self.W_out.t() + self.b_out


CELLS = {"dale_rnn": DaleRnn, "gru": Gru, "brc": Brc, "nbrc": Nbrc, "pbrc": Pbrc}


class Eager(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, xs):
        s = self.cell.init_state(xs.shape[1])
        w = self.cell.prepare()
        ys = []
        for t in range(xs.shape[0]):
            s, y = self.cell.step(s, xs[t], w)
            ys.append(y)
        return torch.stack(ys)


class TorchGru(nn.Module):
    """nn.GRU (its fused C++ loop) with a linear readout: the GRU as most users would write it."""

    def __init__(self, n, n_in, n_out):
        super().__init__()
        self.gru = nn.GRU(n_in, n)
        self.out = nn.Linear(n, n_out)

    def forward(self, xs):
        h, _ = self.gru(xs)
        return self.out(h)


def make_script(cell):
    """A TorchScript function of the loop for this cell, with its params as arguments."""
    kind = type(cell).__name__
    if kind == "DaleRnn":
        @torch.jit.script
        def loop(xs: torch.Tensor, x0: torch.Tensor, W_rec: torch.Tensor, W_in: torch.Tensor,
                 W_out: torch.Tensor, alpha: float):
            x = x0.expand(xs.shape[1], x0.shape[0])
            ys = []
            for t in range(xs.shape[0]):
                x = (1 - alpha) * x + alpha * (torch.relu(x) @ W_rec.t() + xs[t] @ W_in.t())
                ys.append(torch.relu(x) @ W_out.t())
            return torch.stack(ys)

        def run(xs):
            W_rec, W_in, W_out = cell.prepare()
            return loop(xs, cell.x0, W_rec, W_in, W_out, cell.alpha)
        return run
    if kind in ("Gru", "Nbrc", "Brc"):
        @torch.jit.script
        def loop(xs: torch.Tensor, kind: int, Wzh: torch.Tensor, Wrh: torch.Tensor, Whh: torch.Tensor,
                 Wzx: torch.Tensor, Wrx: torch.Tensor, Whx: torch.Tensor, bz: torch.Tensor,
                 br: torch.Tensor, bh: torch.Tensor, Wout: torch.Tensor, bout: torch.Tensor):
            h = torch.zeros(xs.shape[1], bz.shape[0])
            # Input projections for every step at once (what a careful PyTorch user does).
            xz = xs @ Wzx.t() + bz
            xr = xs @ Wrx.t() + br
            xh = xs @ Whx.t() + bh
            ys = []
            for t in range(xs.shape[0]):
                if kind == 0:  # gru
                    z = torch.sigmoid(h @ Wzh.t() + xz[t])
                    r = torch.sigmoid(h @ Wrh.t() + xr[t])
                    c = torch.tanh(r * (h @ Whh.t()) + xh[t])
                elif kind == 1:  # nbrc
                    z = torch.sigmoid(h @ Wzh.t() + xz[t])
                    r = 1 + torch.tanh(h @ Wrh.t() + xr[t])
                    c = torch.tanh(r * h + xh[t])
                else:  # brc: Wzh, Wrh are the vectors w_z, w_r
                    z = torch.sigmoid(Wzh * h + xz[t])
                    r = 1 + torch.tanh(Wrh * h + xr[t])
                    c = torch.tanh(r * h + xh[t])
                h = z * c + (1 - z) * h
                ys.append(h)
            hs = torch.stack(ys)
            return hs @ Wout.t() + bout

        k = {"Gru": 0, "Nbrc": 1, "Brc": 2}[kind]

        def run(xs):
            c = cell
            if k == 2:
                Wzh, Wrh, Whh = c.w_z, c.w_r, c.w_z
            else:
                Wzh, Wrh = c.W_zh, c.W_rh
                Whh = c.W_hh if k == 0 else c.W_zh
            return loop(xs, k, Wzh, Wrh, Whh, c.W_zx, c.W_rx, c.W_hx, c.b_z, c.b_r, c.b_h, c.W_out, c.b_out)
        return run
    if kind == "Pbrc":
        @torch.jit.script
        def loop(xs: torch.Tensor, Wzh: torch.Tensor, Wrh: torch.Tensor, Wzx: torch.Tensor,
                 Wrx: torch.Tensor, Whx: torch.Tensor, bz: torch.Tensor, br: torch.Tensor,
                 bh: torch.Tensor, A: torch.Tensor, eta: torch.Tensor, Wout: torch.Tensor,
                 bout: torch.Tensor):
            n = bz.shape[0]
            B = xs.shape[1]
            h = torch.zeros(B, n)
            hebb = torch.zeros(B, n, n)
            xz = xs @ Wzx.t() + bz
            xr = xs @ Wrx.t() + br
            xh = xs @ Whx.t() + bh
            ys = []
            for t in range(xs.shape[0]):
                z = torch.sigmoid(h @ Wzh.t() + xz[t])
                r = 1 + torch.tanh(h @ Wrh.t() + xr[t])
                plastic = torch.bmm(A * hebb, h.unsqueeze(2)).squeeze(2)
                c = torch.tanh(r * (h + plastic) + xh[t])
                hn = z * c + (1 - z) * h
                hebb = (1 - eta) * hebb + eta * (hn.unsqueeze(2) * h.unsqueeze(1))
                h = hn
                ys.append(h)
            return torch.stack(ys) @ Wout.t() + bout

        def run(xs):
            c = cell
            return loop(xs, c.W_zh, c.W_rh, c.W_zx, c.W_rx, c.W_hx, c.b_z, c.b_r, c.b_h, c.A, c.eta,
                        c.W_out, c.b_out)
        return run
    return None


def time_steps(model_fn, params, xs, target, min_time, repeats=3):
    opt = torch.optim.Adam(params, lr=1e-3)

    def one():
        opt.zero_grad(set_to_none=True)
        y = model_fn(xs)
        loss = ((y - target) ** 2).mean()
        loss.backward()
        opt.step()

    one()  # warm-up (TorchScript profiles and optimizes on its first runs)
    one()
    best = 0.0
    for _ in range(repeats):
        steps, t0 = 0, time.perf_counter()
        while True:
            one()
            steps += 1
            el = time.perf_counter() - t0
            if el >= min_time:
                break
        best = max(best, steps / el)
    return best


BLAS_SET_THREADS = None  # set in main: blas_set_threads()


def blas_loaded():
    torch.ones(64, 64) @ torch.ones(64, 64)
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1] if len(line.split()) >= 6 else ""
            if any(k in p for k in ("blas", "lapack", "mkl")):
                libs.add(p)
    return sorted(libs)


def blas_set_threads():
    """OpenBLAS's own thread count setter, or None. torch.set_num_threads does not reach the BLAS
    Debian's torch loads (libblas.so.3): without this, OpenBLAS's pthread build runs every
    product on all cores, and a "1 thread" point is a two-core one for its matrix products."""
    for lib in blas_loaded():
        if "openblas" in lib:
            try:
                return ctypes.CDLL(lib).openblas_set_num_threads
            except (OSError, AttributeError):
                pass
    return None


def set_threads(threads, blas_threads=None):
    torch.set_num_threads(threads)
    if BLAS_SET_THREADS:
        BLAS_SET_THREADS(blas_threads or threads)


def thread_configs(threads):
    """(torch threads, BLAS threads, label) per timed configuration (see the module's doc)."""
    lo, hi = min(threads), max(threads)
    configs = [(lo, lo, f"{lo}t")]
    if hi != lo and BLAS_SET_THREADS:
        configs.append((lo, hi, f"{lo}t-blas{hi}"))
    if hi != lo:
        configs.append((hi, hi, f"{hi}t"))
    return configs


def sgemm_rate(threads, size=1024, min_time=0.5):
    set_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        a @ b
        reps += 1
    return 2 * size ** 3 * reps / (time.perf_counter() - t0) / 1e9


def memory_gb(cell, n, B, T):
    """A rough upper bound of autograd's saved tensors (floats), to skip points that cannot fit."""
    per_step = 12 * n * B + (6 * n * n * B if cell == "pbrc" else 0)
    return 4 * T * per_step / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cells", default="dale_rnn,gru,brc,nbrc,pbrc")
    ap.add_argument("--n", default="32,100,256,1024")
    ap.add_argument("--batch", default="1,16,64")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-gb", type=float, default=8.0)
    ap.add_argument("--variants", default="eager,script,nn.GRU")
    a = ap.parse_args()
    blas = blas_loaded()
    global BLAS_SET_THREADS
    BLAS_SET_THREADS = blas_set_threads()
    print("torch", torch.__version__, "BLAS loaded:", ", ".join(blas) or "none found",
          "(its threads set per configuration)" if BLAS_SET_THREADS else "(its threads not settable)",
          file=sys.stderr)
    threads = [int(t) for t in a.threads.split(",")]
    result = {"torch": torch.__version__, "blas": blas, "blas_threads_set": BLAS_SET_THREADS is not None,
              "sgemm_gflops": {str(t): sgemm_rate(t) for t in threads}, "points": []}
    variants = a.variants.split(",")
    T = a.steps
    for cell in a.cells.split(","):
        for n in [int(v) for v in a.n.split(",")]:
            for B in [int(v) for v in a.batch.split(",")]:
                point = {"cell": cell, "n": n, "batch": B, "steps": T, "variants": {}}
                if memory_gb(cell, n, B, T) > a.max_gb:
                    point["skipped"] = f"autograd would hold ~{memory_gb(cell, n, B, T):.0f} GB"
                    result["points"].append(point)
                    print(f"{cell} n={n} B={B}: skipped ({point['skipped']})", file=sys.stderr)
                    continue
                torch.manual_seed(1)
                xs, target = torch.randn(T, B, 1), torch.randn(T, B, 1)
                for th, blas_th, label in thread_configs(threads):
                    set_threads(th, blas_th)
                    for v in variants:
                        if v == "nn.GRU" and cell != "gru":
                            continue
                        if v == "nn.GRU":
                            m = TorchGru(n, 1, 1)
                            fn, params = m, list(m.parameters())
                        else:
                            c = CELLS[cell](n, 1, 1)
                            params = list(c.parameters())
                            fn = Eager(c) if v == "eager" else make_script(c)
                        if fn is None:
                            continue
                        rate = time_steps(fn, params, xs, target, a.min_time, max(1, a.repeats))
                        point["variants"][f"{v}/{label}"] = rate
                best = max(point["variants"].items(), key=lambda kv: kv[1])
                point["best"], point["best_steps_per_s"] = best
                print(f"{cell} n={n} B={B}: best {best[0]} {best[1]:.3g} steps/s", file=sys.stderr)
                result["points"].append(point)
                with open(a.out, "w") as f:  # partial results survive an interrupted run
                    json.dump(result, f, indent=1)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
