"""The Python side of heron.Tensor: methods with PyTorch's signatures, indexing, repr, numpy."""
import builtins
import collections
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
    if device is not None and _C.device(str(device)) != self.device:
        out = _ops.to_device(out, str(device))
    if dtype is not None and dtype != out.dtype:
        out = _ops.cast(out, dtype)
    if copy and out is self:
        out = self.clone()
    return out  # self itself when nothing changes, like torch


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
        raise TypeError("iteration over a 0-d tensor")  # at iter() time, not at the first next()
    return (_ops.select(self, 0, i) for i in range(self.shape[0]))


def _array(self, dtype=None, copy=None):
    a = _host_numpy(self) if (self.device.type != "cpu" or self.dtype == _dt.bfloat16) else _numpy(self)
    if dtype is not None:
        a = a.astype(dtype)
    return a


# ------------------------------------------------------------------ repr
_PRINT_PRECISION = 4
_PRINT_THRESHOLD = 1000
_PRINT_EDGEITEMS = 3
_PRINT_LINEWIDTH = 80


def _summarized(arr):
    """The elements repr shows (the edges of each dim when the tensor is summarized)."""
    if arr.size <= _PRINT_THRESHOLD:
        return arr
    e = _PRINT_EDGEITEMS
    for d in range(arr.ndim):
        if arr.shape[d] > 2 * e:
            idx = np.r_[0:e, arr.shape[d] - e:arr.shape[d]]
            arr = np.take(arr, idx, axis=d)
    return arr


def _float_formatter(arr):
    """PyTorch's float layout: `1.` when every finite value is integral, 4 decimals otherwise,
    scientific when magnitudes span more than 1e3 (or exceed 1e8, or fall below 1e-4)."""
    vals = _summarized(arr).astype(np.float64).ravel()
    finite = vals[np.isfinite(vals) & (vals != 0)]
    p = _PRINT_PRECISION
    if finite.size == 0:
        mode, width = "int", 1
    else:
        a = np.abs(finite)
        lo, hi = a.min(), a.max()
        if np.all(finite == np.ceil(finite)):
            if hi / lo > 1000.0 or hi > 1.0e8:
                mode = "sci"
                width = builtins.max(len(f"{v:.{p}e}") for v in finite)
            else:
                mode = "int"
                width = builtins.max(len(f"{v:.0f}") + 1 for v in finite)
        elif hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4:
            mode = "sci"
            width = builtins.max(len(f"{v:.{p}e}") for v in finite)
        else:
            mode = "fixed"
            width = builtins.max(len(f"{v:.{p}f}") for v in finite)

    def fmt(v):
        v = builtins.float(v)
        if mode == "sci":
            s = f"{v:.{p}e}"
        elif mode == "int":
            s = f"{v:.0f}"
            if np.isfinite(v):
                s += "."
        else:
            s = f"{v:.{p}f}"
        return s.rjust(width)

    return fmt


def _repr(self):
    suffix = []
    if self.device.type != "cpu":
        suffix.append(f"device='{self.device}'")
    gfn = self._grad_fn_name
    if gfn is not None:
        suffix.append(f"grad_fn=<{gfn}>")
    elif self.requires_grad:
        suffix.append("requires_grad=True")
    show_dtype = self.dtype not in (_dt.float32, _dt.int64, _dt.bool)
    if self.numel() == 0:
        body = "[]"
        if self.ndim != 1:
            suffix.insert(0, f"size={self.shape}")
        show_dtype = self.dtype != _dt.float32  # nothing to infer an int64/bool dtype from
    else:
        arr = _host_numpy(self)
        opts = dict(separator=", ", prefix="tensor(", threshold=_PRINT_THRESHOLD, edgeitems=_PRINT_EDGEITEMS,
                    max_line_width=_PRINT_LINEWIDTH)
        if self.dtype.is_floating_point:
            body = np.array2string(arr, formatter={"float_kind": _float_formatter(arr)}, **opts)
        else:
            body = np.array2string(arr, **opts)
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


def _is_bool_0d(k):
    if isinstance(k, Tensor):
        return k.ndim == 0 and k.dtype == _dt.bool
    return isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype == np.bool_


def _expand_key(self, key):
    """Splits an index expression into basic steps and advanced indices.

    Returns (view, adv) where `view` is the result of the basic part (ints, slices, None, ...)
    and `adv` lists, per dim of `view`, an index tensor or None; adv is None when there is no
    advanced index. Integer scalars count as advanced indices when any advanced index is present,
    as numpy does.
    """
    if not isinstance(key, tuple):
        key = (key,)
    # 0-d boolean masks act like Python bools (numpy): x[True] adds a dim of 1, x[False] one of 0.
    if builtins.any(_is_bool_0d(k) for k in key):
        key = tuple(builtins.bool(k.item()) if _is_bool_0d(k) else k for k in key)
    # Is there an advanced index?
    def is_adv(k):
        if isinstance(k, Tensor):
            # a 0-d integer tensor alone acts like an int (a view), as in PyTorch
            return k.ndim != 0 or k.dtype.is_floating_point or k.dtype == _dt.bool
        return isinstance(k, (list, np.ndarray)) or isinstance(k, (builtins.bool, np.bool_))
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
    sdim = 0  # the dim of self that k indexes (for messages)
    adv = []  # per dim of the current view
    for k in key:
        if k is Ellipsis:
            n = self.ndim - consumed
            adv.extend([None] * n)
            dim += n
            sdim += n
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
            if step == 0:
                raise ValueError("slice step cannot be zero")
            view = _ops.slice(view, dim, start, stop, step)
            adv.append(None)
            dim += 1
            sdim += 1
        elif _is_int(k) or (isinstance(k, Tensor) and k.ndim == 0 and not k.dtype.is_floating_point
                            and k.dtype != _dt.bool and not has_adv):
            i = k.__index__()
            size = view.shape[dim]
            if i < -size or i >= size:
                raise IndexError(f"index {i} is out of bounds for dimension {sdim} with size {size}")
            if has_adv:
                adv.append(_tensor_fn(i, dtype=_dt.int64))
                dim += 1
            else:
                view = _ops.select(view, dim, i)
            sdim += 1
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
                sdim += t.ndim
            else:
                if t.dtype.is_floating_point:
                    raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
                if t.dtype != _dt.int64:
                    t = _ops.cast(t, _dt.int64)
                adv.append(t)
                dim += 1
                sdim += 1
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
        value = _tensor_fn(value, dtype=self.dtype)
    # Leading size-1 dims of the value beyond the target's rank are dropped (numpy, PyTorch).
    lead = 0
    vshape = value.shape
    while len(vshape) - lead > 0 and vshape[lead] == 1:
        lead += 1
    if lead:
        value = _ops.reshape(value, vshape[lead:])
    if adv is None:
        _ops.copy_(view, value)
    else:
        if value.dtype != self.dtype:
            value = _ops.cast(value, self.dtype)
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


# (values, indices) pairs with names, like torch.return_types.max / min.
_MaxResult = collections.namedtuple("max", ["values", "indices"])
_MinResult = collections.namedtuple("min", ["values", "indices"])


def _max(input, dim=None, keepdim=False):
    """max(input) -> scalar tensor; max(input, dim) -> (values, indices); max(input, other) -> maximum."""
    if isinstance(dim, Tensor):
        return _ops.maximum(input, dim)
    if dim is None:
        return _ops.amax(input)
    return _MaxResult(_ops.amax(input, dim, keepdim), _ops.argmax(input, dim, keepdim))


def _min(input, dim=None, keepdim=False):
    """min(input) -> scalar tensor; min(input, dim) -> (values, indices); min(input, other) -> minimum."""
    if isinstance(dim, Tensor):
        return _ops.minimum(input, dim)
    if dim is None:
        return _ops.amin(input)
    return _MinResult(_ops.amin(input, dim, keepdim), _ops.argmin(input, dim, keepdim))


def _fill_(self, value):
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise _C.InvalidArgumentError(f"fill_: only supports a 0-dimension value tensor, but got one with "
                                          f"{value.ndim} dimensions")
        _ops.copy_(self, value)
    else:
        _ops.copy_(self, _tensor_fn(value, dtype=self.dtype))
    return self


def _zero_(self):
    _ops.copy_(self, _tensor_fn(0, dtype=self.dtype))
    return self


def _copy_(self, src, non_blocking=False):
    _ops.copy_(self, src if isinstance(src, Tensor) else _tensor_fn(src, dtype=self.dtype))
    return self


def _contiguous(self):
    return self if self.is_contiguous() else _ops.contiguous(self)


def _contains(self, element):
    if isinstance(element, (Tensor, numbers.Number, np.generic)):
        return builtins.bool(_ops.any(_ops.eq(self, element)).item())
    raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a "
                       f"{type(element).__name__}")


def _T(self):
    return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))


def _mT(self):
    return _ops.transpose(self, -2, -1)


class _HookHandle:
    """Returned by Tensor.register_post_accumulate_grad_hook; `remove()` unregisters the hook."""

    def __init__(self, tensor, hook_id):
        self._tensor, self.id = tensor, hook_id

    def remove(self):
        if self._tensor is not None:
            _C._remove_post_accumulate_grad_hook(self._tensor, self.id)
            self._tensor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _register_post_accumulate_grad_hook(self, hook):
    """Like torch.Tensor.register_post_accumulate_grad_hook: during backward(), once this leaf's
    gradient for that backward has been accumulated into .grad, calls hook(tensor) (a tensor
    sharing this leaf, so tensor.grad is the final gradient; the hook's return value is ignored).
    Not called by autograd.grad() nor for a leaf that received no gradient. An exception in the hook
    aborts backward() with a RuntimeError carrying its message. Returns a handle with remove()."""
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got {type(hook).__name__}")
    return _HookHandle(self, _C._register_post_accumulate_grad_hook(self, hook))


def _backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Computes the gradient of this tensor w.r.t. the graph leaves and accumulates it into their .grad."""
    from . import autograd
    autograd.backward(self, gradient, retain_graph, create_graph, inputs)


def _grad_fn(self):
    name = self._grad_fn_name
    if name is None:
        return None
    from .autograd import Node
    return Node(name)


def _zero_grad_m(self):
    self._zero_grad()
    return self


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
        "fill_": _fill_, "zero_": _zero_, "copy_": _copy_, "contiguous": _contiguous,
        "__contains__": _contains,
        "backward": _backward, "grad_fn": property(_grad_fn),
        "register_post_accumulate_grad_hook": _register_post_accumulate_grad_hook,
        "__array_priority__": 1000,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(_T)
    Tensor.mT = property(_mT)
    Tensor.nbytes = property(lambda self: self.numel() * self.dtype.itemsize)
    Tensor.itemsize = property(lambda self: self.dtype.itemsize)
    Tensor.is_cuda = property(lambda self: self.device.type == "cuda")
