"""Convolution and pooling against numpy references written here: conv1d, conv2d, conv_transpose2d
(groups, dilation, stride, padding, same padding, output_padding, unbatched and non-contiguous
inputs, 1x1 and tiled shapes), max/avg/adaptive pooling (ceil_mode, count_include_pad,
divisor_override, dilation), float64 finite-difference checks of every backward op against its
forward op, and the errors.
"""
import numpy as np
import pytest

import heron
from dtype_helpers import F32, F64, H, N

rng = np.random.default_rng(1234)
DTYPES = [F32, F64]
TOL = {F32: 2e-4, F64: 1e-10}


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ------------------------------------------------------------------ numpy references
def ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, same=False):
    """Cross-correlation like torch.nn.functional.conv2d; x (N, C, H, W), w (K, C/g, kH, kW)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if same:
        th, tw = dh * (kh - 1), dw * (kw - 1)
        pt, pl = th // 2, tw // 2
        pb, pr = th - pt, tw - pl
    else:
        pt, pl = pair(padding)
        pb, pr = pt, pl
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, k, oh, ow))
    kg = k // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out[:, g * kg:(g + 1) * kg] += np.einsum("nchw,kc->nkhw", patch, w[g * kg:(g + 1) * kg, :, i, j])
    if b is not None:
        out += np.asarray(b, np.float64)[None, :, None, None]
    return out


def ref_conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, same=False):
    s, p, d = (stride if isinstance(stride, int) else stride[0]), (padding if isinstance(padding, int) else padding[0]), \
        (dilation if isinstance(dilation, int) else dilation[0])
    r = ref_conv2d(x[:, :, None, :], w[:, :, None, :], b, (1, s), (0, p), (1, d), groups, same)
    return r[:, :, 0, :]


def ref_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Like torch.nn.functional.conv_transpose2d; w (C_in, K/g, kH, kW)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, cin, h, wd = x.shape
    _, kg, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    fh = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    fw = (wd - 1) * sw + dw * (kw - 1) + 1 + opw
    full = np.zeros((n, kg * groups, fh, fw))
    cg = cin // groups
    for g in range(groups):
        xs = x[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                full[:, g * kg:(g + 1) * kg, i * dh:i * dh + sh * (h - 1) + 1:sh, j * dw:j * dw + sw * (wd - 1) + 1:sw] += \
                    np.einsum("nchw,ck->nkhw", xs, w[g * cg:(g + 1) * cg, :, i, j])
    out = full[:, :, ph:fh - ph, pw:fw - pw]
    if b is not None:
        out = out + np.asarray(b, np.float64)[None, :, None, None]
    return out


def pool_out(size, k, s, p, d, ceil_mode):
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    o = num // s + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return o


def ref_max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    x = np.asarray(x, np.float64)
    (kh, kw), (ph, pw), (dh, dw) = pair(kernel_size), pair(padding), pair(dilation)
    sh, sw = pair(stride) if stride else (kh, kw)
    h, wd = x.shape[-2:]
    oh, ow = pool_out(h, kh, sh, ph, dh, ceil_mode), pool_out(wd, kw, sw, pw, dw, ceil_mode)
    lead = x.shape[:-2]
    out = np.full(lead + (oh, ow), -np.inf)
    idx = np.zeros(lead + (oh, ow), np.int64)
    for a in range(oh):
        for c in range(ow):
            best = np.full(lead, -np.inf)
            bi = np.full(lead, -1, np.int64)
            for i in range(kh):
                ih = a * sh - ph + i * dh
                if not 0 <= ih < h:
                    continue
                for j in range(kw):
                    iw = c * sw - pw + j * dw
                    if not 0 <= iw < wd:
                        continue
                    v = x[..., ih, iw]
                    take = (v > best) | (bi < 0)
                    best = np.where(take, v, best)
                    bi = np.where(take, ih * wd + iw, bi)
            out[..., a, c] = best
            idx[..., a, c] = bi
    return out, idx


def ref_avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    x = np.asarray(x, np.float64)
    (kh, kw), (ph, pw) = pair(kernel_size), pair(padding)
    sh, sw = pair(stride) if stride else (kh, kw)
    h, wd = x.shape[-2:]
    oh, ow = pool_out(h, kh, sh, ph, 1, ceil_mode), pool_out(wd, kw, sw, pw, 1, ceil_mode)
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for a in range(oh):
        for c in range(ow):
            h0, w0 = a * sh - ph, c * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, wd + pw)
            pool = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, wd)
            div = divisor_override or (pool if count_include_pad else (h1 - h0) * (w1 - w0))
            out[..., a, c] = x[..., h0:h1, w0:w1].sum(axis=(-1, -2)) / div
    return out


def ref_adaptive_avg_pool2d(x, output_size):
    x = np.asarray(x, np.float64)
    oh, ow = pair(output_size)
    h, wd = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for a in range(oh):
        h0, h1 = (a * h) // oh, -((-(a + 1) * h) // oh)
        for c in range(ow):
            w0, w1 = (c * wd) // ow, -((-(c + 1) * wd) // ow)
            out[..., a, c] = x[..., h0:h1, w0:w1].mean(axis=(-1, -2))
    return out


def close(got, want, dtype, scale=1.0):
    g = N(got).astype(np.float64)
    assert g.shape == np.shape(want), (g.shape, np.shape(want))
    tol = TOL[dtype] * max(1.0, scale)
    np.testing.assert_allclose(g, want, rtol=tol, atol=tol)


def rand(*shape):
    return rng.uniform(-1, 1, shape)


# ------------------------------------------------------------------ conv2d forward
CONV2D_CASES = [
    # (N, C, H, W), (K, kH, kW), dict(attrs)
    ((2, 3, 7, 6), (4, 3, 3), {}),
    ((2, 3, 7, 6), (4, 3, 3), dict(padding=1)),
    ((2, 3, 9, 8), (4, 3, 2), dict(stride=(2, 3), padding=(1, 0))),
    ((1, 4, 9, 9), (6, 3, 3), dict(dilation=2, padding=2, groups=2)),
    ((2, 6, 8, 7), (6, 3, 3), dict(groups=6, padding=1)),          # depthwise
    ((2, 4, 8, 8), (4, 4, 4), dict(same=True)),                    # even kernel: extra pad bottom/right
    ((2, 4, 8, 8), (4, 2, 3), dict(same=True, dilation=(3, 2))),
    ((3, 5, 6, 7), (8, 1, 1), {}),                                 # 1x1 direct path
    ((3, 5, 6, 7), (8, 1, 1), dict(stride=2)),                     # 1x1 strided (im2col)
    ((2, 4, 5, 5), (3, 5, 5), dict(padding=4)),                    # padding larger than the image
    ((2, 16, 40, 40), (8, 3, 3), dict(padding=1)),                 # several tiles per image
    ((1, 1, 28, 28), (16, 3, 3), dict(padding=1)),
    ((3, 2, 1, 1), (5, 1, 1), {}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ws,kw", CONV2D_CASES, ids=[str(i) for i in range(len(CONV2D_CASES))])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_conv2d(dtype, xs, ws, kw, bias):
    g = kw.get("groups", 1)
    x = rand(*xs)
    w = rand(ws[0], xs[1] // g, ws[1], ws[2])
    b = rand(ws[0]) if bias else None
    want = ref_conv2d(x, w, b, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1), g, kw.get("same", False))
    got = heron.conv2d(H(x, dtype), H(w, dtype), H(b, dtype) if bias else None, kw.get("stride", 1), kw.get("padding", 0),
                       kw.get("dilation", 1), g, kw.get("same", False))
    assert got.dtype == dtype
    close(got, want, dtype, np.sqrt(w[0].size))


def test_conv2d_keywords_unbatched_and_noncontiguous():
    x, w, b = rand(2, 3, 8, 9), rand(4, 3, 3, 2), rand(4)
    want = ref_conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    got = heron.conv2d(H(x, F64), H(w, F64), H(b, F64), stride=[2, 1], padding=[1, 2], dilation=[1, 2])
    close(got, want, F64)
    # unbatched (C, H, W)
    got1 = heron.conv2d(H(x[1], F64), H(w, F64), H(b, F64), stride=[2, 1], padding=[1, 2], dilation=[1, 2])
    close(got1, want[1], F64)
    # non-contiguous input and weight: transposed storage, strided slices
    xt = H(np.ascontiguousarray(x.transpose(0, 1, 3, 2)), F64).transpose(2, 3)
    ws = H(np.repeat(w, 2, axis=3), F64)[:, :, :, ::2]
    close(heron.conv2d(xt, ws, None, (2, 1), (1, 2), (1, 2)), ref_conv2d(x, w, None, (2, 1), (1, 2), (1, 2)), F64)
    xs = H(np.repeat(x, 2, axis=2), F32)[:, :, ::2]
    close(heron.conv2d(xs, H(w, F32), None), ref_conv2d(x, w), F32, 6)


def test_conv2d_batch_zero_and_resnet_tile_shape():
    x, w = rand(0, 3, 5, 5), rand(2, 3, 3, 3)
    got = heron.conv2d(H(x, F32), H(w, F32), None)
    assert tuple(got.shape) == (0, 2, 3, 3)
    # a ResNet-like block shape: many tiles per image, two threads each with their own images
    x, w = rand(3, 32, 30, 30), rand(32, 32, 3, 3)
    close(heron.conv2d(H(x, F32), H(w, F32), None, 1, 1), ref_conv2d(x, w, None, 1, 1), F32, 17)


# ------------------------------------------------------------------ conv1d
CONV1D_CASES = [
    ((2, 3, 10), (4, 3), {}),
    ((2, 4, 11), (6, 3), dict(stride=2, padding=2, dilation=2, groups=2)),
    ((1, 3, 9), (5, 4), dict(same=True)),
    ((3, 2, 7), (3, 1), {}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ws,kw", CONV1D_CASES, ids=[str(i) for i in range(len(CONV1D_CASES))])
def test_conv1d(dtype, xs, ws, kw):
    g = kw.get("groups", 1)
    x, w, b = rand(*xs), rand(ws[0], xs[1] // g, ws[1]), rand(ws[0])
    a = (kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1), g, kw.get("same", False))
    want = ref_conv1d(x, w, b, *a)
    close(heron.conv1d(H(x, dtype), H(w, dtype), H(b, dtype), *a), want, dtype, 3)
    close(heron.conv1d(H(x[0], dtype), H(w, dtype), H(b, dtype), *a), want[0], dtype, 3)


# ------------------------------------------------------------------ conv_transpose2d
TRANSPOSE_CASES = [
    ((2, 3, 4, 5), (3, 4, 3, 3), {}),
    ((2, 4, 4, 5), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
    ((1, 4, 3, 4), (4, 2, 3, 3), dict(stride=(2, 3), padding=(1, 2), groups=2, dilation=(2, 1))),
    ((2, 2, 5, 5), (2, 3, 3, 3), dict(stride=1, dilation=2, output_padding=1)),  # output_padding < dilation
    ((2, 6, 4, 4), (6, 1, 1, 1), dict(groups=3)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ws,kw", TRANSPOSE_CASES, ids=[str(i) for i in range(len(TRANSPOSE_CASES))])
def test_conv_transpose2d(dtype, xs, ws, kw):
    g = kw.get("groups", 1)
    x, w, b = rand(*xs), rand(*ws), rand(ws[1] * g)
    a = (kw.get("stride", 1), kw.get("padding", 0), kw.get("output_padding", 0), g, kw.get("dilation", 1))
    want = ref_conv_transpose2d(x, w, b, *a)
    close(heron.conv_transpose2d(H(x, dtype), H(w, dtype), H(b, dtype), *a), want, dtype, 3)
    close(heron.conv_transpose2d(H(x[0], dtype), H(w, dtype), None, *a), want[0] - b[:, None, None], dtype, 3)


# ------------------------------------------------------------------ pooling
MAXPOOL_CASES = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 7, 7), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 3))),
    ((2, 2, 7, 8), dict(kernel_size=2, stride=2, ceil_mode=True)),
    ((2, 2, 6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((3, 5, 5), dict(kernel_size=3, stride=1, padding=1)),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,kw", MAXPOOL_CASES, ids=[str(i) for i in range(len(MAXPOOL_CASES))])
def test_max_pool2d(dtype, xs, kw):
    x = rand(*xs).astype(np.float32).astype(np.float64)
    want, widx = ref_max_pool2d(x, **kw)
    out, idx = heron.max_pool2d(H(x, dtype), **kw)
    close(out, want, dtype)
    assert idx.dtype == heron.int64
    np.testing.assert_array_equal(N(idx), widx)
    r = heron.max_pool2d(H(x, dtype), **kw)
    np.testing.assert_array_equal(N(r.indices), widx)


def test_max_pool2d_nan_inf_noncontiguous():
    x = rand(1, 2, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[0, 1] = -np.inf
    out, idx = heron.max_pool2d(H(x, F64), 2)
    assert np.isnan(N(out)[0, 0, 0, 0]) and N(idx)[0, 0, 0, 0] == 1
    assert np.all(N(out)[0, 1] == -np.inf)
    np.testing.assert_array_equal(N(idx)[0, 1], [[0, 2], [8, 10]])  # first cell of each window
    x = rand(2, 3, 6, 10)
    xt = H(x, F32)[:, :, :, ::2]
    want, widx = ref_max_pool2d(x[:, :, :, ::2], 3, 2, 1)
    out, idx = heron.max_pool2d(xt, 3, 2, 1)
    close(out, want, F32)
    np.testing.assert_array_equal(N(idx), widx)


AVGPOOL_CASES = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ((2, 2, 7, 8), dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 7, 8), dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ((2, 2, 6, 6), dict(kernel_size=3, stride=2, padding=1, divisor_override=5)),
    ((3, 5, 5), dict(kernel_size=3, stride=1, padding=1)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,kw", AVGPOOL_CASES, ids=[str(i) for i in range(len(AVGPOOL_CASES))])
def test_avg_pool2d(dtype, xs, kw):
    x = rand(*xs)
    close(heron.avg_pool2d(H(x, dtype), **kw), ref_avg_pool2d(x, **kw), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,os", [((2, 3, 8, 8), 1), ((2, 3, 7, 9), (3, 4)), ((2, 3, 5, 5), (7, 3)), ((3, 10, 6), (4, 4))])
def test_adaptive_avg_pool2d(dtype, xs, os):
    x = rand(*xs)
    close(heron.adaptive_avg_pool2d(H(x, dtype), os), ref_adaptive_avg_pool2d(x, os), dtype)
    xt = H(np.ascontiguousarray(np.swapaxes(x, -1, -2)), dtype).transpose(-1, -2)
    close(heron.adaptive_avg_pool2d(xt, os), ref_adaptive_avg_pool2d(x, os), dtype)


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (4, 4), (1, 17), (7, 7), (9, 7), (8, 8), (5, 13), (10, 10), (17, 19), (56, 56)])
def test_global_adaptive_avg_pool2d_float32(hw):
    """Output 1x1 (global pooling) runs a vector sum per plane on AVX-512: planes of every length
    class (under one register, one, a partial 64-pixel group, several groups, a masked tail)
    against float64 numpy, with nan and infinities kept, and the same bits at any thread count."""
    x = rand(3, 37, *hw).astype(np.float32)
    x[0, 1].flat[-1] = np.nan  # the last pixel: the masked tail where there is one
    x[1, 2].flat[0] = np.inf
    x[2, 36].flat[-1] = -np.inf
    x[2, 35] = 1e4  # large equal values: the mean is exact
    want = np.asarray(x, np.float64).mean(axis=(-2, -1), keepdims=True)
    got = heron.adaptive_avg_pool2d(H(x, F32), 1)
    np.testing.assert_allclose(N(got).astype(np.float64), want, rtol=1e-5, atol=1e-6)
    assert np.isnan(N(got)[0, 1, 0, 0]) and N(got)[1, 2, 0, 0] == np.inf and N(got)[2, 36, 0, 0] == -np.inf
    assert N(got)[2, 35, 0, 0] == np.float32(1e4)
    unbatched = heron.adaptive_avg_pool2d(H(x[1], F32), (1, 1))
    np.testing.assert_array_equal(N(unbatched), N(got)[1])
    big = H(rand(4, 1500, *hw).astype(np.float32), F32)  # enough planes for several work items
    prev = heron.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 3):
            heron.set_num_threads(threads)
            runs.append(N(heron.adaptive_avg_pool2d(big, 1)).copy())
    finally:
        heron.set_num_threads(prev)
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


# ------------------------------------------------------------------ backward ops: finite differences
def numgrad(f, x, eps=1e-6):
    """Central differences of scalar f at x (float64 numpy)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f(x)
        x[i] = old - eps
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def loss(out, gy):
    return float(np.sum(N(out) * gy))


def noncontig(a):
    """A Heron float64 view of a holding the same values, with non-unit strides."""
    return H(np.repeat(a, 2, axis=-1), F64)[..., ::2]


CONV_GRAD_CASES = [
    ((2, 4, 5, 6), (6, 3, 3), dict(stride=1, padding=1, dilation=1, groups=2, same=False)),
    ((2, 3, 7, 6), (4, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=1, same=False)),
    ((1, 2, 5, 5), (3, 2, 2), dict(stride=1, padding=0, dilation=2, groups=1, same=True)),
    ((2, 3, 4, 4), (2, 1, 1), dict(stride=1, padding=0, dilation=1, groups=1, same=False)),
]


@pytest.mark.parametrize("xs,ws,kw", CONV_GRAD_CASES, ids=[str(i) for i in range(len(CONV_GRAD_CASES))])
@pytest.mark.parametrize("contig", [True, False], ids=["contig", "strided"])
def test_conv2d_backward_fd(xs, ws, kw, contig):
    g = kw["groups"]
    x, w, b = rand(*xs), rand(ws[0], xs[1] // g, ws[1], ws[2]), rand(ws[0])
    a = (kw["stride"], kw["padding"], kw["dilation"], g, kw["same"])
    y = heron.conv2d(H(x, F64), H(w, F64), H(b, F64), *a)
    gy = rand(*y.shape)
    T = noncontig if not contig else (lambda v: H(v, F64))
    gx, gw, gb = heron.conv2d_backward(T(gy), T(x), T(w), *a)
    close(gx, numgrad(lambda v: loss(heron.conv2d(H(v, F64), H(w, F64), H(b, F64), *a), gy), x.copy()), F64, 1e4)
    close(gw, numgrad(lambda v: loss(heron.conv2d(H(x, F64), H(v, F64), H(b, F64), *a), gy), w.copy()), F64, 1e4)
    close(gb, numgrad(lambda v: loss(heron.conv2d(H(x, F64), H(w, F64), H(v, F64), *a), gy), b.copy()), F64, 1e4)
    # output_mask: skipped gradients are empty tensors
    r = heron.conv2d_backward(H(gy, F64), H(x, F64), H(w, F64), *a, output_mask=[0, 1, 0])
    assert tuple(r[0].shape) == (0,) and tuple(r[2].shape) == (0,)
    close(r[1], N(gw), F64)
    # unbatched
    r1 = heron.conv2d_backward(H(gy[0], F64), H(x[0], F64), H(w, F64), *a)
    close(r1[0], N(gx)[0], F64)
    close(r1[1], ref_wgrad_one(gy, x, w, a), F64, 10)


def ref_wgrad_one(gy, x, w, a):
    return N(heron.conv2d_backward(H(gy[:1], F64), H(x[:1], F64), H(w, F64), *a)[1])


@pytest.mark.parametrize("xs,ws,kw", CONV1D_CASES, ids=[str(i) for i in range(len(CONV1D_CASES))])
def test_conv1d_backward_fd(xs, ws, kw):
    g = kw.get("groups", 1)
    x, w, b = rand(*xs), rand(ws[0], xs[1] // g, ws[1]), rand(ws[0])
    a = (kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1), g, kw.get("same", False))
    y = heron.conv1d(H(x, F64), H(w, F64), H(b, F64), *a)
    gy = rand(*y.shape)
    gx, gw, gb = heron.conv1d_backward(noncontig(gy), H(x, F64), H(w, F64), *a)
    close(gx, numgrad(lambda v: loss(heron.conv1d(H(v, F64), H(w, F64), H(b, F64), *a), gy), x.copy()), F64, 1e4)
    close(gw, numgrad(lambda v: loss(heron.conv1d(H(x, F64), H(v, F64), H(b, F64), *a), gy), w.copy()), F64, 1e4)
    close(gb, numgrad(lambda v: loss(heron.conv1d(H(x, F64), H(w, F64), H(v, F64), *a), gy), b.copy()), F64, 1e4)


@pytest.mark.parametrize("xs,ws,kw", TRANSPOSE_CASES, ids=[str(i) for i in range(len(TRANSPOSE_CASES))])
@pytest.mark.parametrize("contig", [True, False], ids=["contig", "strided"])
def test_conv_transpose2d_backward_fd(xs, ws, kw, contig):
    g = kw.get("groups", 1)
    x, w, b = rand(*xs), rand(*ws), rand(ws[1] * g)
    a = (kw.get("stride", 1), kw.get("padding", 0), kw.get("output_padding", 0), g, kw.get("dilation", 1))
    y = heron.conv_transpose2d(H(x, F64), H(w, F64), H(b, F64), *a)
    gy = rand(*y.shape)
    T = noncontig if not contig else (lambda v: H(v, F64))
    gx, gw, gb = heron.conv_transpose2d_backward(T(gy), T(x), T(w), *a)
    f = heron.conv_transpose2d
    close(gx, numgrad(lambda v: loss(f(H(v, F64), H(w, F64), H(b, F64), *a), gy), x.copy()), F64, 1e4)
    close(gw, numgrad(lambda v: loss(f(H(x, F64), H(v, F64), H(b, F64), *a), gy), w.copy()), F64, 1e4)
    close(gb, numgrad(lambda v: loss(f(H(x, F64), H(w, F64), H(v, F64), *a), gy), b.copy()), F64, 1e4)


@pytest.mark.parametrize("xs,kw", MAXPOOL_CASES, ids=[str(i) for i in range(len(MAXPOOL_CASES))])
def test_max_pool2d_backward_fd(xs, kw):
    x = rng.permutation(np.prod(xs)).reshape(xs) * 0.01  # distinct values: no ties within eps
    out, idx = heron.max_pool2d(H(x, F64), **kw)
    gy = rand(*out.shape)
    gx = heron.max_pool2d_backward(noncontig(gy), noncontig(x), idx)
    close(gx, numgrad(lambda v: loss(heron.max_pool2d(H(v, F64), **kw)[0], gy), x.copy()), F64, 1e4)


@pytest.mark.parametrize("xs,kw", AVGPOOL_CASES, ids=[str(i) for i in range(len(AVGPOOL_CASES))])
def test_avg_pool2d_backward_fd(xs, kw):
    x = rand(*xs)
    out = heron.avg_pool2d(H(x, F64), **kw)
    gy = rand(*out.shape)
    gx = heron.avg_pool2d_backward(noncontig(gy), H(x, F64), **kw)
    close(gx, numgrad(lambda v: loss(heron.avg_pool2d(H(v, F64), **kw), gy), x.copy()), F64, 1e4)


@pytest.mark.parametrize("xs,os", [((2, 3, 7, 9), (3, 4)), ((2, 2, 5, 5), (7, 3)), ((3, 6, 6), 1)])
def test_adaptive_avg_pool2d_backward_fd(xs, os):
    x = rand(*xs)
    out = heron.adaptive_avg_pool2d(H(x, F64), os)
    gy = rand(*out.shape)
    gx = heron.adaptive_avg_pool2d_backward(noncontig(gy), noncontig(x))
    close(gx, numgrad(lambda v: loss(heron.adaptive_avg_pool2d(H(v, F64), os), gy), x.copy()), F64, 1e4)


# ------------------------------------------------------------------ errors
def test_conv_errors():
    x, w = heron.ones(2, 4, 5, 5), heron.ones(3, 2, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: weight of shape \[3, 2, 3, 3\] and groups=1 expect input with 2 channels, got input of shape \[2, 4, 5, 5\]"):
        heron.conv2d(x, w, None)
    with pytest.raises(ValueError, match=r"conv2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got shape \[4, 5\]"):
        heron.conv2d(heron.ones(4, 5), w, None)
    with pytest.raises(ValueError, match=r"conv2d: expected weight of shape \(K, C/groups, kH, kW\)"):
        heron.conv2d(x, heron.ones(3, 4, 3), None)
    with pytest.raises(ValueError, match=r"conv2d: expected bias of shape \(3\)"):
        heron.conv2d(x, heron.ones(3, 4, 3, 3), heron.ones(4))
    with pytest.raises(ValueError, match=r"conv2d: weight's 3 output channels .* not divisible by groups=2"):
        heron.conv2d(x, w, None, groups=2)
    with pytest.raises(ValueError, match=r"conv2d: the padded input .* smaller than the dilated kernel"):
        heron.conv2d(x, heron.ones(3, 4, 7, 3), None)
    with pytest.raises(ValueError, match=r"conv2d: same_padding needs stride 1"):
        heron.conv2d(x, heron.ones(3, 4, 3, 3), None, stride=2, same_padding=True)
    with pytest.raises(ValueError, match=r"conv2d: stride must have 1 or 2 entries"):
        heron.conv2d(x, heron.ones(3, 4, 3, 3), None, stride=[1, 1, 1])
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1"):
        heron.conv2d(x, heron.ones(3, 4, 3, 3), None, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: padding must be >= 0"):
        heron.conv2d(x, heron.ones(3, 4, 3, 3), None, padding=-1)
    with pytest.raises(TypeError, match=r"conv2d: expected a float32 or float64 input, got int64"):
        heron.conv2d(heron.ones(2, 4, 5, 5, dtype=heron.int64), heron.ones(3, 4, 3, 3), None)
    with pytest.raises(TypeError, match=r"conv2d: expected weight of dtype float32 \(the input's\), got float64"):
        heron.conv2d(x, heron.ones(3, 4, 3, 3, dtype=heron.float64), None)
    with pytest.raises(TypeError, match=r"conv1d: expected bias of dtype float32"):
        heron.conv1d(heron.ones(2, 4, 5), heron.ones(3, 4, 3), heron.ones(3, dtype=heron.float64))
    with pytest.raises(ValueError, match=r"conv1d: expected input of shape \(N, C, L\) or \(C, L\)"):
        heron.conv1d(x, heron.ones(3, 4, 3), None)
    with pytest.raises(ValueError, match=r"conv2d_backward: expected grad of shape \[2, 3, 3, 3\]"):
        heron.conv2d_backward(heron.ones(2, 3, 4, 4), x, heron.ones(3, 4, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d_backward: output_mask entries must be 0 or 1"):
        heron.conv2d_backward(heron.ones(2, 3, 3, 3), x, heron.ones(3, 4, 3, 3), output_mask=[2, 1, 1])
    with pytest.raises(ValueError, match=r"conv_transpose2d: weight of shape \[3, 2, 3, 3\] expects input with 3 channels"):
        heron.conv_transpose2d(x, w, None)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding must be smaller than either stride or dilation"):
        heron.conv_transpose2d(x, heron.ones(4, 2, 3, 3), None, output_padding=1)
    with pytest.raises(ValueError, match=r"conv_transpose2d_backward: expected grad of shape \[2, 2, 7, 7\]"):
        heron.conv_transpose2d_backward(heron.ones(2, 2, 5, 5), x, heron.ones(4, 2, 3, 3))


def test_pool_errors():
    x = heron.ones(2, 3, 6, 6)
    with pytest.raises(ValueError, match=r"max_pool2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got shape \[6, 6\]"):
        heron.max_pool2d(heron.ones(6, 6), 2)
    with pytest.raises(ValueError, match=r"max_pool2d: padding must be at most half the kernel size"):
        heron.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size must be >= 1"):
        heron.max_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"max_pool2d: the window .* does not fit input of shape \[2, 3, 6, 6\]"):
        heron.max_pool2d(x, 4, dilation=3)
    with pytest.raises(TypeError, match=r"avg_pool2d: expected a float32 or float64 input, got int32"):
        heron.avg_pool2d(heron.ones(2, 3, 6, 6, dtype=heron.int32), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be nonzero"):
        heron.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be >= 1"):
        heron.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: expected non-empty"):
        heron.adaptive_avg_pool2d(heron.ones(2, 3, 0, 4), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: expected grad of shape \[2, 3, 3, 3\]"):
        heron.avg_pool2d_backward(heron.ones(2, 3, 2, 2), x, 2)
    out, idx = heron.max_pool2d(x, 2)
    with pytest.raises(TypeError, match=r"max_pool2d_backward: expected indices of dtype int64, got float32"):
        heron.max_pool2d_backward(out, x, out)
    with pytest.raises(IndexError, match=r"max_pool2d_backward: index 99 out of range"):
        heron.max_pool2d_backward(out, x, heron.full((2, 3, 3, 3), 99, dtype=heron.int64))
    with pytest.raises(ValueError, match=r"max_pool2d_backward: grad \(shape \[2, 3, 2, 2\]\) and indices"):
        heron.max_pool2d_backward(heron.ones(2, 3, 2, 2), x, idx)


@pytest.mark.parametrize("xs,ws,kw", [((7, 6, 5, 5), (4, 3, 3), dict(padding=1, groups=2)),
                                      ((9, 4, 3, 4), (6, 1, 1), {}),
                                      ((5, 3, 8, 8), (4, 3, 3), dict(stride=2))])
def test_conv2d_backward_batched_small_images(xs, ws, kw):
    """Batches of small images share one gemm per several images; compare with one image at a time."""
    g = kw.get("groups", 1)
    x, w = rand(*xs), rand(ws[0], xs[1] // g, ws[1], ws[2])
    a = (kw.get("stride", 1), kw.get("padding", 0), 1, g, False)
    y = heron.conv2d(H(x, F64), H(w, F64), None, *a)
    close(y, ref_conv2d(x, w, None, *a), F64)
    gy = rand(*y.shape)
    gx, gw, gb = heron.conv2d_backward(H(gy, F64), H(x, F64), H(w, F64), *a)
    parts = [heron.conv2d_backward(H(gy[i:i + 1], F64), H(x[i:i + 1], F64), H(w, F64), *a) for i in range(xs[0])]
    close(gx, np.concatenate([N(p[0]) for p in parts]), F64)
    close(gw, sum(N(p[1]) for p in parts), F64, 10)
    close(gb, gy.sum(axis=(0, 2, 3)), F64, 10)


def ref_conv2d_weight_grad(gy, x, wshape, stride, padding, dilation, groups):
    k, cg, kh, kw = wshape
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = gy.shape[2:]
    kg = k // groups
    gw = np.zeros(wshape)
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                gw[g * kg:(g + 1) * kg, :, i, j] = np.einsum("nkhw,nchw->kc", gy[:, g * kg:(g + 1) * kg], patch)
    return gw


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ws,kw", [
    ((2, 32, 24, 24), (16, 3, 3), dict(padding=1)),               # several tiles per image (wide columns)
    ((6, 4, 9, 9), (5, 3, 3), dict(padding=1, groups=1)),         # several images per gemm (wide columns)
    ((5, 6, 9, 8), (4, 3, 3), dict(padding=(2, 1), dilation=2, groups=2)),
    ((3, 8, 20, 21), (8, 5, 5), dict(padding=2, stride=2)),       # strided: classic im2col
    ((4, 3, 6, 6), (4, 3, 3), {}),                               # narrow: classic im2col
])
def test_conv2d_backward_against_reference(dtype, xs, ws, kw):
    g = kw.get("groups", 1)
    x, w = rand(*xs), rand(ws[0], xs[1] // g, ws[1], ws[2])
    s, p, d = kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1)
    y = heron.conv2d(H(x, dtype), H(w, dtype), None, s, p, d, g)
    close(y, ref_conv2d(x, w, None, s, p, d, g), dtype, 20)
    gy = rand(*y.shape)
    gx, gw, gb = heron.conv2d_backward(H(gy, dtype), H(x, dtype), H(w, dtype), s, p, d, g)
    (sh, sw), (ph, pw), (dh, dw) = pair(s), pair(p), pair(d)
    oph = xs[2] - ((y.shape[2] - 1) * sh - 2 * ph + dh * (ws[1] - 1) + 1)
    opw = xs[3] - ((y.shape[3] - 1) * sw - 2 * pw + dw * (ws[2] - 1) + 1)
    close(gx, ref_conv_transpose2d(gy, w, None, s, p, (oph, opw), g, d), dtype, 20)
    close(gw, ref_conv2d_weight_grad(gy, x, w.shape, s, p, d, g), dtype, 100)
    close(gb, gy.sum(axis=(0, 2, 3)), dtype, 100)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("xs,k,pad", [((2, 16, 9, 11), 16, 1), ((1, 17, 8, 7), 20, 0), ((3, 16, 6, 9), 18, 2),
                                      ((2, 24, 13, 5), 16, "same")])
def test_conv2d_winograd_shapes(dtype, xs, k, pad):
    """3x3 stride-1 convs with >= 16 channels take the Winograd path (forward and backward data):
    odd output sizes, paddings 0..2, same padding, bias."""
    x, w, b = rand(*xs), rand(k, xs[1], 3, 3), rand(k)
    same = pad == "same"
    p = 0 if same else pad
    y = heron.conv2d(H(x, dtype), H(w, dtype), H(b, dtype), 1, p, 1, 1, same)
    close(y, ref_conv2d(x, w, b, 1, p, 1, 1, same), dtype, 20)
    gy = rand(*y.shape)
    gx, gw, gb = heron.conv2d_backward(H(gy, dtype), H(x, dtype), H(w, dtype), 1, p, 1, 1, same)
    pp = 1 if same else p
    close(gx, ref_conv_transpose2d(gy, w, None, 1, pp, 0, 1, 1), dtype, 20)
    close(gw, ref_conv2d_weight_grad(gy, x, w.shape, 1, pp, 1, 1), dtype, 100)


@pytest.mark.parametrize("shape", [((64, 1, 28, 28), (16, 1, 3, 3)), ((8, 16, 13, 13), (32, 16, 3, 3)),
                                   ((4, 32, 20, 20), (32, 32, 3, 3))], ids=["1to16", "16to32", "winograd"])
def test_weight_gradient_is_bitwise_deterministic_across_thread_counts(shape):
    """Reductions over images use a split fixed by the shape, so the weight gradient does not depend
    on the thread count or on scheduling (training runs reproduce exactly)."""
    rng = np.random.default_rng(7)
    x = heron.from_numpy(rng.standard_normal(shape[0]).astype(np.float32))
    w = heron.from_numpy(rng.standard_normal(shape[1]).astype(np.float32))
    out_shape = heron.conv2d(x, w).shape
    gy = heron.from_numpy(rng.standard_normal(out_shape).astype(np.float32))
    prev = heron.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3, 2, 2):
            heron.set_num_threads(threads)
            results.append(heron.conv2d_backward(gy, x, w)[1].numpy().copy())
    finally:
        heron.set_num_threads(prev)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("shape,k,stride,padding,dilation", [
    ((2, 8, 9, 11), 3, 1, 1, 1), ((1, 5, 12, 12), 3, 2, 1, 1), ((2, 4, 7, 9), 5, 1, 2, 1),
    ((1, 3, 10, 10), 3, 2, 0, 2), ((1, 6, 6, 5), (1, 3), (2, 1), (0, 1), 1), ((3, 2, 4, 4), 3, 1, 3, 1),
    ((2, 4, 14, 14), 3, 1, 0, 1), ((2, 4, 14, 14), 3, 1, 2, 1), ((2, 4, 15, 15), 3, 2, 2, 1), ((2, 4, 9, 9), 3, 2, 0, 1),
    ((1, 6, 13, 33), 3, (1, 2), 1, 1), ((1, 6, 33, 13), 3, (2, 1), 1, 1),
    ((1, 32, 112, 112), 3, 1, 1, 1), ((1, 96, 112, 112), 3, 2, 1, 1), ((2, 144, 56, 56), 3, 1, 1, 1),
    ((1, 144, 56, 56), 3, 2, 1, 1), ((1, 192, 28, 28), 3, 1, 1, 1), ((2, 192, 28, 28), 3, 2, 1, 1),
    ((2, 384, 14, 14), 3, 1, 1, 1), ((1, 576, 14, 14), 3, 2, 1, 1), ((2, 960, 7, 7), 3, 1, 1, 1)],
    ids=["3x3s1", "3x3s2", "5x5", "dilated", "1x3", "big-pad", "14-pad0", "14-pad2", "15-s2-pad2", "9-s2-pad0",
         "s1x2", "s2x1", "mbv2-32x112", "mbv2-96x112s2", "mbv2-144x56", "mbv2-144x56s2", "mbv2-192x28",
         "mbv2-192x28s2", "mbv2-384x14", "mbv2-576x14s2", "mbv2-960x7"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_direct_kernel_matches_reference(shape, k, stride, padding, dilation, dtype):
    """groups == C == K runs a direct kernel (MobileNet's depthwise layers): against numpy."""
    rng = np.random.default_rng(11)
    c = shape[1]
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c, 1, kh, kw)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    st = [stride] * 2 if isinstance(stride, int) else list(stride)
    pd = [padding] * 2 if isinstance(padding, int) else list(padding)
    got = heron.conv2d(heron.from_numpy(x), heron.from_numpy(w), heron.from_numpy(b), st, pd, [dilation] * 2, c)
    want = ref_conv2d(x, w, b, st, pd, dilation, c)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)
