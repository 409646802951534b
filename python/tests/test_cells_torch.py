"""cells/lstm.cell against torch.nn.LSTM and cells/leaky_rnn.cell against its equations written in
PyTorch: the same weights copied in, trajectories and every gradient (params, inputs, initial
states) equal to rounding in float64 (1e-12 relative) and float32 (1e-5)."""
import math
import os

import pytest

try:
    import torch
except ImportError as e:  # as test_torch.py: a missing PyTorch fails unless skipped on purpose
    if os.environ.get("CELLC_SKIP_TORCH_TESTS") == "1":
        pytest.skip("CELLC_SKIP_TORCH_TESTS=1: the PyTorch tests are skipped on purpose",
                    allow_module_level=True)
    raise ImportError("the PyTorch tests need python3-torch (bash scripts/setup.sh --torch); "
                      "set CELLC_SKIP_TORCH_TESTS=1 to skip them on purpose") from e

import cellc
import cellc.torch
from conftest import cell_path

DTYPES = {"float64": (torch.float64, 1e-12), "float32": (torch.float32, 1e-5)}


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-300))


@pytest.mark.parametrize("precision", list(DTYPES))
def test_lstm_equals_torch_nn_lstm(precision):
    dtype, tol = DTYPES[precision]
    n, n_in, n_out, T, B = 5, 3, 2, 7, 4
    cell = cellc.compile(cell_path("lstm"), dims={"n": n, "n_in": n_in, "n_out": n_out}, dtype=precision)
    ours = cellc.torch.CellModule(cell, seed=1)
    lstm = torch.nn.LSTM(n_in, n, dtype=dtype)
    head = torch.nn.Linear(n, n_out, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(ours.W_x)
        lstm.weight_hh_l0.copy_(ours.W_h)
        # torch's two biases only appear summed: split ours at random.
        b_hh = 0.1 * torch.randn(4 * n, generator=g, dtype=torch.float64).to(dtype)
        lstm.bias_hh_l0.copy_(b_hh)
        lstm.bias_ih_l0.copy_(ours.b - b_hh)
        head.weight.copy_(ours.W_out)
        head.bias.copy_(0.3 * torch.randn(n_out, generator=g, dtype=torch.float64).to(dtype))
        ours.b_out.copy_(head.bias)

    x = torch.randn(T, B, n_in, generator=g, dtype=torch.float64).to(dtype)
    h0 = (0.5 * torch.randn(B, n, generator=g, dtype=torch.float64)).to(dtype)
    c0 = (0.5 * torch.randn(B, n, generator=g, dtype=torch.float64)).to(dtype)
    G = torch.randn(T, B, n_out, generator=g, dtype=torch.float64).to(dtype)
    Gh = torch.randn(B, n, generator=g, dtype=torch.float64).to(dtype)
    Gc = torch.randn(B, n, generator=g, dtype=torch.float64).to(dtype)

    xa, ha, ca = (t.clone().requires_grad_() for t in (x, h0, c0))
    out, final = ours(xa, state0={"h": ha, "c": ca})
    y = out["y"]
    loss = (y * G).sum() + (final["h"] * Gh).sum() + (final["c"] * Gc).sum()
    ours_params = [ours.W_x, ours.W_h, ours.b, ours.b, ours.W_out, ours.b_out]
    grads_a = torch.autograd.grad(loss, ours_params + [xa, ha, ca])

    xb, hb, cb = (t.clone().requires_grad_() for t in (x, h0, c0))
    hs, (hT, cT) = lstm(xb, (hb[None], cb[None]))
    yb = head(hs)
    loss_b = (yb * G).sum() + (hT[0] * Gh).sum() + (cT[0] * Gc).sum()
    torch_params = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0,
                    head.weight, head.bias]
    grads_b = torch.autograd.grad(loss_b, torch_params + [xb, hb, cb])

    assert rel(y, yb) <= tol
    assert rel(final["h"], hT[0]) <= tol
    assert rel(final["c"], cT[0]) <= tol
    names = ["W_x", "W_h", "b (bias_ih)", "b (bias_hh)", "W_out", "b_out", "x", "h0", "c0"]
    errors = {name: rel(a, b) for name, a, b in zip(names, grads_a, grads_b)}
    print(f"lstm {precision}: outputs {rel(y, yb):.2e}, gradients {max(errors.values()):.2e}")
    assert max(errors.values()) <= tol, errors


def leaky_rnn_torch(p, u, r0, xi, alpha=0.2, sigma_rec=0.05):
    """cells/leaky_rnn.cell's step, as its header writes it."""
    r, zs = r0, []
    for t in range(u.shape[0]):
        drive = r @ p["W_rec"].T + u[t] @ p["W_in"].T + p["b"] + math.sqrt(2 / alpha) * sigma_rec * xi[t]
        r = (1 - alpha) * r + alpha * torch.relu(drive)
        zs.append(r @ p["W_out"].T + p["b_out"])
    return torch.stack(zs), r


@pytest.mark.parametrize("precision", list(DTYPES))
def test_leaky_rnn_equals_its_equations_in_torch(precision):
    dtype, tol = DTYPES[precision]
    n, n_in, n_out, T, B = 6, 2, 3, 9, 3
    cell = cellc.compile(cell_path("leaky_rnn"), dims={"n": n, "n_in": n_in, "n_out": n_out}, dtype=precision)
    ours = cellc.torch.CellModule(cell, seed=2)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name in ("b", "b_out"):  # zero-initialized: give them values that matter
            getattr(ours, name).copy_(0.2 * torch.randn(getattr(ours, name).shape, generator=g,
                                                        dtype=torch.float64).to(dtype))
    u = torch.randn(T, B, n_in, generator=g, dtype=torch.float64).to(dtype)
    r0 = torch.rand(B, n, generator=g, dtype=torch.float64).to(dtype)
    xi = torch.randn(T, B, n, generator=g, dtype=torch.float64).to(dtype)
    G = torch.randn(T, B, n_out, generator=g, dtype=torch.float64).to(dtype)
    Gr = torch.randn(B, n, generator=g, dtype=torch.float64).to(dtype)
    names = [s.name for s in cell.layout.params]

    ua, ra = u.clone().requires_grad_(), r0.clone().requires_grad_()
    out, final = ours(ua, state0={"r": ra}, noise={"xi": xi})
    z = out["z"]
    grads_a = torch.autograd.grad((z * G).sum() + (final["r"] * Gr).sum(),
                                  [getattr(ours, k) for k in names] + [ua, ra])

    p = {k: getattr(ours, k).detach().clone().requires_grad_() for k in names}
    ub, rb = u.clone().requires_grad_(), r0.clone().requires_grad_()
    zb, rT = leaky_rnn_torch(p, ub, rb, xi)
    grads_b = torch.autograd.grad((zb * G).sum() + (rT * Gr).sum(), [p[k] for k in names] + [ub, rb])

    assert rel(z, zb) <= tol
    assert rel(final["r"], rT) <= tol
    errors = {k: rel(a, b) for k, a, b in zip(names + ["u", "r0"], grads_a, grads_b)}
    print(f"leaky_rnn {precision}: outputs {rel(z, zb):.2e}, gradients {max(errors.values()):.2e}")
    assert max(errors.values()) <= tol, errors
