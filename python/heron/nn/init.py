"""heron.nn.init: in-place initialisers with PyTorch's names and formulas. They run under no_grad
and draw from heron's default generator (seeded by heron.manual_seed)."""
import math
import warnings

from .. import _C, _ops
from .. import _dtypes as _dt
from ._utils import no_grad

Tensor = _C.Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_"]


def _check(tensor, fn):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.{fn}: expected a heron.Tensor, got {type(tensor).__name__}")


def _sample_dtype(tensor):
    # Half-precision tensors are filled from float32 samples.
    return tensor.dtype if tensor.dtype in (_dt.float32, _dt.float64) else _dt.float32


def _no_generator(generator, fn):
    if generator is not None:
        raise NotImplementedError(f"nn.init.{fn}: generator= is not supported; seed with heron.manual_seed")


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    dims = tensor.ndim
    if dims < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fills with samples of U(a, b)."""
    _check(tensor, "uniform_")
    _no_generator(generator, "uniform_")
    with no_grad():
        tensor.copy_(_ops.rand(tensor.shape, float(a), float(b), _sample_dtype(tensor), tensor.device))
    return tensor


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fills with samples of N(mean, std**2)."""
    _check(tensor, "normal_")
    _no_generator(generator, "normal_")
    with no_grad():
        tensor.copy_(_ops.randn(tensor.shape, float(mean), float(std), _sample_dtype(tensor), tensor.device))
    return tensor


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fills with N(mean, std**2) samples conditioned on lying in [a, b] (absolute bounds), by
    redrawing the samples that fall outside."""
    _check(tensor, "trunc_normal_")
    _no_generator(generator, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    dt = _sample_dtype(tensor)
    with no_grad():
        x = _ops.randn(tensor.shape, float(mean), float(std), dt, tensor.device)
        for _ in range(200):
            bad = _ops.logical_or(_ops.lt(x, a), _ops.gt(x, b))
            if not bool(_ops.any(bad).item()):
                break
            x = _ops.where(bad, _ops.randn(tensor.shape, float(mean), float(std), dt, tensor.device), x)
        # An interval of negligible mass: whatever is still outside is clamped.
        tensor.copy_(_ops.clamp(x, float(a), float(b)))
    return tensor


def constant_(tensor, val):
    _check(tensor, "constant_")
    with no_grad():
        tensor.fill_(val)
    return tensor


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def eye_(tensor):
    """The identity matrix in a 2-d tensor."""
    _check(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    with no_grad():
        tensor.copy_(_ops.eye(tensor.shape[0], tensor.shape[1], tensor.dtype, tensor.device))
    return tensor


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He)."""
    _check(tensor, "kaiming_uniform_")
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op")
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std**2) with std = gain / sqrt(fan) (He)."""
    _check(tensor, "kaiming_normal_")
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op")
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain=1, generator=None):
    """A (semi-)orthogonal matrix (rows or columns orthonormal) from the QR decomposition of a
    Gaussian matrix, times gain; dims after the first are flattened."""
    import numpy as np
    _check(tensor, "orthogonal_")
    _no_generator(generator, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = np.asarray(_ops.randn((rows, cols), 0.0, 1.0, _dt.float64, None)).copy()
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # a uniform (Haar) distribution
    if rows < cols:
        q = q.T
    from .._creation import tensor as _tensor
    with no_grad():
        tensor.copy_(_ops.reshape(_tensor(q * gain, dtype=_dt.float64), tensor.shape))
    return tensor


# Deprecated PyTorch spellings.
uniform = uniform_
normal = normal_
constant = constant_
xavier_uniform = xavier_uniform_
xavier_normal = xavier_normal_
kaiming_uniform = kaiming_uniform_
kaiming_normal = kaiming_normal_
orthogonal = orthogonal_
