"""cellc.torch.CellModule: gradcheck in float64 for every cell, training in a torch loop."""
import os
import warnings

import numpy as np
import pytest

# Missing PyTorch is a failure, not a silent skip (a suite that skips is not a pass): install
# python3-torch (bash scripts/setup.sh --torch, which the README's test command runs), or set
# CELLC_SKIP_TORCH_TESTS=1 to skip these tests on purpose.
try:
    import torch
except ImportError as e:
    if os.environ.get("CELLC_SKIP_TORCH_TESTS") == "1":
        pytest.skip("CELLC_SKIP_TORCH_TESTS=1: the PyTorch tests are skipped on purpose",
                    allow_module_level=True)
    raise ImportError("the PyTorch tests need python3-torch (bash scripts/setup.sh --torch); "
                      "set CELLC_SKIP_TORCH_TESTS=1 to skip them on purpose") from e

import cellc
import cellc.torch
from conftest import all_cells, cell_path, small_dims


# Cells that spike: heaviside's gradient is a surrogate (docs/language.md, Spikes), not the
# derivative that gradcheck's finite differences measure, so they are not gradchecked; lif is
# checked against a PyTorch LIF with the same surrogate below (test_lif_matches_torch_surrogate).
SURROGATE_CELLS = {"lif"}


@pytest.mark.parametrize("name", [c for c in all_cells() if c not in SURROGATE_CELLS])
def test_gradcheck_every_cell(name):
    cell = cellc.compile(cell_path(name), dims=small_dims(name), dtype="float64")
    module = cellc.torch.CellModule(cell, seed=1)
    L = cell.layout
    g = torch.Generator().manual_seed(0)
    T, B = 4, 2
    x = {s.name: torch.randn((T, B) + s.shape, generator=g, dtype=torch.float64, requires_grad=True)
         for s in L.inputs}
    h0 = {s.name: (0.3 * torch.randn((B,) + s.shape, generator=g, dtype=torch.float64)).requires_grad_()
          for s in L.states}
    n_in, n_st = len(x), len(h0)
    spec = ([s.name for s in L.params], list(x), list(h0), [])

    # Params, inputs and initial states all as gradcheck's inputs, through the autograd Function.
    def f(*args):
        xs, s0, ps = args[:n_in], args[n_in:n_in + n_st], args[n_in + n_st:]
        return cellc.torch.CellFunction.apply(cell, spec, *ps, *xs, *s0)

    ps = [module.get_parameter(s.name).detach().clone().requires_grad_() for s in L.params]
    assert torch.autograd.gradcheck(f, (*x.values(), *h0.values(), *ps), eps=1e-6, atol=1e-5,
                                    rtol=1e-4)
    # The module computes the same outputs.
    out, final = module(x, state0=h0)
    outs = list(out.values())
    for a, b in zip(outs + list(final.values()), f(*x.values(), *h0.values(), *ps)):
        torch.testing.assert_close(a, b)


class _FastSigmoidSpike(torch.autograd.Function):
    """heaviside with SuperSpike's surrogate: forward x > 0, backward g / (1 + k|x|)^2."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (1 + ctx.k * x.abs()) ** 2, None


def test_lif_matches_torch_surrogate():
    """cells/lif.cell against its equations in PyTorch with a hand-written surrogate spike: the
    same outputs, final states and gradients (params, inputs, initial states) in float64."""
    import math
    cell = cellc.compile(cell_path("lif"), dims=small_dims("lif"), dtype="float64")
    module = cellc.torch.CellModule(cell, seed=1)
    with torch.no_grad():  # larger input weights, so that units spike, but not all the time
        module.get_parameter("W_in").mul_(3.0)
        module.get_parameter("W_rec").mul_(4.0)
    g = torch.Generator().manual_seed(4)
    T, B = 12, 3
    x = (0.5 + torch.randn(T, B, 2, generator=g, dtype=torch.float64)).requires_grad_()
    h0 = {"v": torch.randn(B, 4, generator=g, dtype=torch.float64).requires_grad_(),
          "o": torch.randn(B, 2, generator=g, dtype=torch.float64).requires_grad_()}
    outs, final = module(x, state0=h0)
    y = outs["z"]
    G = torch.randn(y.shape, generator=g, dtype=torch.float64)
    Gv = torch.randn(B, 4, generator=g, dtype=torch.float64)
    ((y * G).sum() + (final["v"] * Gv).sum() + final["o"].sum()).backward()
    got = {k: v.grad.clone() for k, v in module.named_parameters()}
    got_x, got_v0, got_o0 = x.grad.clone(), h0["v"].grad.clone(), h0["o"].grad.clone()

    P = {k: v.detach().clone().requires_grad_() for k, v in module.named_parameters()}
    x2 = x.detach().clone().requires_grad_()
    v0 = h0["v"].detach().clone().requires_grad_()
    o0 = h0["o"].detach().clone().requires_grad_()
    spike = lambda u: _FastSigmoidSpike.apply(u, 10.0)  # noqa: E731
    beta, beta_out, theta = math.exp(-10 / 20), math.exp(-10 / 100), 1.0
    v, o, zs, count = v0, o0, [], 0.0
    for t in range(T):
        s = spike(v - theta)
        v = beta * v + s @ P["W_rec"].T + x2[t] @ P["W_in"].T + P["b"] - theta * s
        q = spike(v - theta)
        count += float(q.sum())
        o = beta_out * o + q @ P["W_out"].T
        zs.append(o + P["b_out"])
    z = torch.stack(zs)
    assert 0 < count < T * B * 4  # spikes happen, and not everywhere
    torch.testing.assert_close(y, z, rtol=1e-13, atol=1e-13)
    ((z * G).sum() + (v * Gv).sum() + o.sum()).backward()
    for k in P:
        torch.testing.assert_close(got[k], P[k].grad, rtol=1e-11, atol=1e-12, msg=k)
    torch.testing.assert_close(got_x, x2.grad, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(got_v0, v0.grad, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(got_o0, o0.grad, rtol=1e-11, atol=1e-12)


def test_module_grads_match_numpy_vjp():
    cell = cellc.compile(cell_path("gru"), dims=small_dims("gru"), dtype="float64")
    module = cellc.torch.CellModule(cell, seed=3)
    x = torch.randn(5, 2, 2, dtype=torch.float64)
    outs, final = module(x)
    y = outs["y"]
    G = torch.randn_like(y)
    (y * G).sum().backward()
    p = {k: v.detach().numpy() for k, v in module.named_parameters()}
    g = cell.vjp(p, x=x.numpy(), d_y=G.numpy())
    for k, v in module.named_parameters():
        np.testing.assert_allclose(v.grad.numpy(), g[k], rtol=1e-12)


def test_double_switches_precision_and_errors():
    cell = cellc.compile(cell_path("gru"), dims=small_dims("gru"))  # float32
    module = cellc.torch.CellModule(cell)
    outs, _ = module(torch.zeros(3, 1, 2))
    y32 = outs["y"]
    assert y32.dtype == torch.float32
    module.double()
    outs, _ = module(torch.zeros(3, 1, 2, dtype=torch.float64))
    y64 = outs["y"]
    assert y64.dtype == torch.float64
    with pytest.raises(ValueError, match=r"input x has dtype torch.float32 but the module's params are torch.float64"):
        module(torch.zeros(3, 1, 2))
    with pytest.raises(ValueError, match=r"input x has shape \(3, 1, 5\) but needs \(T, B, 2\)"):
        module(torch.zeros(3, 1, 5, dtype=torch.float64))


def test_trains_in_a_torch_loop():
    torch.manual_seed(0)
    cell = cellc.compile(cell_path("gru"), dims={"n": 8, "n_in": 1, "n_out": 1})
    rnn = cellc.torch.CellModule(cell, seed=0)
    head = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=0.03)
    # Output the running mean of the input: a memory task.
    x = torch.randn(20, 16, 1)
    target = torch.cumsum(x, 0) / torch.arange(1, 21).view(20, 1, 1)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        outs, _ = rnn(x)
        y = outs["y"]
        loss = torch.nn.functional.mse_loss(head(y), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]


def test_cell_module_from_a_run_folder(tmp_path):
    """CellModule.from_run(folder): the run's cell with the trained params as nn.Parameters."""
    from conftest import ROOT
    exp = ROOT / "tests" / "fixtures" / "experiments" / "tiny.toml"
    cellc.run(exp, set={"train.max_steps": 3}, out=tmp_path / "run", verbose=False)
    m = cellc.torch.CellModule.from_run(tmp_path / "run", dtype="float64")
    r = cellc.load_run(tmp_path / "run", dtype="float64")
    for name, value in r.params.items():
        assert np.array_equal(getattr(m, name).detach().numpy(), value.astype(np.float64))
    outs, _ = m(torch.zeros(4, 2, r.cell.layout.inputs[0].size, dtype=torch.float64))
    y = outs["z"]
    assert torch.isfinite(y).all()


def test_create_graph_is_a_clear_error_not_a_silent_first_order_gradient():
    # The compiled backward has no derivative: create_graph=True must say so. Before, a loss
    # linear in the outputs gave gradients torch took for constants (a gradient penalty added to
    # another term lost its second-order part without a word).
    cell = cellc.compile(cell_path("gru"), dims=small_dims("gru"), dtype="float64")
    m = cellc.torch.CellModule(cell, seed=0)
    x = torch.randn(5, 2, cell.layout.inputs[0].shape[0], dtype=torch.float64)
    for loss_of in (lambda y: y.sum(), lambda y: (y ** 2).sum()):
        outs, _ = m(x)
        y = outs["y"]
        with pytest.raises(RuntimeError, match=r"CellModule has no second derivative: .*create_graph=True"):
            torch.autograd.grad(loss_of(y), list(m.parameters()), create_graph=True)
        outs, _ = m(x)
        y = outs["y"]
        with pytest.raises(RuntimeError, match="create_graph"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on backward(create_graph=True) and .grad cycles
            loss_of(y).backward(create_graph=True)
    # First order still works, and matches a plain backward.
    outs, _ = m(x)
    y = outs["y"]
    g = torch.autograd.grad((y ** 2).sum(), list(m.parameters()))
    assert all(t is not None and not t.requires_grad for t in g)


def test_module_returns_dicts_like_unroll():
    """CellModule's forward returns (outputs, final) as dicts by name, as Cell.unroll does."""
    cell = cellc.compile(cell_path("gru"), dims=small_dims("gru"), dtype="float64")
    m = cellc.torch.CellModule(cell, seed=0)
    x = torch.randn(5, 2, cell.layout.inputs[0].shape[0], dtype=torch.float64)
    outs, final = m(x)
    assert type(outs) is dict and list(outs) == ["y"] and type(final) is dict and list(final) == ["h"]
    ref, _ = cell.unroll({k: v.detach().numpy() for k, v in m.named_parameters()}, x=x.numpy())
    np.testing.assert_array_equal(outs["y"].detach().numpy(), ref["y"])


def test_module_repr_names_the_cell():
    cell = cellc.compile(cell_path("gru"), dims=small_dims("gru"))
    text = repr(cellc.torch.CellModule(cell))
    assert text.startswith("CellModule(gru (") and "n=" in text and "gru.cell" in text, text
