"""cellc.train on a Python task and on a built-in one; Ctrl-C; cellc.run on an experiment file."""
import os
import signal

import numpy as np
import pytest

import cellc
from conftest import ROOT, cell_path


def memory_task(batch, rng):
    """Output the input seen 3 steps ago, with the first 3 steps masked out."""
    T = 15
    x = rng.normal(size=(T, batch, 1))
    target = np.zeros_like(x)
    target[3:] = x[:-3]
    mask = np.ones_like(x)
    mask[:3] = 0
    return x, target, mask


@pytest.fixture(scope="module")
def gru():
    return cellc.compile(cell_path("gru"), dims={"n": 16})


def test_train_on_a_python_task_learns(gru):
    before = None
    def task(batch, rng):
        return memory_task(batch, rng)
    r0 = cellc.train(gru, task, optimizer="adam", learning_rate=0.01, batch=16, max_steps=0,
                     validate_every=1, verbose=False)
    r = cellc.train(gru, task, optimizer="adam", learning_rate=0.01, batch=16, max_steps=300,
                    validate_every=100, validation_batch=64, seed=2, verbose=False)
    assert r["stop_reason"] == "max-steps" and r["steps"] == 300
    assert set(r["params"]) == {s.name for s in gru.layout.params}
    # The trained params do the task on fresh data: compare with the untrained error.
    x, target, mask = memory_task(64, np.random.default_rng(99))
    def err(p):
        outs, _ = gru.unroll(p, x=x)
        y = outs["y"]
        return float(np.sqrt(np.sum(mask * (y - target) ** 2) / mask.sum()))
    assert r0["params"].keys() == r["params"].keys()
    assert err(r["params"]) < 0.5 * err(gru.init_params(2))
    assert r["best_error"] < 0.5


def test_train_is_seeded(gru):
    kw = dict(optimizer="adam", learning_rate=0.01, batch=4, max_steps=5, validate_every=0,
              seed=5, verbose=False)
    a, b = cellc.train(gru, memory_task, **kw), cellc.train(gru, memory_task, **kw)
    assert all(np.array_equal(a["params"][k], b["params"][k]) for k in a["params"])


def test_train_on_a_builtin_task():
    cell = cellc.compile(cell_path("gru"), dims={"n": 8})
    r = cellc.train(cell, "copy_first", task_options={"steps": 10}, optimizer="adam",
                    learning_rate=0.01, batch=8, max_steps=20, validate_every=10, verbose=False)
    assert r["steps"] == 20 and np.isfinite(r["last_loss"])


def test_train_errors(gru):
    with pytest.raises(ValueError, match=r"unknown train option 'learning_rat' \(did you mean 'learning_rate'\?\)"):
        cellc.train(gru, memory_task, learning_rat=0.1, verbose=False)
    with pytest.raises(ValueError, match=r"unknown task 'copy_frist' \(did you mean 'copy_first'\?\)"):
        cellc.train(gru, "copy_frist", verbose=False)
    with pytest.raises(ValueError, match=r"unknown option of task copy_first 'step'"):
        cellc.train(gru, "copy_first", task_options={"step": 3}, verbose=False)
    bad = lambda batch, rng: (np.zeros((5, batch, 2)), np.zeros((5, batch, 1)))
    with pytest.raises(ValueError, match=r"the task's input x has shape \(5, 1, 2\) but needs \(T, B, 1\) = \(5, 1, 1\)"):
        cellc.train(gru, bad, verbose=False)
    bad_t = lambda batch, rng: (np.zeros((5, batch, 1)), np.zeros((4, batch, 1)))
    with pytest.raises(ValueError, match=r"the task's targets has shape \(4, 1, 1\) but needs \(T, B, 1\) = \(5, 1, 1\) for output y"):
        cellc.train(gru, bad_t, verbose=False)
    with pytest.raises(ValueError, match=r"train option 'batch' must be an integer"):
        cellc.train(gru, memory_task, batch=2.5, verbose=False)


def test_python_exception_in_task_propagates(gru):
    calls = []
    def task(batch, rng):
        calls.append(batch)
        if len(calls) > 3:
            raise RuntimeError("the task broke")
        return memory_task(batch, rng)
    with pytest.raises(RuntimeError, match="the task broke"):
        cellc.train(gru, task, max_steps=100, verbose=False)


@pytest.mark.parametrize("how", ["signal", "raise"])
def test_ctrl_c_checkpoints_then_raises_and_resumes(gru, tmp_path, how):
    ckpt = tmp_path / "run.ckpt"
    calls = []
    def task(batch, rng):
        calls.append(batch)
        if len(calls) == 6:
            if how == "signal":
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
            else:
                raise KeyboardInterrupt
        return memory_task(batch, rng)
    kw = dict(batch=4, max_steps=50, validate_every=0, checkpoint=str(ckpt), verbose=False)
    with pytest.raises(KeyboardInterrupt, match=r"training interrupted at step \d+; checkpoint saved"):
        cellc.train(gru, task, **kw)
    assert ckpt.exists()
    r = cellc.train(gru, memory_task, **kw)
    assert r["resumed"] and r["steps"] == 50


@pytest.mark.parametrize("how", ["signal", "raise"])
def test_an_interrupted_run_resumes_to_the_bits_of_an_uninterrupted_one(gru, tmp_path, how):
    # Ctrl-C lands inside the Python task (the trainer runs without the GIL): that batch is drawn
    # again from the same generator state, so the step taken before stopping, the checkpoint and
    # the resumed run are those of a run never interrupted. (Before, the previous batch was reused.)
    kw = dict(batch=4, max_steps=30, validate_every=5, validation_batch=8, seed=7, optimizer="adam",
              learning_rate=0.01, checkpoint_every=1000, verbose=False)
    whole = cellc.train(gru, memory_task, checkpoint=str(tmp_path / "whole.ckpt"), **kw)
    calls = []
    def task(batch, rng):
        calls.append(batch)
        if len(calls) == 9:  # a training batch, between two validations
            if how == "signal":
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
            else:
                raise KeyboardInterrupt
        return memory_task(batch, rng)
    ckpt = str(tmp_path / "cut.ckpt")
    with pytest.raises(KeyboardInterrupt, match=r"training interrupted at step \d+; checkpoint saved"):
        cellc.train(gru, task, checkpoint=ckpt, **kw)
    resumed = cellc.train(gru, memory_task, checkpoint=ckpt, **kw)
    assert resumed["resumed"] and resumed["steps"] == whole["steps"] == 30
    assert resumed["best_error"] == whole["best_error"]
    for name in whole["params"]:
        assert np.array_equal(resumed["params"][name], whole["params"][name]), name


def test_run_experiment_returns_summary(tmp_path):
    s = cellc.run(ROOT / "tests" / "fixtures" / "experiments" / "tiny.toml", out=tmp_path / "run",
                  set={"train.max_steps": 10}, verbose=False)
    assert s["run_folder"] == str(tmp_path / "run")
    assert (tmp_path / "run" / "summary.json").exists()
    assert s["training"]["steps"] == 10  # one phase: its summary


def test_run_experiment_beyond_memory_is_a_memory_error(tmp_path):
    # Tens of TB of BPTT buffers, every key within its range: refused before the folder is made.
    with pytest.raises(cellc.OutOfMemoryError) as e:
        cellc.run(ROOT / "tests" / "fixtures" / "experiments" / "tiny.toml", out=tmp_path / "run",
                  set={"cell.dims.n": 16384, "train.batch": 500000, "train.memory_budget_mb": 1000000000},
                  verbose=False)
    assert isinstance(e.value, MemoryError)
    msg = str(e.value)
    assert "training phase 'train' needs about " in msg and "the machine has " in msg
    assert "The sizes come from train.batch = 500000" in msg and "cell.dims.n = 16384" in msg
    assert not (tmp_path / "run").exists()


def test_run_experiment_errors(tmp_path):
    with pytest.raises(ValueError, match="train.max_step"):
        cellc.run(ROOT / "tests" / "fixtures" / "experiments" / "tiny.toml", out=tmp_path / "r",
                  set={"train.max_step": 10}, verbose=False)


def test_metrics_keep_the_curve_before_the_resume_point(gru, tmp_path):
    # The curve's rows name their phase; rows without one were dropped on resume.
    kw = dict(batch=4, validate_every=1, checkpoint=str(tmp_path / "run.ckpt"),
              metrics=str(tmp_path / "metrics.csv"), verbose=False)
    cellc.train(gru, memory_task, max_steps=6, **kw)
    r = cellc.train(gru, memory_task, max_steps=12, **kw)
    assert r["resumed"] and r["steps"] == 12
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "phase,step,loss,val_error,grad_norm,seconds"
    rows = [line.split(",") for line in lines[1:]]
    assert [int(row[1]) for row in rows] == list(range(1, 13))
    assert {row[0] for row in rows} == {"train"}


@pytest.mark.parametrize("loss", ["mse", "mse_last"])
def test_a_task_of_no_steps_is_an_error(gru, loss):
    empty = lambda batch, rng: (np.zeros((0, batch, 1)), np.zeros((0, batch, 1)))
    with pytest.raises(ValueError, match=r"the task's input x has T = 0 steps: a trial needs at least one"):
        cellc.train(gru, empty, loss=loss, verbose=False)


def test_builtin_task_options_pass_the_experiment_format_checks():
    # The ranges and checks of an experiment's [task] table, whatever the options' source.
    cell = cellc.compile(cell_path("gru"), dims={"n": 4, "n_in": 1, "n_out": 5})
    with pytest.raises(ValueError, match=r"task_options: task.tasks=0: error: key 'task.tasks' = 0 is out of range: at least 1"):
        cellc.train(cell, "multi_sequence", task_options={"tasks": 0}, max_steps=1, verbose=False)
    with pytest.raises(ValueError, match=r"task_options: task.duration=1e\+12: error: key 'task.duration' = 1e\+12 is out of range"):
        cellc.train(cell, "sequence", task_options={"duration": 1e12, "outputs": 5}, max_steps=1, verbose=False)
    with pytest.raises(ValueError, match=r"task.duration / task.dt = 1000 / 1e-06 = 1e\+09 steps: a trial takes 1 to 1000000 steps"):
        cellc.train(cell, "sequence", task_options={"dt": 1e-6, "outputs": 5}, max_steps=1, verbose=False)
    with pytest.raises(ValueError, match=r"task.onset_max = 200 is after the end of the trial"):
        cellc.train(cell, "sequence", task_options={"duration": 150, "outputs": 5}, max_steps=1, verbose=False)
    # ... and the task must fit the cell (5 outputs here).
    with pytest.raises(ValueError, match=r"key 'task.outputs': task sequence has 10 outputs per step, the cell's output y has 5"):
        cellc.train(cell, "sequence", max_steps=1, verbose=False)
    with pytest.raises(ValueError, match=r"option of task sequence 'outputs' must be an integer, got 1e\+30"):
        cellc.train(cell, "sequence", task_options={"outputs": 1e30}, max_steps=1, verbose=False)
    r = cellc.train(cell, "sequence", task_options={"outputs": 5, "duration": 200, "onset_max": 150},
                    batch=2, max_steps=2, validate_every=0, verbose=False)
    assert r["steps"] == 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_task_may_unroll_the_cell_being_trained(dtype):
    # The trainer lets go of the cell's lock while the task runs: this deadlocked (and Ctrl-C was
    # never serviced). Run in a child so that a deadlock is a failure, not a hung suite.
    import subprocess, sys, textwrap
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT / "python")!r})
        import numpy as np, cellc
        cell = cellc.compile({cell_path("gru")!r}, dims={{"n": 8}}, dtype={dtype!r})
        params = cell.init_params(0)
        calls = []
        def task(batch, rng):
            x = rng.normal(size=(10, batch, 1))
            for c in (cell, cell.astype("float32")):
                outs, _ = c.unroll(params, x=x)  # the teacher: the untrained cell itself
                y = outs["y"]
            calls.append(batch)
            return x, np.asarray(y, dtype=np.float64)
        r = cellc.train(cell, task, batch=4, max_steps=5, validate_every=2, verbose=False)
        assert r["steps"] == 5 and len(calls) > 5, (r, calls)
        print("ok")
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


# A cell whose state is n wide and whose one param is a scalar: buffers of any size, small params.
WIDE = """cell wide {
  dim n = 4
  input x[1]
  state h[n] = 0
  param a ~ fill(0.5)
  h' = a * h + x
  output y = h'
}
"""


def test_train_beyond_memory_is_a_memory_error_before_any_batch():
    wide = cellc.compile(source=WIDE, dims={"n": 1000000})
    calls = []
    def task(batch, rng):
        calls.append(batch)
        return np.zeros((10, batch, 1)), np.zeros((10, batch, 1000000))
    # T x B x n targets in double alone: 10 x 10^6 x 10^6 x 8 bytes, 80 TB.
    with pytest.raises(cellc.OutOfMemoryError) as e:
        cellc.train(wide, task, batch=1000000, max_steps=1, verbose=False)
    assert isinstance(e.value, MemoryError)
    msg = str(e.value)
    assert msg.startswith("train needs about ") and " TB (" in msg
    assert "the machine has " in msg
    assert ("The sizes come from the train options batch = 1000000 and validation_batch = 100, "
            "T = 10 steps (from the task) and the cell's dims n = 1000000") in msg
    assert calls == [1]  # the probe that tells T; no batch was drawn


def sign_task(batch, rng):
    """Two classes: is the sum of the inputs positive? Reported at the last two steps (one-hot
    targets); the earlier steps' targets are all 0, so they have no cross-entropy term."""
    T = 8
    x = rng.normal(size=(T, batch, 1))
    positive = x.sum(axis=0)[:, 0] > 0
    target = np.zeros((T, batch, 2))
    target[-2:, np.arange(batch), positive.astype(int)] = 1
    return x, target


def test_train_with_cross_entropy_learns_a_choice():
    cell = cellc.compile(cell_path("gru"), dims={"n": 16, "n_out": 2})
    r = cellc.train(cell, sign_task, loss="cross_entropy", metric="error_rate", optimizer="adam",
                    learning_rate=0.01, batch=32, max_steps=300, validate_every=100,
                    validation_batch=200, seed=3, verbose=False)
    assert r["best_error"] < 0.15  # 1 - accuracy; chance is 0.5
    x, target = sign_task(500, np.random.default_rng(7))
    outs, _ = cell.unroll(r["params"], x=x)
    y = outs["y"]
    accuracy = np.mean(y[-1].argmax(axis=1) == target[-1].argmax(axis=1))
    assert accuracy > 0.85


def test_cross_entropy_options_errors(gru):
    with pytest.raises(ValueError, match=r"loss 'xent': it must be mse, mse_last, cross_entropy or cross_entropy_last"):
        cellc.train(gru, memory_task, loss="xent", verbose=False)
    with pytest.raises(ValueError, match=r"metric='error_rate' scores choices, and loss 'mse' makes none"):
        cellc.train(gru, memory_task, metric="error_rate", max_steps=1, verbose=False)
    masked = lambda batch, rng: (np.zeros((3, batch, 1)), np.zeros((3, batch, 1)), np.ones((3, batch, 1)))
    with pytest.raises(ValueError, match=r"the task returned a mask, but loss 'cross_entropy_last' takes none"):
        cellc.train(gru, masked, loss="cross_entropy_last", max_steps=1, verbose=False)


def test_train_on_the_perceptual_decision_task():
    cell = cellc.compile(cell_path("dale_rnn"), dims={"n": 10, "n_in": 2, "n_out": 2})
    r = cellc.train(cell, "perceptual_decision", task_options={"coherences": [16], "sigma_in": 0.1},
                    metric="error_rate", optimizer="adam", learning_rate=0.01, batch=8, max_steps=20,
                    validate_every=10, verbose=False)
    assert r["steps"] == 20 and 0 <= r["best_error"] <= 1 and np.isfinite(r["last_loss"])
    with pytest.raises(ValueError, match=r"task.coherences.*coherence 150 is out of range"):
        cellc.train(cell, "perceptual_decision", task_options={"coherences": [150]}, verbose=False)


@pytest.mark.parametrize("changed, key", [
    (dict(batch=8), "train.batch"),
    (dict(learning_rate=0.02), "train.learning_rate"),
    (dict(seed=4), "experiment.seed"),
    (dict(optimizer="adam"), "train.optimizer"),
])
def test_a_resume_with_other_settings_is_refused(gru, tmp_path, changed, key):
    # The identity check `cellc run` makes of its run folder: a changed setting would mix two
    # trainings in one checkpoint, so it is refused and named; a longer run of the same resumes.
    ckpt = str(tmp_path / "run.ckpt")
    same = dict(batch=4, learning_rate=0.01, seed=3, optimizer="sgd", validate_every=0, checkpoint=ckpt,
                verbose=False)
    cellc.train(gru, memory_task, max_steps=3, **same)
    with pytest.raises(ValueError, match=r"run\.ckpt holds a training with other settings \(" +
                       key.replace(".", r"\.") + ": was .*, now .*\); resuming would mix the two"):
        cellc.train(gru, memory_task, max_steps=6, **{**same, **changed})
    r = cellc.train(gru, memory_task, max_steps=6, **same)
    assert r["resumed"] and r["steps"] == 6


def test_a_resume_with_other_task_options_is_refused(tmp_path):
    cell = cellc.compile(cell_path("gru"), dims={"n": 8})
    ckpt = str(tmp_path / "run.ckpt")
    kw = dict(batch=4, validate_every=0, checkpoint=ckpt, verbose=False)
    cellc.train(cell, "copy_first", task_options={"steps": 10}, max_steps=2, **kw)
    with pytest.raises(ValueError, match=r"other settings \(task\.steps: was 10, now 12\)"):
        cellc.train(cell, "copy_first", task_options={"steps": 12}, max_steps=4, **kw)
