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
outs, final = cell.unroll(p, x=np.ones((3, 2, 1)))
y = outs["y"]
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


def test_the_torch_tests_fail_loudly_without_torch():
    """Without PyTorch the PyTorch tests are an error (not a skip that reports 100 % passed),
    unless CELLC_SKIP_TORCH_TESTS=1 asks for the skip."""
    script = BLOCK + (
        "import sys, pytest\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', sys.argv[1]]))\n")
    test_file = str(ROOT / "python" / "tests" / "test_torch.py")
    env = {"PYTHONPATH": str(ROOT / "python") + ":" + str(ROOT / "python" / "tests")}
    r = subprocess.run([sys.executable, "-c", script, test_file], capture_output=True, text=True,
                       env=env, cwd=str(ROOT / "python" / "tests"))
    assert r.returncode != 0, r.stdout
    assert "need python3-torch" in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-c", script, test_file], capture_output=True, text=True,
                       env=dict(env, CELLC_SKIP_TORCH_TESTS="1"), cwd=str(ROOT / "python" / "tests"))
    assert r.returncode in (0, 5), r.stdout + r.stderr  # 5: this file alone, every test skipped
    assert "skipped" in r.stdout
