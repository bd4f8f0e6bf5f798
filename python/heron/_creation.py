"""Tensor creation with PyTorch's signatures: heron.zeros(2, 3), heron.tensor([[1, 2]]), ..."""
import builtins
import numbers

import numpy as np

from . import _C, _ops
from . import _dtypes as _dt

_NP_TO_HERON = {
    np.dtype(np.float32): _dt.float32, np.dtype(np.float64): _dt.float64, np.dtype(np.float16): _dt.float16,
    np.dtype(np.int8): _dt.int8, np.dtype(np.uint8): _dt.uint8, np.dtype(np.int32): _dt.int32,
    np.dtype(np.int64): _dt.int64, np.dtype(np.bool_): _dt.bool,
}
# numpy dtypes Heron has no twin for, widened losslessly.
_NP_WIDEN = {np.dtype(np.int16): np.int32, np.dtype(np.uint16): np.int32, np.dtype(np.uint32): np.int64}
_HERON_TO_NP = {
    _dt.float32: np.float32, _dt.float64: np.float64, _dt.float16: np.float16, _dt.int8: np.int8,
    _dt.uint8: np.uint8, _dt.int32: np.int32, _dt.int64: np.int64, _dt.bool: np.bool_,
}


def _size(args, name):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    out = []
    for a in args:
        if isinstance(a, builtins.bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"{name}(): size must be a sequence of ints, got {type(a).__name__}")
        out.append(builtins.int(a))
    return tuple(out)


def numpy_dtype(dt):
    """The numpy dtype of a Heron dtype (bfloat16 has none: TypeError)."""
    try:
        return _HERON_TO_NP[dt]
    except KeyError:
        raise TypeError(f"{dt} has no numpy equivalent; convert with .float() first") from None


def heron_dtype(np_dtype):
    np_dtype = np.dtype(np_dtype)
    if np_dtype in _NP_TO_HERON:
        return _NP_TO_HERON[np_dtype]
    raise TypeError(f"numpy dtype {np_dtype} is not supported by heron "
                    "(supported: float16/32/64, int8, uint8, int32, int64, bool)")


def _infer_python(data):
    """dtype of nested Python scalars (and tensors / numpy arrays inside lists), as torch.tensor infers it:
    bools -> bool, ints -> int64, floats -> the default float32; tensor and array elements keep their dtype."""
    found = []

    def walk(x):
        if isinstance(x, (list, tuple)):
            for e in x:
                walk(e)
        elif isinstance(x, (builtins.bool, np.bool_)):
            found.append(_dt.bool)
        elif isinstance(x, numbers.Integral):
            found.append(_dt.int64)
        elif isinstance(x, numbers.Real):
            found.append(_dt.float32)
        elif isinstance(x, _C.Tensor):
            found.append(x.dtype)
        elif isinstance(x, np.ndarray):
            dt = x.dtype
            found.append(heron_dtype(_NP_WIDEN.get(dt, dt)))
        elif isinstance(x, complex):
            raise TypeError("tensor(): heron has no complex dtypes")
        else:
            raise TypeError(f"tensor(): cannot convert {type(x).__name__} to a tensor element")

    walk(data)
    if not found:
        return _dt.float32
    out = found[0]
    for d in found[1:]:
        if d != out:
            out = _dt.promote_types(out, d)
    return out


def _tensors_to_lists(x):
    if isinstance(x, _C.Tensor):
        return x.tolist()
    if isinstance(x, (list, tuple)) and builtins.any(isinstance(e, (list, tuple, _C.Tensor)) for e in x):
        return [_tensors_to_lists(e) for e in x]
    return x


def _with_requires_grad(fn):
    """Adds PyTorch's `requires_grad=False` keyword to a factory function."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, requires_grad=False, **kwargs):
        t = fn(*args, **kwargs)
        if requires_grad:
            t.requires_grad_(True)
        return t
    return wrapper


@_with_requires_grad
def tensor(data, dtype=None, device=None):
    """A new tensor holding a copy of `data` (nested lists, numbers, numpy arrays, tensors)."""
    if isinstance(data, _C.Tensor):
        out = data.detach().clone()
        if dtype is not None:
            out = out.to(dtype)
        if device is not None:
            out = out.to(device)
        return out
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        arr = np.asarray(data)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype in _NP_WIDEN:
            arr = arr.astype(_NP_WIDEN[arr.dtype])
        src_dt = heron_dtype(arr.dtype)
    else:
        src_dt = _infer_python(data)
        data = _tensors_to_lists(data)
        target = dtype if dtype is not None else src_dt
        np_t = _HERON_TO_NP.get(target, np.float32)
        try:
            arr = np.array(data, dtype=np_t)
        except ValueError as e:
            raise ValueError(f"tensor(): {e}") from None
        src_dt = heron_dtype(arr.dtype)
    shape = list(arr.shape)  # before any reshape: np.ascontiguousarray would turn 0-d into 1-d
    flat = np.ascontiguousarray(arr).reshape(-1)
    t = _C._from_buffer(flat.view(np.uint8), src_dt, shape, device)
    if dtype is not None and dtype != src_dt:
        t = _ops.cast(t, dtype)
    return t


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with a heron tensor or numpy array when it can."""
    if isinstance(data, _C.Tensor) and (dtype is None or data.dtype == dtype) and device is None:
        return data
    if isinstance(data, np.ndarray) and dtype is None and device is None and data.dtype in _NP_TO_HERON:
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr):
    """A tensor sharing memory with the numpy array `arr` (zero-copy, any strides)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy(): expected a numpy.ndarray, got {type(arr).__name__}")
    heron_dtype(arr.dtype)  # clear error for unsupported dtypes
    if arr.ndim and builtins.any(s % arr.itemsize for s in arr.strides):
        raise ValueError("from_numpy(): strides that are not a multiple of the item size are not supported")
    return _C.from_dlpack(arr)


@_with_requires_grad
def zeros(*size, dtype=None, device=None):
    return _ops.zeros(_size(size, "zeros"), dtype or _dt.float32, device)


@_with_requires_grad
def ones(*size, dtype=None, device=None):
    return _ops.ones(_size(size, "ones"), dtype or _dt.float32, device)


@_with_requires_grad
def empty(*size, dtype=None, device=None):
    return _ops.empty(_size(size, "empty"), dtype or _dt.float32, device)


@_with_requires_grad
def full(size, fill_value, dtype=None, device=None):
    return _ops.full(_size((size,), "full"), fill_value, dtype, device)


@_with_requires_grad
def arange(start, end=None, step=1, dtype=None, device=None):
    if end is None:
        start, end = 0, start
    return _ops.arange(start=start, end=end, step=step, dtype=dtype, device=device)


@_with_requires_grad
def linspace(start, end, steps, dtype=None, device=None):
    return _ops.linspace(start, end, steps, dtype or _dt.float32, device)


@_with_requires_grad
def eye(n, m=None, dtype=None, device=None):
    return _ops.eye(n, m, dtype or _dt.float32, device)


@_with_requires_grad
def rand(*size, dtype=None, device=None, seed=None):
    return _ops.rand(_size(size, "rand"), 0.0, 1.0, dtype or _dt.float32, device, seed)


@_with_requires_grad
def randn(*size, dtype=None, device=None, seed=None):
    return _ops.randn(_size(size, "randn"), 0.0, 1.0, dtype or _dt.float32, device, seed)


def randint(low, high=None, size=None, dtype=None, device=None, seed=None):
    """randint(high, size) or randint(low, high, size), like torch.randint."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint(): size is required")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    return _ops.randint(low=low, high=high, size=_size((size,), "randint"), dtype=dtype or _dt.int64, device=device,
                        seed=seed)


def randperm(n, dtype=None, device=None, seed=None):
    return _ops.randperm(n, dtype or _dt.int64, device, seed)


@_with_requires_grad
def zeros_like(input, dtype=None):
    return _ops.zeros_like(input, dtype)


@_with_requires_grad
def ones_like(input, dtype=None):
    return _ops.ones_like(input, dtype)


@_with_requires_grad
def empty_like(input, dtype=None):
    return _ops.empty_like(input, dtype)


@_with_requires_grad
def full_like(input, fill_value, dtype=None):
    return _ops.full_like(input, fill_value, dtype)


@_with_requires_grad
def rand_like(input, dtype=None, seed=None):
    return rand(*input.shape, dtype=dtype or input.dtype, device=input.device, seed=seed)


@_with_requires_grad
def randn_like(input, dtype=None, seed=None):
    return randn(*input.shape, dtype=dtype or input.dtype, device=input.device, seed=seed)
