"""Tracing to static graphs and `.heron` model files.

``heron.jit.trace(model, example_inputs)`` runs ``model`` once while the core records every op
(the tracer lives in the dispatcher, so any language can trace) and returns a :class:`TracedModule`
holding the graph: named inputs and outputs, typed nodes, initializers (the weights), shapes with a
symbolic batch dim. It runs on the deployment runtime (no Python involved per op), prints as text,
and saves to a ``.heron`` file that ``heron-run``, the C API and every binding load.
"""
from __future__ import annotations

import numpy as np

from . import _C
from .inference import Session

__all__ = ["trace", "save", "load", "TracedModule"]


def _as_tuple(x):
    if isinstance(x, _C.Tensor):
        return (x,)
    return tuple(x)


class TracedModule:
    """A traced graph: callable like the original (same results in eval mode), printable, savable."""

    def __init__(self, model: "_C._Model", device="cpu", threads=None):
        self._model = model
        self._device = device
        self._threads = threads
        self._session = None

    @property
    def input_names(self):
        return [n for n, _, _ in self._model.inputs()]

    @property
    def output_names(self):
        return [n for n, _, _ in self._model.outputs()]

    @property
    def inputs(self):
        """[(name, dtype, shape)] with -1 for symbolic dims."""
        return self._model.inputs()

    @property
    def outputs(self):
        return self._model.outputs()

    @property
    def graph(self) -> str:
        """The graph in its text form."""
        return self._model.text()

    code = graph

    def __repr__(self):
        return f"TracedModule(inputs={self.input_names}, outputs={self.output_names})\n{self.graph}"

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self, device=self._device, threads=self._threads)
        return self._session

    def __call__(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise TypeError(f"this traced module takes {len(self.input_names)} inputs "
                            f"({', '.join(self.input_names)}), got {len(inputs)}")
        outs = self.session._run_tensors(dict(zip(self.input_names, inputs)), self.output_names)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def save(self, path):
        self._model.save(str(path))


def trace(fn, example_inputs, *, input_names=None, output_names=None, dynamic_batch=True, check=True):
    """Traces ``fn`` (a function or an ``nn.Module``) on ``example_inputs`` (a tensor or a tuple).

    Modules are put in eval mode for the trace (and restored); their parameters and buffers become
    named initializers ("features.0.weight"). With ``dynamic_batch`` the first dim of every input is
    symbolic. With ``check`` the traced graph is run once and compared with the eager result.
    """
    from . import autograd
    inputs = _as_tuple(example_inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, _C.Tensor):
            raise TypeError(f"trace: example input {i} must be a heron.Tensor, got {type(t).__name__}")
    names = list(input_names) if input_names is not None else (
        ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))])
    if len(names) != len(inputs):
        raise ValueError(f"trace: {len(inputs)} inputs but {len(names)} input names")
    module = fn if hasattr(fn, "named_parameters") and hasattr(fn, "train") else None
    was_training = getattr(module, "training", False)
    if module is not None:
        module.eval()
    tracer = _C._Tracer()
    try:
        for t, n in zip(inputs, names):
            tracer.add_input(t, n)
        if module is not None:
            for n, p in module.named_parameters():
                tracer.name_constant(p, n)
            for n, b in module.named_buffers():
                tracer.name_constant(b, n)
        with autograd.no_grad():
            result = fn(*inputs)
        outs = _as_tuple(result)
        onames = list(output_names) if output_names is not None else (
            ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))])
        if len(onames) != len(outs):
            raise ValueError(f"trace: {len(outs)} outputs but {len(onames)} output names")
        model = tracer.finish(list(outs), onames, bool(dynamic_batch))
    finally:
        tracer.close()
        if module is not None and was_training:
            module.train()
    traced = TracedModule(model)
    if check:
        got = _as_tuple(traced(*inputs))
        for n, a, b in zip(onames, got, outs):
            if a.shape != b.shape or not np.allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, equal_nan=True):
                raise RuntimeError(f"trace: the traced graph's output '{n}' differs from eager (data-dependent "
                                   f"control flow in the traced function?)")
    return traced


def save(traced, path):
    """Writes a traced module to a ``.heron`` file."""
    if not isinstance(traced, TracedModule):
        raise TypeError(f"save: expected a TracedModule, got {type(traced).__name__}")
    traced.save(path)


def load(path, device="cpu", threads=None) -> TracedModule:
    """Loads (and verifies) a ``.heron`` file."""
    return TracedModule(_C._Model.load(str(path)), device=device, threads=threads)
