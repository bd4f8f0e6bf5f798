"""Reductions, scans and softmax against numpy as the oracle: every op and dtype, many axis
combinations, keepdim, non-contiguous inputs (permuted, sliced, reversed), PyTorch's dtype rules
(int/bool sums give int64, mean of ints is a TypeError, ...), nan handling and the errors.

The oracle computes in float64 (or int64), so Heron's float32 results are compared with a
tolerance that a pairwise float32 sum meets.
"""

import numpy as np
import pytest

import heron
from dtype_helpers import ALL, BF16, BOOL, F16, F32, F64, FLOATS, H, I8, I32, I64, INTS, N, NP, NUMERIC, U8, ids  # noqa: F401


RTOL = {F32: 1e-5, F64: 1e-12, F16: 4e-3, BF16: 3e-2}

rng = np.random.default_rng(4321)


def rounded(arr, dtype):
    """arr as the values a tensor of `dtype` holds (float16 / bfloat16 rounding), in float64."""
    if dtype == BF16:
        return N(H(arr, BF16)).astype(np.float64)
    return np.asarray(arr).astype(NP[dtype]).astype(np.float64 if dtype in FLOATS else np.int64)


def sample(dtype, shape, kind="any"):
    n = int(np.prod(shape)) if shape else 1
    if dtype == BOOL:
        v = rng.integers(0, 2, n).astype(np.bool_)
    elif dtype in FLOATS:
        if kind == "small":
            v = rng.integers(-3, 4, n).astype(np.float64)
        elif kind == "near1":
            v = rng.uniform(0.5, 1.5, n)
        else:
            v = rng.normal(0, 2.0, n)
    elif dtype == U8:
        v = rng.integers(0, 4 if kind in ("small", "near1") else 200, n)
    else:
        v = rng.integers(-3, 4, n) if kind in ("small", "near1") else rng.integers(-100, 100, n)
    return v.reshape(shape)


# Layouts: (name, function from a numpy array to (heron tensor, the numpy view it equals)).
def _contig(a, dt):
    return H(a, dt), rounded(a, dt)


def _permuted(a, dt):
    t = H(np.ascontiguousarray(np.transpose(a, (2, 0, 1))), dt).permute(1, 2, 0)
    return t, rounded(a, dt)


def _sliced(a, dt):
    big = np.repeat(a, 2, axis=2)  # [..., ::2] of this is a
    return H(big, dt)[:, :, ::2], rounded(a, dt)


def _reversed(a, dt):
    t = H(np.ascontiguousarray(a[::-1]), dt)[::-1]
    return t, rounded(a, dt)


LAYOUTS = {"contig": _contig, "permuted": _permuted, "sliced": _sliced, "reversed": _reversed}
SHAPE = (3, 4, 5)
DIMS = [None, 0, 1, 2, -1, (0, 1), (0, 2), (1, 2), (-1, 0), (0, 1, 2)]


def np_axis(dim):
    return tuple(dim) if isinstance(dim, (tuple, list)) else dim


def check(got, want, dtype, rtol=None, atol=None):
    want = np.asarray(want)
    g = N(got)
    assert g.shape == want.shape, (g.shape, want.shape)
    if dtype in FLOATS:
        r = RTOL[dtype] if rtol is None else rtol
        a = r if atol is None else atol
        np.testing.assert_allclose(g.astype(np.float64), want.astype(np.float64), rtol=r, atol=a, equal_nan=True)
    else:
        np.testing.assert_array_equal(g, want)


# ------------------------------------------------------------------ sum / prod / mean
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_sum_all_dtypes_axes_layouts(dtype, layout):
    a = sample(dtype, SHAPE)
    t, ref = LAYOUTS[layout](a, dtype)
    for dim in DIMS:
        for keepdim in (False, True):
            got = heron.sum(t, dim=dim, keepdim=keepdim)
            want = ref.sum(axis=np_axis(dim), keepdims=keepdim)
            assert got.dtype == (dtype if dtype in FLOATS else I64)
            check(got, want, dtype, atol=RTOL.get(dtype, 0) * 10)


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_prod(dtype):
    a = sample(dtype, SHAPE, "near1" if dtype in FLOATS else "small")
    t, ref = _permuted(a, dtype)
    for dim in DIMS:
        got = heron.prod(t, dim=dim)
        assert got.dtype == (dtype if dtype in FLOATS else I64)
        check(got, ref.prod(axis=np_axis(dim)), dtype)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", FLOATS, ids=ids(FLOATS))
def test_mean(dtype, layout):
    a = sample(dtype, SHAPE)
    t, ref = LAYOUTS[layout](a, dtype)
    for dim in DIMS:
        for keepdim in (False, True):
            got = heron.mean(t, dim=dim, keepdim=keepdim)
            assert got.dtype == dtype
            check(got, ref.mean(axis=np_axis(dim), keepdims=keepdim), dtype)


@pytest.mark.parametrize("dtype", INTS + [BOOL], ids=ids(INTS + [BOOL]))
def test_mean_of_ints_needs_dtype(dtype):
    t = H(sample(dtype, (4, 3)), dtype)
    with pytest.raises(TypeError, match="could not infer output dtype"):
        heron.mean(t)
    with pytest.raises(TypeError):
        heron.mean(t, dtype=heron.int64)
    got = heron.mean(t, dim=0, dtype=heron.float64)
    assert got.dtype == F64
    check(got, N(t).astype(np.float64).mean(0), F64)


def test_sum_dtype_argument():
    a = np.array([100, 100, 100], np.int8)
    got = heron.sum(H(a, I8), dtype=heron.int8)
    assert got.dtype == I8 and int(got.item()) == 44  # wraps like PyTorch
    got = heron.sum(H(a, I8), dtype=heron.float32)
    assert got.dtype == F32 and got.item() == 300.0
    got = heron.sum(H(np.ones(3, np.float32), F32), dtype=heron.float64)
    assert got.dtype == F64
    got = heron.prod(H(np.array([2, 3], np.int32), I32), dtype=heron.int32)
    assert got.dtype == I32 and got.item() == 6
    assert heron.sum(H(np.array([True, True, False]), BOOL)).item() == 2


def test_empty_dim_list_reduces_everything():
    t = H(sample(F64, (2, 3)), F64)
    assert heron.sum(t, dim=()).shape == ()


def test_float32_sum_is_accurate():
    n = 1 << 24
    x = np.full(n + 12345, 0.1, np.float32)
    got = heron.sum(heron.tensor(x)).item()
    want = x.astype(np.float64).sum()
    assert abs(got - want) / want < 1e-6
    ones = np.ones((n // 4 + 1000, 4), np.float32)
    np.testing.assert_array_equal(N(heron.sum(heron.tensor(ones), dim=0)), np.full(4, n // 4 + 1000, np.float32))
    np.testing.assert_array_equal(N(heron.mean(heron.tensor(ones), dim=0)), np.ones(4, np.float32))


def test_big_reductions_every_layout():
    a = rng.normal(size=(64, 300, 70)).astype(np.float32)
    t = heron.tensor(a)
    a64 = a.astype(np.float64)
    for dim in [None, 0, 1, 2, (0, 2), (0, 1), (1, 2)]:
        np.testing.assert_allclose(N(heron.sum(t, dim=dim)), a64.sum(axis=np_axis(dim)), rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(N(heron.var(t, dim=dim)), a64.var(axis=np_axis(dim), ddof=1), rtol=1e-4)
        np.testing.assert_array_equal(N(heron.amax(t, dim=dim)), a.max(axis=np_axis(dim)))
    tt = t.permute(2, 0, 1)
    np.testing.assert_allclose(N(heron.sum(tt, dim=(1, 2))), a64.sum(axis=(0, 1)), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("op", ["sum", "prod", "mean", "logsumexp", "all", "any"])
def test_empty_reductions_give_identities(op):
    t = H(np.zeros((0, 3)), F32)
    want = {"sum": 0.0, "prod": 1.0, "mean": np.nan, "logsumexp": -np.inf, "all": True, "any": False}[op]
    got = N(getattr(heron, op)(t, dim=0))
    assert got.shape == (3,)
    np.testing.assert_array_equal(got, np.full(3, want))


# ------------------------------------------------------------------ amax / amin
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_amax_amin(dtype, layout):
    a = sample(dtype, SHAPE)
    t, ref = LAYOUTS[layout](a, dtype)
    for dim in DIMS:
        for keepdim in (False, True):
            for op, npop in (("amax", np.max), ("amin", np.min)):
                got = getattr(heron, op)(t, dim=dim, keepdim=keepdim)
                assert got.dtype == dtype
                check(got, npop(ref, axis=np_axis(dim), keepdims=keepdim), dtype, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", FLOATS, ids=ids(FLOATS))
def test_amax_nan_propagates(dtype):
    a = sample(F64, (6, 40))
    a[2, 17] = np.nan
    a[4, 0] = np.inf
    t = H(a, dtype)
    for dim in (None, 0, 1):
        check(heron.amax(t, dim=dim), np.max(rounded(a, dtype), axis=dim), dtype, rtol=0, atol=0)
        check(heron.amin(t, dim=dim), np.min(rounded(a, dtype), axis=dim), dtype, rtol=0, atol=0)
    big = np.ones(100000, np.float32)
    big[77777] = np.nan
    assert np.isnan(heron.amax(heron.tensor(big)).item())
    assert np.isnan(heron.amin(heron.tensor(big)).item())


def test_amax_of_empty_is_an_error():
    t = H(np.zeros((0, 3)), F32)
    with pytest.raises(ValueError):
        heron.amax(t)
    with pytest.raises(ValueError):
        heron.amin(t, dim=0)
    assert heron.amax(t, dim=1).shape == (0,)


# ------------------------------------------------------------------ argmax / argmin
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
def test_argmax_argmin(dtype, layout):
    a = sample(dtype, SHAPE, "small")  # many ties: the first occurrence must win
    t, ref = LAYOUTS[layout](a, dtype)
    for dim in (None, 0, 1, 2, -1):
        for keepdim in (False, True):
            for op, npop in (("argmax", np.argmax), ("argmin", np.argmin)):
                got = getattr(heron, op)(t, dim=dim, keepdim=keepdim)
                assert got.dtype == I64
                want = npop(ref, axis=dim, keepdims=keepdim)
                if dim is None and keepdim:
                    want = np.asarray(npop(ref)).reshape((1,) * ref.ndim)
                np.testing.assert_array_equal(N(got), want)


@pytest.mark.parametrize("dtype", FLOATS, ids=ids(FLOATS))
def test_argmax_nan_returns_the_nan(dtype):
    a = np.array([[1.0, np.nan, 5.0, np.nan], [3.0, 2.0, 9.0, 1.0]])
    t = H(a, dtype)
    np.testing.assert_array_equal(N(heron.argmax(t, dim=1)), [1, 2])
    np.testing.assert_array_equal(N(heron.argmin(t, dim=1)), [1, 3])
    assert heron.argmax(t).item() == 1
    big = np.zeros(200000, np.float32)
    big[123456] = np.nan
    big[5] = 7
    assert heron.argmax(heron.tensor(big)).item() == 123456
    assert heron.argmin(heron.tensor(big)).item() == 123456


def test_argmax_errors():
    with pytest.raises(TypeError):
        heron.argmax(H(np.array([True, False]), BOOL))
    with pytest.raises(ValueError):
        heron.argmax(H(np.zeros((0,)), F32))
    with pytest.raises(ValueError):
        heron.argmin(H(np.zeros((2, 0)), F32), dim=1)
    with pytest.raises(IndexError):
        heron.argmax(H(np.zeros((2, 3)), F32), dim=2)


def test_argmax_large_first_occurrence():
    a = np.zeros(300000, np.float32)
    a[[1000, 250000]] = 3.0
    assert heron.argmax(heron.tensor(a)).item() == 1000
    m = np.zeros((300, 1000), np.float32)
    m[[5, 200], 7] = 2.0
    np.testing.assert_array_equal(N(heron.argmax(heron.tensor(m), dim=0)), np.argmax(m, axis=0))


# ------------------------------------------------------------------ var / std
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", FLOATS, ids=ids(FLOATS))
def test_var_std(dtype, layout):
    a = sample(dtype, SHAPE)
    t, ref = LAYOUTS[layout](a, dtype)
    for dim in DIMS:
        for correction in (0, 1, 2.5):
            for keepdim in (False, True):
                ax = np_axis(dim)
                n = ref.size if dim is None else int(np.prod([ref.shape[d] for d in np.atleast_1d(ax)]))
                want = ref.var(axis=ax, keepdims=keepdim) * n / max(n - correction, 0)
                got = heron.var(t, dim=dim, correction=correction, keepdim=keepdim)
                assert got.dtype == dtype
                check(got, want, dtype, atol=RTOL[dtype])
                check(heron.std(t, dim=dim, correction=correction, keepdim=keepdim), np.sqrt(want), dtype, atol=RTOL[dtype])


def test_var_stability_and_edges():
    x = (1e4 + rng.normal(size=100000)).astype(np.float32)
    np.testing.assert_allclose(heron.var(heron.tensor(x)).item(), x.astype(np.float64).var(ddof=1), rtol=1e-3)
    assert np.isnan(heron.var(H(np.array([3.0]), F32)).item())
    assert heron.var(H(np.array([3.0]), F32), correction=0).item() == 0.0
    with pytest.raises(TypeError):
        heron.var(H(np.array([1, 2]), I32))
    with pytest.raises(TypeError):
        heron.std(H(np.array([1, 2]), I64))


# ------------------------------------------------------------------ logsumexp
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", FLOATS, ids=ids(FLOATS))
def test_logsumexp(dtype, layout):
    a = sample(dtype, SHAPE)
    t, ref = LAYOUTS[layout](a, dtype)
    for dim in DIMS:
        for keepdim in (False, True):
            want = np.log(np.exp(ref).sum(axis=np_axis(dim), keepdims=keepdim))
            got = heron.logsumexp(t, dim=dim, keepdim=keepdim)
            assert got.dtype == dtype
            check(got, want, dtype, atol=RTOL[dtype])


def test_logsumexp_special_values():
    def lse(v, dt=F32):
        return heron.logsumexp(H(np.array(v), dt)).item()
    assert lse([1000.0, 1000.0]) == pytest.approx(1000 + np.log(2))
    assert lse([-np.inf, -np.inf]) == -np.inf
    assert lse([np.inf, 1.0]) == np.inf
    assert lse([np.inf, np.inf]) == np.inf
    assert np.isnan(lse([np.nan, 1.0]))
    assert np.isnan(lse([1.0, np.nan]))
    assert lse([-np.inf, 0.0]) == 0.0
    big = rng.normal(size=100000).astype(np.float32) * 30
    np.testing.assert_allclose(heron.logsumexp(heron.tensor(big)).item(),
                               np.logaddexp.reduce(big.astype(np.float64)), rtol=1e-6)
    got = heron.logsumexp(H(np.array([0, 0]), I64))
    assert got.dtype == F32 and got.item() == pytest.approx(np.log(2))


# ------------------------------------------------------------------ all / any
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_all_any(dtype, layout):
    a = sample(dtype, SHAPE, "small")
    t, ref = LAYOUTS[layout](a, dtype)
    for dim in DIMS:
        for keepdim in (False, True):
            got = heron.all(t, dim=dim, keepdim=keepdim)
            assert got.dtype == BOOL
            np.testing.assert_array_equal(N(got), np.all(ref, axis=np_axis(dim), keepdims=keepdim))
            np.testing.assert_array_equal(N(heron.any(t, dim=dim, keepdim=keepdim)),
                                          np.any(ref, axis=np_axis(dim), keepdims=keepdim))


def test_nan_is_truthy():
    assert heron.all(H(np.array([np.nan, 1.0]), F32)).item() is True


# ------------------------------------------------------------------ dims
def test_dim_errors():
    t = H(np.zeros((2, 3)), F32)
    with pytest.raises(IndexError):
        heron.sum(t, dim=2)
    with pytest.raises(IndexError):
        heron.sum(t, dim=-3)
    with pytest.raises(ValueError):
        heron.sum(t, dim=(0, -2))
    s = H(np.array(5.0), F32)
    assert heron.sum(s, dim=0).item() == 5.0
    assert heron.sum(s, dim=-1, keepdim=True).shape == ()
    assert heron.amax(s).item() == 5.0
    assert heron.argmax(s).item() == 0


# ------------------------------------------------------------------ cumsum / cumprod
@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_cumsum_cumprod(dtype):
    for layout in ("contig", "permuted", "reversed"):
        a = sample(dtype, SHAPE, "small")
        t, ref = LAYOUTS[layout](a, dtype)
        for dim in (0, 1, 2, -1):
            got = heron.cumsum(t, dim=dim)
            assert got.dtype == (dtype if dtype in FLOATS else I64)
            check(got, np.cumsum(ref, axis=dim), dtype, atol=RTOL.get(dtype, 0) * 10)
            got = heron.cumprod(t, dim=dim)
            check(got, np.cumprod(ref, axis=dim), dtype, atol=RTOL.get(dtype, 0) * 10)


def test_cumsum_dtype_and_scalar():
    got = heron.cumsum(H(np.array([100, 100], np.int8), I8), dim=0, dtype=heron.int8)
    assert got.dtype == I8
    np.testing.assert_array_equal(N(got), [100, -56])
    got = heron.cumsum(H(np.array([1, 2]), I32), dim=0, dtype=heron.float64)
    assert got.dtype == F64
    assert heron.cumsum(H(np.array(3.0), F32), dim=0).item() == 3.0
    with pytest.raises(IndexError):
        heron.cumsum(H(np.zeros(3), F32), dim=1)
    big = rng.normal(size=(50, 3000)).astype(np.float64)
    np.testing.assert_allclose(N(heron.cumsum(heron.tensor(big), dim=0)), np.cumsum(big, 0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(N(heron.cumsum(heron.tensor(big), dim=1)), np.cumsum(big, 1), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ softmax
def np_softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


@pytest.mark.parametrize("dtype", FLOATS, ids=ids(FLOATS))
def test_softmax_log_softmax(dtype):
    for layout in LAYOUTS:
        a = sample(dtype, SHAPE)
        t, ref = LAYOUTS[layout](a, dtype)
        for dim in (0, 1, 2, -1):
            got = heron.softmax(t, dim=dim)
            assert got.dtype == dtype
            check(got, np_softmax(ref, dim), dtype, atol=RTOL[dtype])
            check(heron.log_softmax(t, dim=dim), np.log(np_softmax(ref, dim)), dtype, atol=RTOL[dtype] * 4)


def test_softmax_big_and_stable():
    x = rng.normal(size=(300, 517)).astype(np.float32) * 50
    for dim in (0, 1):
        np.testing.assert_allclose(N(heron.softmax(heron.tensor(x), dim=dim)), np_softmax(x.astype(np.float64), dim),
                                   rtol=1e-5, atol=1e-7)
        ls = np.log(np_softmax(x.astype(np.float64), dim))
        np.testing.assert_allclose(N(heron.log_softmax(heron.tensor(x), dim=dim)), ls, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(N(heron.softmax(H(np.array([1000.0, 1000.0]), F32), dim=0)), [0.5, 0.5])


def test_softmax_dtypes():
    with pytest.raises(TypeError):
        heron.softmax(H(np.array([1, 2]), I64), dim=0)
    with pytest.raises(TypeError):
        heron.log_softmax(H(np.array([1, 2]), I32), dim=0)
    with pytest.raises(TypeError):
        heron.softmax(H(np.array([1.0, 2.0]), F32), dim=0, dtype=heron.int32)
    got = heron.softmax(H(np.array([1, 1]), I64), dim=0, dtype=heron.float64)
    assert got.dtype == F64
    np.testing.assert_allclose(N(got), [0.5, 0.5])
    got = heron.log_softmax(H(np.array([1.0, 2.0]), F16), dim=0, dtype=heron.float32)
    assert got.dtype == F32
    assert heron.softmax(H(np.array(3.0), F32), dim=0).item() == 1.0
    assert heron.softmax(H(np.zeros((0, 3)), F32), dim=1).shape == (0, 3)


@pytest.mark.parametrize("threads", [1, 2])
def test_results_do_not_depend_on_threads(threads):
    x = heron.tensor(rng.normal(size=(200, 3000)).astype(np.float32))
    old = heron.get_num_threads()
    try:
        heron.set_num_threads(1)
        ref = [N(heron.sum(x)), N(heron.sum(x, dim=0)), N(heron.var(x, dim=1)), N(heron.logsumexp(x))]
        heron.set_num_threads(threads)
        got = [N(heron.sum(x)), N(heron.sum(x, dim=0)), N(heron.var(x, dim=1)), N(heron.logsumexp(x))]
    finally:
        heron.set_num_threads(old)
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(r, g)


def test_methods_exist():
    t = H(np.arange(6.0).reshape(2, 3), F32)
    assert t.sum().item() == 15.0
    assert t.mean(dim=0).shape == (3,)
    assert t.amax(dim=1).shape == (2,)
    v, i = t.sort(dim=1, descending=True)
    assert N(i).tolist() == [[2, 1, 0], [2, 1, 0]]


