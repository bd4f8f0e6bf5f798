"""The Python side of heron.Tensor: methods with PyTorch's signatures, indexing, repr, numpy."""
import builtins
import numbers

import numpy as np

from . import _C, _ops
from . import _dtypes as _dt
from ._creation import numpy_dtype, tensor as _tensor_fn

Tensor = _C.Tensor


def _varargs(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


# ------------------------------------------------------------------ conversions
def _to(self, *args, dtype=None, device=None, copy=False):
    """to(dtype) / to(device) / to(device, dtype) / to(other_tensor), like torch.Tensor.to."""
    for a in args:
        if isinstance(a, _dt.dtype):
            dtype = a
        elif isinstance(a, (str, _C.device)):
            device = a
        elif isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        else:
            raise TypeError(f"to(): unexpected argument of type {type(a).__name__}")
    out = self
    if device is not None:
        out = _ops.to_device(out, str(device))
    if dtype is not None:
        out = _ops.cast(out, dtype)
    if copy and out is self:
        out = self.clone()
    return out


def _numpy(self):
    """The tensor as a numpy array; shares memory for CPU tensors (like torch.Tensor.numpy)."""
    if self.device.type != "cpu":
        raise TypeError(f"numpy(): the tensor is on {self.device}; call .cpu() first")
    if self.dtype == _dt.bfloat16:
        raise TypeError("numpy(): numpy has no bfloat16; call .float() first")
    return np.from_dlpack(self)


def _host_numpy(self):
    """A numpy copy from any device and dtype (bfloat16 as float32)."""
    t = self
    if t.dtype == _dt.bfloat16:
        t = _ops.cast(t, _dt.float32)
    raw = t._to_bytes()
    return np.frombuffer(raw, dtype=numpy_dtype(t.dtype)).reshape(t.shape).copy()


def _tolist(self):
    return _host_numpy(self).tolist()


def _item(self):
    if self.numel() != 1:
        raise _C.InvalidArgumentError(f"item(): a tensor with {self.numel()} elements cannot be converted to a scalar")
    if self.dtype.is_floating_point:
        return self._item_float()
    if self.dtype == _dt.bool:
        return builtins.bool(self._item_int())
    return self._item_int()


def _bool(self):
    if self.numel() != 1:
        raise _C.InvalidArgumentError(f"Boolean value of a tensor with {self.numel()} elements is ambiguous")
    return builtins.bool(_item(self))


def _index_dunder(self):
    if self.dtype.is_floating_point or self.numel() != 1:
        raise TypeError("only integer tensors of a single element can be converted to an index")
    return self._item_int()


def _len(self):
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.shape[0]


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    for i in range(self.shape[0]):
        yield _ops.select(self, 0, i)


def _array(self, dtype=None, copy=None):
    a = _host_numpy(self) if (self.device.type != "cpu" or self.dtype == _dt.bfloat16) else _numpy(self)
    if dtype is not None:
        a = a.astype(dtype)
    return a


# ------------------------------------------------------------------ repr
def _repr(self):
    suffix = []
    if self.device.type != "cpu":
        suffix.append(f"device='{self.device}'")
    show_dtype = self.dtype not in (_dt.float32, _dt.int64, _dt.bool)
    if self.numel() == 0:
        body = "[]"
        if self.ndim != 1:
            suffix.insert(0, f"size={self.shape}")
    else:
        arr = _host_numpy(self)
        if self.dtype.is_floating_point:
            arr = arr.astype(np.float64) if self.dtype != _dt.float64 else arr
            body = np.array2string(arr, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3,
                                   precision=4, suppress_small=False)
        else:
            body = np.array2string(arr, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3)
            if self.dtype == _dt.bool:
                body = body.replace("True", "True").replace("False", "False")
    if show_dtype:
        suffix.append(f"dtype={self.dtype}")
    return "tensor(" + body + "".join(", " + s for s in suffix) + ")"


# ------------------------------------------------------------------ indexing
def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, (builtins.bool, np.bool_))


def _as_index_tensor(x, device):
    """An advanced index (list, ndarray, tensor) as a heron tensor (int64 or bool)."""
    if isinstance(x, Tensor):
        return x
    arr = np.asarray(x)
    if arr.dtype == np.bool_:
        return _tensor_fn(arr)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return _tensor_fn(arr.astype(np.int64))


def _expand_key(self, key):
    """Splits an index expression into basic steps and advanced indices.

    Returns (view, adv) where `view` is the result of the basic part (ints, slices, None, ...)
    and `adv` lists, per dim of `view`, an index tensor or None; adv is None when there is no
    advanced index. Integer scalars count as advanced indices when any advanced index is present,
    as numpy does.
    """
    if not isinstance(key, tuple):
        key = (key,)
    # Is there an advanced index?
    def is_adv(k):
        return isinstance(k, (Tensor, list, np.ndarray)) or isinstance(k, (builtins.bool, np.bool_))
    has_adv = builtins.any(is_adv(k) for k in key)
    # Dims consumed by each entry.
    consumed = 0
    n_ellipsis = 0
    for k in key:
        if k is Ellipsis:
            n_ellipsis += 1
        elif k is None or isinstance(k, (builtins.bool, np.bool_)):
            pass
        elif isinstance(k, Tensor) and k.dtype in (_dt.bool, _dt.uint8):
            consumed += k.ndim
        elif isinstance(k, np.ndarray) and k.dtype == np.bool_:
            consumed += k.ndim
        else:
            consumed += 1
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > self.ndim:
        raise IndexError(f"too many indices for tensor of dimension {self.ndim}")
    view = self
    dim = 0
    adv = []  # per dim of the current view
    for k in key:
        if k is Ellipsis:
            n = self.ndim - consumed
            adv.extend([None] * n)
            dim += n
        elif k is None:
            view = _ops.unsqueeze(view, dim)
            adv.insert(dim, None)
            dim += 1
        elif isinstance(k, (builtins.bool, np.bool_)):
            # x[True] adds a dim of 1, x[False] a dim of 0 (numpy)
            view = _ops.unsqueeze(view, dim)
            adv.insert(dim, _tensor_fn([0] if k else [], dtype=_dt.int64))
            dim += 1
        elif isinstance(k, slice):
            start = None if k.start is None else k.start.__index__()
            stop = None if k.stop is None else k.stop.__index__()
            step = 1 if k.step is None else k.step.__index__()
            if step <= 0:
                raise ValueError("step must be greater than zero")
            view = _ops.slice(view, dim, start, stop, step)
            adv.append(None)
            dim += 1
        elif _is_int(k) or (isinstance(k, Tensor) and k.ndim == 0 and not k.dtype.is_floating_point
                            and k.dtype != _dt.bool and not has_adv):
            i = k.__index__()
            if has_adv:
                adv.append(_tensor_fn(i, dtype=_dt.int64))
                dim += 1
            else:
                size = view.shape[dim]
                if i < -size or i >= size:
                    raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {size}")
                view = _ops.select(view, dim, i)
        elif isinstance(k, (Tensor, list, np.ndarray)):
            t = _as_index_tensor(k, view.device)
            if t.dtype in (_dt.bool, _dt.uint8):
                t = _ops.cast(t, _dt.bool) if t.dtype != _dt.bool else t
                shape = view.shape[dim:dim + t.ndim]
                if tuple(t.shape) != tuple(shape):
                    raise IndexError(f"The shape of the mask {t.shape} at index {dim} does not match the shape "
                                     f"of the indexed tensor {tuple(shape)}")
                nz = _ops.nonzero(t)
                for j in range(t.ndim):
                    adv.append(_ops.select(nz, 1, j))
                dim += t.ndim
            else:
                if t.dtype.is_floating_point:
                    raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
                if t.dtype != _dt.int64:
                    t = _ops.cast(t, _dt.int64)
                adv.append(t)
                dim += 1
        else:
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or bool tensors are "
                             f"valid indices (got {type(k).__name__})")
    if not builtins.any(a is not None for a in adv):
        return view, None
    # trailing None entries are implicit full slices
    while adv and adv[-1] is None:
        adv.pop()
    return view, adv


def _getitem(self, key):
    view, adv = _expand_key(self, key)
    if adv is None:
        return view
    return _ops.index(view, adv)


def _setitem(self, key, value):
    view, adv = _expand_key(self, key)
    if not isinstance(value, Tensor):
        if isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, complex):
            value = _tensor_fn(value, dtype=self.dtype)
        else:
            value = _tensor_fn(value, dtype=self.dtype)
    if adv is None:
        _ops.copy_(view, value)
    else:
        _ops.index_put_(view, value, adv, False)


# ------------------------------------------------------------------ methods with PyTorch signatures
def _size_m(self, dim=None):
    s = self.shape
    return s if dim is None else s[dim]


def _stride_m(self, dim=None):
    s = self._strides()
    return s if dim is None else s[dim]


def _view(self, *shape):
    if len(shape) == 1 and isinstance(shape[0], _dt.dtype):
        raise NotImplementedError("view(dtype) is not supported")
    return _ops.view(self, _varargs(shape))


def _reshape(self, *shape):
    return _ops.reshape(self, _varargs(shape))


def _permute(self, *dims):
    return _ops.permute(self, _varargs(dims))


def _expand(self, *size):
    return _ops.expand(self, _varargs(size))


def _flip(self, *dims):
    return _ops.flip(self, _varargs(dims))


def _split(self, split_size_or_sections, dim=0):
    if isinstance(split_size_or_sections, (list, tuple)):
        return _ops.split(self, None, list(split_size_or_sections), dim)
    return _ops.split(self, split_size_or_sections, None, dim)


def _max(input, dim=None, keepdim=False, *, other=None):
    """max(input) -> scalar tensor; max(input, dim) -> (values, indices); max(input, other) -> maximum."""
    if isinstance(dim, Tensor):
        return _ops.maximum(input, dim)
    if dim is None:
        return _ops.amax(input)
    return _ops.amax(input, dim, keepdim), _ops.argmax(input, dim, keepdim)


def _min(input, dim=None, keepdim=False):
    if isinstance(dim, Tensor):
        return _ops.minimum(input, dim)
    if dim is None:
        return _ops.amin(input)
    return _ops.amin(input, dim, keepdim), _ops.argmin(input, dim, keepdim)


def _T(self):
    return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))


def _mT(self):
    return _ops.transpose(self, -2, -1)


def install():
    """Attaches the generated op methods and the Python-side methods to heron.Tensor."""
    for name in _ops.METHODS:
        setattr(Tensor, name, getattr(_ops, name))
    methods = {
        "to": _to, "numpy": _numpy, "tolist": _tolist, "item": _item, "__bool__": _bool,
        "__float__": lambda self: builtins.float(_item(self)), "__int__": lambda self: builtins.int(_item(self)),
        "__index__": _index_dunder, "__len__": _len, "__iter__": _iter, "__array__": _array,
        "__repr__": _repr, "__str__": _repr, "__getitem__": _getitem, "__setitem__": _setitem,
        "size": _size_m, "stride": _stride_m, "view": _view, "reshape": _reshape, "permute": _permute,
        "expand": _expand, "flip": _flip, "split": _split, "max": _max, "min": _min,
        "view_as": lambda self, other: _ops.view(self, other.shape),
        "reshape_as": lambda self, other: _ops.reshape(self, other.shape),
        "expand_as": lambda self, other: _ops.expand(self, other.shape),
        "type_as": lambda self, other: _ops.cast(self, other.dtype),
        "cpu": lambda self: _ops.to_device(self, "cpu"),
        "cuda": lambda self, index=0: _ops.to_device(self, f"cuda:{index}"),
        "float": lambda self: _ops.cast(self, _dt.float32), "double": lambda self: _ops.cast(self, _dt.float64),
        "half": lambda self: _ops.cast(self, _dt.float16), "bfloat16": lambda self: _ops.cast(self, _dt.bfloat16),
        "int": lambda self: _ops.cast(self, _dt.int32), "long": lambda self: _ops.cast(self, _dt.int64),
        "bool": lambda self: _ops.cast(self, _dt.bool), "byte": lambda self: _ops.cast(self, _dt.uint8),
        "char": lambda self: _ops.cast(self, _dt.int8),
        "element_size": lambda self: self.dtype.itemsize,
        "nelement": lambda self: self.numel(),
        "is_floating_point": lambda self: self.dtype.is_floating_point,
        "clip": lambda self, min=None, max=None: _ops.clamp(self, min, max),
        "fill_": lambda self, value: _ops.copy_(self, _tensor_fn(value, dtype=self.dtype)),
        "zero_": lambda self: _ops.copy_(self, _tensor_fn(0, dtype=self.dtype)),
        "copy_": lambda self, src: _ops.copy_(self, src if isinstance(src, Tensor) else _tensor_fn(src, dtype=self.dtype)),
        "__array_priority__": 1000,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(_T)
    Tensor.mT = property(_mT)
    Tensor.nbytes = property(lambda self: self.numel() * self.dtype.itemsize)
    Tensor.itemsize = property(lambda self: self.dtype.itemsize)
    Tensor.is_cuda = property(lambda self: self.device.type == "cuda")
