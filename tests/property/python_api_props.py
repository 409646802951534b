#!/usr/bin/python3
"""Property-based test of the Python API (issue 33): random dims, dtypes, array shapes and option
dicts into cellc.compile, Cell.unroll, Cell.vjp and cellc.train. Each call either works or raises a
Python exception; a crash (a signal) fails the ctest entry, which runs this file as a process, and
so does a hang (ctest's timeout).

    PYTHONPATH=python /usr/bin/python3 tests/property/python_api_props.py SOURCE_DIR   (ctest: property_python_api)
"""
import faulthandler
import os
import sys
import time

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

faulthandler.enable()  # a crash prints the Python stack of the call that made it
SRC = sys.argv[1]
sys.path.insert(0, os.path.join(SRC, "python"))
import cellc  # noqa: E402

BUDGET = float(os.environ.get("CELLC_PROPERTY_SECONDS", "50"))
START = time.monotonic()
GRU = os.path.join(SRC, "cells", "gru.cell")
small = st.integers(-2, 6)
odd_number = st.one_of(small, st.floats(allow_nan=True, allow_infinity=True), st.just(2**40), st.just(-(2**63)),
                       st.text(max_size=3), st.none(), st.booleans())
dtypes = st.sampled_from(["float32", "float64", "float16", "int32", np.float32, np.float64, "x", None, 3])
shapes = st.lists(st.integers(0, 4), max_size=4).map(tuple)
OUTCOMES = {}


def call(what, f, *a, **k):
    try:
        f(*a, **k)
        OUTCOMES[what + " ok"] = OUTCOMES.get(what + " ok", 0) + 1
    except KeyboardInterrupt:
        raise
    except Exception as e:  # any Python exception is an answer; only a crash is not
        OUTCOMES[what + " " + type(e).__name__] = OUTCOMES.get(what + " " + type(e).__name__, 0) + 1
        assert "Internal error" not in str(e), f"{what}: pybind's internal error instead of a message: {e}"


def array(draw, shape, dtype):
    kind = draw(st.sampled_from(["normal", "nan", "zeros", "list", "transposed"]))
    a = np.zeros(shape, dtype=dtype) if kind == "zeros" else np.random.default_rng(0).normal(size=shape).astype(dtype)
    if kind == "nan" and a.size and a.dtype.kind in "fc":
        a.flat[0] = np.nan
    if kind == "transposed":
        a = a.T
    return a.tolist() if kind == "list" else a


@st.composite
def cases(draw):
    dims = draw(st.dictionaries(st.sampled_from(["n", "n_in", "n_out", "nope"]), odd_number, max_size=3))
    return dims, draw(dtypes), draw(st.data())


@settings(max_examples=int(os.environ.get("CELLC_PROPERTY_EXAMPLES", "120")), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(cases())
def test_python_api(case):
    if time.monotonic() - START > BUDGET:
        return
    dims, dtype, data = case
    try:
        cell = cellc.compile(GRU, dims=dims, dtype=dtype)
    except Exception:
        cell = cellc.compile(GRU, dims={"n": 3, "n_in": 2, "n_out": 2})
    params = {}
    call("init_params", lambda: params.update(cell.init_params(seed=data.draw(st.integers(-1, 2**64)))))
    if not params:
        params = cell.init_params(seed=0)
    if data.draw(st.booleans()):  # a param of a wrong shape or dtype
        k = data.draw(st.sampled_from(sorted(params)))
        params = dict(params, **{k: array(data.draw, data.draw(shapes), data.draw(st.sampled_from(["float32", "float64"])))})
    x = array(data.draw, data.draw(st.one_of(shapes, st.just((3, 2, 2)))),
              data.draw(st.sampled_from(["float32", "float64", "int64", "complex64"])))
    call("unroll", cell.unroll, params, x=x)
    call("vjp", cell.vjp, params, x=x, d_y=array(data.draw, data.draw(shapes), "float32"))
    options = data.draw(st.dictionaries(
        st.sampled_from(["batch", "max_steps", "learning_rate", "optimizer", "clip_norm", "segment",
                         "validate_every", "validation_batch", "dropout", "frozen", "seed", "bogus"]),
        st.one_of(odd_number, st.lists(st.text(max_size=3), max_size=2)), max_size=4))
    options.setdefault("max_steps", 2)
    if isinstance(options["max_steps"], int) and options["max_steps"] > 5:
        options["max_steps"] = 2
    task_options = data.draw(st.one_of(st.none(), st.dictionaries(
        st.sampled_from(["steps", "dim", "tasks", "duration", "bogus"]), odd_number, max_size=2)))

    def task(batch, rng):
        T = data.draw(st.integers(0, 3))
        return (array(data.draw, data.draw(st.one_of(shapes, st.just((T, batch, 2)))), "float32"),
                array(data.draw, data.draw(st.one_of(shapes, st.just((T, batch, 2)))), "float32"))
    call("train python task", cellc.train, cell, task, verbose=False, **options)
    call("train copy_first", cellc.train, cell, "copy_first", task_options=task_options, verbose=False, **options)


if __name__ == "__main__":
    test_python_api()
    print(f"ok ({time.monotonic() - START:.0f} s): {dict(sorted(OUTCOMES.items()))}")
