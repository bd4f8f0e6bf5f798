"""matmul against numpy as the oracle: numpy's shape semantics (1-d promotion and squeeze, batch
broadcasting), every numeric dtype, operands that are transposed, sliced, broadcast or reversed
(BLAS gets them in place or packed), tiny to BLAS-sized products, and the errors.
"""
import numpy as np
import pytest

import heron
from dtype_helpers import ALL, BF16, BOOL, F16, F32, F64, FLOATS, H, I8, I32, I64, INTS, N, NP, NUMERIC, U8, ids  # noqa: F401

RTOL = {F32: 1e-5, F64: 1e-12, F16: 3e-3, BF16: 2e-2}

rng = np.random.default_rng(99)


def values(dtype, shape):
    if dtype in FLOATS:
        v = rng.uniform(-1, 1, shape)
        return N(H(v, dtype)).astype(np.float64)  # the values the tensor holds
    lo = 0 if dtype == U8 else -4
    return rng.integers(lo, 5, shape).astype(np.int64)


def expected(a, b, dtype):
    r = np.matmul(a, b)
    if dtype in FLOATS:
        return r
    return r.astype(NP[dtype])  # integers wrap like two's complement (int8 @ int8 -> int8)


def check(got, want, dtype, k):
    assert got.dtype == dtype
    g = N(got)
    assert g.shape == np.shape(want), (g.shape, np.shape(want))
    if dtype in FLOATS:
        tol = RTOL[dtype] * max(1, np.sqrt(k))
        np.testing.assert_allclose(g.astype(np.float64), want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(g, want)


SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((1, 5), (5, 1)),
    ((5, 1), (1, 6)),
    ((4, 2, 3), (3, 5)),
    ((2, 3), (4, 3, 5)),
    ((3,), (4, 3, 5)),
    ((4, 2, 3), (3,)),
    ((7, 1, 2, 3), (5, 3, 4)),
    ((1, 4, 2, 3), (6, 1, 3, 2)),
    ((2, 0, 3), (3, 4)),
    ((2, 3, 0), (0, 4)),
    ((0,), (0,)),
]


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
@pytest.mark.parametrize("sa,sb", SHAPES, ids=[f"{a}@{b}" for a, b in SHAPES])
def test_shapes_and_dtypes(dtype, sa, sb):
    a, b = values(dtype, sa), values(dtype, sb)
    got = heron.matmul(H(a, dtype), H(b, dtype))
    check(got, expected(a, b, dtype), dtype, sa[-1])


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (2, 2, 2), (8, 8, 8), (17, 33, 9), (1, 300, 200), (200, 300, 1),
                                   (64, 64, 64), (130, 70, 150)])
def test_layouts(dtype, m, k, n):
    a, b = values(dtype, (m, k)), values(dtype, (k, n))
    want = expected(a, b, dtype)
    A, B = H(a, dtype), H(b, dtype)
    At = H(np.ascontiguousarray(a.T), dtype).transpose(0, 1)   # column-major a
    Bt = H(np.ascontiguousarray(b.T), dtype).transpose(0, 1)   # column-major b
    As = H(np.repeat(a, 2, axis=1), dtype)[:, ::2]             # strided columns
    Bs = H(np.repeat(b, 3, axis=0), dtype)[::3]                # strided rows
    Ar = H(np.ascontiguousarray(a[::-1]), dtype)[::-1]         # negative row stride
    for x, y in [(A, B), (At, B), (A, Bt), (At, Bt), (As, B), (A, Bs), (As, Bs), (Ar, Bt)]:
        check(heron.matmul(x, y), want, dtype, k)


@pytest.mark.parametrize("dtype", [F32, F64, F16, I32], ids=ids([F32, F64, F16, I32]))
def test_batched_broadcast_and_views(dtype):
    a, b = values(dtype, (6, 20, 30)), values(dtype, (30, 25))
    A, B = H(a, dtype), H(b, dtype)
    check(heron.matmul(A, B), expected(a, b, dtype), dtype, 30)
    # broadcast batch operand (stride 0)
    bb = values(dtype, (1, 30, 25))
    check(heron.matmul(A, H(bb, dtype).expand(6, 30, 25)), expected(a, bb, dtype), dtype, 30)
    # transposed batch matrices
    bt = values(dtype, (6, 25, 30))
    check(heron.matmul(A, H(bt, dtype).transpose(1, 2)), expected(a, np.swapaxes(bt, 1, 2), dtype), dtype, 30)
    # permuted batch dims
    ap = values(dtype, (20, 6, 30))
    check(heron.matmul(H(ap, dtype).permute(1, 0, 2), B), expected(np.transpose(ap, (1, 0, 2)), b, dtype), dtype, 30)
    # many tiny matrices
    t = values(dtype, (500, 4, 4))
    check(heron.matmul(H(t, dtype), H(t, dtype)), expected(t, t, dtype), dtype, 4)


def test_large_float32_matches_numpy():
    a = rng.standard_normal((300, 400), dtype=np.float32)
    b = rng.standard_normal((400, 500), dtype=np.float32)
    np.testing.assert_allclose(N(heron.matmul(heron.tensor(a), heron.tensor(b))),
                               a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(N(heron.tensor(a) @ heron.tensor(b)), a @ b, rtol=1e-4, atol=1e-3)


def test_integer_wraparound():
    a = np.full((2, 50), 100, np.int8)
    got = heron.matmul(heron.tensor(a), heron.tensor(a.T.copy()))
    assert got.dtype == I8
    np.testing.assert_array_equal(N(got), (a.astype(np.int64) @ a.T.astype(np.int64)).astype(np.int8))
    big = np.full((1, 2), 2 ** 62, np.int64)
    got = heron.matmul(heron.tensor(big), heron.tensor(np.ones((2, 1), np.int64)))
    assert int(got.item()) == -(2 ** 63)


def test_mixed_dtypes_promote():
    got = heron.matmul(H(values(I32, (2, 3)), I32), H(values(F64, (3, 2)), F64))
    assert got.dtype == F64
    got = heron.matmul(H(values(F16, (2, 3)), F16), H(values(F32, (3, 2)), F32))
    assert got.dtype == F32


def test_zero_k_gives_zeros():
    for dt in (F32, F64, F16, I64):
        got = heron.matmul(H(np.zeros((3, 0)), dt), H(np.zeros((0, 4)), dt))
        assert got.shape == (3, 4)
        np.testing.assert_array_equal(N(got), np.zeros((3, 4)))


def test_errors():
    with pytest.raises(ValueError, match=r"matmul: shapes \[2, 3\] and \[4, 5\] are not aligned \(3 != 4\)"):
        heron.matmul(heron.ones(2, 3), heron.ones(4, 5))
    with pytest.raises(ValueError, match=r"\[3\] and \[4\]"):
        heron.matmul(heron.ones(3), heron.ones(4))
    with pytest.raises(ValueError, match="batch"):
        heron.matmul(heron.ones(2, 2, 3), heron.ones(3, 3, 4))
    with pytest.raises(ValueError):
        heron.matmul(heron.tensor(1.0), heron.ones(3))
    with pytest.raises(TypeError):
        heron.matmul(H(np.eye(2), BOOL), H(np.eye(2), BOOL))
    with pytest.raises(heron.InvalidArgumentError):
        heron.matmul(heron.ones(2, 3), heron.ones(2, 3))


def test_thread_count_listener():
    a = heron.tensor(rng.standard_normal((256, 256)))
    old = heron.get_num_threads()
    try:
        heron.set_num_threads(1)
        r1 = N(a @ a)
        heron.set_num_threads(2)
        r2 = N(a @ a)
    finally:
        heron.set_num_threads(old)
    np.testing.assert_allclose(r1, r2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_batched_mid_size_products_split_into_row_blocks(dt):
    # Batches of products between kBlasSerial and 4M multiply-adds run over the pool in row blocks
    # (matmul_kernels.cpp, split_batch); transposed and broadcast operands included.
    g = np.random.default_rng(5)
    a = g.standard_normal((6, 130, 64)).astype(dt)
    b = g.standard_normal((6, 120, 64)).astype(dt)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64).transpose(0, 2, 1))
    got = heron.matmul(heron.tensor(a), heron.tensor(b).transpose(1, 2)).numpy()
    tol = 1e-4 if dt == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    w = g.standard_normal((64, 200)).astype(dt)
    got2 = heron.matmul(heron.tensor(a), heron.tensor(w)).numpy()
    np.testing.assert_allclose(got2, a.astype(np.float64) @ w.astype(np.float64), rtol=tol, atol=tol)
