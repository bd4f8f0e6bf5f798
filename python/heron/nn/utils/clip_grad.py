"""clip_grad_norm_ / clip_grad_value_ over the fused core op, with PyTorch's signatures."""
import math

from ... import _C, _ops
from ..._creation import tensor as _tensor

Tensor = _C.Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if getattr(p, "grad", None) is not None]


def _no_grad():
    from ...optim.optimizer import _no_grad as ng
    return ng()


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales the gradients of `parameters` in place so that their total norm (the norm of the vector of
    per-gradient norms) is at most max_norm: each grad *= max_norm / (total_norm + 1e-6) when that is
    below 1. Returns the total norm (before clipping) as a 0-d tensor. norm_type may be inf.
    One fused op over all the gradients."""
    grads = _grads(parameters)
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not grads:
        return _tensor(0.0)
    op = getattr(_ops, "clip_grad_norm_", None)
    if op is None:
        from ...optim import _reference
        op = _reference.clip_grad_norm_
    with _no_grad():
        return op(grads, max_norm=max_norm, norm_type=norm_type, error_if_nonfinite=bool(error_if_nonfinite))


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient of `parameters` in place to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    if math.isnan(clip_value):
        raise ValueError("clip_grad_value_: clip_value is nan")
    with _no_grad():
        for g in _grads(parameters):
            _ops.copy_(g, _ops.clamp(g, -clip_value, clip_value))


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated spelling of clip_grad_norm_ (PyTorch keeps it too)."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)
