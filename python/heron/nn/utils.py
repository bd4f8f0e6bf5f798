"""heron.nn.utils: gradient clipping and parameter/vector conversion, with PyTorch's signatures."""
from .. import _C, _ops
from ._utils import no_grad

Tensor = _C.Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if getattr(p, "grad", None) is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales the gradients in place so that their joint norm is at most max_norm; returns the norm
    before clipping (the fused clip_grad_norm_ op)."""
    grads = _grads(parameters)
    if not grads:
        return _ops.zeros(())
    with no_grad():
        return _ops.clip_grad_norm_(grads, float(max_norm), float(norm_type), bool(error_if_nonfinite))


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient in place to [-clip_value, clip_value]."""
    v = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.copy_(_ops.clamp(g, -v, v))


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated into one 1-d tensor."""
    return _ops.concat([_ops.reshape(p, (-1,)) for p in parameters], 0)


def vector_to_parameters(vec, parameters):
    """Copies consecutive slices of the 1-d `vec` into the parameters (in place)."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError("vector_to_parameters: expected a 1-d heron.Tensor")
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(_ops.reshape(_ops.slice(vec, 0, offset, offset + n, 1), p.shape))
            offset += n
