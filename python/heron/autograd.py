"""Reverse-mode automatic differentiation (the engine lives in the core, behind the C ABI).

Grad mode and anomaly mode are per thread, as in PyTorch. Use ``Tensor.backward()`` or
:func:`grad`; :class:`no_grad`, :class:`enable_grad` and :class:`set_grad_enabled` switch
recording off and on, as context managers or decorators.
"""
from __future__ import annotations

import functools

from . import _C

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "Node"]

is_grad_enabled = _C.is_grad_enabled
is_anomaly_enabled = _C.is_anomaly_enabled


class _Mode:
    """Base of the mode switches: a context manager that is also a decorator."""

    _enter_value: bool

    def __enter__(self):
        self._prev = self._set(self._enter_value)
        return self

    def __exit__(self, *exc):
        self._set(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__.__new__(self.__class__)._copy_from(self):
                return fn(*args, **kwargs)
        return wrapper

    def _copy_from(self, other):
        self._enter_value = other._enter_value
        return self

    @staticmethod
    def _set(v):
        return _C._set_grad_enabled(v)


class no_grad(_Mode):
    """Turns recording off in this thread: results do not require grad (optimizer updates, evaluation)."""

    def __init__(self):
        self._enter_value = False


class enable_grad(_Mode):
    """Turns recording back on inside a ``no_grad`` block."""

    def __init__(self):
        self._enter_value = True


class set_grad_enabled(_Mode):
    """Sets grad mode: applies immediately when called, and restores the old mode when used with ``with``."""

    def __init__(self, mode: bool):
        self._enter_value = bool(mode)
        self._prev = _C._set_grad_enabled(self._enter_value)

    def __enter__(self):
        return self


class detect_anomaly(_Mode):
    """Within this block, the op that first produces nan or inf (in forward or backward) raises an error naming it."""

    def __init__(self, check_nan: bool = True):
        self._enter_value = bool(check_nan)

    @staticmethod
    def _set(v):
        return _C._set_anomaly_enabled(v)


class set_detect_anomaly(detect_anomaly):
    """Sets anomaly mode immediately; restores it at the end of a ``with`` block."""

    def __init__(self, mode: bool):
        self._enter_value = bool(mode)
        self._prev = _C._set_anomaly_enabled(self._enter_value)

    def __enter__(self):
        return self


class Node:
    """The backward node that produced a tensor (``tensor.grad_fn``)."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def name(self) -> str:
        return self._name

    def __repr__(self):
        return f"<{self._name}>"

    def __eq__(self, other):
        return isinstance(other, Node) and other._name == self._name

    def __hash__(self):
        return hash(self._name)


def _as_list(x):
    if x is None:
        return []
    if isinstance(x, _C.Tensor):
        return [x]
    return list(x)


def _grads_for(tensors, grad_tensors):
    grads = _as_list(grad_tensors)
    if not grads:
        return [None] * len(tensors)
    if len(grads) != len(tensors):
        raise ValueError(f"got {len(tensors)} tensors but {len(grads)} gradients")
    from ._creation import tensor as _tensor
    out = []
    for t, g in zip(tensors, grads):
        if g is not None and not isinstance(g, _C.Tensor):
            g = _tensor(g, dtype=t.dtype)
        out.append(g)
    return out


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulates the gradients of ``tensors`` into the ``.grad`` of the leaves they depend on."""
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order gradients) is not supported yet")
    ts = _as_list(tensors)
    grads = _grads_for(ts, grad_tensors)
    if inputs is not None:
        ins = _as_list(inputs)
        res = _C._autograd_grad(ts, grads, ins, bool(retain_graph), True)
        for i, g in zip(ins, res):
            if g is not None:
                i.grad = g if i.grad is None else i.grad + g
        return
    _C._backward(ts, grads, bool(retain_graph))
    _run_post_backward()


# Called once after each backward() (heron.nn.parallel.DistributedDataParallel reduces gradients
# there); a callback returns True to stay registered.
_post_backward = []


def _run_post_backward():
    if _post_backward:
        keep = [cb for cb in list(_post_backward) if cb()]
        _post_backward[:] = keep


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs`` (a tuple), leaving every ``.grad`` untouched."""
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order gradients) is not supported yet")
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    grads = _grads_for(outs, grad_outputs)
    res = _C._autograd_grad(outs, grads, ins, bool(retain_graph), bool(allow_unused) or materialize_grads)
    if materialize_grads:
        from ._creation import zeros_like
        res = [zeros_like(i) if r is None else r for i, r in zip(ins, res)]
    return tuple(res)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Checks the gradients of ``fn`` at ``inputs`` against central finite differences.

    Compares vector-Jacobian products: for a random cotangent ``v`` of each output, the analytic
    ``v^T J`` from autograd against ``(f(x + eps e_i) - f(x - eps e_i)) . v / (2 eps)`` for every
    element ``i`` of every input that requires grad. Use float64 inputs. Returns True, or raises
    (or returns False with ``raise_exception=False``) naming the input and element that disagree.
    """
    import numpy as np

    from ._creation import from_numpy

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, _C.Tensor) and t.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad")

    def outputs_of(res):
        res = _as_list(res) if not isinstance(res, tuple) else list(res)
        return [r for r in res if isinstance(r, _C.Tensor) and r.dtype.is_floating_point]

    rng = np.random.default_rng(seed)
    outs = outputs_of(fn(*inputs))
    vs = [from_numpy(rng.standard_normal(o.shape).astype(np.float64)).to(o.dtype) for o in outs]
    live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    if live:
        analytic = grad([o for o, _ in live], [inputs[i] for i in diff], [v for _, v in live], allow_unused=True)
    else:
        analytic = [None] * len(diff)
    vnp = [v.numpy().astype(np.float64) for v in vs]

    def project(res):
        return sum(float((o.detach().to(_dtype64()).numpy() * v).sum()) for o, v in zip(outputs_of(res), vnp))

    for k, i in enumerate(diff):
        x = inputs[i]
        arr = x.detach().numpy()  # shares memory with x: perturb in place
        num = np.zeros(arr.shape, dtype=np.float64)
        with no_grad():
            for idx in np.ndindex(*arr.shape):
                orig = arr[idx].copy()
                arr[idx] = orig + eps
                fp = project(fn(*inputs))
                arr[idx] = orig - eps
                fm = project(fn(*inputs))
                arr[idx] = orig
                num[idx] = (fp - fm) / (2 * eps)
        a = analytic[k]
        ana = np.zeros(arr.shape) if a is None else a.to(_dtype64()).numpy()
        if not np.allclose(ana, num, atol=atol, rtol=rtol):
            bad = np.unravel_index(np.argmax(np.abs(ana - num) - rtol * np.abs(num)), arr.shape) if arr.ndim else ()
            msg = (f"gradcheck: gradient of input {i} (shape {tuple(arr.shape)}) disagrees with finite differences "
                   f"at index {tuple(int(b) for b in bad)}: analytic {ana[bad]!r}, numerical {num[bad]!r}\n"
                   f"analytic:\n{ana}\nnumerical:\n{num}")
            if raise_exception:
                raise AssertionError(msg)
            return False
    return True


def _dtype64():
    from ._dtypes import float64
    return float64
