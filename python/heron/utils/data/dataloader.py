"""DataLoader: batches of samples from a dataset, in the main process (num_workers=0)."""
from ... import _C
from ._collate import default_collate, default_convert
from .dataset import IterableDataset, _index_tensor
from .sampler import BatchSampler, RandomSampler, SequentialSampler

Tensor = _C.Tensor


class DataLoader:
    """Iterates over `dataset` in batches, with PyTorch's arguments and semantics.

    Args:
        dataset: a map-style Dataset (or an IterableDataset).
        batch_size: samples per batch (None: no batching, each sample is only converted).
        shuffle: reshuffle the indices every epoch (with `generator`, or the default generator that
            heron.manual_seed seeds).
        sampler / batch_sampler: custom index order / custom index batches.
        num_workers: only 0 is supported: Heron loads in the main process (its ops already use
            all cores), so there are no worker processes.
        collate_fn: merges a list of samples into a batch (default_collate).
        drop_last: drop the last incomplete batch.
        generator: a heron.Generator (or an int seed) for shuffling.

    With the default collate, a dataset that can fetch a whole batch at once (TensorDataset, MNIST
    without transforms, Subsets of those) gives each batch with one index_select per tensor instead
    of one op per sample; the batches are the same as default_collate's.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device=""):
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be a non-negative integer, got {num_workers!r}")
        if num_workers != 0:
            raise NotImplementedError(
                f"DataLoader: num_workers={num_workers} is not supported; Heron loads batches in the main "
                "process only (num_workers=0) and its ops already use every core (heron.set_num_threads)")
        if timeout < 0:
            raise ValueError("DataLoader: timeout option should be non-negative")
        if prefetch_factor is not None or persistent_workers:
            raise ValueError("DataLoader: prefetch_factor and persistent_workers need num_workers > 0, which Heron "
                             "does not support")
        self.dataset = dataset
        self.num_workers = 0
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self._is_iterable = isinstance(dataset, IterableDataset)

        if self._is_iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None:
            if drop_last:
                raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually "
                                 "exclusive with drop_last")
        elif not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size!r}")

        if sampler is None and not self._is_iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._is_iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None or (self._is_iterable and self.batch_size is not None)

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if self._is_iterable:
            n = len(self.dataset)  # TypeError when the iterable dataset has no length, as in PyTorch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def __iter__(self):
        if self._is_iterable:
            return self._iter_iterable()
        if self._auto_collation:
            return _BatchIter(self)
        return (self.collate_fn(self.dataset[i]) for i in self.sampler)

    def _iter_iterable(self):
        if self.batch_size is None:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        batch = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __repr__(self):
        return (f"DataLoader(dataset={type(self.dataset).__name__}, batch_size={self.batch_size}, "
                f"drop_last={self.drop_last}, sampler={type(self.sampler).__name__})")


class _BatchIter:
    """One epoch of batches; len() is the number of batches left."""

    def __init__(self, loader):
        self._loader = loader
        self._left = len(loader)
        fetch = getattr(loader.dataset, "_fetch_batch", None)
        self._fetch = fetch if (fetch is not None and loader.collate_fn is default_collate) else None
        bs = loader.batch_sampler
        tensor_batches = bs._index_batches() if (self._fetch is not None and type(bs) is BatchSampler) else None
        if tensor_batches is not None:
            self._batches = tensor_batches
        else:
            self._batches = iter(bs)

    def __iter__(self):
        return self

    def __len__(self):
        return self._left

    def __next__(self):
        indices = next(self._batches)
        self._left -= 1
        loader = self._loader
        if self._fetch is not None:
            out = self._fetch(indices if isinstance(indices, Tensor) else _index_tensor(indices))
            if out is not None:
                return out
            self._fetch = None  # this dataset cannot (e.g. transforms are set): per-sample from now on
        if isinstance(indices, Tensor):
            indices = indices.tolist()
        return loader.collate_fn([loader.dataset[i] for i in indices])



