"""The package imports and works without PyTorch (Debian's python3-torch is optional)."""
import subprocess
import sys

from conftest import ROOT, cell_path

BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")
sys.meta_path.insert(0, Block())
"""

SCRIPT = BLOCK + """
import numpy as np
import cellc
cell = cellc.compile(CELL, dims={"n": 4})
p = cell.init_params(0)
y, final = cell.unroll(p, x=np.ones((3, 2, 1)))
g = cell.vjp(p, x=np.ones((3, 2, 1)), d_y=np.ones((3, 2, 1)))
assert y.shape == (3, 2, 1) and g["W_hh"].shape == (4, 4)
assert "torch" not in sys.modules
try:
    import cellc.torch
except ImportError:
    print("ok")
"""


def test_package_works_without_torch():
    r = subprocess.run([sys.executable, "-c", SCRIPT.replace("CELL", repr(cell_path("gru")))],
                       capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "python")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
