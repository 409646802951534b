"""cellc from Python: compile a .cell file, unroll it over numpy arrays, take its gradients, train it.

    import cellc, numpy as np
    cell = cellc.compile("cells/gru.cell", dims={"n": 64}, dtype="float32")
    cell.layout                                  # params, states, inputs, noises, outputs
    params = cell.init_params(seed=0)            # dict name -> np.ndarray
    outs, final = cell.unroll(params, x=X)       # X: [T, B, n_in]; outs["y"]: [T, B, n_out]
    grads = cell.vjp(params, x=X, d_y=G)         # every param, input and initial state

See docs/python.md. PyTorch: cellc.torch.CellModule (needs python3-torch; nothing else does).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from . import _cellc
from ._cellc import CompileError, OutOfMemoryError, Tape

__all__ = ["compile", "Cell", "Layout", "Slot", "CompileError", "OutOfMemoryError", "train", "run", "load_run", "RunFolder",
           "Tape", "set_threads", "threads"]


@dataclass(frozen=True)
class Slot:
    """One named array of a cell: its shape (without the T and B axes) and how it starts."""

    name: str
    shape: tuple
    init: Any = None  # params: the initializer chain; states: a number or the param's name

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class Layout:
    """The cell's arrays by role. States, inputs, noises and outputs carry [T, B] or [B] in front."""

    params: tuple
    states: tuple
    inputs: tuple
    noises: tuple
    outputs: tuple

    def __str__(self) -> str:
        lines = []
        for role in ("params", "states", "inputs", "noises", "outputs"):
            for s in getattr(self, role):
                init = f"{s.init:g}" if isinstance(s.init, float) else s.init
                extra = f" ~ {init}" if role == "params" and init else (
                    f" = {init}" if role == "states" else "")
                lead = {"params": "", "states": "B, ", "inputs": "T, B, ", "noises": "T, B, ",
                        "outputs": "T, B, "}[role]
                dims = ", ".join(str(d) for d in s.shape)
                lines.append(f"{role[:-1]} {s.name}[{lead}{dims}]".replace(", ]", "]") + extra)
        return "\n".join(lines)


def _dict_or_single(value, slots, role: str, what: str) -> Optional[dict]:
    """An array for a role with one slot, or a dict name -> array; None stays None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if len(slots) == 1:
        return {slots[0].name: value}
    names = ", ".join(s.name for s in slots) or "none"
    raise ValueError(f"{what}: the cell has {len(slots)} {role}s ({names}); pass a dict name -> array")


class Cell:
    """A cell compiled by the JIT in one precision. Make one with cellc.compile."""

    def __init__(self, native: "_cellc.Cell"):
        self._native = native
        raw = native.layout()
        self.layout = Layout(**{role: tuple(Slot(d["name"], tuple(d["shape"]), d.get("init"))
                                            for d in raw[role]) for role in raw})

    name = property(lambda self: self._native.name, doc="the cell's name (`cell gru { ... }`)")
    path = property(lambda self: self._native.path, doc="the .cell file")
    dtype = property(lambda self: np.dtype(self._native.dtype), doc="float32 or float64")
    dims = property(lambda self: dict(self._native.dims), doc="every dim, as resolved")
    source = property(lambda self: self._native.source, doc="the .cell text")

    def __repr__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        return f"<cellc.Cell {self.name} ({dims}) {self.dtype} from {self.path}>"

    def astype(self, dtype) -> "Cell":
        """The same cell compiled in another precision (compiled once, then cached)."""
        native = self._native.astype(_dtype_name(dtype))
        return self if native is self._native else Cell(native)

    def init_params(self, seed: int = 0) -> dict:
        """Fresh params from the cell's initializers: dict name -> array of the cell's dtype.
        The same seed gives the same values as cellc.train(seed=...) and `cellc run`."""
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        return self._native.init_params(int(seed))

    def _split(self, inputs, named, where: str):
        given = _dict_or_single(inputs, self.layout.inputs, "input", f"{where}: inputs")
        given = dict(given or {})
        for k, v in named.items():
            if k in given:
                raise ValueError(f"{where}: input {k} given twice")
            given[k] = v
        return given

    def _forward(self, params, inputs, state0, noise, keep: bool):
        state0 = _dict_or_single(state0, self.layout.states, "state", "state0")
        noise = _dict_or_single(noise, self.layout.noises, "noise", "noise")
        return self._native.run(params, inputs, state0, noise, keep)

    def unroll(self, params: Mapping, inputs=None, *, state0=None, noise=None, batch_first=False,
               **named_inputs):
        """Runs the cell over T steps.

        params: dict name -> array (every param). Inputs by name (`x=X`, [T, B, ...]) or as
        `inputs=` (an array when the cell has one input, else a dict). state0: initial states
        [B, ...] (an array for a one-state cell, else a dict; default: the declared initial values).
        noise: [T, B, ...] (default zeros; ones for a ~ dropout() mask). Returns (outputs, final),
        two dicts by name whatever the cell: outputs [T, B, ...] and the final states [B, ...]
        (so `outs, final = cell.unroll(p, x=X); y = outs["y"]`).
        batch_first=True: inputs, noise and outputs are [B, T, ...] instead (as torch's
        batch_first); states are [B, ...] either way.
        """
        given = self._split(inputs, named_inputs, "unroll")
        if batch_first:
            given = {k: _swap_bt(v, f"input {k}") for k, v in given.items()}
            noise = _map_tree(noise, lambda v, k: _swap_bt(v, f"noise {k}"))
        outputs, final, _ = self._forward(params, given, state0, noise, False)
        if batch_first:
            outputs = {k: np.swapaxes(v, 0, 1) for k, v in outputs.items()}
        return outputs, final

    def vjp(self, params: Mapping, inputs=None, *, state0=None, noise=None, d_final=None,
            **named):
        """Gradients of loss = sum_t <d_y_t, y_t> + sum_s <d_final_s, s_T> for given adjoints.

        As unroll, plus output adjoints `d_<output>=` [T, B, ...] (missing ones are zero) and
        d_final (final-state adjoints [B, ...], an array or a dict). Returns a dict name -> gradient
        for every param (summed over steps and batch), every input ([T, B, ...]) and every state's
        initial value ([B, ...]). A param that a state starts from (`state x[n] = x0`, no state0
        given) includes that state's batch-summed gradient: it is the whole gradient for it.
        """
        out_names = {"d_" + s.name for s in self.layout.outputs}
        d_outputs = {k[2:]: named.pop(k) for k in list(named) if k in out_names}
        bad = [k for k in named if k.startswith("d_") and k[2:] not in
               {s.name for s in self.layout.inputs}]
        if bad:
            outs = ", ".join(sorted(out_names)) or "none"
            raise ValueError(f"vjp: unknown adjoint {bad[0]}; the cell's output adjoints: {outs}")
        given = self._split(inputs, named, "vjp")
        _, _, tape = self._forward(params, given, state0, noise, True)
        d_final = _dict_or_single(d_final, self.layout.states, "state", "d_final")
        return self._native.vjp(tape, d_outputs, d_final)

    def unroll_with_tape(self, params: Mapping, inputs: Mapping, state0=None, noise=None):
        """unroll that also keeps the tape for backward(): (outputs dict, final dict, tape)."""
        return self._forward(params, dict(inputs), state0, noise, True)

    def backward(self, tape: Tape, d_outputs: Optional[Mapping] = None,
                 d_final: Optional[Mapping] = None) -> dict:
        """The vjp of a run kept by unroll_with_tape, without running the forward again."""
        return self._native.vjp(tape, d_outputs, d_final)


def _swap_bt(value, what: str):
    """[B, T, ...] -> [T, B, ...] (batch_first), or an error naming the array."""
    a = np.asarray(value)
    if a.ndim < 2:
        raise ValueError(f"{what}: batch_first needs [B, T, ...], got shape {a.shape}")
    return np.swapaxes(a, 0, 1)


def _map_tree(value, fn):
    """fn over an array or the values of a dict (None stays None)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: fn(v, k) for k, v in value.items()}
    return fn(value, "")


def _dtype_name(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError as e:
        raise ValueError(f"dtype {dtype!r}: it must be float32 or float64") from e
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype {dtype!r}: it must be float32 or float64")
    return name


def set_threads(n: int) -> None:
    """Threads for the generated code's large matrix products (and batch-split trace loops), for
    the whole process; 0: every core (the default). Results are the same on any count above one;
    one thread may differ from them in the last bits. `cellc.run` sets it from `train.threads`."""
    _cellc.set_threads(int(n))


def threads() -> int:
    """The thread count in use (set_threads)."""
    return _cellc.threads()


def compile(path: Optional[Union[str, os.PathLike]] = None,
            dims: Optional[Mapping[str, float]] = None,
            consts: Optional[Mapping[str, float]] = None, dtype="float32", *,
            source: Optional[str] = None) -> Cell:
    """Parses, checks, differentiates and JIT-compiles a .cell file, or the cell text `source`
    (then `path`, default "<source>", only names it in messages).

    dims and consts override the cell's dims and scalar consts (as `-D name=value`). Errors in the
    cell raise CompileError (a ValueError) whose message is the located diagnostics, with the source
    line and a caret; a missing file raises FileNotFoundError.
    """
    if source is not None and not isinstance(source, str):
        raise TypeError(f"source must be the cell's text (a str), not {type(source).__name__}")
    if source is None and path is None:
        raise TypeError("compile needs a path or source=")
    overrides = {}
    for what, d in (("dims", dims), ("consts", consts)):
        for k, v in (d or {}).items():
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"{what}: {k} = {v!r}: it must be a number")
            overrides[str(k)] = float(v)
    name = os.fspath(path) if path is not None else "<source>"
    return Cell(_cellc.Cell.compile(name, overrides, _dtype_name(dtype), source))


def train(cell: Cell, task: Union[str, Callable], *, params: Optional[Mapping] = None,
          task_options: Optional[Mapping] = None, loss: str = "mse", output: Optional[str] = None,
          verbose: bool = True, **options) -> dict:
    """Trains a cell with cellc's trainer (BPTT, SGD or Adam, clipping, dropout, checkpoints).

    task: a built-in task ("sequence", "multi_sequence", "copy_first", "perceptual_decision", its settings in
    task_options, keys as in an experiment's [task] table) or a callable task(batch, rng) returning
    (inputs, targets) or (inputs, targets, mask): inputs [T, B, n_in] (a dict for several inputs),
    targets and mask [T, B, ...] of the fitted output (`output=`, default the first); rng is a
    numpy Generator seeded from the trainer's data stream. loss: "mse" (masked) or "mse_last"
    (targets [B, ...] at the last step), or "cross_entropy" / "cross_entropy_last" (the output
    read as logits, the targets one-hot class weights; a step whose targets are all 0 has no term;
    metric="error_rate" then validates by 1 - accuracy).
    options: the trainer's settings (docs/python.md): optimizer, learning_rate, clip_norm, batch,
    max_steps, validate_every, validation_batch, metric, target_error, target_loss, patience, seed,
    noise, dropout, dropout_per_step, frozen, segment, checkpoint, checkpoint_every, metrics,
    progress. params: where to start (default: the initializers at `seed`).
    Returns a dict: params (the best ones), steps, best_error, last_loss, stop_reason, resumed.
    Ctrl-C saves the checkpoint (if `checkpoint=` names one) and raises KeyboardInterrupt.
    """
    if not isinstance(cell, Cell):
        raise ValueError(f"cell must be a cellc.Cell (from cellc.compile), got {type(cell).__name__}")
    builtin = isinstance(task, str)
    return _cellc.train(cell._native, task, task_options, params,
                        "auto" if builtin and loss == "mse" else loss,
                        output or "", options, verbose)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"set: cannot write {v!r} as a TOML value")


@dataclass
class RunFolder:
    """A finished (or checkpointed) run folder of `cellc run`, loaded: its cell compiled as the run
    compiled it (the folder's own cell.cell with the run's dims and consts), its trained params, the
    resolved experiment (experiment.toml) and its summary (summary.json, {} before one exists)."""
    folder: str
    cell: Cell
    params: dict
    config: dict
    summary: dict

    def __repr__(self) -> str:
        return (f"RunFolder({self.folder!r}: cell {self.cell.name}, {len(self.params)} params, "
                f"{'finished' if self.summary else 'no summary.json yet'})")


def load_run(folder: Union[str, os.PathLike], dtype="float32") -> RunFolder:
    """Loads a run folder written by `cellc run` (or cellc.run): the cell, its trained params
    (params/NAME.npy), the resolved experiment and the summary. A missing file raises
    FileNotFoundError naming it."""
    import tomllib
    folder = os.fspath(folder)
    def need(name):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: not in the run folder (is {folder} a cellc run folder?)")
        return path
    with open(need("experiment.toml"), "rb") as f:
        config = tomllib.load(f)
    summary = {}
    if os.path.exists(os.path.join(folder, "summary.json")):
        with open(os.path.join(folder, "summary.json")) as f:
            summary = json.load(f)
    cell_cfg = config.get("cell") or {}
    dims = (summary.get("cell") or {}).get("dims") or cell_cfg.get("dims") or {}
    cell = compile(need("cell.cell"), dims=dims, consts=cell_cfg.get("consts") or {}, dtype=dtype)
    need("params")
    params = {sl.name: np.load(need(os.path.join("params", sl.name + ".npy")))
              for sl in cell.layout.params}
    return RunFolder(folder, cell, params, config, summary)


def run(path: Union[str, os.PathLike], profile: str = "", set: Optional[Mapping[str, Any]] = None,
        out: Optional[Union[str, os.PathLike]] = None, plot: bool = False,
        verbose: bool = True) -> dict:
    """Runs an experiment file as `cellc run` does and returns its summary.json as a dict (the run
    folder is summary["run_folder"]). profile: a [profiles.NAME] table; set: {"train.batch": 64}
    overrides; out: the run folder (default runs/<name>); plot: draw the figures. Running again
    resumes; Ctrl-C saves a checkpoint and raises KeyboardInterrupt."""
    sets = [f"{k}={_toml_value(v)}" for k, v in (set or {}).items()]
    folder = _cellc.run_experiment(os.fspath(path), profile or "", sets,
                                   os.fspath(out) if out else "", plot, verbose)
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    summary.setdefault("run_folder", folder)
    return summary
