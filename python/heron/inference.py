"""Inference sessions over the core's deployment runtime (the same one the C API and heron-run use)."""
from __future__ import annotations

import json

import numpy as np

from . import _C

__all__ = ["Session"]


class Session:
    """``Session(path_or_traced, device="cpu", threads=None, profile=False, optimize=True, arena=True, microbatch=True)``.

    ``run({name: array_or_tensor}) -> {name: numpy array}``. ``run`` is safe from several threads
    at once on one session. With ``optimize`` (the default) the session folds eval-mode batch norms
    into convolutions and fuses residual adds and ReLU/clamp into them (see ``graph_text()``);
    results then differ from the unoptimised graph only by float rounding. ``arena=False`` turns
    the planned arena of intermediates off (as the environment variable ``HERON_ARENA=0`` does for
    every session). ``microbatch=False`` runs every step on the whole batch; by default, at a batch
    of more than one row, the start of a convolutional graph (where per-row values are >= 512 KiB)
    runs one row at a time, rows in parallel lanes, so each row's intermediates stay in cache
    (``HERON_MICROBATCH=0`` turns it off for every session).
    """

    def __init__(self, model, device="cpu", threads=None, profile=False, optimize=True, arena=True, microbatch=True):
        from .jit import TracedModule
        if isinstance(model, TracedModule):
            m = model._model
        elif isinstance(model, (bytes, bytearray, memoryview)):
            m = _C._Model.load_buffer(bytes(model))
        else:
            m = _C._Model.load(str(model))
        # The input/output descriptions are kept; the model itself only while the caller's traced
        # module holds it anyway: a model this session loaded is let go, so that its mapped file
        # (whose folded weights the session has copied) is released.
        self._inputs, self._outputs = m.inputs(), m.outputs()
        self._s = _C._Session(m, str(device), 0 if threads is None else int(threads), bool(profile), bool(optimize),
                              bool(arena), bool(microbatch))

    def graph_text(self):
        """The graph this session runs (after its optimisation passes) as readable text."""
        return self._s.graph_text()

    @property
    def input_names(self):
        return [n for n, _, _ in self._inputs]

    @property
    def output_names(self):
        return [n for n, _, _ in self._outputs]

    @property
    def inputs(self):
        return self._inputs

    @property
    def outputs(self):
        return self._outputs

    def _run_tensors(self, feeds, output_names):
        from ._creation import as_tensor
        names = list(feeds)
        tensors = [v if isinstance(v, _C.Tensor) else as_tensor(np.ascontiguousarray(v)) for v in feeds.values()]
        return self._s.run(names, tensors, list(output_names))

    def run(self, feeds, output_names=None):
        """Runs the model: ``feeds`` maps input names to arrays or tensors; returns {output name: numpy array}."""
        if not isinstance(feeds, dict):
            raise TypeError("run: feeds must be a dict {input name: array}")
        outs = list(output_names) if output_names is not None else self.output_names
        res = self._run_tensors(feeds, outs)
        return {n: t.numpy() for n, t in zip(outs, res)}

    def profile(self) -> dict:
        """The profile of the runs so far (documented JSON, see docs/guide/deploy.md)."""
        return json.loads(self._s.profile_json())

    def chrome_trace(self) -> dict:
        return json.loads(self._s.chrome_trace())

    @property
    def peak_memory(self) -> int:
        return self._s.peak_memory()

    @property
    def arena_bytes(self) -> int:
        """Size of the arena of the last run that used one (0: none yet, or the arena is off)."""
        return self._s.arena_bytes()
