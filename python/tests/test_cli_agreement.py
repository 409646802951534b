"""unroll and vjp agree with `cellc unroll` (the CLI binary) on the same arrays."""
import os
import pathlib
import subprocess

import numpy as np
import pytest

import cellc
from conftest import ROOT, SMALL, cell_path


def cli():
    path = os.environ.get("CELLC_CLI") or str(ROOT / "build" / "tools" / "cellc" / "cellc")
    if not pathlib.Path(path).exists():
        if os.environ.get("CELLC_CLI"):
            pytest.fail(f"CELLC_CLI={path} does not exist")
        pytest.skip("the cellc binary is not built (build/tools/cellc/cellc)")
    return path


@pytest.mark.parametrize("name", ["gru", "dale_rnn", "plastic_gru"])
def test_agrees_with_cellc_unroll(tmp_path, name):
    dims = SMALL[name]
    cell = cellc.compile(cell_path(name), dims=dims, dtype="float64")
    rng = np.random.default_rng(7)
    T, B = 9, 3
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    params = {s.name: rng.normal(0, 0.4, s.shape) for s in cell.layout.params}
    for k, v in params.items():
        np.save(data / f"{k}.npy", v)
    inputs = {s.name: rng.normal(size=(T, B) + s.shape) for s in cell.layout.inputs}
    noise = {s.name: rng.normal(size=(T, B) + s.shape) for s in cell.layout.noises}
    d_out = {s.name: rng.normal(size=(T, B) + s.shape) for s in cell.layout.outputs}
    d_fin = {s.name: rng.normal(size=(B,) + s.shape) for s in cell.layout.states}
    for group, prefix in ((inputs, ""), (noise, ""), (d_out, "d_"), (d_fin, "d_final_")):
        for k, v in group.items():
            np.save(data / f"{prefix}{k}.npy", v)
    D = [a for k, v in dims.items() for a in ("-D", f"{k}={v}")]
    subprocess.run([cli(), "unroll", cell_path(name), str(data), "--out", str(out),
                    "--loss", "adjoints", *D], check=True, capture_output=True)

    outputs, final = cell.unroll(params, inputs=inputs, noise=noise)
    for k, v in outputs.items():
        np.testing.assert_allclose(v, np.load(out / f"{k}.npy"), rtol=1e-12, atol=1e-14)
    for k, v in final.items():
        np.testing.assert_allclose(v, np.load(out / f"final_{k}.npy"), rtol=1e-12, atol=1e-14)
    d_y = {f"d_{k}": v for k, v in d_out.items()}
    g = cell.vjp(params, inputs=inputs, noise=noise, d_final=d_fin, **d_y)
    for s in cell.layout.params:
        np.testing.assert_allclose(g[s.name], np.load(out / f"grad_{s.name}.npy"),
                                   rtol=1e-10, atol=1e-12, err_msg=s.name)
    for s in cell.layout.inputs:
        np.testing.assert_allclose(g[s.name], np.load(out / f"grad_{s.name}.npy"), rtol=1e-10, atol=1e-12)
    for s in cell.layout.states:
        np.testing.assert_allclose(g[s.name], np.load(out / f"grad_init_{s.name}.npy"),
                                   rtol=1e-10, atol=1e-12)
