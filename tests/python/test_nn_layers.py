"""heron.nn layers and functional calls over the training ops (linear, conv, pooling, norms,
dropout, embedding, losses, interpolate, pixel_shuffle) against numpy references, forward and,
once autograd is there, gradients of a small network against central differences. Each test is
skipped while its op is missing from the build."""
import contextlib

import numpy as np
import pytest

import heron
from heron import nn
from heron.nn import functional as F

HAS_AUTOGRAD = hasattr(heron.Tensor, "backward")
rng = np.random.default_rng(2024)


def needs(*ops):
    missing = [o for o in ops if not hasattr(heron._ops, o)]
    return pytest.mark.skipif(bool(missing), reason=f"op(s) {missing} not in this build yet")


def N(t):
    return np.array(t.numpy(), copy=True)


def T(a):
    return heron.tensor(np.ascontiguousarray(a))


def close(got, want, tol=1e-10):
    assert tuple(got.shape) == tuple(np.shape(want)), (got.shape, np.shape(want))
    np.testing.assert_allclose(N(got), want, rtol=tol, atol=tol)


def set_params(module, **arrays):
    with heron.no_grad() if HAS_AUTOGRAD else contextlib.nullcontext():
        for name, a in arrays.items():
            getattr(module, name).copy_(T(a))


# ------------------------------------------------------------------ numpy references
def np_conv2d(x, w, b, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, k, oh, ow))
    kg = k // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out[:, g * kg:(g + 1) * kg] += np.einsum("nchw,kc->nkhw", patch, w[g * kg:(g + 1) * kg, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def np_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    n, cin, h, wd = x.shape
    _, kg, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    # every input pixel scatters its kernel-weighted copy; padding then crops both sides
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + opw
    out = np.zeros((n, kg * groups, full_h, full_w))
    cg = cin // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,ck->nkhw", x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg, :, i, j])
                out[:, g * kg:(g + 1) * kg, i * dh:i * dh + sh * (h - 1) + 1:sh, j * dw:j * dw + sw * (wd - 1) + 1:sw] \
                    += contrib
    out = out[:, :, ph:full_h - ph, pw:full_w - pw]
    if b is not None:
        out += b[None, :, None, None]
    return out


def _pool_out(size, k, s, p, d, ceil):
    num = size + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= size + p:
        o -= 1
    return o


def np_max_pool2d(x, k, s, p, d, ceil):
    n, c, h, w = x.shape
    oh, ow = _pool_out(h, k[0], s[0], p[0], d[0], ceil), _pool_out(w, k[1], s[1], p[1], d[1], ceil)
    out = np.full((n, c, oh, ow), -np.inf)
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            for a in range(k[0]):
                for b in range(k[1]):
                    y, z = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if 0 <= y < h and 0 <= z < w:
                        v = x[:, :, y, z]
                        better = v > out[:, :, i, j]
                        out[:, :, i, j] = np.where(better, v, out[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, y * w + z, idx[:, :, i, j])
    return out, idx


def np_avg_pool2d(x, k, s, p, ceil, count_include_pad, divisor_override):
    n, c, h, w = x.shape
    oh, ow = _pool_out(h, k[0], s[0], p[0], 1, ceil), _pool_out(w, k[1], s[1], p[1], 1, ceil)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y0, z0 = i * s[0] - p[0], j * s[1] - p[1]
            y1, z1 = min(y0 + k[0], h + p[0]), min(z0 + k[1], w + p[1])
            pool_size = (y1 - y0) * (z1 - z0)
            ya, za, yb, zb = max(y0, 0), max(z0, 0), min(y1, h), min(z1, w)
            total = x[:, :, ya:yb, za:zb].sum((2, 3))
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = pool_size
            else:
                div = (yb - ya) * (zb - za)
            out[:, :, i, j] = total / div
    return out


def np_adaptive_avg_pool2d(x, oh, ow):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y0, y1 = (i * h) // oh, -(-((i + 1) * h) // oh)
            z0, z1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[:, :, i, j] = x[:, :, y0:y1, z0:z1].mean((2, 3))
    return out


def np_log_softmax(x, axis):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def np_cross_entropy(x, y, weight=None, ignore_index=-100, reduction="mean", ls=0.0):
    """PyTorch's definition: (1 - ls) * nll + ls / C * smooth, normalised by the target weights."""
    c = x.shape[1]
    logp = np_log_softmax(x, 1)
    w = np.ones(c) if weight is None else weight
    # move the class dim last and flatten
    lp = np.moveaxis(logp, 1, -1).reshape(-1, c)
    yy = y.reshape(-1)
    keep = yy != ignore_index
    ys = np.where(keep, yy, 0)
    wy = np.where(keep, w[ys], 0.0)
    nll = -wy * lp[np.arange(len(yy)), ys]
    smooth = np.where(keep, -(lp * w).sum(1), 0.0)
    if reduction == "none":
        return ((1 - ls) * nll + ls / c * smooth).reshape(y.shape)
    if reduction == "sum":
        return (1 - ls) * nll.sum() + ls / c * smooth.sum()
    return (1 - ls) * nll.sum() / wy.sum() + ls / c * smooth.sum() / wy.sum()


def reduce_(v, reduction):
    return {"none": v, "sum": v.sum(), "mean": v.mean()}[reduction]


# ------------------------------------------------------------------ linear
@needs("linear")
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,)])
def test_linear(shape):
    m = nn.Linear(4, 3).double()
    x = rng.normal(size=shape)
    w, b = N(m.weight), N(m.bias)
    close(m(T(x)), x @ w.T + b)
    close(F.linear(T(x), m.weight), x @ w.T)
    m32 = nn.Linear(4, 3, bias=False)
    close(m32(T(x).float()), x.astype(np.float32) @ N(m32.weight).T, tol=1e-5)


# ------------------------------------------------------------------ convolution
CONV_CASES = [
    dict(cin=3, cout=4, k=3, stride=1, padding=0, dilation=1, groups=1, size=(7, 8)),
    dict(cin=4, cout=6, k=(3, 2), stride=(2, 1), padding=(1, 0), dilation=1, groups=2, size=(9, 6)),
    dict(cin=2, cout=2, k=3, stride=1, padding=2, dilation=2, groups=2, size=(6, 6)),
    dict(cin=1, cout=3, k=1, stride=3, padding=0, dilation=1, groups=1, size=(5, 7)),
]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@needs("conv2d")
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d(case):
    m = nn.Conv2d(case["cin"], case["cout"], case["k"], case["stride"], case["padding"], case["dilation"],
                  case["groups"]).double()
    x = rng.normal(size=(2, case["cin"]) + case["size"])
    want = np_conv2d(x, N(m.weight), N(m.bias), _pair(case["stride"]), _pair(case["padding"]),
                     _pair(case["dilation"]), case["groups"])
    close(m(T(x)), want)
    close(m(T(x[0])), want[0])  # unbatched
    # non-contiguous input
    xt = T(np.ascontiguousarray(np.swapaxes(x, 2, 3))).transpose(2, 3)
    close(m(xt), want)


@needs("conv2d")
@pytest.mark.parametrize("k,dilation", [(3, 1), (4, 1), (3, 2), ((2, 5), 1)])
def test_conv2d_same_and_valid_padding(k, dilation):
    m = nn.Conv2d(2, 3, k, padding="same", dilation=dilation).double()
    x = rng.normal(size=(1, 2, 7, 8))
    kh, kw = _pair(k)
    # PyTorch's 'same': total = d * (k - 1), the extra one on the right/bottom
    th, tw = dilation * (kh - 1), dilation * (kw - 1)
    xp = np.pad(x, ((0, 0), (0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2)))
    want = np_conv2d(xp, N(m.weight), N(m.bias), (1, 1), (0, 0), (dilation, dilation), 1)
    out = m(T(x))
    assert out.shape == (1, 3, 7, 8)
    close(out, want)
    v = nn.Conv2d(2, 3, 3, padding="valid").double()
    close(v(T(x)), np_conv2d(x, N(v.weight), N(v.bias), (1, 1), (0, 0), (1, 1), 1))


@needs("conv2d", "pad")
@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_conv2d_padding_modes(mode, np_mode):
    m = nn.Conv2d(2, 2, 3, padding=1, padding_mode=mode).double()
    x = rng.normal(size=(1, 2, 5, 6))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode=np_mode)
    close(m(T(x)), np_conv2d(xp, N(m.weight), N(m.bias), (1, 1), (0, 0), (1, 1), 1))


@needs("conv1d")
def test_conv1d():
    m = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2).double()
    x = rng.normal(size=(3, 4, 11))
    want = np_conv2d(x[:, :, None, :], N(m.weight)[:, :, None, :], N(m.bias), (1, 2), (0, 1), (1, 1), 2)[:, :, 0]
    close(m(T(x)), want)
    close(m(T(x[1])), want[1])
    s = nn.Conv1d(2, 2, 4, padding="same").double()
    x = rng.normal(size=(1, 2, 9))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2)))
    close(s(T(x)), np_conv2d(xp[:, :, None], N(s.weight)[:, :, None], N(s.bias), (1, 1), (0, 0), (1, 1), 1)[:, :, 0])


@needs("conv_transpose2d")
@pytest.mark.parametrize("stride,padding,output_padding,groups,dilation", [
    (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (2, 0, 0, 2, 1), ((3, 2), (1, 0), (2, 1), 1, 1), (1, 1, 0, 1, 2)])
def test_conv_transpose2d(stride, padding, output_padding, groups, dilation):
    m = nn.ConvTranspose2d(4, 6, 3, stride, padding, output_padding, groups, True, dilation).double()
    x = rng.normal(size=(2, 4, 5, 4))
    want = np_conv_transpose2d(x, N(m.weight), N(m.bias), _pair(stride), _pair(padding), _pair(output_padding),
                               groups, _pair(dilation))
    close(m(T(x)), want)


@needs("conv_transpose2d")
def test_conv_transpose2d_output_size():
    m = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1).double()
    x = rng.normal(size=(1, 2, 4, 4))
    assert m(T(x)).shape == (1, 2, 7, 7)
    out = m(T(x), output_size=(8, 8))
    assert out.shape == (1, 2, 8, 8)
    close(out, np_conv_transpose2d(x, N(m.weight), N(m.bias), (2, 2), (1, 1), (1, 1), 1, (1, 1)))
    assert m(T(x), output_size=[1, 2, 8, 7]).shape == (1, 2, 8, 7)


# ------------------------------------------------------------------ pooling
@needs("max_pool2d")
@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True),
                                          ((2, 3), (1, 2), (1, 1), (2, 1), False), (2, 2, 0, 1, True)])
def test_max_pool2d(k, s, p, d, ceil):
    x = rng.normal(size=(2, 3, 7, 9))
    m = nn.MaxPool2d(k, s, p, d, return_indices=True, ceil_mode=ceil)
    out, idx = m(T(x))
    kk = _pair(k)
    want, widx = np_max_pool2d(x, kk, _pair(s) if s is not None else kk, _pair(p), _pair(d), ceil)
    close(out, want)
    assert idx.dtype == heron.int64
    np.testing.assert_array_equal(N(idx), widx)
    plain = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)(T(x))
    close(plain, want)
    close(F.max_pool2d(T(x[0]), k, s, p, d, ceil), want[0])


@needs("avg_pool2d")
@pytest.mark.parametrize("k,s,p,ceil,cip,div", [(2, None, 0, False, True, None), (3, 2, 1, False, True, None),
                                                (3, 2, 1, False, False, None), (3, 2, 1, True, True, None),
                                                (2, 1, 1, False, True, 3)])
def test_avg_pool2d(k, s, p, ceil, cip, div):
    x = rng.normal(size=(2, 3, 7, 8))
    m = nn.AvgPool2d(k, s, p, ceil, cip, div)
    kk = _pair(k)
    want = np_avg_pool2d(x, kk, _pair(s) if s is not None else kk, _pair(p), ceil, cip, div)
    close(m(T(x)), want)


@needs("adaptive_avg_pool2d")
@pytest.mark.parametrize("out", [1, (3, 2), (5, 7), (None, 2)])
def test_adaptive_avg_pool2d(out):
    x = rng.normal(size=(2, 3, 7, 9))
    o = (out, out) if isinstance(out, int) else out
    oh, ow = (7 if o[0] is None else o[0]), o[1]
    close(nn.AdaptiveAvgPool2d(out)(T(x)), np_adaptive_avg_pool2d(x, oh, ow))
    close(F.adaptive_avg_pool2d(T(x[0]), out), np_adaptive_avg_pool2d(x[:1], oh, ow)[0])


# ------------------------------------------------------------------ normalisation
@needs("batch_norm")
@pytest.mark.parametrize("shape,cls", [((6, 3), nn.BatchNorm1d), ((4, 3, 5), nn.BatchNorm1d),
                                       ((2, 3, 4, 5), nn.BatchNorm2d)])
def test_batch_norm_training_and_eval(shape, cls):
    m = cls(3, momentum=0.2).double()
    g, b = rng.normal(size=3), rng.normal(size=3)
    set_params(m, weight=g, bias=b)
    axes = tuple(i for i in range(len(shape)) if i != 1)
    bshape = [1] * len(shape)
    bshape[1] = 3
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.normal(2.0, 3.0, size=shape)
        mean, var = x.mean(axes), x.var(axes)
        n = x.size // 3
        want = (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + 1e-5) * g.reshape(bshape) + b.reshape(bshape)
        close(m(T(x)), want, 1e-9)
        rm = 0.8 * rm + 0.2 * mean
        rv = 0.8 * rv + 0.2 * var * n / (n - 1)
        close(m.running_mean, rm, 1e-9)
        close(m.running_var, rv, 1e-9)
        assert int(m.num_batches_tracked.item()) == step + 1
    m.eval()
    x = rng.normal(size=shape)
    want = (x - rm.reshape(bshape)) / np.sqrt(rv.reshape(bshape) + 1e-5) * g.reshape(bshape) + b.reshape(bshape)
    close(m(T(x)), want, 1e-9)
    assert int(m.num_batches_tracked.item()) == 3


@needs("batch_norm")
def test_batch_norm_cumulative_average_and_no_stats():
    m = nn.BatchNorm2d(2, momentum=None, affine=False).double()
    xs = [rng.normal(size=(3, 2, 2, 2)) for _ in range(3)]
    for x in xs:
        m(T(x))
    close(m.running_mean, np.mean([x.mean((0, 2, 3)) for x in xs], 0), 1e-9)
    close(m.running_var, np.mean([x.var((0, 2, 3), ddof=1) for x in xs], 0), 1e-9)
    s = nn.BatchNorm2d(2, track_running_stats=False).double().eval()  # batch statistics even in eval
    x = xs[0]
    want = (x - x.mean((0, 2, 3), keepdims=True)) / np.sqrt(x.var((0, 2, 3), keepdims=True) + 1e-5)
    close(s(T(x)), want, 1e-9)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(heron.zeros(1, 4))


@needs("layer_norm")
def test_layer_norm():
    m = nn.LayerNorm((4, 5)).double()
    g, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    set_params(m, weight=g, bias=b)
    x = rng.normal(size=(3, 4, 5))
    mu, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    close(m(T(x)), (x - mu) / np.sqrt(var + 1e-5) * g + b, 1e-9)
    plain = nn.LayerNorm(5, elementwise_affine=False).double()
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    close(plain(T(x)), (x - mu) / np.sqrt(var + 1e-5), 1e-9)
    close(F.layer_norm(T(x), (5,), eps=1e-3), (x - mu) / np.sqrt(var + 1e-3), 1e-9)


@needs("group_norm")
def test_group_norm():
    m = nn.GroupNorm(2, 6).double()
    g, b = rng.normal(size=6), rng.normal(size=6)
    set_params(m, weight=g, bias=b)
    x = rng.normal(size=(2, 6, 3, 4))
    xg = x.reshape(2, 2, -1)
    y = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    close(m(T(x)), y * g[None, :, None, None] + b[None, :, None, None], 1e-9)


@needs("instance_norm")
def test_instance_norm():
    x = rng.normal(size=(2, 3, 4, 5))
    mu, var = x.mean((2, 3), keepdims=True), x.var((2, 3), keepdims=True)
    close(nn.InstanceNorm2d(3).double()(T(x)), (x - mu) / np.sqrt(var + 1e-5), 1e-9)
    close(nn.InstanceNorm2d(3).double()(T(x[0])), ((x - mu) / np.sqrt(var + 1e-5))[0], 1e-9)
    m = nn.InstanceNorm2d(3, affine=True, track_running_stats=True).double()
    m(T(x))
    n = 20
    close(m.running_mean, 0.9 * 0 + 0.1 * x.mean((2, 3)).mean(0), 1e-9)
    close(m.running_var, 0.9 * 1 + 0.1 * (x.var((2, 3)) * n / (n - 1)).mean(0), 1e-9)


# ------------------------------------------------------------------ dropout, embedding
@needs("dropout")
def test_dropout_statistics_and_seed():
    d = nn.Dropout(0.3)
    x = heron.ones(200, 500)
    heron.manual_seed(11)
    y = N(d(x))
    zero = (y == 0).mean()
    assert abs(zero - 0.3) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    heron.manual_seed(11)
    np.testing.assert_array_equal(N(d(x)), y)
    assert d.eval()(x) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(N(F.dropout(x, 1.0)), 0.0)


@needs("embedding")
def test_embedding():
    m = nn.Embedding(10, 4, padding_idx=-1).double()
    assert m.padding_idx == 9 and np.all(N(m.weight)[9] == 0)
    idx = np.array([[1, 2, 9], [0, 0, 5]])
    w = N(m.weight)
    close(m(heron.tensor(idx)), w[idx])
    close(F.embedding(heron.tensor([3]), m.weight), w[[3]])
    pre = nn.Embedding.from_pretrained(T(np.arange(6.0).reshape(3, 2)))
    close(pre(heron.tensor([2, 0])), np.array([[4.0, 5.0], [0.0, 1.0]]))
    if HAS_AUTOGRAD:
        assert not pre.weight.requires_grad


# ------------------------------------------------------------------ losses
@needs("cross_entropy")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted,ignore,ls", [(False, False, 0.0), (True, False, 0.0), (False, True, 0.0),
                                                (True, True, 0.1), (False, False, 0.2)])
def test_cross_entropy(reduction, weighted, ignore, ls):
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, size=6)
    if ignore:
        y[1] = -100
    w = rng.uniform(0.5, 2, size=4) if weighted else None
    loss = nn.CrossEntropyLoss(weight=None if w is None else T(w), reduction=reduction, label_smoothing=ls)
    close(loss(T(x), heron.tensor(y)), np_cross_entropy(x, y, w, -100, reduction, ls), 1e-9)


@needs("cross_entropy")
def test_cross_entropy_spatial_and_probabilities():
    x = rng.normal(size=(2, 3, 4, 5))
    y = rng.integers(0, 3, size=(2, 4, 5))
    close(F.cross_entropy(T(x), heron.tensor(y)), np_cross_entropy(x, y), 1e-9)
    p = rng.dirichlet(np.ones(3), size=4)
    x2 = rng.normal(size=(4, 3))
    want = -(p * np_log_softmax(x2, 1)).sum(1).mean()
    close(F.cross_entropy(T(x2), T(p)), want, 1e-9)
    pls = p * 0.9 + 0.1 / 3
    close(nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")(T(x2), T(p)),
          -(pls * np_log_softmax(x2, 1)).sum(), 1e-9)


@needs("nll_loss")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(reduction):
    x = np_log_softmax(rng.normal(size=(5, 3)), 1)
    y = np.array([0, 2, 1, -100, 2])
    w = np.array([1.0, 2.0, 0.5])
    keep = y != -100
    ys = np.where(keep, y, 0)
    per = np.where(keep, -w[ys] * x[np.arange(5), ys], 0.0)
    want = {"none": per, "sum": per.sum(), "mean": per.sum() / np.where(keep, w[ys], 0).sum()}[reduction]
    close(nn.NLLLoss(weight=T(w), reduction=reduction)(T(x), heron.tensor(y)), want, 1e-9)


@needs("mse_loss", "l1_loss", "smooth_l1_loss")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses(reduction):
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    d = a - b
    close(nn.MSELoss(reduction=reduction)(T(a), T(b)), reduce_(d * d, reduction))
    close(nn.L1Loss(reduction=reduction)(T(a), T(b)), reduce_(np.abs(d), reduction))
    for beta in (1.0, 0.5):
        sl = np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta)
        close(nn.SmoothL1Loss(reduction=reduction, beta=beta)(T(a), T(b)), reduce_(sl, reduction))
    with pytest.warns(UserWarning, match="different to the input size"):
        out = nn.MSELoss(reduction=reduction)(T(a), T(b[:1]))
    close(out, reduce_((a - b[:1]) ** 2, reduction))
    with pytest.raises(ValueError, match="does not broadcast"), pytest.warns(UserWarning):
        F.l1_loss(T(a), T(b[:, :3]))


@needs("binary_cross_entropy", "binary_cross_entropy_with_logits")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy(reduction):
    z = rng.normal(size=(4, 3))
    p = 1 / (1 + np.exp(-z))
    t = rng.uniform(size=(4, 3))
    w = rng.uniform(0.5, 2, size=3)
    pw = rng.uniform(0.5, 3, size=3)
    bce = -w * (t * np.log(p) + (1 - t) * np.log(1 - p))
    close(nn.BCELoss(weight=T(w), reduction=reduction)(T(p), T(t)), reduce_(bce, reduction), 1e-9)
    logits = -w * (pw * t * np.log(p) + (1 - t) * np.log(1 - p))
    close(nn.BCEWithLogitsLoss(weight=T(w), pos_weight=T(pw), reduction=reduction)(T(z), T(t)),
          reduce_(logits, reduction), 1e-9)
    with pytest.raises(ValueError, match="same as input size"):
        F.binary_cross_entropy_with_logits(T(z), T(t[:1]))


# ------------------------------------------------------------------ resampling
def np_interp_nearest(x, oh, ow, sh, sw):
    h, w = x.shape[2:]
    iy = np.minimum(np.floor(np.arange(oh) * sh).astype(int), h - 1)
    ix = np.minimum(np.floor(np.arange(ow) * sw).astype(int), w - 1)
    return x[:, :, iy][:, :, :, ix]


def np_interp_bilinear(x, oh, ow, align, sh, sw):
    h, w = x.shape[2:]

    def coords(o, n, s):
        if align:
            return np.arange(o) * ((n - 1) / (o - 1) if o > 1 else 0.0)
        return np.maximum((np.arange(o) + 0.5) * s - 0.5, 0.0)

    y, z = coords(oh, h, sh), coords(ow, w, sw)
    y0, z0 = np.floor(y).astype(int), np.floor(z).astype(int)
    y1, z1 = np.minimum(y0 + 1, h - 1), np.minimum(z0 + 1, w - 1)
    ly, lz = (y - y0)[:, None], (z - z0)[None, :]
    g = lambda a, b: x[:, :, a][:, :, :, b]  # noqa: E731
    return (g(y0, z0) * (1 - ly) * (1 - lz) + g(y0, z1) * (1 - ly) * lz + g(y1, z0) * ly * (1 - lz)
            + g(y1, z1) * ly * lz)


@needs("interpolate")
def test_interpolate_and_upsample():
    x = rng.normal(size=(2, 3, 4, 5))
    close(nn.Upsample(scale_factor=2)(T(x)), np_interp_nearest(x, 8, 10, 0.5, 0.5))
    close(F.interpolate(T(x), size=(7, 3)), np_interp_nearest(x, 7, 3, 4 / 7, 5 / 3))
    for align in (False, True):
        close(F.interpolate(T(x), size=(7, 9), mode="bilinear", align_corners=align),
              np_interp_bilinear(x, 7, 9, align, 4 / 7, 5 / 9))
    close(nn.Upsample(scale_factor=(2, 3), mode="bilinear")(T(x)), np_interp_bilinear(x, 8, 15, False, 0.5, 1 / 3))
    x3 = rng.normal(size=(2, 3, 5))
    close(F.interpolate(T(x3), scale_factor=2), np.repeat(x3, 2, axis=2))
    close(F.interpolate(T(x3), size=3), x3[:, :, np.floor(np.arange(3) * 5 / 3).astype(int)])


@needs("pixel_shuffle")
def test_pixel_shuffle():
    x = rng.normal(size=(2, 8, 3, 4))
    r = 2
    want = x.reshape(2, 2, r, r, 3, 4).transpose(0, 1, 4, 2, 5, 3).reshape(2, 2, 6, 8)
    close(F.pixel_shuffle(T(x), 2), want)
    if hasattr(heron._ops, "pixel_unshuffle"):
        close(F.pixel_unshuffle(T(want), 2), x)


# ------------------------------------------------------------------ the demo network, end to end
@needs("conv2d", "max_pool2d", "linear", "cross_entropy")
def test_demo_convnet_forward_shapes():
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(32 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 10))
    out = net(heron.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)
    loss = nn.CrossEntropyLoss()(out, heron.tensor([1, 2, 3, 4]))
    assert loss.shape == ()
    assert sum(p.numel() for p in net.parameters()) == 160 + 4640 + 9248 + 18496 + 650


@pytest.mark.skipif(not HAS_AUTOGRAD, reason="needs autograd (lead's branch)")
@needs("linear", "mse_loss")
def test_network_gradients_match_central_differences():
    heron.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    x = T(rng.normal(size=(4, 3)))
    y = T(rng.normal(size=(4, 2)))
    loss_fn = nn.MSELoss()
    net.zero_grad()
    loss_fn(net(x), y).backward()
    eps = 1e-6
    for name, p in net.named_parameters():
        g = N(p.grad)
        arr = N(p)
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            for sgn in (1, -1):
                a = arr.copy()
                a[i] += sgn * eps
                with heron.no_grad():
                    p.copy_(T(a))
                    num[i] += sgn * float(loss_fn(net(x), y).item())
            with heron.no_grad():
                p.copy_(T(arr))
        np.testing.assert_allclose(g, num / (2 * eps), rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.skipif(not HAS_AUTOGRAD, reason="needs autograd (lead's branch)")
@needs("conv2d", "batch_norm", "max_pool2d", "linear", "cross_entropy")
def test_convnet_backward_fills_every_parameter_grad():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 3))
    out = net(heron.randn(2, 1, 8, 8))
    nn.CrossEntropyLoss()(out, heron.tensor([0, 2])).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
    assert all(b.grad is None or not b.requires_grad for b in net.buffers())
