"""Samplers: which indices a DataLoader visits, and in which batches."""
import numbers

from ... import _ops
from ... import _dtypes as _dt
from ..._generator import Generator


def _randperm(n, generator=None):
    """A random permutation of 0..n-1 as an int64 tensor: from `generator` (a heron.Generator, or an
    int seed), or from the default generator (heron.manual_seed) when None."""
    if generator is None:
        return _ops.randperm(n, _dt.int64)
    if isinstance(generator, Generator):
        return _ops.randperm(n, _dt.int64, None, generator._next_seed())
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return _ops.randperm(n, _dt.int64, None, int(generator))
    raise TypeError(f"generator must be a heron.Generator, an int seed or None, got {type(generator).__name__}")


def _randint(high, size, generator=None):
    if generator is None:
        return _ops.randint(low=0, high=high, size=[size], dtype=_dt.int64)
    seed = generator._next_seed() if isinstance(generator, Generator) else int(generator)
    return _ops.randint(low=0, high=high, size=[size], dtype=_dt.int64, seed=seed)


class Sampler:
    """Base class: an iterable of dataset indices (and optionally a __len__)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices each epoch (or `num_samples` draws with replacement)."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, but got replacement={replacement}")
        if not isinstance(self.num_samples, int) or isinstance(self.num_samples, bool) or self.num_samples <= 0:
            raise ValueError(f"RandomSampler: num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _indices(self):
        """The epoch's indices as an int64 tensor."""
        n = len(self.data_source)
        if self.replacement:
            return _randint(n, self.num_samples, self.generator)
        parts = []
        total = 0
        while total < self.num_samples:
            p = _randperm(n, self.generator)
            parts.append(p)
            total += n
        idx = parts[0] if len(parts) == 1 else _ops.concat(parts, 0)
        if total != self.num_samples:
            idx = _ops.slice(idx, 0, 0, self.num_samples, 1)
        return idx

    def __iter__(self):
        return iter(self._indices().tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order."""

    def __init__(self, indices, generator=None):
        self.indices = list(indices)
        self.generator = generator

    def __iter__(self):
        perm = _randperm(len(self.indices), self.generator).tolist()
        return (self.indices[i] for i in perm)

    def __len__(self):
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size` (the last one shorter unless drop_last)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def _index_batches(self):
        """The batches as int64 index tensors (slices of one index tensor), or None when the sampler
        cannot give its epoch as a tensor."""
        s = self.sampler
        if isinstance(s, RandomSampler):
            idx = s._indices()
        elif isinstance(s, SequentialSampler):
            idx = _ops.arange(start=0, end=len(s), step=1, dtype=_dt.int64)
        else:
            return None
        return _slices(idx, self.batch_size, self.drop_last)

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


def _slices(idx, batch_size, drop_last):
    n = idx.shape[0]
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield _ops.slice(idx, 0, start, min(start + batch_size, n), 1)

