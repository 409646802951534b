"""Shared fixtures: the repository's paths, and every cell in cells/ at small dims."""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(os.environ.get("CELLC_ROOT", pathlib.Path(__file__).resolve().parents[2]))
CELLS = ROOT / "cells"
sys.path.insert(0, str(ROOT / "python"))  # PYTHONPATH=python, when pytest runs without it

# Small dims keep gradchecks and finite differences fast; n_in, n_out = 2 exercise the shapes.
SMALL = {
    "brc": {"n": 3, "n_in": 2, "n_out": 2},
    "dale_rnn": {"n": 5, "n_in": 2, "n_out": 2},
    "dale_rnn_abs": {"n": 5, "n_in": 2, "n_out": 2},
    "dale_rnn_ct": {"n": 5, "n_in": 2, "n_out": 2},
    "gru": {"n": 3, "n_in": 2, "n_out": 2},
    "leaky_rnn": {"n": 3, "n_in": 2, "n_out": 2},
    "lif": {"n": 4, "n_in": 2, "n_out": 2},
    "lstm": {"n": 3, "n_in": 2, "n_out": 2},
    "nbrc": {"n": 3, "n_in": 2, "n_out": 2},
    "pbrc": {"n": 3, "n_in": 2, "n_out": 2},
    "pbrc_split": {"k": 2, "n_in": 2, "n_out": 2},
    "pbrc_v0": {"n": 3, "n_in": 2, "n_out": 2},
    "pbrc_v1": {"n": 3, "n_in": 2, "n_out": 2},
    "plastic_gru": {"n": 3, "n_in": 2, "n_out": 2},
    "plastic_gru_clip": {"n": 3, "n_in": 2, "n_out": 2},
}


def all_cells():
    return sorted(p.stem for p in CELLS.glob("*.cell"))


def cell_path(name):
    return str(CELLS / f"{name}.cell")


def small_dims(name):
    assert name in SMALL, f"cells/{name}.cell has no small dims in python/tests/conftest.py: add them"
    return SMALL[name]


@pytest.fixture
def gru64():
    import cellc
    return cellc.compile(cell_path("gru"), dims=SMALL["gru"], dtype="float64")
