"""Creation ops against numpy: empty, zeros, ones, full, arange, linspace, eye and the *_like ops."""
import numpy as np
import pytest

import heron
from heron import _ops

DTYPES = [heron.float32, heron.float64, heron.float16, heron.bfloat16, heron.int8, heron.uint8, heron.int32,
          heron.int64, heron.bool]
NUMERIC = [d for d in DTYPES if d != heron.bool]
NP = {heron.float32: np.float32, heron.float64: np.float64, heron.float16: np.float16, heron.bfloat16: np.float32,
      heron.int8: np.int8, heron.uint8: np.uint8, heron.int32: np.int32, heron.int64: np.int64, heron.bool: np.bool_}
ids = [str(d) for d in DTYPES]
nids = [str(d) for d in NUMERIC]


def N(t):
    if t.dtype == heron.bfloat16:
        t = heron.cast(t, heron.float32)
    return t.numpy().copy()


def check(t, expected, dtype=None, **tol):
    expected = np.asarray(expected)
    assert tuple(t.shape) == expected.shape, (t.shape, expected.shape)
    if dtype is not None:
        assert t.dtype == dtype, (t.dtype, dtype)
    got = N(t)
    if tol:
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), **tol)
    else:
        np.testing.assert_array_equal(got, expected.astype(got.dtype))


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("shape", [(2, 3), (5,), (), (0, 4), (1, 2, 1, 3)])
def test_zeros_ones_empty(dt, shape):
    check(heron.zeros(shape, dtype=dt), np.zeros(shape, NP[dt]), dt)
    check(heron.ones(*shape, dtype=dt), np.ones(shape, NP[dt]), dt)
    e = heron.empty(shape, dtype=dt)
    assert tuple(e.shape) == shape and e.dtype == dt
    check(_ops.zeros(shape, dt), np.zeros(shape, NP[dt]), dt)


def test_defaults():
    assert heron.zeros(2).dtype == heron.float32
    assert _ops.ones([2]).dtype == heron.float32
    assert heron.zeros(2, 3).shape == (2, 3)
    with pytest.raises(ValueError):
        _ops.zeros([-1])


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("value", [0, 1, 7, -3, 2.5, True, False])
def test_full(dt, value):
    # numpy's astype has the same conversions (float -> int truncates, ints wrap into uint8)
    check(heron.full((2, 3), value, dtype=dt), np.full((2, 3), value).astype(NP[dt]), dt)


@pytest.mark.parametrize("value,dt", [(1, heron.int64), (2.5, heron.float32), (True, heron.bool), (-4, heron.int64)])
def test_full_infers_dtype(value, dt):
    t = heron.full((3,), value)
    assert t.dtype == dt
    check(t, np.full(3, value))


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
def test_like_ops(dt):
    src = heron.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), dtype=dt)
    check(heron.zeros_like(src), np.zeros((2, 3), NP[dt]), dt)
    check(heron.ones_like(src), np.ones((2, 3), NP[dt]), dt)
    check(heron.full_like(src, 1), np.ones((2, 3), NP[dt]), dt)
    e = heron.empty_like(src)
    assert e.shape == (2, 3) and e.dtype == dt
    for other in (heron.float64, heron.int32, heron.bool):
        assert heron.zeros_like(src, dtype=other).dtype == other
        assert heron.ones_like(src, dtype=other).dtype == other
        assert heron.empty_like(src, dtype=other).dtype == other
        assert heron.full_like(src, 0, dtype=other).dtype == other


def test_full_like_converts_value():
    src = heron.tensor(np.zeros(3, np.int32))
    check(heron.full_like(src, 7.9), np.full(3, 7, np.int32), heron.int32)
    check(heron.full_like(src, 2.5, dtype=heron.float64), np.full(3, 2.5), heron.float64)


ARANGE_CASES = [(5,), (0, 5), (2, 11, 3), (10, 0, -3), (-5, 5, 2), (0, 0), (3, 1, 1), (0.0, 1.0, 0.1),
                (1, 2.5, 0.5), (-1.5, 1.5, 0.25), (5.0, -5.0, -1.5), (0, 10, 2.5)]


@pytest.mark.parametrize("args", ARANGE_CASES, ids=[str(a) for a in ARANGE_CASES])
def test_arange(args):
    if len(args) == 3 and ((args[1] - args[0]) * args[2] < 0):
        with pytest.raises(ValueError):
            heron.arange(*args)
        return
    t = heron.arange(*args)
    all_int = all(isinstance(a, int) for a in args)
    assert t.dtype == (heron.int64 if all_int else heron.float32)
    want = np.arange(*args, dtype=np.float64)
    check(t, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dt", NUMERIC, ids=nids)
def test_arange_dtype(dt):
    t = heron.arange(0, 10, 3, dtype=dt)
    check(t, np.array([0, 3, 6, 9]), dt)
    t = _ops.arange(start=1, end=4, dtype=dt)
    check(t, np.array([1, 2, 3]), dt)


def test_arange_count_is_ceil():
    assert heron.arange(0, 10, 3).shape == (4,)
    assert heron.arange(0, 9, 3).shape == (3,)
    assert heron.arange(0.0, 1.0, 0.3).shape == (4,)
    assert heron.arange(-1, -10, -4).shape == (3,)


def test_arange_errors():
    with pytest.raises(ValueError, match="step"):
        heron.arange(0, 10, 0)
    with pytest.raises(ValueError):
        heron.arange(0, 10, -1)
    with pytest.raises(ValueError):
        heron.arange(10, 0)
    with pytest.raises(ValueError):
        heron.arange(0.0, float("inf"))
    with pytest.raises(TypeError):
        heron.arange(3, dtype=heron.bool)


@pytest.mark.parametrize("dt", [heron.float32, heron.float64, heron.float16, heron.bfloat16], ids=str)
@pytest.mark.parametrize("start,end,steps", [(0, 1, 5), (-3, 7, 11), (2, -2, 4), (1.5, 1.5, 3), (0, 1, 1), (0, 1, 0),
                                             (0, 100, 1000)])
def test_linspace(dt, start, end, steps):
    t = heron.linspace(start, end, steps, dtype=dt)
    tol = {heron.float32: 1e-6, heron.float64: 1e-12, heron.float16: 1e-3, heron.bfloat16: 1e-2}[dt]
    check(t, np.linspace(start, end, steps), dt, rtol=tol, atol=tol * max(1, abs(start), abs(end)))
    if steps >= 2:
        assert N(t)[0] == np.asarray(start).astype(N(t).dtype)
        assert N(t)[-1] == np.asarray(end).astype(N(t).dtype)


@pytest.mark.parametrize("dt", [heron.int8, heron.uint8, heron.int32, heron.int64], ids=str)
def test_linspace_int(dt):
    check(heron.linspace(0, 10, 4, dtype=dt), np.linspace(0, 10, 4).astype(NP[dt]), dt)


def test_linspace_errors():
    with pytest.raises(ValueError):
        heron.linspace(0, 1, -1)


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("n,m", [(3, None), (2, 4), (4, 2), (0, None), (1, 1), (3, 0)])
def test_eye(dt, n, m):
    check(heron.eye(n, m, dtype=dt), np.eye(n, m, dtype=NP[dt]), dt)


def test_eye_errors():
    with pytest.raises(ValueError):
        heron.eye(-1)
    with pytest.raises(ValueError):
        heron.eye(2, -1)
