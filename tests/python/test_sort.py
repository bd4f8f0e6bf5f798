"""sort and topk against numpy as the oracle: every numeric dtype, every dim, ascending and
descending, stability (ties keep their input order, also descending), nan placement like PyTorch
(last ascending, first descending), non-contiguous inputs, and the errors.
"""
import numpy as np
import pytest

import heron
from dtype_helpers import ALL, BF16, BOOL, F16, F32, F64, FLOATS, H, I8, I32, I64, INTS, N, NP, NUMERIC, U8, ids  # noqa: F401


rng = np.random.default_rng(7)


def sample(dtype, shape, with_nan=False):
    if dtype in FLOATS:
        v = rng.integers(-5, 6, shape).astype(np.float64) / 2  # many ties
        if with_nan:
            v.flat[rng.choice(v.size, max(1, v.size // 7), replace=False)] = np.nan
            v.flat[0] = np.inf
            v.flat[-1] = -np.inf
        return N(H(v, dtype)).astype(np.float64)
    lo = 0 if dtype == U8 else -5
    return rng.integers(lo, 6, shape).astype(np.int64)


def ref_order(a, dim, descending):
    """Stable order along dim with nan as the largest value, as indices."""
    a = np.moveaxis(a, dim, -1)
    out = np.empty(a.shape, np.int64)
    for idx in np.ndindex(a.shape[:-1]):
        line = a[idx]
        key = [(1 if (isinstance(v, float) and np.isnan(v)) else 0, 0 if np.isnan(v) else v) for v in line.tolist()]
        order = sorted(range(len(line)), key=lambda i: key[i])  # python's sort is stable
        if descending:
            # stable descending: sort by the negated key, ties in input order
            order = sorted(range(len(line)), key=lambda i: (-key[i][0], -key[i][1]))
        out[idx] = order
    return np.moveaxis(out, -1, dim)


def check_sorted(t, a, dim, descending):
    values, indices = heron.sort(t, dim=dim, descending=descending)
    assert values.dtype == t.dtype and indices.dtype == I64
    assert values.shape == t.shape and indices.shape == t.shape
    want_idx = ref_order(a, dim, descending)
    np.testing.assert_array_equal(N(indices), want_idx)
    np.testing.assert_array_equal(N(values).astype(np.float64), np.take_along_axis(a, want_idx, axis=dim).astype(np.float64))


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
@pytest.mark.parametrize("descending", [False, True])
def test_sort_dims_layouts(dtype, descending):
    a = sample(dtype, (4, 5, 6), with_nan=True)
    t = H(a, dtype)
    for dim in (0, 1, 2, -1):
        check_sorted(t, a, dim, descending)
    # permuted and sliced inputs
    tp = H(np.ascontiguousarray(np.transpose(a, (2, 0, 1))), dtype).permute(1, 2, 0)
    check_sorted(tp, a, 1, descending)
    ts = H(np.repeat(a, 2, axis=2), dtype)[:, :, ::2]
    check_sorted(ts, a, 2, descending)
    check_sorted(ts, a, 0, descending)


def test_sort_matches_numpy_stable():
    a = rng.normal(size=(50, 300)).astype(np.float32)
    a[:, ::7] = 0.5  # ties
    v, i = heron.sort(heron.tensor(a), dim=1)
    np.testing.assert_array_equal(N(i), np.argsort(a, axis=1, kind="stable"))
    np.testing.assert_array_equal(N(v), np.sort(a, axis=1))
    v, i = heron.sort(heron.tensor(a), dim=0, stable=True)
    np.testing.assert_array_equal(N(i), np.argsort(a, axis=0, kind="stable"))


def test_sort_nan_placement():
    x = H(np.array([3.0, np.nan, 1.0, np.nan, -np.inf]), F32)
    v, i = heron.sort(x)
    np.testing.assert_array_equal(N(i), [4, 2, 0, 1, 3])
    v, i = heron.sort(x, descending=True)
    np.testing.assert_array_equal(N(i), [1, 3, 0, 2, 4])
    assert np.isnan(N(v)[0])


def test_sort_edges():
    v, i = heron.sort(H(np.array(2.5), F32))
    assert v.shape == () and v.item() == 2.5 and i.item() == 0
    v, i = heron.sort(H(np.zeros((3, 0)), F32), dim=1)
    assert v.shape == (3, 0) and i.shape == (3, 0)
    with pytest.raises(TypeError):
        heron.sort(H(np.array([True, False]), BOOL))
    with pytest.raises(IndexError):
        heron.sort(H(np.zeros((2, 2)), F32), dim=2)


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
@pytest.mark.parametrize("largest", [True, False])
def test_topk(dtype, largest):
    a = sample(dtype, (5, 9), with_nan=True)
    t = H(a, dtype)
    for dim in (0, 1, -1):
        size = a.shape[dim]
        order = ref_order(a, dim, descending=largest)
        for k in (0, 1, 3, size):
            v, i = heron.topk(t, k, dim=dim, largest=largest)
            want_idx = np.take(order, np.arange(k), axis=dim)
            assert i.dtype == I64 and v.dtype == dtype
            np.testing.assert_array_equal(N(i), want_idx)
            np.testing.assert_array_equal(N(v).astype(np.float64), np.take_along_axis(a, want_idx, axis=dim).astype(np.float64))


def test_topk_big_and_errors():
    a = rng.normal(size=(20, 5000)).astype(np.float32)
    v, i = heron.topk(heron.tensor(a), 10)
    want = -np.sort(-a, axis=1)[:, :10]
    np.testing.assert_array_equal(N(v), want)
    np.testing.assert_array_equal(np.take_along_axis(a, N(i), axis=1), want)
    with pytest.raises(ValueError, match="out of range"):
        heron.topk(heron.tensor(a), 5001)
    with pytest.raises(ValueError):
        heron.topk(heron.tensor(a), -1)
    with pytest.raises(IndexError):
        heron.topk(heron.tensor(a), 1, dim=2)
    v, i = heron.topk(heron.tensor(np.array([1.0, 3.0, 3.0, 2.0], np.float32)), 2)
    np.testing.assert_array_equal(N(i), [1, 2])  # ties: first index first
