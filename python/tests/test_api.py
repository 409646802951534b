"""The numpy API: compile, layout, init_params, unroll, vjp, and the errors."""
import os

import numpy as np
import pytest

import cellc
from conftest import ROOT, SMALL, cell_path


def random_params(cell, rng, scale=0.5):
    return {s.name: rng.normal(0, scale, s.shape).astype(cell.dtype) for s in cell.layout.params}


def test_compile_layout_and_dims(gru64):
    L = gru64.layout
    assert gru64.name == "gru" and gru64.dtype == np.float64
    assert gru64.dims["n"] == 3 and gru64.dims["n_in"] == 2
    assert [s.name for s in L.inputs] == ["x"] and L.inputs[0].shape == (2,)
    assert [s.name for s in L.states] == ["h"] and L.states[0].shape == (3,) and L.states[0].init == 0
    assert [s.name for s in L.outputs] == ["y"] and L.outputs[0].shape == (2,)
    w = {s.name: s for s in L.params}
    assert w["W_hh"].shape == (3, 3) and w["W_hh"].init.startswith("orthogonal")
    assert "param W_hh[3, 3] ~ orthogonal" in str(L)


def test_init_params_seeded_and_typed():
    cell = cellc.compile(cell_path("gru"), dims=SMALL["gru"], dtype="float32")
    a, b, c = cell.init_params(seed=1), cell.init_params(seed=1), cell.init_params(seed=2)
    assert set(a) == {s.name for s in cell.layout.params}
    assert all(a[k].dtype == np.float32 and a[k].shape == s.shape
               for k, s in zip(a, cell.layout.params))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W_hh"], c["W_hh"])
    q = a["W_hh"].astype(np.float64)  # orthogonal()
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-5)


def test_unroll_shapes_and_state0(gru64):
    rng = np.random.default_rng(0)
    p = random_params(gru64, rng)
    X = rng.normal(size=(7, 4, 2))
    outs, final = gru64.unroll(p, x=X)
    y = outs["y"]
    assert y.shape == (7, 4, 2) and y.dtype == np.float64 and final["h"].shape == (4, 3)
    # Two halves with the state carried over equal the whole.
    outs, f1 = gru64.unroll(p, x=X[:3])
    y1 = outs["y"]
    outs, f2 = gru64.unroll(p, x=X[3:], state0=f1["h"])
    y2 = outs["y"]
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, rtol=1e-12)
    np.testing.assert_allclose(f2["h"], final["h"], rtol=1e-12)
    # inputs= as an array and as a dict are the same as x=.
    np.testing.assert_array_equal(gru64.unroll(p, X)[0]["y"], y)
    np.testing.assert_array_equal(gru64.unroll(p, inputs={"x": X})[0]["y"], y)


def test_float32_accepts_float64_inputs():
    cell = cellc.compile(cell_path("gru"), dims=SMALL["gru"], dtype="float32")
    p = cell.init_params(0)
    X = np.random.default_rng(0).normal(size=(5, 2, 2))
    outs, _ = cell.unroll(p, x=X)
    y64 = outs["y"]
    outs, _ = cell.unroll(p, x=X.astype(np.float32))
    y32 = outs["y"]
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(y64, y32)


def loss_of(cell, p, X, G, GF, h0=None):
    outs, final = cell.unroll(p, x=X, state0=h0)
    y = outs["y"]
    return float(np.sum(G * y) + np.sum(GF * final["h"]))


def test_vjp_matches_finite_differences(gru64):
    rng = np.random.default_rng(1)
    p = random_params(gru64, rng)
    X, G = rng.normal(size=(6, 2, 2)), rng.normal(size=(6, 2, 2))
    GF, h0 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    g = gru64.vjp(p, x=X, state0=h0, d_y=G, d_final=GF)
    assert set(g) == {s.name for s in gru64.layout.params} | {"x", "h"}
    eps = 1e-6

    def fd(perturb):
        plus, minus = perturb(eps), perturb(-eps)
        return (plus - minus) / (2 * eps)

    for name in ("W_hh", "b_z", "W_out"):
        idx = (0,) * p[name].ndim
        def f(e, name=name, idx=idx):
            q = {k: v.copy() for k, v in p.items()}
            q[name][idx] += e
            return loss_of(gru64, q, X, G, GF, h0)
        assert g[name][idx] == pytest.approx(fd(f), rel=1e-6, abs=1e-9)
    def fx(e):
        X2 = X.copy(); X2[2, 1, 0] += e
        return loss_of(gru64, p, X2, G, GF, h0)
    assert g["x"][2, 1, 0] == pytest.approx(fd(fx), rel=1e-6, abs=1e-9)
    def fh(e):
        h2 = h0.copy(); h2[1, 2] += e
        return loss_of(gru64, p, X, G, GF, h2)
    assert g["h"][1, 2] == pytest.approx(fd(fh), rel=1e-6, abs=1e-9)


def test_vjp_state_from_param_includes_its_gradient():
    cell = cellc.compile(cell_path("dale_rnn"), dims=SMALL["dale_rnn"], dtype="float64")
    rng = np.random.default_rng(2)
    p = cell.init_params(3)
    U, G = rng.normal(size=(5, 3, 2)), rng.normal(size=(5, 3, 2))
    g = cell.vjp(p, u=U, d_z=G)
    # Without state0 the state starts from x0: x0's gradient is the batch-summed state gradient.
    g2 = cell.vjp(p, u=U, d_z=G, state0=np.broadcast_to(p["x0"], (3, 5)))
    np.testing.assert_allclose(g["x0"], g2["x0"] + g2["x"].sum(0), rtol=1e-10)


def test_noise_changes_the_output():
    cell = cellc.compile(cell_path("dale_rnn"), dims=SMALL["dale_rnn"], dtype="float64")
    p = cell.init_params(0)
    U = np.ones((4, 2, 2))
    outs, _ = cell.unroll(p, u=U)
    z0 = outs["z"]
    outs, _ = cell.unroll(p, u=U, noise={"xi": np.full((4, 2, 5), 3.0)})
    z1 = outs["z"]
    assert not np.allclose(z0, z1)


def test_a_dropout_mask_defaults_to_ones():
    # dale_rnn's `noise keep[n] ~ dropout()`: left out, every unit is kept (not dropped as zeros).
    cell = cellc.compile(cell_path("dale_rnn"), dims=SMALL["dale_rnn"], dtype="float64")
    p = cell.init_params(0)
    U = np.ones((4, 2, 2))
    outs, _ = cell.unroll(p, u=U)
    z0 = outs["z"]
    outs, _ = cell.unroll(p, u=U, noise={"keep": np.ones((4, 2, 5))})
    z1 = outs["z"]
    outs, _ = cell.unroll(p, u=U, noise={"xi": np.zeros((4, 2, 5))})
    z2 = outs["z"]
    np.testing.assert_array_equal(z0, z1)
    np.testing.assert_array_equal(z0, z2)
    outs, _ = cell.unroll(p, u=U, noise={"keep": np.zeros((4, 2, 5))})
    dropped = outs["z"]
    assert not np.allclose(z0, dropped)


def test_zero_copy_input_is_not_copied_but_not_written(gru64):
    X = np.random.default_rng(0).normal(size=(3, 2, 2))
    before = X.copy()
    gru64.unroll(gru64.init_params(0), x=X)
    np.testing.assert_array_equal(X, before)


# ---- errors -----------------------------------------------------------------------------------

def test_wrong_input_shape_names_array_and_needed_shape(gru64):
    p = gru64.init_params(0)
    with pytest.raises(ValueError, match=r"input x has shape \(5, 3, 1\) but needs \(T, B, 2\)"):
        gru64.unroll(p, x=np.zeros((5, 3, 1)))
    with pytest.raises(ValueError, match=r"state0 h has shape \(3, 4\) but needs \(B, 3\) = \(2, 3\)"):
        gru64.unroll(p, x=np.zeros((5, 2, 2)), state0=np.zeros((3, 4)))


def test_wrong_param_shape_and_missing_and_unknown(gru64):
    p = gru64.init_params(0)
    X = np.zeros((2, 1, 2))
    bad = dict(p, W_hh=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"param W_hh has shape \(3, 4\) but needs \(3, 3\)"):
        gru64.unroll(bad, x=X)
    missing = {k: v for k, v in p.items() if k != "b_h"}
    with pytest.raises(ValueError, match=r"missing b_h \(3,\)"):
        gru64.unroll(missing, x=X)
    with pytest.raises(ValueError, match=r"unknown param 'W_hhh' \(did you mean 'W_hh'\?\)"):
        gru64.unroll(dict(p, W_hhh=p["W_hh"]), x=X)
    with pytest.raises(ValueError, match=r"unknown input 'u'"):
        gru64.unroll(p, u=X)
    with pytest.raises(ValueError, match=r"missing input x"):
        gru64.unroll(p)


def test_wrong_dtype_names_array(gru64):
    p = gru64.init_params(0)
    with pytest.raises(ValueError, match=r"input x has dtype int64; it needs float32 or float64"):
        gru64.unroll(p, x=np.zeros((2, 1, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"param b_z has dtype complex128"):
        gru64.unroll(dict(p, b_z=np.zeros(3, dtype=complex)), x=np.zeros((2, 1, 2)))


def test_wrong_adjoint_shape_and_name(gru64):
    p = gru64.init_params(0)
    X = np.zeros((4, 2, 2))
    with pytest.raises(ValueError, match=r"d_y has shape \(4, 2, 3\) but needs \(T, B, 2\) = \(4, 2, 2\)"):
        gru64.vjp(p, x=X, d_y=np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match=r"unknown adjoint d_z; the cell's output adjoints: d_y"):
        gru64.vjp(p, x=X, d_z=np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match=r"d_final h has shape \(2,\) but needs \(B, 3\) = \(2, 3\)"):
        gru64.vjp(p, x=X, d_final=np.zeros(2))


def test_compile_error_carries_located_diagnostic(tmp_path):
    bad = tmp_path / "bad.cell"
    bad.write_text("cell bad {\n  dim n = 4\n  input x[n]\n  state h[n] = 0\n"
                   "  param W[n, 2] ~ zeros()\n  h' = tanh(W @ h + x)\n  output y = h'\n}\n")
    with pytest.raises(cellc.CompileError) as e:
        cellc.compile(bad)
    msg = str(e.value)
    assert f"{bad}:6:" in msg and "error[E301]" in msg and "^" in msg
    assert isinstance(e.value, ValueError)


def test_compile_unknown_dim_missing_file_and_dtype(tmp_path):
    with pytest.raises(cellc.CompileError, match="nope"):
        cellc.compile(cell_path("gru"), dims={"nope": 3})
    with pytest.raises(FileNotFoundError, match="missing.cell"):
        cellc.compile(tmp_path / "missing.cell")
    with pytest.raises(ValueError, match="float16"):
        cellc.compile(cell_path("gru"), dtype="float16")


def test_astype_shares_the_cell():
    c32 = cellc.compile(cell_path("gru"), dims=SMALL["gru"])
    c64 = c32.astype("float64")
    assert c64.dtype == np.float64 and c32.astype(np.float32) is c32
    p = c64.init_params(0)
    X = np.random.default_rng(0).normal(size=(3, 2, 2))
    np.testing.assert_allclose(c32.unroll(p, x=X)[0]["y"], c64.unroll(p, x=X)[0]["y"], rtol=1e-4, atol=1e-6)


def test_set_threads_counts_and_results():
    """One thread or every core: the same unroll to float32 rounding; a bad count is an error."""
    saved = cellc.threads()
    try:
        cell = cellc.compile(cell_path("gru"), dims={"n": 256, "n_in": 2, "n_out": 2}, dtype="float32")
        p = cell.init_params(seed=3)
        X = np.random.default_rng(1).normal(size=(5, 64, 2)).astype(np.float32)
        cellc.set_threads(1)
        assert cellc.threads() == 1
        outs, _ = cell.unroll(p, x=X)
        y1 = outs["y"]
        cellc.set_threads(2)
        assert cellc.threads() == 2
        outs, _ = cell.unroll(p, x=X)
        y2 = outs["y"]
        np.testing.assert_allclose(y1, y2, rtol=1e-4, atol=1e-5)
        cellc.set_threads(0)
        assert cellc.threads() == (os.cpu_count() or 1)
        with pytest.raises(ValueError, match="set_threads: n must be 0"):
            cellc.set_threads(-1)
    finally:
        cellc.set_threads(saved)


def test_load_run_gives_the_cell_params_and_config_of_a_run_folder(tmp_path):
    """cellc.load_run(folder): the run's own cell at its dims, the trained params (the .npy files
    bit for bit), the resolved experiment and the summary; a folder that is not a run is an error
    naming the file it lacks."""
    import cellc
    exp = ROOT / "tests" / "fixtures" / "experiments" / "tiny.toml"
    summary = cellc.run(exp, set={"train.max_steps": 3}, out=tmp_path / "run", verbose=False)
    r = cellc.load_run(tmp_path / "run")
    assert r.cell.name == summary["cell"]["name"]
    assert set(r.params) == {s.name for s in r.cell.layout.params}
    for name, value in r.params.items():
        assert np.array_equal(value, np.load(tmp_path / "run" / "params" / f"{name}.npy"))
    assert r.config["train"]["max_steps"] == 3
    assert r.summary["training"]["steps"] == 3
    x = np.zeros((4, 2, r.cell.layout.inputs[0].size))
    outs, _ = r.cell.unroll(r.params, x)
    y = outs["z"]
    assert np.all(np.isfinite(np.asarray(y)))
    assert "RunFolder(" in repr(r)
    with pytest.raises(FileNotFoundError, match="experiment.toml"):
        cellc.load_run(tmp_path)


def test_compile_from_a_string_equals_the_file_and_locates_errors():
    """cellc.compile(source=...) compiles the text itself: the same layout and outputs as the
    file; an error names the given path (default "<source>") with the line and a caret."""
    import cellc
    text = open(cell_path("gru")).read()
    a = cellc.compile(cell_path("gru"), dims=SMALL["gru"], dtype="float64")
    b = cellc.compile(source=text, dims=SMALL["gru"], dtype="float64")
    p = a.init_params(3)
    x = np.random.default_rng(0).standard_normal((5, 2, SMALL["gru"]["n_in"]))
    assert np.array_equal(np.asarray(a.unroll(p, x)[0]["y"]), np.asarray(b.unroll(p, x)[0]["y"]))
    with pytest.raises(cellc.CompileError, match=r"<source>:3:"):
        cellc.compile(source="cell bad {\n  dim n = 2\n  state h[n] = 0 +\n}\n")
    with pytest.raises(cellc.CompileError, match=r"mine\.cell:"):
        cellc.compile("mine.cell", source="cell bad {\n  oops\n}\n")
    with pytest.raises(TypeError):
        cellc.compile()


def test_unroll_batch_first_is_the_transpose():
    """unroll(batch_first=True) takes and returns [B, T, ...]: the same numbers as [T, B, ...]."""
    cell = cellc.compile(cell_path("gru"), dims=SMALL["gru"], dtype="float64")
    p = cell.init_params(1)
    x = np.random.default_rng(2).standard_normal((6, 3, SMALL["gru"]["n_in"]))
    outs, final = cell.unroll(p, x)
    y = outs["y"]
    outs, finalb = cell.unroll(p, np.swapaxes(x, 0, 1), batch_first=True)
    yb = outs["y"]
    assert yb.shape == (3, 6) + y.shape[2:]
    assert np.array_equal(np.swapaxes(yb, 0, 1), y)
    assert all(np.array_equal(final[k], finalb[k]) for k in final)
    with pytest.raises(ValueError, match="batch_first needs"):
        cell.unroll(p, np.zeros(3), batch_first=True)


def test_unroll_beyond_memory_is_a_memory_error_naming_bytes_and_sizes():
    # A state n = 10^6 wide with a scalar param: 1000 x 1000 steps and trials of it are 8 TB.
    wide = cellc.compile(source="cell wide {\n  dim n = 4\n  input x[1]\n  state h[n] = 0\n"
                                "  param a ~ fill(0.5)\n  h' = a * h + x\n  output y = h'\n}\n",
                         dims={"n": 1000000}, dtype="float32")
    x = np.zeros((1000, 1000, 1), np.float32)
    for call in (lambda: wide.unroll(wide.init_params(0), x),
                 lambda: wide.vjp(wide.init_params(0), x)):
        with pytest.raises(cellc.OutOfMemoryError) as e:
            call()
        assert isinstance(e.value, MemoryError)
        msg = str(e.value)
        assert msg.startswith("unroll") and " needs about " in msg and " TB (" in msg
        assert "the machine has " in msg and "states (T + 1 x B x states) 4.0 TB" in msg
        assert "The sizes come from T = 1000 and B = 1000 (from input x) and the cell's dims n = 1000000" in msg


def test_a_failed_allocation_is_a_memory_error_never_a_crash(tmp_path):
    # Under ulimit -v, an allocation no estimate covers (the initializers' QR of a 16384 x 16384
    # orthogonal() param) fails: a MemoryError that says what to do, in a child process.
    script = tmp_path / "child.py"
    script.write_text(
        "import resource, cellc\n"
        f"c = cellc.compile({cell_path('gru')!r}, dims={{'n': 16384}})\n"
        "mapped = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (mapped + (512 << 20), resource.RLIM_INFINITY))\n"
        "try:\n"
        "    c.init_params(0)\n"
        "except MemoryError as e:\n"
        "    print('MemoryError:', e)\n")
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python")))
    assert r.returncode == 0, r.stderr
    assert "MemoryError: out of memory: an allocation failed (std::bad_alloc)" in r.stdout


def test_unroll_returns_dicts_for_one_output_and_for_several():
    """One return type: outputs and final states are dicts by name whatever the cell (before, one
    output came back as a bare array and several as a dict, so callers branched on the type)."""
    one = cellc.compile(cell_path("gru"), dims=SMALL["gru"], dtype="float64")
    two = cellc.compile(source="cell two {\n  input x[2]\n  state h[2] = 0\n  h' = 0.5 * h + x\n"
                               "  output a = h'\n  output b = 2 * h'\n}\n", dtype="float64")
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    outs1, final1 = one.unroll(one.init_params(0), x=x)
    outs2, final2 = two.unroll(two.init_params(0), x=x)
    assert type(outs1) is dict and list(outs1) == ["y"] and outs1["y"].shape == (4, 3, 2)
    assert type(outs2) is dict and list(outs2) == ["a", "b"]
    np.testing.assert_allclose(outs2["b"], 2 * outs2["a"])
    assert type(final1) is dict and type(final2) is dict and list(final2) == ["h"]
    outsb, _ = one.unroll(one.init_params(0), x=np.swapaxes(x, 0, 1), batch_first=True)
    assert type(outsb) is dict and np.array_equal(np.swapaxes(outsb["y"], 0, 1), outs1["y"])
