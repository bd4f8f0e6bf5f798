"""nn ops (layers, normalisation, losses, resampling) against numpy references written here, the
backward ops against float64 central differences of their forward ops (also on non-contiguous
inputs), dropout seeding and statistics, running-statistic updates, and the error messages.
"""
import numpy as np
import pytest

import heron
from dtype_helpers import F32, F64, H, N, ids

FL = [F32, F64]
TOL = {F32: 2e-5, F64: 1e-11}
rng = np.random.default_rng(1234)


def T(a, dtype=F64):
    return H(np.asarray(a, dtype=np.float64), dtype)


def NC(a, dtype=F64):
    """A non-contiguous Heron tensor holding a (every other element of the last dim of a wider tensor)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return T(a, dtype)
    wide = np.repeat(a, 2, axis=-1)
    t = heron.slice(T(wide, dtype), a.ndim - 1, None, None, 2)
    assert a.size == 0 or not t.is_contiguous()
    return t


def close(got, want, dtype=F64, scale=1.0):
    g = N(got).astype(np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert g.shape == want.shape, (g.shape, want.shape)
    tol = TOL[dtype] * scale
    np.testing.assert_allclose(g, want, rtol=tol, atol=tol)


def fd(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function f at x (float64)."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp = x.copy()
        xm = x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g


def fd_check(forward, backward_value, x, G, tol=1e-6):
    """forward(x: numpy) -> Heron tensor; compares backward_value with d sum(G * forward(x)) / dx."""
    want = fd(lambda v: float(np.sum(G * N(forward(v)))), x)
    np.testing.assert_allclose(N(backward_value), want, rtol=tol, atol=tol)


def raises(exc, *words):
    """pytest.raises matching every word (the op name and the expected/actual values)."""
    class _Ctx:
        def __enter__(self):
            self.cm = pytest.raises(exc)
            self.info = self.cm.__enter__()
            return self.info

        def __exit__(self, *a):
            r = self.cm.__exit__(*a)
            msg = str(self.info.value)
            for w in words:
                assert w in msg, (w, msg)
            return r
    return _Ctx()


# ------------------------------------------------------------------ linear
def ref_linear(x, w, b):
    y = x @ w.T
    return y if b is None else y + b


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("xs,o", [((5, 3), 4), ((2, 3, 7), 6), ((7,), 2), ((0, 3), 2), ((4, 0), 3), ((65, 130), 70)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(dtype, xs, o, bias):
    x = rng.standard_normal(xs)
    w = rng.standard_normal((o, xs[-1]))
    b = rng.standard_normal(o) if bias else None
    got = heron.linear(T(x, dtype), T(w, dtype), T(b, dtype) if bias else None)
    assert got.dtype == dtype
    close(got, ref_linear(x, w, b), dtype, scale=max(1, xs[-1]) ** 0.5)
    # non-contiguous input and weight
    got = heron.linear(NC(x, dtype), T(np.ascontiguousarray(w.T), dtype).transpose(0, 1), T(b, dtype) if bias else None)
    close(got, ref_linear(x, w, b), dtype, scale=max(1, xs[-1]) ** 0.5)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward(bias):
    x = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((5, 4))
    b = rng.standard_normal(5)
    G = rng.standard_normal((2, 3, 5))
    gi, gw, gb = heron.linear_backward(T(G), NC(x), NC(w))
    bb = T(b) if bias else None
    fd_check(lambda v: heron.linear(T(v), T(w), bb), gi, x, G)
    fd_check(lambda v: heron.linear(T(x), T(v), bb), gw, w, G)
    fd_check(lambda v: heron.linear(T(x), T(w), T(v)), gb, b, G)
    gi2, gw2, gb2 = heron.linear_backward(T(G), T(x), T(w), output_mask=[0, 1, 0])
    assert gi2.shape == (0,) and gb2.shape == (0,)
    close(gw2, N(gw))


def test_linear_errors():
    with raises(ValueError, "linear", "[4, 3]", "[4, 5]"):
        heron.linear(T(np.zeros((2, 3))), T(np.zeros((4, 5))), None)
    with raises(ValueError, "linear", "bias", "[4]", "[3]"):
        heron.linear(T(np.zeros((2, 3))), T(np.zeros((4, 3))), T(np.zeros(3)))
    with raises(TypeError, "linear", "weight", "float64", "float32"):
        heron.linear(T(np.zeros((2, 3))), T(np.zeros((4, 3)), F32), None)
    with raises(TypeError, "linear", "int64"):
        heron.linear(heron.tensor(np.zeros((2, 3), np.int64)), T(np.zeros((4, 3))), None)


# ------------------------------------------------------------------ leaky_relu
@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("slope", [0.01, 0.2, -1.5])
def test_leaky_relu(dtype, slope):
    x = rng.standard_normal((3, 50000)) if slope == 0.01 else rng.standard_normal((4, 5))
    close(heron.leaky_relu(NC(x, dtype), negative_slope=slope), np.where(x > 0, x, slope * x), dtype)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-30, -1e-30])
    got = N(heron.leaky_relu(T(special, dtype), negative_slope=slope))
    sp = special.astype(got.dtype)
    want = np.where(sp > 0, sp, sp * got.dtype.type(slope))
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[3]) == (slope > 0)  # -0.0 * slope, like x * slope
    x = rng.standard_normal((3, 4))
    G = rng.standard_normal((3, 4))
    fd_check(lambda v: heron.leaky_relu(T(v), negative_slope=slope), heron.leaky_relu_backward(NC(G), NC(x), negative_slope=slope), x, G)


# ------------------------------------------------------------------ dropout
def test_dropout_identity_cases():
    x = rng.standard_normal((10, 10))
    for p, training in [(0.0, True), (0.5, False), (1.0, False)]:
        out, mask = heron.dropout(T(x), p=p, training=training)
        close(out, x)
        assert N(mask).all() and mask.dtype == heron.bool
    out, mask = heron.dropout(T(x), p=1.0, training=True)
    assert (N(out) == 0).all() and not N(mask).any()


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
def test_dropout_statistics_and_scaling(dtype):
    x = rng.standard_normal((200, 500)) + 3.0
    p = 0.3
    heron.manual_seed(7)
    out, mask = heron.dropout(T(x, dtype), p=p)
    m = N(mask)
    assert m.dtype == np.bool_
    kept = m.mean()
    assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / m.size)
    close(out, np.where(m, x / (1 - p), 0.0), dtype)
    # the gradient: mask / (1 - p)
    G = rng.standard_normal(x.shape)
    close(heron.dropout_backward(T(G, dtype), mask, p=p), np.where(m, G / (1 - p), 0.0), dtype)


def test_dropout_seeding_and_threads():
    x = T(np.ones((97, 1031)))
    old = heron.get_num_threads()
    try:
        heron.manual_seed(123)
        a = N(heron.dropout(x, p=0.5).mask)
        b = N(heron.dropout(x, p=0.5).mask)  # the generator moved on
        assert (a != b).any()
        heron.set_num_threads(1)
        heron.manual_seed(123)
        c = N(heron.dropout(x, p=0.5).mask)
        heron.set_num_threads(max(2, old))
        heron.manual_seed(123)
        d = N(heron.dropout(x, p=0.5).mask)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(a, d)
        heron.manual_seed(124)
        assert (N(heron.dropout(x, p=0.5).mask) != a).any()
    finally:
        heron.set_num_threads(old)


def test_dropout_backward_fd():
    x = rng.standard_normal((3, 5))
    G = rng.standard_normal((3, 5))
    heron.manual_seed(3)
    _, mask = heron.dropout(T(x), p=0.4)
    m = N(mask)
    # with the mask fixed, dropout is x * m / (1 - p)
    got = heron.dropout_backward(NC(G), mask, p=0.4)
    want = fd(lambda v: float(np.sum(G * v * m / 0.6)), x)
    np.testing.assert_allclose(N(got), want, rtol=1e-7, atol=1e-7)


def test_dropout_errors():
    with raises(ValueError, "dropout", "[0, 1]", "1.5"):
        heron.dropout(T(np.zeros(3)), p=1.5)
    with raises(TypeError, "dropout_backward", "bool", "mask"):
        heron.dropout_backward(T(np.zeros(3)), T(np.zeros(3)), p=0.5)


# ------------------------------------------------------------------ embedding
@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("itype", [np.int64, np.int32])
def test_embedding(dtype, itype):
    w = rng.standard_normal((10, 4))
    idx = rng.integers(0, 10, (3, 5)).astype(itype)
    close(heron.embedding(T(w, dtype), heron.tensor(idx)), w[idx], dtype)
    close(heron.embedding(NC(w, dtype), heron.tensor(idx[:, ::2])), w[idx[:, ::2]], dtype)
    close(heron.embedding(T(w, dtype), heron.tensor(np.array(3, itype))), w[3], dtype)


@pytest.mark.parametrize("pad", [None, 2, -1])
def test_embedding_backward(pad):
    num, dim = 6, 3
    idx = np.array([[0, 2, 2], [5, 1, 2], [5, 5, 0]])
    G = rng.standard_normal((3, 3, dim))
    got = heron.embedding_backward(NC(G), heron.tensor(idx), num_weights=num, padding_idx=pad)
    want = np.zeros((num, dim))
    np.add.at(want, idx, G)
    if pad is not None:
        want[pad] = 0
    close(got, want)
    w = rng.standard_normal((num, dim))
    if pad is None:
        fd_check(lambda v: heron.embedding(T(v), heron.tensor(idx)), got, w, G)


def test_embedding_backward_large_parallel():
    num, dim = 50, 700
    idx = rng.integers(0, num, 400)
    G = rng.standard_normal((400, dim))
    want = np.zeros((num, dim))
    np.add.at(want, idx, G)
    close(heron.embedding_backward(T(G), heron.tensor(idx), num_weights=num), want, scale=10)


def test_embedding_errors():
    w = T(np.zeros((5, 2)))
    with raises(IndexError, "embedding", "index 5", "5 rows"):
        heron.embedding(w, heron.tensor(np.array([1, 5])))
    with raises(IndexError, "embedding", "index -1"):
        heron.embedding(w, heron.tensor(np.array([-1])))
    with raises(TypeError, "embedding", "int32 or int64", "float64"):
        heron.embedding(w, T(np.array([1.0])))
    with raises(ValueError, "embedding", "padding_idx 7"):
        heron.embedding(w, heron.tensor(np.array([1])), padding_idx=7)
    with raises(ValueError, "embedding", "(num_embeddings, embedding_dim)"):
        heron.embedding(T(np.zeros(5)), heron.tensor(np.array([1])))


# ------------------------------------------------------------------ pixel_shuffle
def ref_pixel_shuffle(x, r):
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def ref_pixel_unshuffle(x, r):
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


@pytest.mark.parametrize("shape,r", [((1, 8, 2, 3), 2), ((2, 9, 3, 2), 3), ((4, 2, 5), 1), ((2, 3, 4, 4, 2), 2)])
def test_pixel_shuffle_roundtrip(shape, r):
    x = rng.standard_normal(shape)
    y = heron.pixel_shuffle(NC(x), r)
    close(y, ref_pixel_shuffle(x, r))
    z = heron.pixel_unshuffle(y, r)
    close(z, x)
    close(heron.pixel_unshuffle(T(ref_pixel_shuffle(x, r)), r), ref_pixel_unshuffle(ref_pixel_shuffle(x, r), r))
    # the output never aliases the input (not even for r = 1, where the rearrangement is the identity)
    t = T(x)
    for y in (heron.pixel_shuffle(t, r), heron.pixel_unshuffle(heron.pixel_shuffle(t, r), r)):
        heron.copy_(y, T(np.zeros(y.shape)))
        close(t, x)


def test_pixel_shuffle_int_and_errors():
    x = np.arange(16, dtype=np.int64).reshape(1, 4, 2, 2)
    np.testing.assert_array_equal(N(heron.pixel_shuffle(heron.tensor(x), 2)), ref_pixel_shuffle(x, 2))
    with raises(ValueError, "pixel_shuffle", "not divisible", "4"):
        heron.pixel_shuffle(T(np.zeros((1, 6, 2, 2))), 2)
    with raises(ValueError, "pixel_unshuffle", "not divisible"):
        heron.pixel_unshuffle(T(np.zeros((1, 1, 3, 2))), 2)
    with raises(ValueError, "pixel_shuffle", "at least 3 dims"):
        heron.pixel_shuffle(T(np.zeros((4, 2))), 2)


# ------------------------------------------------------------------ interpolate
def f32(v, dtype):
    return np.float32(v) if dtype == F32 else np.float64(v)


def ref_nearest_idx(o, n_in, n_out, sf):
    if n_out == n_in:
        return o
    if n_out == 2 * n_in:
        return o >> 1
    scale = np.float32(1.0 / sf) if sf else np.float32(n_in) / np.float32(n_out)
    return min(int(np.floor(np.float32(o) * scale)), n_in - 1)


def ref_linear_taps(n_in, n_out, align, sf, dtype):
    ft = np.float32 if dtype == F32 else np.float64
    if align:
        scale = ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
    else:
        scale = ft(1.0 / sf) if sf else ft(n_in) / ft(n_out)
    taps = []
    for o in range(n_out):
        src = scale * ft(o) if align else max(scale * (ft(o) + ft(0.5)) - ft(0.5), ft(0))
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = i0 + (1 if i0 < n_in - 1 else 0)
        lam = min(max(float(src) - i0, 0.0), 1.0)
        taps.append((i0, i1, 1 - lam, lam))
    return taps


def ref_interpolate(x, size, sf, mode, align, dtype=F64):
    spatial = x.shape[2:]
    if size is None:
        sfs = [sf] * len(spatial) if np.isscalar(sf) else list(sf)
        out = [int(np.floor(s * f)) for s, f in zip(spatial, sfs)]
    else:
        sfs = [None] * len(spatial)
        out = list(size)
    if mode == "nearest":
        idx = [np.array([ref_nearest_idx(o, n, m, f) for o in range(m)]) for n, m, f in zip(spatial, out, sfs)]
        if len(spatial) == 1:
            return x[:, :, idx[0]]
        return x[:, :, idx[0][:, None], idx[1][None, :]]
    th = ref_linear_taps(spatial[0], out[0], align, sfs[0], dtype)
    tw = ref_linear_taps(spatial[1], out[1], align, sfs[1], dtype)
    A = np.zeros((out[0], spatial[0]))
    B = np.zeros((out[1], spatial[1]))
    for o, (i0, i1, l0, l1) in enumerate(th):
        A[o, i0] += l0
        A[o, i1] += l1
    for o, (i0, i1, l0, l1) in enumerate(tw):
        B[o, i0] += l0
        B[o, i1] += l1
    return np.einsum("ph,nchw,qw->ncpq", A, x, B)


INTERP = [
    ((2, 3, 4, 5), (8, 10), None), ((1, 2, 5, 7), (3, 4), None), ((1, 1, 3, 3), (7, 5), None), ((2, 1, 4, 4), (1, 1), None),
    ((1, 2, 5, 4), None, 2.0), ((1, 2, 5, 4), None, 1.7), ((1, 2, 6, 6), None, 0.5), ((1, 1, 3, 5), None, (2.5, 1.3)),
    ((1, 2, 7, 7), (7, 7), None),
]


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("shape,size,sf", INTERP)
@pytest.mark.parametrize("mode,align", [("nearest", False), ("bilinear", False), ("bilinear", True)])
def test_interpolate(dtype, shape, size, sf, mode, align):
    x = rng.standard_normal(shape)
    got = heron.interpolate(NC(x, dtype), size=size, scale_factor=sf, mode=mode, align_corners=align)
    close(got, ref_interpolate(x, size, sf, mode, align, dtype), dtype, scale=4)


@pytest.mark.parametrize("shape,size,sf", [((2, 3, 5), (9,), None), ((1, 2, 4), (2,), None), ((1, 1, 6), None, 1.5), ((1, 1, 3), (6,), None)])
def test_interpolate_nearest_1d(shape, size, sf):
    x = rng.standard_normal(shape)
    close(heron.interpolate(T(x), size=size, scale_factor=sf), ref_interpolate(x, size, sf, "nearest", False))


@pytest.mark.parametrize("shape,size,sf,mode,align", [
    ((1, 2, 3, 4), (5, 7), None, "bilinear", False), ((1, 2, 3, 4), (5, 7), None, "bilinear", True),
    ((1, 1, 4, 4), None, 0.6, "bilinear", False), ((1, 2, 3, 4), (5, 7), None, "nearest", False),
    ((1, 2, 4, 3), None, 1.5, "nearest", False), ((2, 1, 5), (3,), None, "nearest", False)])
def test_interpolate_backward(shape, size, sf, mode, align):
    x = rng.standard_normal(shape)
    out = heron.interpolate(T(x), size=size, scale_factor=sf, mode=mode, align_corners=align)
    G = rng.standard_normal(out.shape)
    got = heron.interpolate_backward(NC(G), input_size=list(shape), scale_factor=sf, mode=mode, align_corners=align)
    fd_check(lambda v: heron.interpolate(T(v), size=size, scale_factor=sf, mode=mode, align_corners=align), got, x, G)


def test_interpolate_errors():
    x = T(np.zeros((1, 1, 4, 4)))
    with raises(ValueError, "interpolate", "bilinear", "4-d", "[1, 4, 4]"):
        heron.interpolate(T(np.zeros((1, 4, 4))), size=[2, 2], mode="bilinear")
    with raises(ValueError, "interpolate", "size or scale_factor"):
        heron.interpolate(x)
    with raises(ValueError, "interpolate", "only one"):
        heron.interpolate(x, size=[2, 2], scale_factor=2.0)
    with raises(ValueError, "interpolate", "2 entries"):
        heron.interpolate(x, size=[2, 2, 2])
    with raises(ValueError, "interpolate", "mode"):
        heron.interpolate(x, size=[2, 2], mode="bicubic")


# ------------------------------------------------------------------ batch_norm
def bshape(x, v):
    s = [1] * x.ndim
    s[1] = -1
    return np.asarray(v).reshape(s)


def ref_batch_norm(x, w, b, rm, rv, training, momentum, eps):
    axes = tuple(i for i in range(x.ndim) if i != 1)
    if training:
        mean = x.mean(axes)
        var = x.var(axes)
        m = x.size // x.shape[1]
        new_rm = None if rm is None else (1 - momentum) * rm + momentum * mean
        new_rv = None if rv is None else (1 - momentum) * rv + momentum * var * m / (m - 1)
    else:
        mean, var, new_rm, new_rv = rm, rv, rm, rv
    inv = 1 / np.sqrt(var + eps)
    y = (x - bshape(x, mean)) * bshape(x, inv)
    if w is not None:
        y = y * bshape(x, w)
    if b is not None:
        y = y + bshape(x, b)
    return y, mean, inv, new_rm, new_rv


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (3, 2, 4, 5), (64, 5, 1), (2, 3, 70, 80), (20, 3, 40), (17, 2, 5000)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(dtype, shape, affine, training):
    x = rng.standard_normal(shape) * 2 + 5
    C = shape[1]
    w = rng.standard_normal(C) if affine else None
    b = rng.standard_normal(C) if affine else None
    rm0, rv0 = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    rm, rv = T(rm0, dtype), T(rv0, dtype)
    out, mean, inv = heron.batch_norm(NC(x, dtype), T(w, dtype) if affine else None, T(b, dtype) if affine else None, rm, rv,
                                      training=training, momentum=0.2, eps=1e-4)
    y, m, i, nrm, nrv = ref_batch_norm(x, w, b, rm0, rv0, training, 0.2, 1e-4)
    close(out, y, dtype, scale=10)
    close(mean, m, dtype, scale=10)
    close(inv, i, dtype, scale=10)
    close(rm, nrm, dtype, scale=10)  # updated in place in training, untouched in eval
    close(rv, nrv, dtype, scale=10)


def test_batch_norm_no_running_stats_and_large_mean():
    x = rng.standard_normal((8, 3, 6)) * 1e-3 + 1e4  # |mean| >> std: shifted sums keep the variance
    out, mean, inv = heron.batch_norm(T(x), None, None, None, None, training=True)
    y, m, i, _, _ = ref_batch_norm(x, None, None, None, None, True, 0.1, 1e-5)
    close(mean, m)
    np.testing.assert_allclose(N(inv), i, rtol=1e-6)
    np.testing.assert_allclose(N(out), y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 2, 40), (16, 2, 33)])  # by rows and by channel
def test_batch_norm_backward(training, shape):
    C = shape[1]
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    G = rng.standard_normal(shape)

    def fwd(xv=x, wv=w, bv=b):
        return heron.batch_norm(T(xv), T(wv), T(bv), T(rm), T(rv), training=training).out

    _, mean, inv = heron.batch_norm(T(x), T(w), T(b), T(rm), T(rv), training=training)
    gi, gw, gb = heron.batch_norm_backward(NC(G), NC(x), T(w), mean, inv, training=training)
    fd_check(lambda v: fwd(xv=v), gi, x, G)
    fd_check(lambda v: fwd(wv=v), gw, w, G)
    fd_check(lambda v: fwd(bv=v), gb, b, G)
    gi2, _, _ = heron.batch_norm_backward(T(G), T(x), None, mean, inv, training=training)
    fd_check(lambda v: heron.batch_norm(T(v), None, None, T(rm), T(rv), training=training).out, gi2, x, G)


def test_batch_norm_errors():
    x = T(np.zeros((2, 3, 4)))
    with raises(ValueError, "batch_norm", "weight", "[3]", "[4]"):
        heron.batch_norm(x, T(np.ones(4)), None, None, None, training=True)
    with raises(ValueError, "batch_norm", "required"):
        heron.batch_norm(x, None, None, None, None, training=False)
    with raises(ValueError, "batch_norm", "more than 1 value"):
        heron.batch_norm(T(np.zeros((1, 3))), None, None, None, None, training=True)
    with raises(TypeError, "batch_norm", "running_mean", "float64", "float32"):
        heron.batch_norm(x, None, None, T(np.zeros(3), F32), T(np.ones(3), F32), training=True)
    with raises(ValueError, "batch_norm", "(N, C, *)"):
        heron.batch_norm(T(np.zeros(3)), None, None, None, None, training=True)


# ------------------------------------------------------------------ layer_norm
def ref_layer_norm(x, ns, w, b, eps):
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    mean = x.mean(axes, keepdims=True)
    var = x.var(axes, keepdims=True)
    r = 1 / np.sqrt(var + eps)
    y = (x - mean) * r
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y, mean, r


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("shape,ns", [((4, 5), (5,)), ((2, 3, 4), (3, 4)), ((6,), (6,)), ((3, 2, 3000), (3000,)), ((2, 0, 3), (3,))])
@pytest.mark.parametrize("wb", ["both", "weight", "bias", "none"])
def test_layer_norm(dtype, shape, ns, wb):
    x = rng.standard_normal(shape) + 3
    w = rng.standard_normal(ns) if wb in ("both", "weight") else None
    b = rng.standard_normal(ns) if wb in ("both", "bias") else None
    out, mean, rstd = heron.layer_norm(NC(x, dtype), T(w, dtype) if w is not None else None, T(b, dtype) if b is not None else None,
                                       list(ns), eps=1e-4)
    y, m, r = ref_layer_norm(x, ns, w, b, 1e-4)
    close(out, y, dtype, scale=10)
    close(mean, m, dtype, scale=10)
    close(rstd, r, dtype, scale=10)


@pytest.mark.parametrize("shape,ns", [((3, 4), (4,)), ((2, 2, 3), (2, 3))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_backward(shape, ns, affine):
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal(ns), rng.standard_normal(ns)
    G = rng.standard_normal(shape)
    W = T(w) if affine else None
    _, mean, rstd = heron.layer_norm(T(x), W, None, list(ns))
    gi, gw, gb = heron.layer_norm_backward(NC(G), NC(x), W, mean, rstd, list(ns))
    fd_check(lambda v: heron.layer_norm(T(v), W, T(b), list(ns)).out, gi, x, G)
    fd_check(lambda v: heron.layer_norm(T(x), T(v), T(b), list(ns)).out, gw, w, G)
    fd_check(lambda v: heron.layer_norm(T(x), W, T(v), list(ns)).out, gb, b, G)


def test_layer_norm_errors():
    with raises(ValueError, "layer_norm", "normalized_shape", "[4]", "[2, 3]"):
        heron.layer_norm(T(np.zeros((2, 3))), None, None, [4])
    with raises(ValueError, "layer_norm", "weight", "[3]", "[2]"):
        heron.layer_norm(T(np.zeros((2, 3))), T(np.zeros(2)), None, [3])


# ------------------------------------------------------------------ group_norm / instance_norm
def ref_group_norm(x, G, w, b, eps):
    n, c = x.shape[:2]
    xr = x.reshape(n, G, -1)
    mean = xr.mean(-1)
    var = xr.var(-1)
    r = 1 / np.sqrt(var + eps)
    y = ((xr - mean[..., None]) * r[..., None]).reshape(x.shape)
    if w is not None:
        y = y * bshape(x, w)
    if b is not None:
        y = y + bshape(x, b)
    return y, mean, r


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("shape,G", [((2, 6, 5), 3), ((3, 4, 2, 3), 1), ((2, 4, 3, 3), 4), ((1, 6), 2), ((2, 8, 40, 50), 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm(dtype, shape, G, affine):
    x = rng.standard_normal(shape) - 2
    C = shape[1]
    w = rng.standard_normal(C) if affine else None
    b = rng.standard_normal(C) if affine else None
    out, mean, rstd = heron.group_norm(NC(x, dtype), T(w, dtype) if affine else None, T(b, dtype) if affine else None, G, eps=1e-3)
    y, m, r = ref_group_norm(x, G, w, b, 1e-3)
    close(out, y, dtype, scale=10)
    close(mean, m, dtype, scale=10)
    close(rstd, r, dtype, scale=10)


@pytest.mark.parametrize("shape,G", [((2, 4, 3), 2), ((2, 3, 2, 2), 3), ((1, 4, 5), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_backward(shape, G, affine):
    x = rng.standard_normal(shape)
    C = shape[1]
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    W = T(w) if affine else None
    G_ = rng.standard_normal(shape)
    _, mean, rstd = heron.group_norm(T(x), W, None, G)
    gi, gw, gb = heron.group_norm_backward(NC(G_), NC(x), W, mean, rstd, G)
    fd_check(lambda v: heron.group_norm(T(v), W, T(b), G).out, gi, x, G_)
    fd_check(lambda v: heron.group_norm(T(x), T(v), T(b), G).out, gw, w, G_)
    fd_check(lambda v: heron.group_norm(T(x), W, T(v), G).out, gb, b, G_)


def test_group_norm_errors():
    with raises(ValueError, "group_norm", "num_groups", "divide", "6", "4"):
        heron.group_norm(T(np.zeros((2, 6, 3))), None, None, 4)


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 2, 4, 4)])
@pytest.mark.parametrize("running", [True, False])
def test_instance_norm(dtype, shape, running):
    x = rng.standard_normal(shape) * 3 + 1
    C = shape[1]
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    rm0, rv0 = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    rm, rv = (T(rm0, dtype), T(rv0, dtype)) if running else (None, None)
    out, mean, rstd = heron.instance_norm(NC(x, dtype), T(w, dtype), T(b, dtype), rm, rv, use_input_stats=True, momentum=0.3)
    y, m, r = ref_group_norm(x, C, w, b, 1e-5)
    close(out, y, dtype, scale=10)
    close(mean, m, dtype, scale=10)
    if running:
        S = x[0, 0].size
        v = x.reshape(shape[0], C, -1).var(-1) * S / (S - 1)
        close(rm, 0.7 * rm0 + 0.3 * m.mean(0), dtype, scale=10)
        close(rv, 0.7 * rv0 + 0.3 * v.mean(0), dtype, scale=1e4 if dtype == F64 else 10)
        # eval with the running statistics
        out2, _, _ = heron.instance_norm(T(x, dtype), T(w, dtype), T(b, dtype), rm, rv, use_input_stats=False)
        y2, _, _, _, _ = ref_batch_norm(x, w, b, N(rm).astype(np.float64), N(rv).astype(np.float64), False, 0, 1e-5)
        close(out2, y2, dtype, scale=10)


# ------------------------------------------------------------------ cross_entropy / nll_loss
def log_softmax(x, axis):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def ref_nll(lp, t, w, ignore_index, reduction, cd):
    C = lp.shape[cd]
    wv = np.ones(C) if w is None else w
    mask = t != ignore_index
    tt = np.where(mask, t, 0)
    picked = np.take_along_axis(lp, np.expand_dims(tt, cd), cd).squeeze(cd)
    wt = wv[tt] * mask
    return -picked * wt, wt, mask


def ref_cross_entropy(x, t, w, ignore_index=-100, reduction="mean", ls=0.0):
    cd = 0 if x.ndim == 1 else 1
    C = x.shape[cd]
    lp = log_softmax(x, cd)
    wv = np.ones(C) if w is None else w
    ws = [1] * x.ndim
    ws[cd] = C
    wb = wv.reshape(ws)
    if np.issubdtype(t.dtype, np.floating):
        q = t * (1 - ls) + ls / C
        per = -(lp * q * wb).sum(cd)
        if reduction == "none":
            return per
        return per.sum() if reduction == "sum" else per.sum() / (x.size / C)
    nll, wt, mask = ref_nll(lp, t, w, ignore_index, reduction, cd)
    smooth = -(lp * wb).sum(cd) * mask
    per = (1 - ls) * nll + ls / C * smooth
    if reduction == "none":
        return per
    with np.errstate(invalid="ignore"):  # every target ignored: 0/0 = nan, like PyTorch
        return per.sum() if reduction == "sum" else per.sum() / wt.sum()


def ref_nll_loss(x, t, w, ignore_index=-100, reduction="mean"):
    cd = 0 if x.ndim == 1 else 1
    nll, wt, _ = ref_nll(x, t, w, ignore_index, reduction, cd)
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.sum() / wt.sum()


CE_SHAPES = [(5, 4), (2, 3, 4), (2, 3, 2, 3), (6,), (1, 7)]
CE_OPTS = [  # weight, ignore_index, reduction, label_smoothing
    (False, -100, "mean", 0.0), (True, -100, "mean", 0.0), (False, 1, "mean", 0.0), (True, 1, "mean", 0.0),
    (False, -100, "sum", 0.0), (True, 2, "none", 0.0), (False, -100, "mean", 0.2), (True, 0, "mean", 0.3),
    (True, -100, "sum", 0.1), (False, 1, "none", 0.25),
]


def targets_for(x, cd, ignore_index):
    C = x.shape[cd]
    shape = x.shape[:cd] + x.shape[cd + 1:]
    t = rng.integers(0, C, shape)
    if ignore_index >= 0 and t.size > 1:
        t.flat[0] = ignore_index  # at least one ignored, one not
    if ignore_index >= 0:
        t.flat[-1] = (ignore_index + 1) % C
    return t


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("opts", CE_OPTS)
def test_cross_entropy_indices(dtype, shape, opts):
    use_w, ii, red, ls = opts
    x = rng.standard_normal(shape) * 3
    cd = 0 if x.ndim == 1 else 1
    C = shape[cd]
    w = rng.uniform(0.2, 2, C) if use_w else None
    t = targets_for(x, cd, ii)
    got = heron.cross_entropy(NC(x, dtype), heron.tensor(t), T(w, dtype) if use_w else None, ignore_index=ii, reduction=red,
                              label_smoothing=ls)
    close(got, ref_cross_entropy(x, t, w, ii, red, ls), dtype, scale=10)
    # nll_loss of the log-probabilities
    if ls == 0.0:
        lp = log_softmax(x, cd)
        got = heron.nll_loss(NC(lp, dtype), heron.tensor(t), T(w, dtype) if use_w else None, ignore_index=ii, reduction=red)
        close(got, ref_nll_loss(lp, t, w, ii, red), dtype, scale=10)


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (6,)])
@pytest.mark.parametrize("use_w,red,ls", [(False, "mean", 0.0), (True, "mean", 0.0), (True, "sum", 0.2), (False, "none", 0.1)])
def test_cross_entropy_probabilities(dtype, shape, use_w, red, ls):
    x = rng.standard_normal(shape)
    cd = 0 if x.ndim == 1 else 1
    q = rng.uniform(0, 1, shape)
    q = q / q.sum(cd, keepdims=True)
    w = rng.uniform(0.2, 2, shape[cd]) if use_w else None
    got = heron.cross_entropy(T(x, dtype), T(q, dtype), T(w, dtype) if use_w else None, reduction=red, label_smoothing=ls)
    close(got, ref_cross_entropy(x, q, w, -100, red, ls), dtype, scale=10)


def test_cross_entropy_extremes():
    x = np.array([[1000.0, -1000.0, 0.0], [-1e4, -1e4, -1e4]])
    t = np.array([1, 2])
    close(heron.cross_entropy(T(x), heron.tensor(t), None), ref_cross_entropy(x, t, None))
    # every target ignored: the weighted mean is 0/0 like PyTorch
    assert np.isnan(float(N(heron.cross_entropy(T(x), heron.tensor(np.array([-100, -100])), None))))
    # ... and its gradient is zero (no sample contributes), as in PyTorch
    g = heron.cross_entropy_backward(T(np.array(1.0)), T(x), heron.tensor(np.array([-100, -100])), None)
    np.testing.assert_array_equal(N(g), np.zeros_like(x))
    # int32 targets work too
    close(heron.cross_entropy(T(x), heron.tensor(t.astype(np.int32)), None), ref_cross_entropy(x, t, None))


CE_GRAD = [(False, -100, "mean", 0.0), (True, 1, "mean", 0.0), (True, 1, "mean", 0.3), (False, -100, "sum", 0.2),
           (True, 2, "none", 0.1), (False, -100, "none", 0.0)]


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2), (5,)])
@pytest.mark.parametrize("opts", CE_GRAD)
def test_cross_entropy_backward(shape, opts):
    use_w, ii, red, ls = opts
    x = rng.standard_normal(shape)
    cd = 0 if x.ndim == 1 else 1
    w = rng.uniform(0.2, 2, shape[cd]) if use_w else None
    W = T(w) if use_w else None
    t = heron.tensor(targets_for(x, cd, ii))
    out = heron.cross_entropy(T(x), t, W, ignore_index=ii, reduction=red, label_smoothing=ls)
    G = rng.standard_normal(out.shape)
    gi = heron.cross_entropy_backward(T(G), NC(x), t, W, ignore_index=ii, reduction=red, label_smoothing=ls)
    fd_check(lambda v: heron.cross_entropy(T(v), t, W, ignore_index=ii, reduction=red, label_smoothing=ls), gi, x, G)
    if ls == 0.0:
        gi = heron.nll_loss_backward(T(G), NC(x), t, W, ignore_index=ii, reduction=red)
        fd_check(lambda v: heron.nll_loss(T(v), t, W, ignore_index=ii, reduction=red), gi, x, G)


@pytest.mark.parametrize("red,ls,use_w", [("mean", 0.0, False), ("sum", 0.2, True), ("none", 0.1, True)])
def test_cross_entropy_backward_probabilities(red, ls, use_w):
    x = rng.standard_normal((3, 4, 2))
    q = rng.uniform(0, 1, x.shape)
    W = T(rng.uniform(0.2, 2, 4)) if use_w else None
    out = heron.cross_entropy(T(x), T(q), W, reduction=red, label_smoothing=ls)
    G = rng.standard_normal(out.shape)
    gi = heron.cross_entropy_backward(T(G), NC(x), T(q), W, reduction=red, label_smoothing=ls)
    fd_check(lambda v: heron.cross_entropy(T(v), T(q), W, reduction=red, label_smoothing=ls), gi, x, G)


def test_class_loss_errors():
    x = T(np.zeros((3, 4)))
    with raises(IndexError, "cross_entropy", "target 4", "4 classes"):
        heron.cross_entropy(x, heron.tensor(np.array([0, 4, 1])), None)
    with raises(IndexError, "nll_loss", "target -2"):
        heron.nll_loss(x, heron.tensor(np.array([0, -2, 1])), None)
    with raises(ValueError, "cross_entropy", "[3]", "[4]"):
        heron.cross_entropy(x, heron.tensor(np.array([0, 1, 1, 1])), None)
    with raises(ValueError, "cross_entropy", "weight", "[4]", "[3]"):
        heron.cross_entropy(x, heron.tensor(np.array([0, 1, 1])), T(np.ones(3)))
    with raises(ValueError, "cross_entropy", "[3, 4]", "[3, 5]"):
        heron.cross_entropy(x, T(np.zeros((3, 5))), None)
    with raises(TypeError, "nll_loss", "int64", "float64"):
        heron.nll_loss(x, T(np.zeros((3, 4))), None)
    with raises(ValueError, "cross_entropy", "reduction"):
        heron.cross_entropy(x, heron.tensor(np.array([0, 1, 1])), None, reduction="avg")
    with raises(ValueError, "cross_entropy", "label_smoothing"):
        heron.cross_entropy(x, heron.tensor(np.array([0, 1, 1])), None, label_smoothing=1.5)


# ------------------------------------------------------------------ pointwise losses
def reduce(v, red):
    return v if red == "none" else (v.sum() if red == "sum" else v.mean())


def ref_pointwise(name, x, y, w=None, pw=None, beta=1.0):
    d = x - y
    if name == "mse_loss":
        return d * d
    if name == "l1_loss":
        return np.abs(d)
    if name == "smooth_l1_loss":
        return np.where(np.abs(d) < beta, 0.5 * d * d / beta if beta > 0 else 0, np.abs(d) - 0.5 * beta)
    wv = 1.0 if w is None else w
    if name == "binary_cross_entropy":
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped at -100
            return -wv * (y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log1p(-x), -100))
    lw = 1.0 if pw is None else 1 + (pw - 1) * y
    return wv * ((1 - y) * x + lw * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)))


def call_pointwise(name, x, y, w=None, pw=None, red="mean", beta=1.0, backward=False, g=None):
    if name in ("mse_loss", "l1_loss"):
        extra, kw = (), {}
    elif name == "smooth_l1_loss":
        extra, kw = (), {"beta": beta}
    elif name == "binary_cross_entropy":
        extra, kw = (w,), {}
    else:
        extra, kw = (w, pw), {}
    fn = getattr(heron, name + ("_backward" if backward else ""))
    args = ((g,) if backward else ()) + (x, y) + extra
    return fn(*args, reduction=red, **kw)


POINTWISE = ["mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"]


def pw_inputs(name, shape):
    if name == "binary_cross_entropy":
        return rng.uniform(0.02, 0.98, shape), rng.uniform(0, 1, shape)
    if name == "binary_cross_entropy_with_logits":
        return rng.standard_normal(shape) * 3, rng.uniform(0, 1, shape)
    return rng.standard_normal(shape), rng.standard_normal(shape)


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("name", POINTWISE)
@pytest.mark.parametrize("red", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(3, 4), (5,), (40, 1000)])
def test_pointwise_losses(dtype, name, red, shape):
    x, y = pw_inputs(name, shape)
    got = call_pointwise(name, NC(x, dtype), NC(y, dtype), red=red)
    close(got, reduce(ref_pointwise(name, x, y), red), dtype, scale=100)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("red", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_target_gradient(name, red, weighted):
    """d loss / d target (PyTorch has it): autograd against central differences of the numpy loss."""
    x, y = pw_inputs(name, (3, 4))
    w = rng.uniform(0.5, 2.0, (4,)) if weighted else None
    pw = rng.uniform(0.5, 3.0, (4,)) if weighted and name.endswith("logits") else None
    G = rng.standard_normal((3, 4)) if red == "none" else rng.standard_normal(())
    yt = heron.tensor(y).requires_grad_(True)
    xt = heron.tensor(x).requires_grad_(True)
    loss = call_pointwise(name, xt, yt, None if w is None else T(w), None if pw is None else T(pw), red=red)
    loss.backward(T(G))

    def f(yv):
        v = reduce(ref_pointwise(name, x, yv, w=w, pw=pw), red)
        return float(np.sum(G * v))
    np.testing.assert_allclose(N(yt.grad), fd(f, y), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(N(xt.grad), fd(lambda xv: float(np.sum(G * reduce(ref_pointwise(name, xv, y, w=w, pw=pw), red))), x),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0])
def test_smooth_l1_beta(beta):
    x, y = rng.standard_normal((4, 5)) * 2, rng.standard_normal((4, 5))
    close(heron.smooth_l1_loss(T(x), T(y), reduction="none", beta=beta), ref_pointwise("smooth_l1_loss", x, y, beta=beta))


def test_bce_weights_and_clamp():
    x = np.array([[0.0, 1.0, 0.3], [1e-50, 0.5, 1.0]])
    y = np.array([[1.0, 0.0, 0.2], [1.0, 0.5, 1.0]])
    w = np.array([0.5, 2.0, 1.0])
    got = heron.binary_cross_entropy(T(x), T(y), T(w), reduction="none")
    close(got, ref_pointwise("binary_cross_entropy", x, y, w=w))
    assert N(got)[0, 0] == 50.0  # log clamped at -100, times the weight 0.5
    xl = rng.standard_normal((3, 4)) * 30
    yl = rng.uniform(0, 1, (3, 4))
    wl = rng.uniform(0.5, 2, (3, 1))
    pw = rng.uniform(0.5, 3, 4)
    got = heron.binary_cross_entropy_with_logits(T(xl), T(yl), T(wl), T(pw), reduction="sum")
    close(got, ref_pointwise("binary_cross_entropy_with_logits", xl, yl, w=wl, pw=pw).sum(), scale=100)
    assert np.isfinite(float(N(heron.binary_cross_entropy_with_logits(T(np.array([1e4, -1e4])), T(np.array([0.0, 1.0])), None, None))))


@pytest.mark.parametrize("name", POINTWISE)
@pytest.mark.parametrize("red", ["none", "mean", "sum"])
def test_pointwise_backward(name, red):
    x, y = pw_inputs(name, (3, 4))
    if name in ("l1_loss", "smooth_l1_loss"):
        x = x + np.sign(x - y) * 0.05  # keep clear of the kinks
    w = rng.uniform(0.5, 2, (4,)) if name.startswith("binary") else None
    pw = rng.uniform(0.5, 3, (4,)) if name.endswith("logits") else None
    W = T(w) if w is not None else None
    PW = T(pw) if pw is not None else None
    out = call_pointwise(name, T(x), T(y), W, PW, red=red, beta=0.7)
    G = rng.standard_normal(out.shape)
    gi = call_pointwise(name, NC(x), NC(y), W, PW, red=red, beta=0.7, backward=True, g=T(G))
    fd_check(lambda v: call_pointwise(name, T(v), T(y), W, PW, red=red, beta=0.7), gi, x, G, tol=1e-5)


def test_pointwise_errors():
    with raises(ValueError, "mse_loss", "[2, 3]", "[3, 2]"):
        heron.mse_loss(T(np.zeros((2, 3))), T(np.zeros((3, 2))))
    with raises(TypeError, "l1_loss", "target", "float64", "float32"):
        heron.l1_loss(T(np.zeros(3)), T(np.zeros(3), F32))
    with raises(ValueError, "binary_cross_entropy", "between 0 and 1", "1.5"):
        heron.binary_cross_entropy(T(np.array([0.5, 1.5])), T(np.array([0.0, 1.0])), None)
    with raises(ValueError, "binary_cross_entropy_with_logits", "pos_weight", "broadcastable"):
        heron.binary_cross_entropy_with_logits(T(np.zeros((2, 3))), T(np.zeros((2, 3))), None, T(np.ones(4)))
    with raises(ValueError, "smooth_l1_loss", "beta"):
        heron.smooth_l1_loss(T(np.zeros(3)), T(np.zeros(3)), beta=-1.0)


@pytest.mark.parametrize("shape", [(5, 4), (6,), (7, 1000), (3, 13), (2, 5, 300), (3, 4, 2, 3)])
@pytest.mark.parametrize("opts", CE_GRAD)
def test_cross_entropy_float32_matches_float64(shape, opts):
    """The float32 kernels (SIMD exp on contiguous rows) agree with the float64 ones."""
    use_w, ii, red, ls = opts
    x = rng.standard_normal(shape) * 4
    cd = 0 if x.ndim == 1 else 1
    w = rng.uniform(0.2, 2, shape[cd]) if use_w else None
    t = heron.tensor(targets_for(x, cd, ii))
    out64 = heron.cross_entropy(T(x), t, T(w) if use_w else None, ignore_index=ii, reduction=red, label_smoothing=ls)
    out32 = heron.cross_entropy(T(x, F32), t, T(w, F32) if use_w else None, ignore_index=ii, reduction=red, label_smoothing=ls)
    np.testing.assert_allclose(N(out32), N(out64), rtol=2e-5, atol=2e-5)
    G = rng.standard_normal(out64.shape)
    g64 = heron.cross_entropy_backward(T(G), T(x), t, T(w) if use_w else None, ignore_index=ii, reduction=red, label_smoothing=ls)
    g32 = heron.cross_entropy_backward(T(G, F32), T(x, F32), t, T(w, F32) if use_w else None, ignore_index=ii, reduction=red,
                                       label_smoothing=ls)
    np.testing.assert_allclose(N(g32), N(g64), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", FL, ids=ids(FL))
@pytest.mark.parametrize("shape,ns", [((300, 50), (50,)), ((7, 40, 3, 5), (3, 5)), ((3, 70000), (70000,))])
def test_layer_norm_backward_many_rows(dtype, shape, ns):
    """Against the analytic gradient in numpy (many rows: the chunked weight/bias sums)."""
    x = rng.standard_normal(shape)
    w = rng.standard_normal(ns)
    G = rng.standard_normal(shape)
    _, mean, rstd = heron.layer_norm(T(x, dtype), T(w, dtype), None, list(ns))
    gi, gw, gb = heron.layer_norm_backward(T(G, dtype), T(x, dtype), T(w, dtype), mean, rstd, list(ns))
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    lead = tuple(range(x.ndim - len(ns)))
    _, m, r = ref_layer_norm(x, ns, None, None, 1e-5)
    xhat = (x - m) * r
    gwx = G * w
    want_gi = r * (gwx - gwx.mean(axes, keepdims=True) - xhat * (gwx * xhat).mean(axes, keepdims=True))
    close(gi, want_gi, dtype, scale=100)
    close(gw, (G * xhat).sum(lead), dtype, scale=1000)
    close(gb, G.sum(lead), dtype, scale=1000)


def test_bce_float32_logs_accurate():
    """float32 BCE losses (vectorised logs) stay within float32 rounding of float64 at the extremes."""
    x = np.array([0.0, 1e-38, 1e-30, 1e-8, 3e-5, 0.25, 0.5, 0.75, 1 - 1e-6, 0.99999994, 1.0]).astype(np.float32)
    xx, yy = np.meshgrid(x, np.array([0.0, 0.3, 1.0], np.float32))
    got = N(heron.binary_cross_entropy(T(xx, F32), T(yy, F32), None, reduction="none")).astype(np.float64)
    want = ref_pointwise("binary_cross_entropy", xx.astype(np.float64), yy.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=3e-6, atol=1e-30)
    z = np.concatenate([-np.logspace(-30, 2, 40), [0.0], np.logspace(-30, 2, 40), [-200.0, 200.0]]).astype(np.float32)
    zz, yy = np.meshgrid(z, np.array([0.0, 0.3, 1.0], np.float32))
    got = N(heron.binary_cross_entropy_with_logits(T(zz, F32), T(yy, F32), None, None, reduction="none")).astype(np.float64)
    want = ref_pointwise("binary_cross_entropy_with_logits", zz.astype(np.float64), yy.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=3e-6, atol=1e-37)


@pytest.mark.parametrize("shape", [(2, 5, 300), (3, 4, 7)])
@pytest.mark.parametrize("red,ls,use_w", [("mean", 0.0, False), ("none", 0.2, True)])
def test_cross_entropy_spatial_probabilities_blocks(shape, red, ls, use_w):
    """Spatial inputs (processed in blocks of positions), probability targets, both dtypes."""
    x = rng.standard_normal(shape) * 2
    q = rng.uniform(0, 1, shape)
    q /= q.sum(1, keepdims=True)
    w = rng.uniform(0.2, 2, shape[1]) if use_w else None
    for dtype in FL:
        W = T(w, dtype) if use_w else None
        out = heron.cross_entropy(T(x, dtype), T(q, dtype), W, reduction=red, label_smoothing=ls)
        close(out, ref_cross_entropy(x, q, w, -100, red, ls), dtype, scale=10)
    W = T(w) if use_w else None
    G = rng.standard_normal(out.shape)
    g64 = heron.cross_entropy_backward(T(G), T(x), T(q), W, reduction=red, label_smoothing=ls)
    g32 = heron.cross_entropy_backward(T(G, F32), T(x, F32), T(q, F32), T(w, F32) if use_w else None, reduction=red, label_smoothing=ls)
    np.testing.assert_allclose(N(g32), N(g64), rtol=2e-5, atol=2e-6)
    if shape == (3, 4, 7):
        fd_check(lambda v: heron.cross_entropy(T(v), T(q), W, reduction=red, label_smoothing=ls), g64, x, G)


@pytest.mark.parametrize("which", ["batch_norm", "instance_norm"])
def test_running_stat_updates_are_seen_by_autograd(which):
    """Training-mode normalisation writes running_mean/running_var in place: a graph that saved
    them before must refuse to backpropagate with the new values (as after any in-place op),
    while the eval form (statistics only read) leaves such a graph usable."""
    import heron.nn.functional as F
    rng = np.random.default_rng(3)
    x = heron.from_numpy(rng.standard_normal((4, 3, 5)))

    def update(rm, rv, training):
        if which == "batch_norm":
            F.batch_norm(x, rm, rv, training=training)
        else:
            F.instance_norm(x, rm, rv, use_input_stats=training)

    for training in (False, True):
        rm, rv = heron.from_numpy(np.zeros(3)), heron.from_numpy(np.ones(3))
        w = heron.from_numpy(rng.standard_normal(3))
        w.requires_grad = True
        loss = (w * rm).sum() + (w * rv).sum()
        update(rm, rv, training)
        if training:
            assert not np.array_equal(rm.numpy(), np.zeros(3))  # the statistics did move
            with pytest.raises(heron.InvalidArgumentError, match="modified by an in-place operation"):
                loss.backward()
        else:
            loss.backward()
            np.testing.assert_array_equal(w.grad.numpy(), np.ones(3))  # d/dw (w*0 + w*1)
