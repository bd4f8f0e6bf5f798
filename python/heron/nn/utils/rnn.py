"""Packed sequences (PyTorch's torch.nn.utils.rnn): a batch of variable-length sequences stored
time step by time step, without padding, and the conversions to and from padded tensors.

A PackedSequence holds `data` (sum of the lengths, *), `batch_sizes` (int64, one count per time
step: how many sequences are still running at that step), and, when the batch was sorted by the
packing, `sorted_indices` / `unsorted_indices` (int64 permutations of the batch). heron.nn.RNN,
LSTM and GRU accept one and return one; inside they run it as padded data plus a length per item.
"""
import collections
import numbers

import numpy as np

from ... import _C, _ops
from ..._creation import tensor as _tensor
from .._utils import shape_str

Tensor = _C.Tensor
# heron.InvalidArgumentError is both a ValueError and a RuntimeError (PyTorch raises RuntimeError here).
_ArgError = _C.InvalidArgumentError

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence", "pad_sequence",
           "unpad_sequence", "unpack_sequence", "invert_permutation"]


def _i64(values):
    return _tensor(np.ascontiguousarray(np.asarray(values, dtype=np.int64)))


def _int_list(x, name):
    """A list of Python ints from a list, tuple, numpy array or heron tensor (any device)."""
    if isinstance(x, Tensor):
        if x.ndim != 1:
            raise ValueError(f"{name}: expected a 1-d tensor of lengths, got shape {shape_str(x.shape)}")
        if x.dtype.is_floating_point:
            raise TypeError(f"{name}: expected integer lengths, got dtype {x.dtype}")
        return [int(v) for v in x.tolist()]
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d sequence of lengths, got shape {arr.shape}")
    out = []
    for v in arr.tolist():
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            if isinstance(v, float) and v == int(v):
                v = int(v)
            else:
                raise TypeError(f"{name}: expected integer lengths, got {v!r}")
        out.append(int(v))
    return out


def _on(index, like):
    """`index` on the device of `like` (index tensors are built on the CPU)."""
    return index if str(index.device) == str(like.device) else index.to(like.device)


def _fresh(index, like):
    """A private copy of an index tensor for one index_select on `like`: the core's index_select backward
    bumps the version of its index, so one index tensor shared by two recorded index_selects fails in
    backward."""
    return _on(_ops.clone(index), like)


def invert_permutation(permutation):
    """The inverse of an int64 permutation tensor (None stays None)."""
    if permutation is None:
        return None
    p = np.asarray(permutation.tolist(), dtype=np.int64)
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size, dtype=np.int64)
    return _on(_i64(inv), permutation)


class PackedSequence(collections.namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices",
                                                               "unsorted_indices"])):
    """A packed batch of variable-length sequences (build one with pack_padded_sequence or
    pack_sequence, not directly). Fields: data (sum(lengths), *), batch_sizes (int64, T), and the
    batch permutations sorted_indices / unsorted_indices (None when the batch came sorted)."""
    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise TypeError("PackedSequence: batch_sizes is required (build packed sequences with "
                            "pack_padded_sequence or pack_sequence)")
        if not isinstance(batch_sizes, Tensor):
            batch_sizes = _i64(_int_list(batch_sizes, "batch_sizes"))
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with_data(self, data):
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def to(self, *args, **kwargs):
        """Moves / casts `data` (and the index tensors to the data's device); batch_sizes stays on the CPU."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        dev = data.device
        s = None if self.sorted_indices is None else self.sorted_indices.to(dev)
        u = None if self.unsorted_indices is None else self.unsorted_indices.to(dev)
        return type(self)(data, self.batch_sizes, s, u)

    def cpu(self):
        return self.to("cpu")

    def double(self):
        return self._with_data(self.data.to(_C.float64))

    def float(self):
        return self._with_data(self.data.to(_C.float32))

    @property
    def is_cuda(self):
        return "cuda" in str(self.data.device)

    def is_pinned(self):
        return False


def _batch_sizes(lengths):
    """batch_sizes[t] = how many lengths exceed t (lengths sorted, non-increasing)."""
    T = lengths[0] if lengths else 0
    ls = np.asarray(lengths, dtype=np.int64)
    return [int((ls > t).sum()) for t in range(T)]


def _packed_rows(batch_sizes, B):
    """Row t * B + b of the (T * B) padded rows for each packed row, in packed order."""
    return np.concatenate([t * B + np.arange(bs, dtype=np.int64) for t, bs in enumerate(batch_sizes)]) \
        if batch_sizes else np.zeros(0, np.int64)


def _check_lengths(lengths, T, B, who):
    if len(lengths) != B:
        raise _ArgError(f"{who}: expected `lengths` to have one entry per batch item ({B}), got {len(lengths)}")
    for v in lengths:
        if v <= 0:
            raise _ArgError(f"{who}: every length must be at least 1 (sequences of length 0 cannot be packed), "
                             f"got lengths {list(lengths)}")
        if v > T:
            raise _ArgError(f"{who}: every length must be at most the sequence length {T} of the input, "
                             f"got lengths {list(lengths)}")


def _pack_time_major(input, lengths):
    """(T, B, *) padded time-major data and sorted lengths -> (data, batch_sizes list)."""
    T, B = input.shape[0], input.shape[1]
    bs = _batch_sizes(lengths)
    rows = _packed_rows(bs, B)
    flat = _ops.reshape(input, (T * B,) + tuple(input.shape[2:]))
    return _ops.index_select(flat, _on(_i64(rows), flat), 0), bs


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Packs a padded batch: input (T, B, *) (or (B, T, *) with batch_first) and a length per batch item
    (a list or a 1-d int64 tensor). With enforce_sorted the lengths must be non-increasing; otherwise the
    batch is sorted here and the permutation is kept in the result. Every length must be in [1, T]."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pack_padded_sequence: input must be a heron.Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"pack_padded_sequence: expected input of shape {'(B, T, *)' if batch_first else '(T, B, *)'}"
                         f" (at least 2 dims), got {shape_str(input.shape)}")
    lengths = _int_list(lengths, "pack_padded_sequence: lengths")
    if batch_first:
        input = _ops.transpose(input, 0, 1)
    T, B = input.shape[0], input.shape[1]
    _check_lengths(lengths, T, B, "pack_padded_sequence")
    sorted_indices = None
    if enforce_sorted:
        if any(lengths[i] < lengths[i + 1] for i in range(len(lengths) - 1)):
            raise _ArgError("pack_padded_sequence: `lengths` must be sorted in decreasing order when "
                             f"`enforce_sorted` is True (got {lengths}); pass enforce_sorted=False to have the "
                             "batch sorted for you")
    else:
        order = sorted(range(B), key=lambda b: -lengths[b])  # stable: ties keep their order
        sorted_indices = _on(_i64(order), input)  # on the data's device, as in PyTorch
        lengths = [lengths[b] for b in order]
        input = _ops.index_select(input, _fresh(sorted_indices, input), 1)
    data, bs = _pack_time_major(input, lengths)
    return PackedSequence(data, _i64(bs), sorted_indices, None)


def _lengths_from_batch_sizes(batch_sizes):
    bs = np.asarray(batch_sizes, dtype=np.int64)
    B = int(bs[0]) if bs.size else 0
    return [int((bs > b).sum()) for b in range(B)]


def _unpack_time_major(data, batch_sizes, padding_value, total_length=None):
    """Packed data -> ((T', B, *) padded time-major, sorted lengths), T' = total_length or T."""
    bs = [int(v) for v in batch_sizes]
    T, B = len(bs), bs[0]
    Tp = T if total_length is None else total_length
    N = data.shape[0]
    idx = np.full(Tp * B, N, dtype=np.int64)  # N: the padding row appended below
    idx[_packed_rows(bs, B)] = np.arange(N, dtype=np.int64)
    pad_row = _ops.full((1,) + tuple(data.shape[1:]), float(padding_value), data.dtype, data.device)
    ext = _ops.concat([data, pad_row], 0)
    out = _ops.index_select(ext, _on(_i64(idx), ext), 0)
    return _ops.reshape(out, (Tp, B) + tuple(data.shape[1:])), _lengths_from_batch_sizes(bs)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of pack_padded_sequence: returns (padded, lengths), padded (T, B, *) (or (B, T, *) with
    batch_first) in the batch's original order, filled with padding_value past each length, T =
    total_length when given (it must be at least the longest length); lengths an int64 tensor."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    bs = _int_list(sequence.batch_sizes, "batch_sizes")
    if total_length is not None:
        total_length = int(total_length)
        if total_length < len(bs):
            raise ValueError("pad_packed_sequence: expected total_length to be at least the length of the longest "
                             f"sequence in the input, but got total_length={total_length} and max sequence length "
                             f"being {len(bs)}")
    padded, lengths = _unpack_time_major(sequence.data, bs, padding_value, total_length)
    lengths = np.asarray(lengths, dtype=np.int64)
    if sequence.unsorted_indices is not None:
        padded = _ops.index_select(padded, _fresh(sequence.unsorted_indices, padded), 1)
        lengths = lengths[np.asarray(sequence.unsorted_indices.tolist(), dtype=np.int64)]
    if batch_first:
        padded = _ops.transpose(padded, 0, 1)
    return padded, _i64(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stacks tensors of shapes (L_i, *) into (L_max, B, *) (or (B, L_max, *) with batch_first), padded
    with padding_value on the right (or the left with padding_side='left')."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0)) if hasattr(sequences, "unbind") else \
            [_ops.select(sequences, 0, i) for i in range(sequences.shape[0])]
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    trailing = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor):
            raise TypeError(f"pad_sequence: sequences[{i}] must be a heron.Tensor, got {type(s).__name__}")
        if s.ndim < 1 or tuple(s.shape[1:]) != trailing:
            raise ValueError(f"pad_sequence: every sequence must have shape (L, {', '.join(map(str, trailing))}) "
                             f"like sequences[0], got {shape_str(s.shape)} for sequences[{i}]")
    L = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        extra = L - s.shape[0]
        if extra:
            pads = [0, 0] * len(trailing) + ([0, extra] if padding_side == "right" else [extra, 0])
            s = _ops.pad(s, pads, "constant", float(padding_value))
        padded.append(s)
    return _ops.stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of unpadded sequences of a padded batch (the inverse of pad_sequence)."""
    lengths = _int_list(lengths, "unpad_sequence: lengths")
    if not batch_first:
        padded_sequences = _ops.transpose(padded_sequences, 0, 1)
    return [_ops.slice(_ops.select(padded_sequences, 0, b), 0, 0, n) for b, n in enumerate(lengths)]


def pack_sequence(sequences, enforce_sorted=True):
    """Packs a list of tensors of shapes (L_i, *) (sorted by decreasing length unless enforce_sorted=False)."""
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pack_sequence: received an empty list of sequences")
    lengths = [s.shape[0] if s.ndim else 0 for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """The list of tensors a PackedSequence was made from (the inverse of pack_sequence)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
