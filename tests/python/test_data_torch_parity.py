"""heron.utils.data.default_collate next to torch's, when PyTorch is installed (skipped otherwise)."""
import collections

import numpy as np
import pytest

import heron
from heron.utils.data import DataLoader, TensorDataset, default_collate

torch = pytest.importorskip("torch")
from torch.utils.data import default_collate as torch_collate  # noqa: E402

Point = collections.namedtuple("Point", ["x", "y"])


def _same(h, t, path="batch"):
    if isinstance(t, torch.Tensor):
        assert isinstance(h, heron.Tensor), f"{path}: {type(h).__name__} instead of a tensor"
        assert tuple(h.shape) == tuple(t.shape), path
        assert str(h.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"{path}: {h.dtype} vs {t.dtype}"
        np.testing.assert_array_equal(np.array(h.tolist()), t.numpy(), err_msg=path)
    elif isinstance(t, dict):
        assert type(h) is type(t) and list(h) == list(t), path
        for k in t:
            _same(h[k], t[k], f"{path}[{k!r}]")
    elif isinstance(t, (list, tuple)):
        assert type(h).__name__ == type(t).__name__ and len(h) == len(t), f"{path}: {type(h)} vs {type(t)}"
        for i, (a, b) in enumerate(zip(h, t)):
            _same(a, b, f"{path}[{i}]")
    else:
        assert h == t, path


def _samples(kind):
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
    if kind == "tensors":
        return [heron.tensor(a) for a in arrs], [torch.from_numpy(a) for a in arrs]
    if kind == "arrays":
        return arrs, arrs
    if kind == "ints":
        return [1, 2, 3], [1, 2, 3]
    if kind == "floats":
        return [0.5, 1.5, 2.0], [0.5, 1.5, 2.0]
    if kind == "bools":
        return [True, False, True], [True, False, True]
    if kind == "np-scalars":
        return [np.int32(1), np.int32(4)], [np.int32(1), np.int32(4)]
    if kind == "strings":
        return ["a", "b"], ["a", "b"]
    if kind == "tuples":
        return [(heron.tensor(a), i) for i, a in enumerate(arrs)], [(torch.from_numpy(a), i) for i, a in enumerate(arrs)]
    if kind == "lists":
        return [[i, 2.0 * i] for i in range(3)], [[i, 2.0 * i] for i in range(3)]
    if kind == "dicts":
        return ([{"img": heron.tensor(a), "label": i, "name": f"n{i}"} for i, a in enumerate(arrs)],
                [{"img": torch.from_numpy(a), "label": i, "name": f"n{i}"} for i, a in enumerate(arrs)])
    if kind == "namedtuples":
        return [Point(i, 1.0 * i) for i in range(3)], [Point(i, 1.0 * i) for i in range(3)]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["tensors", "arrays", "ints", "floats", "bools", "np-scalars", "strings", "tuples",
                                  "lists", "dicts", "namedtuples"])
def test_default_collate_matches_torch(kind):
    h, t = _samples(kind)
    _same(default_collate(h), torch_collate(t))


def test_tensor_dataset_batches_match_torch():
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    y = np.arange(10)
    hb = list(DataLoader(TensorDataset(heron.tensor(x), heron.tensor(y)), batch_size=4))
    tb = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                          batch_size=4))
    assert len(hb) == len(tb)
    for a, b in zip(hb, tb):
        _same(a, b)
