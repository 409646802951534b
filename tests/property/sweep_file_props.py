#!/usr/bin/python3
"""Property-based test of the sweep-file parser (issue 33): random sweep files, structured like
real ones (tables [sweep], [set], [axes], [[zip]], [[plot]] with keys from the experiment schema and
wrong ones, values of every TOML type), some of them then cut short or given stray bytes, through
`cellc sweep FILE --dry-run`. Each must end with exit status 0, 1 or 2 (never a signal), within a
timeout, and an error must name the sweep file. Nothing may be written (a dry run).

    /usr/bin/python3 tests/property/sweep_file_props.py CELLC SOURCE_DIR   (ctest: property_sweep_file)
"""
import os
import subprocess
import sys
import tempfile
import time

from hypothesis import HealthCheck, given, settings, strategies as st

CELLC, SRC = sys.argv[1], sys.argv[2]
BASE = os.path.join(SRC, "experiments", "copy_first_tiny.toml")
WORK = tempfile.mkdtemp(prefix="cellc-sweep-props-")
BUDGET = float(os.environ.get("CELLC_PROPERTY_SECONDS", "50"))
START = time.monotonic()
SEEN = {}  # exit status -> count, printed at the end (a test that only ever sees exit 1 tests little)

KEYS = ["train.batch", "train.learning_rate", "train.max_steps", "task.dim", "task.steps", "cell.dims.n",
        "cell.dims.n_in", "cell.file", "experiment.seed", "train.optimizer", "train.frozen", "phase.x.ewc.lambda",
        "nope", "train", "a.b.c.d", "experiment.name", "\u00e9t\u00e9"]
scalars = st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(-3, 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.text(max_size=12), st.sampled_from(['"../cells/gru.cell"', '"../cells/nope.cell"', '"/etc/passwd"']))


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(v), repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, str) and v.startswith('"'):
        return v
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').encode("unicode_escape").decode().replace("\\\\u", "\\u") + '"'


values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
# Lines that a valid sweep has (so that some files pass and the expansion and listing run too).
GOOD = ["train.batch = [1, 2]", "train.learning_rate = [0.01, 0.1]", 'train.optimizer = ["sgd", "adam"]',
        "experiment.seed = [1, 2, 3]", "train.max_steps = [0, 1]", 'cell.file = ["../cells/gru.cell", "../cells/nbrc.cell"]']
lines = st.one_of(st.sampled_from(GOOD), st.sampled_from(GOOD),
                  st.tuples(st.sampled_from(KEYS), values).map(lambda kv: f'"{kv[0]}" = {toml_value(kv[1])}'))


@st.composite
def sweep_files(draw):
    out = []
    if draw(st.booleans()) or True:
        out.append("[sweep]")
        base = draw(st.sampled_from([BASE, BASE, BASE, BASE, "nope.toml", SRC, ""]))
        if draw(st.integers(0, 19)) > 0:
            out.append(f"base = {toml_value(base)}")
        if draw(st.booleans()):
            out.append(f"name = {toml_value(draw(st.sampled_from(['ok', '../x', '/abs', '', 'a' * 200, '.h'])))}")
        if draw(st.booleans()):
            out.append(f"seeds = {toml_value(draw(st.lists(st.one_of(st.integers(-5, 5), st.floats()), max_size=4)))}")
        if draw(st.booleans()):
            out.append(f"profile = {toml_value(draw(st.sampled_from(['quick', 'none', ''])))}")
    tables = st.sampled_from(["[axes]", "[axes]", "[set]", "[[zip]]", "[[plot]]", "[other]"])
    for table in draw(st.lists(tables, max_size=3, unique=True)):
        out.append(table)
        if table == "[[plot]]":
            out += [f"metric = {toml_value(draw(st.text(max_size=6)))}",
                    f"x = {toml_value(draw(st.sampled_from(KEYS + ['seed'])))}"]
        out += draw(st.one_of(st.lists(st.sampled_from(GOOD), max_size=3, unique=True), st.lists(lines, max_size=4)))
    text = "\n".join(out) + "\n"
    mangle = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))
    if mangle == 1:  # cut short
        text = text[: draw(st.integers(0, len(text)))]
    elif mangle == 2:  # stray bytes
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=4)) + text[at:]
    return text.encode("utf-8", "surrogatepass") if mangle != 3 else text.encode() + b"\xff\xfe"


@settings(max_examples=int(os.environ.get("CELLC_PROPERTY_EXAMPLES", "150")), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(sweep_files())
def test_sweep_file(data):
    if time.monotonic() - START > BUDGET:
        return  # the time budget is spent: the remaining examples pass untried
    path = os.path.join(WORK, "s.toml")
    with open(path, "wb") as f:
        f.write(data)
    out = os.path.join(WORK, "out")
    try:
        p = subprocess.run([CELLC, "sweep", path, "--dry-run", "--out", out], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"cellc sweep --dry-run hung (30 s) on:\n{data!r}")
    err = p.stderr.decode("utf-8", "replace")
    SEEN[p.returncode] = SEEN.get(p.returncode, 0) + 1
    assert p.returncode in (0, 1, 2), f"exit status {p.returncode} (a signal?) on:\n{data!r}\n{err}"
    if p.returncode == 1:
        assert path in err, f"the error does not name the sweep file {path}:\n{err}\non:\n{data!r}"
    assert not os.path.exists(out), "a dry run created its folder"


if __name__ == "__main__":
    test_sweep_file()
    print(f"ok ({time.monotonic() - START:.0f} s); exit statuses seen: {dict(sorted(SEEN.items()))}")
