"""Map-style datasets: Dataset, TensorDataset, Subset, ConcatDataset, random_split."""
import bisect
import math
import numbers
import warnings

from ... import _C, _ops
from ... import _dtypes as _dt
from ..._creation import tensor as _tensor

Tensor = _C.Tensor


class Dataset:
    """A map-style dataset: subclasses define __getitem__(index) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is an iterable of samples (subclasses define __iter__)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


def _index_tensor(indices):
    """A 1-d int64 tensor of `indices` (a list of ints or an integer tensor)."""
    if isinstance(indices, Tensor):
        return indices if indices.dtype == _dt.int64 else _ops.cast(indices, _dt.int64)
    return _tensor(list(indices), dtype=_dt.int64)


class TensorDataset(Dataset):
    """Samples are the slices tensors[i] of tensors sharing their first dim.

    A DataLoader with the default collate fetches a whole batch with one index_select per tensor.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, expected a Tensor")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; every tensor needs a first (sample) dim")
        n = tensors[0].shape[0]
        for i, t in enumerate(tensors):
            if t.shape[0] != n:
                raise ValueError(f"TensorDataset: size mismatch between tensors: tensor 0 has {n} samples, "
                                 f"tensor {i} has {t.shape[0]} (shape {tuple(t.shape)})")
        self.tensors = tensors

    def __getitem__(self, index):
        if isinstance(index, numbers.Integral):
            n = len(self)
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"TensorDataset: index {i} is out of range for {n} samples")
            return tuple(_ops.select(t, 0, i) for t in self.tensors)
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def _fetch_batch(self, index):
        return [_ops.index_select(t, index=index, dim=0) for t in self.tensors]


class Subset(Dataset):
    """The samples of `dataset` at `indices`."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in (indices.tolist() if isinstance(indices, Tensor) else indices)]
        self._index_t = None

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)

    def _fetch_batch(self, index):
        inner = getattr(self.dataset, "_fetch_batch", None)
        if inner is None:
            return None
        if self._index_t is None:
            self._index_t = _tensor(self.indices, dtype=_dt.int64)
        return inner(_ops.index_select(self._index_t, index=index, dim=0))


class ConcatDataset(Dataset):
    """The concatenation of several datasets."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for {n} samples")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if d == 0 else self.cumulative_sizes[d - 1]
        return self.datasets[d][idx - start]


def random_split(dataset, lengths, generator=None):
    """Splits `dataset` into non-overlapping random Subsets of the given lengths (or fractions
    summing to 1, the remainder spread one by one over the first splits, as PyTorch does)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        subset_lengths = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1")
            subset_lengths.append(int(math.floor(n * frac)))
        remainder = n - sum(subset_lengths)
        for i in range(remainder):
            subset_lengths[i % len(subset_lengths)] += 1
        for i, length in enumerate(subset_lengths):
            if length == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; this results in an empty dataset.")
        lengths = subset_lengths
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length of the "
                         f"input dataset ({n})")
    from .sampler import _randperm
    perm = _randperm(n, generator).tolist()
    out = []
    offset = 0
    for length in lengths:
        out.append(Subset(dataset, perm[offset:offset + length]))
        offset += length
    return out
