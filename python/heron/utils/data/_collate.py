"""default_collate / default_convert: PyTorch's rules for turning a list of samples into a batch."""
import collections.abc
import copy
import numbers

import numpy as np

from ... import _C, _ops
from ... import _dtypes as _dt
from ..._creation import tensor as _tensor, as_tensor as _as_tensor

Tensor = _C.Tensor

_ERR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def default_convert(data):
    """Numpy arrays and numpy scalars to tensors, recursively through mappings and sequences
    (what a DataLoader without batching applies to each sample)."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype.kind in "USO":
            return data
        return _as_tensor(data)
    if isinstance(data, np.generic) and data.dtype.kind not in "USO":
        return _tensor(data)
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({k: default_convert(v) for k, v in data.items()})
                return clone
            return type(data)({k: default_convert(v) for k, v in data.items()})
        except TypeError:
            return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def default_collate(batch):
    """Stacks a list of samples into a batch, like torch.utils.data.default_collate:

    tensors -> stacked along a new dim 0; numpy arrays -> stacked tensors; Python floats -> float64
    tensor; ints -> int64 tensor; bools -> bool tensor; str/bytes -> the list unchanged; mappings ->
    a mapping of collated values; namedtuples -> the namedtuple of collated fields; other tuples and
    lists -> a list of collated fields (all samples must have the same length).
    """
    if not isinstance(batch, (list, tuple)):
        batch = list(batch)
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, Tensor):
        for i, b in enumerate(batch):
            if not isinstance(b, Tensor):
                raise TypeError(f"default_collate: element 0 of the batch is a Tensor but element {i} is a "
                                f"{type(b).__name__}")
            if tuple(b.shape) != tuple(elem.shape):
                raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, but got "
                                   f"{tuple(elem.shape)} at entry 0 and {tuple(b.shape)} at entry {i}")
        return _ops.stack(list(batch), 0)
    if isinstance(elem, np.ndarray) and not isinstance(elem, np.generic):
        if elem.dtype.kind in "USO":
            raise TypeError(_ERR.format(elem.dtype))
        return default_collate([_as_tensor(np.ascontiguousarray(b)) for b in batch])
    if isinstance(elem, np.generic):
        if elem.dtype.kind in "USO":
            raise TypeError(_ERR.format(elem.dtype))
        return _tensor(np.array(batch))
    if isinstance(elem, (bool, np.bool_)):
        return _tensor(list(batch), dtype=_dt.bool)
    if isinstance(elem, float):
        return _tensor(list(batch), dtype=_dt.float64)
    if isinstance(elem, numbers.Integral):
        return _tensor(list(batch), dtype=_dt.int64)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update({key: default_collate([d[key] for d in batch]) for key in elem})
                return clone
            return type(elem)({key: default_collate([d[key] for d in batch]) for key in elem})
        except TypeError:
            return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        for i, b in enumerate(batch):
            if len(b) != size:
                raise RuntimeError(f"default_collate: each element in list of batch should be of equal size "
                                   f"(element 0 has {size} fields, element {i} has {len(b)})")
        transposed = [list(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return [default_collate(s) for s in transposed]
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, s in enumerate(transposed):
                    clone[i] = default_collate(s)
                return clone
            return type(elem)([default_collate(s) for s in transposed])
        except TypeError:
            return [default_collate(s) for s in transposed]
    raise TypeError(_ERR.format(type(elem)))
