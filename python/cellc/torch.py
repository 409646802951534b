"""A cellc cell as a PyTorch module: the JIT forward over all T steps in one native call, and the
generated backward through torch.autograd.Function. CPU tensors, float32 and float64.

    import cellc, cellc.torch
    cell = cellc.compile("cells/gru.cell", dims={"n": 64})
    rnn = cellc.torch.CellModule(cell)             # params are nn.Parameters
    outs, final = rnn(x)                           # x: [T, B, n_in]; outs["y"]: [T, B, n_out]
    outs["y"].pow(2).mean().backward()             # the generated backward

Needs Debian's python3-torch; `import cellc` alone does not.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import torch

from . import Cell, _dict_or_single

__all__ = ["CellModule", "CellFunction"]

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def _numpy(t: torch.Tensor, what: str) -> np.ndarray:
    if t.device.type != "cpu":
        raise ValueError(f"{what} is on {t.device}; cellc runs on the CPU (move it with .cpu())")
    if t.dtype not in _DTYPES:
        raise ValueError(f"{what} has dtype {t.dtype}; it needs torch.float32 or torch.float64")
    return t.detach().contiguous().numpy()  # shares memory with the tensor (no copy if contiguous)


class CellFunction(torch.autograd.Function):
    """forward(ctx, cell, spec, *tensors): tensors are the params (layout order), the inputs, then
    the given initial states and noises as spec names them. Returns the outputs (layout order) and
    the final states. backward calls the cell's generated backward on the kept tape."""

    @staticmethod
    def forward(ctx, cell: Cell, spec, *tensors):
        p_names, i_names, s_names, n_names = spec
        arrays = [_numpy(t, name) for t, name in zip(tensors, p_names + i_names + s_names + n_names)]
        k = 0
        groups = []
        for names in spec:
            groups.append(dict(zip(names, arrays[k:k + len(names)])))
            k += len(names)
        params, inputs, state0, noise = groups
        if any(ctx.needs_input_grad):
            outputs, final, tape = cell.unroll_with_tape(params, inputs, state0 or None, noise or None)
        else:  # no gradient wanted: keep no tape
            (outputs, final), tape = cell._forward(params, inputs, state0 or None, noise or None,
                                                   False)[:2], None
        ctx.cell, ctx.spec, ctx.tape = cell, spec, tape
        outs = [torch.from_numpy(outputs[s.name]) for s in cell.layout.outputs]
        outs += [torch.from_numpy(final[s.name]) for s in cell.layout.states]
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        # create_graph=True runs a backward with grad mode on, to differentiate the gradient
        # again; the compiled backward has no derivative of its own, so say so rather than hand
        # back a gradient torch would treat as constant (silently first-order).
        if torch.is_grad_enabled():
            raise RuntimeError(
                "cellc.torch.CellModule has no second derivative: backward(create_graph=True) and "
                "torch.autograd.grad(..., create_graph=True) (gradient penalties, Hessians, "
                "meta-learning) are not supported; its gradient comes from the compiled first-order "
                "backward. Differentiate once (create_graph=False), or use a PyTorch module for the "
                "second-order term")
        return _backward(ctx, *grads)


def _backward(ctx, *grads):
    """CellFunction.backward: the cell's generated backward on the kept tape (grad mode off)."""
    cell: Cell = ctx.cell
    p_names, i_names, s_names, n_names = ctx.spec
    L = cell.layout
    n_out = len(L.outputs)
    d_outputs = {s.name: _numpy(g, "d_" + s.name) for s, g in zip(L.outputs, grads[:n_out])
                 if g is not None}
    d_final = {s.name: _numpy(g, "d_final " + s.name) for s, g in zip(L.states, grads[n_out:])
               if g is not None}
    g = cell.backward(ctx.tape, d_outputs, d_final)
    result = [None, None]
    result += [torch.from_numpy(g[n]) for n in p_names]
    result += [torch.from_numpy(g[n]) for n in i_names]
    result += [torch.from_numpy(g[n]) for n in s_names]
    result += [None for _ in n_names]  # the generated backward gives no noise gradient
    return tuple(result)


class CellModule(torch.nn.Module):
    """A cellc cell as an nn.Module. Its params are nn.Parameters named as in the cell, started from
    the cell's initializers (`seed`), in the cell's dtype; `.double()` / `.float()` switch the
    precision (the cell is compiled in the other one on first use).

    forward(x, state0=None, noise=None): x [T, B, n_in] (a dict name -> tensor for a cell with
    several inputs); state0 [B, ...] and noise [T, B, ...] likewise optional. Returns
    (outputs, final), two dicts by name whatever the cell, as Cell.unroll: outputs [T, B, ...] and
    the final states [B, ...] (`outs, final = module(x); y = outs["y"]`).
    """

    def __init__(self, cell: Cell, seed: int = 0, params: Optional[Mapping] = None):
        super().__init__()
        if not isinstance(cell, Cell):
            raise ValueError(f"CellModule needs a cellc.Cell (from cellc.compile), got {type(cell).__name__}")
        self._cells = {cell.dtype.name: cell}
        init = cell.init_params(seed) if params is None else params
        for s in cell.layout.params:
            if s.name not in init:
                raise ValueError(f"params: missing {s.name} {s.shape}")
            value = torch.as_tensor(np.asarray(init[s.name], dtype=cell.dtype)).clone()
            self.register_parameter(s.name, torch.nn.Parameter(value))

    @classmethod
    def from_run(cls, folder, dtype="float32") -> "CellModule":
        """The module of a `cellc run` folder: its cell at the run's dims (cellc.load_run), its
        params the trained ones."""
        from . import load_run
        r = load_run(folder, dtype=dtype)
        return cls(r.cell, params=r.params)

    @property
    def cell(self) -> Cell:
        return next(iter(self._cells.values()))

    def extra_repr(self) -> str:
        """What print(module) shows inside CellModule(...): the cell, its dims and file."""
        c = self.cell
        dims = ", ".join(f"{k}={v}" for k, v in c.dims.items())
        return f"{c.name} ({dims}) from {c.path}"

    def _cell_for(self, dtype: torch.dtype) -> Cell:
        if dtype not in _DTYPES:
            raise ValueError(f"parameters have dtype {dtype}; cellc runs torch.float32 or torch.float64")
        name = _DTYPES[dtype]
        if name not in self._cells:
            self._cells[name] = self.cell.astype(name)
        return self._cells[name]

    def forward(self, x=None, state0=None, noise=None):
        L = self.cell.layout
        dtype = next(self.parameters()).dtype if L.params else (
            x.dtype if isinstance(x, torch.Tensor) else torch.float32)
        cell = self._cell_for(dtype)
        inputs = _dict_or_single(x, L.inputs, "input", "x") or {}
        state0 = _dict_or_single(state0, L.states, "state", "state0") or {}
        noise = _dict_or_single(noise, L.noises, "noise", "noise") or {}
        for what, given, slots in (("input", inputs, L.inputs), ("state", state0, L.states),
                                   ("noise", noise, L.noises)):
            for k in given:
                if k not in {s.name for s in slots}:
                    names = ", ".join(s.name for s in slots) or "none"
                    raise ValueError(f"unknown {what} '{k}'; the cell's {what}s: {names}")
        p_names = [s.name for s in L.params]
        i_names = [s.name for s in L.inputs]
        s_names = [s.name for s in L.states if s.name in state0]
        n_names = [s.name for s in L.noises if s.name in noise]
        missing = [n for n in i_names if n not in inputs]
        if missing:
            raise ValueError(f"missing input {missing[0]}")

        def tensor(v, what):
            t = torch.as_tensor(v)
            if t.dtype != dtype:
                raise ValueError(f"{what} has dtype {t.dtype} but the module's params are {dtype}")
            return t

        tensors = [getattr(self, n) for n in p_names]
        tensors += [tensor(inputs[n], "input " + n) for n in i_names]
        tensors += [tensor(state0[n], "state0 " + n) for n in s_names]
        tensors += [tensor(noise[n], "noise " + n) for n in n_names]
        spec = (p_names, i_names, s_names, n_names)
        outs = CellFunction.apply(cell, spec, *tensors)
        outputs = {s.name: t for s, t in zip(L.outputs, outs)}
        final = {s.name: t for s, t in zip(L.states, outs[len(L.outputs):])}
        return outputs, final
