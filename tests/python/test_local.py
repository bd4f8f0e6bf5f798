"""local_conv2d / local_share_conv2d (issue 8): the float64 numpy definition, the optimized kernels
bitwise equal to the naive reference kernels (algo='naive') over a broad grid of geometries for
forward, backward-data and backward-filter, local_share at SG=(1,1) against conv2d and at SG=(OH,OW)
against local, gradients (gradcheck in float64), modules, a traced model run by a Session, and bad
arguments. No timing here (benchmarks/local.py)."""
import random

import numpy as np
import pytest

import heron
from heron import _ops
import heron.nn.functional as F
from heron.autograd import gradcheck

rng = np.random.default_rng(8)


def t(a, dtype=np.float32, requires_grad=False):
    x = heron.from_numpy(np.ascontiguousarray(a, dtype))
    if requires_grad:
        x.requires_grad_(True)
    return x


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(i, f, s, p, d):
    return (i + 2 * p - d * (f - 1) - 1) // s + 1


def ref_local_share(x, w, b=None, stride=1, padding=0, dilation=1, sg=(1, 1), groups=1, flip=False):
    """The definition in float64: w (G, SGH, SGW, IC/G, FH, FW, OC/G) or 6-d."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    if w.ndim == 6:
        w = w[None]
    G, SGH, SGW, ICg, FH, FW, OCg = w.shape
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    N, IC, IH, IW = x.shape
    OH, OW = out_size(IH, FH, sh, ph, dh), out_size(IW, FW, sw, pw, dw)
    ch, cw = OH // SGH, OW // SGW
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, G * OCg, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            for g in range(G):
                patch = xp[:, g * ICg:(g + 1) * ICg, oh * sh:oh * sh + dh * (FH - 1) + 1:dh,
                           ow * sw:ow * sw + dw * (FW - 1) + 1:dw]
                if flip:
                    patch = patch[:, :, ::-1, ::-1]
                y[:, g * OCg:(g + 1) * OCg, oh, ow] = np.einsum("nchw,chwo->no", patch, w[g, oh // ch, ow // cw])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def geometry(r):
    """A random local_share geometry: (N, IC, IH, IW, OC, FH, FW, stride, padding, dilation, SG, G, flip)."""
    G = r.choice([1, 1, 1, 2, 3])
    ICg, OCg = r.choice([1, 2, 3, 5, 8, 16]), r.choice([1, 3, 7, 8, 16, 17, 33, 64])
    FH, FW = r.choice([(1, 1), (3, 3), (2, 3), (5, 1), (3, 2)])
    s = (r.choice([1, 1, 2, 3]), r.choice([1, 2]))
    d = (r.choice([1, 1, 2]), r.choice([1, 2]))
    p = (r.choice([0, 1, 2]), r.choice([0, 1, 3]))
    IH, IW = r.randint(1, 13), r.randint(1, 13)
    while out_size(IH, FH, s[0], p[0], d[0]) < 1:
        IH += 1
    while out_size(IW, FW, s[1], p[1], d[1]) < 1:
        IW += 1
    OH, OW = out_size(IH, FH, s[0], p[0], d[0]), out_size(IW, FW, s[1], p[1], d[1])
    sgh = r.choice([dv for dv in range(1, OH + 1) if OH % dv == 0])
    sgw = r.choice([dv for dv in range(1, OW + 1) if OW % dv == 0])
    N = r.choice([1, 2, 3, 5, 8, 17, 32])
    return dict(N=N, IC=ICg * G, IH=IH, IW=IW, OC=OCg * G, FH=FH, FW=FW, stride=s, padding=p, dilation=d,
                sg=(sgh, sgw), G=G, flip=r.random() < 0.3)


def make(gm, dtype=np.float32, seed=0):
    r = np.random.default_rng(seed)
    G = gm["G"]
    x = r.uniform(-1, 1, (gm["N"], gm["IC"], gm["IH"], gm["IW"])).astype(dtype)
    w = r.uniform(-1, 1, (G,) + gm["sg"] + (gm["IC"] // G, gm["FH"], gm["FW"], gm["OC"] // G)).astype(dtype)
    b = r.uniform(-1, 1, gm["OC"]).astype(dtype)
    return x, w, b


def kw(gm):
    return dict(stride=gm["stride"], padding=gm["padding"], dilation=gm["dilation"], spatial_groups=gm["sg"],
                groups=gm["G"], mode="convolution" if gm["flip"] else "cross_correlation")


GRID = [geometry(random.Random(i)) for i in range(80)]


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    return np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("i", range(len(GRID)))
def test_bitwise_equal_to_naive(i):
    gm = GRID[i]
    dtype = np.float64 if i % 7 == 3 else np.float32
    x, w, b = make(gm, dtype, seed=i)
    k = kw(gm)
    want = ref_local_share(x, w, b, gm["stride"], gm["padding"], gm["dilation"], gm["sg"], gm["G"], gm["flip"])
    xt, wt, bt = t(x, dtype), t(w, dtype), t(b, dtype)
    y_fast = _ops.local_share_conv2d(xt, wt, bt, **k).numpy()
    y_naive = _ops.local_share_conv2d(xt, wt, bt, algo="naive", **k).numpy()
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y_naive, want, rtol=tol, atol=tol)
    assert same_bits(y_fast, y_naive), gm
    gy = rng.uniform(-1, 1, y_fast.shape).astype(dtype)
    gx_f, gw_f = _ops.local_share_conv2d_backward(t(gy, dtype), xt, wt, **k)
    gx_n, gw_n = _ops.local_share_conv2d_backward(t(gy, dtype), xt, wt, algo="naive", **k)
    assert same_bits(gx_f.numpy(), gx_n.numpy()), gm
    assert same_bits(gw_f.numpy(), gw_n.numpy()), gm


def test_bitwise_larger_shapes():
    """Shapes that take several chunks, column tails and full SIMD panels."""
    for gm in [dict(N=32, IC=16, IH=18, IW=18, OC=64, FH=3, FW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                    sg=(2, 2), G=1, flip=False),
               dict(N=9, IC=24, IH=20, IW=21, OC=40, FH=3, FW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                    sg=(20, 21), G=2, flip=False),
               dict(N=64, IC=8, IH=12, IW=12, OC=96, FH=3, FW=3, stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                    sg=(1, 1), G=1, flip=True),
               # local with 32 / 64 channels per group: the filter-as-vector-operand forward
               dict(N=5, IC=6, IH=7, IW=6, OC=64, FH=3, FW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                    sg=(7, 6), G=2, flip=False),
               dict(N=33, IC=3, IH=5, IW=5, OC=64, FH=3, FW=2, stride=(1, 2), padding=(0, 1), dilation=(1, 1),
                    sg=(3, 3), G=1, flip=True),
               # local with 64 channels per group: the weight gradient streamed out (non-temporal)
               dict(N=7, IC=6, IH=6, IW=5, OC=128, FH=3, FW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                    sg=(6, 5), G=2, flip=False),
               # 128 GEMM columns per chunk (batch 8 x 16 positions): the 64-column micro-kernel
               dict(N=8, IC=4, IH=16, IW=16, OC=8, FH=3, FW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                    sg=(2, 1), G=1, flip=False)]:
        x, w, b = make(gm)
        k = kw(gm)
        xt, wt, bt = t(x), t(w), t(b)
        y = _ops.local_share_conv2d(xt, wt, bt, **k)
        assert same_bits(y.numpy(), _ops.local_share_conv2d(xt, wt, bt, algo="naive", **k).numpy())
        gy = t(rng.uniform(-1, 1, y.shape))
        f = _ops.local_share_conv2d_backward(gy, xt, wt, **k)
        n = _ops.local_share_conv2d_backward(gy, xt, wt, algo="naive", **k)
        assert same_bits(f[0].numpy(), n[0].numpy()) and same_bits(f[1].numpy(), n[1].numpy())


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bitwise_backward_data_blocks(threads):
    """Backward-data with batches that are multiples of 32 (the fused AVX-512 kernel): each output-channel
    count with its own compile-time specialization (32, 64, 128, 256) and a run-time one (40), row tails
    (IC/G * FH * FW not a multiple of 12), two column blocks (batch 64), several positions per chunk
    (local_share), rows that no output reaches (stride 3 with a 1x1 filter: zero gradient), dilation with
    convolution mode, two groups; under 1, 2 and 3 threads (the input-gradient rows are zeroed and written
    out per channel block as the pass goes)."""
    base = dict(N=32, IC=5, IH=5, IW=4, OC=64, FH=3, FW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                sg=(5, 4), G=1, flip=False)
    cases = [dict(base, OC=32), base, dict(base, OC=128), dict(base, OC=256), dict(base, OC=40),
             dict(base, N=64, IC=3), dict(base, sg=(1, 2), IC=4), dict(base, sg=(5, 1), OC=33),
             dict(base, IH=9, IW=7, FH=1, FW=1, stride=(3, 2), padding=(1, 0), sg=(4, 4)),
             dict(base, IH=7, IW=8, dilation=(2, 1), flip=True, sg=(5, 4)),
             dict(base, IC=6, OC=128, G=2, sg=(5, 2))]
    old = heron.get_num_threads()
    heron.set_num_threads(threads)
    try:
        for i, gm in enumerate(cases):
            x, w, _ = make(gm, seed=100 + i)
            if gm["G"] == 1:
                w = w[0]
            k = kw(gm)
            OH = out_size(gm["IH"], gm["FH"], gm["stride"][0], gm["padding"][0], gm["dilation"][0])
            OW = out_size(gm["IW"], gm["FW"], gm["stride"][1], gm["padding"][1], gm["dilation"][1])
            gy = t(rng.uniform(-1, 1, (gm["N"], gm["OC"], OH, OW)))
            gx_f = _ops.local_share_conv2d_backward(gy, t(x), t(w), output_mask=(1, 0), **k)[0]
            gx_n = _ops.local_share_conv2d_backward(gy, t(x), t(w), output_mask=(1, 0), algo="naive", **k)[0]
            assert same_bits(gx_f.numpy(), gx_n.numpy()), gm
            if gm["FH"] == 1:  # input rows between the strided taps get no gradient
                g = gx_f.numpy()
                assert np.all(g[:, :, [0, 3, 6], :] == 0) and np.any(g[:, :, [2, 5, 8], :] != 0)
    finally:
        heron.set_num_threads(old)


def test_local_conv2d_matches_reference_and_naive():
    N, IC, IH, IW, OC = 4, 6, 9, 8, 10
    for (s, p, G) in [((1, 1), (0, 0), 1), ((2, 1), (1, 2), 1), ((1, 1), (1, 1), 2)]:
        OH, OW = out_size(IH, 3, s[0], p[0], 1), out_size(IW, 3, s[1], p[1], 1)
        x = rng.uniform(-1, 1, (N, IC, IH, IW)).astype(np.float32)
        w = rng.uniform(-1, 1, (G, OH, OW, IC // G, 3, 3, OC // G)).astype(np.float32)
        b = rng.uniform(-1, 1, OC).astype(np.float32)
        w_in = w[0] if G == 1 else w
        y = F.local_conv2d(t(x), t(w_in), t(b), stride=s, padding=p)
        np.testing.assert_allclose(y.numpy(), ref_local_share(x, w, b, s, p, 1, (OH, OW), G), rtol=1e-4, atol=1e-4)
        # local is local_share with one spatial group per output position: bitwise the same
        y2 = F.local_share_conv2d(t(x), t(w_in), t(b), stride=s, padding=p, spatial_groups=(OH, OW), groups=G)
        assert same_bits(y.numpy(), y2.numpy())
        assert same_bits(y.numpy(), _ops.local_conv2d(t(x), t(w_in), t(b), stride=s, padding=p, algo="naive").numpy())
    # unbatched input
    y3 = F.local_conv2d(t(x[0]), t(w_in), None, stride=s, padding=p)
    assert y3.shape == (OC, OH, OW)


@pytest.mark.parametrize("G", [1, 2])
def test_sg_one_equals_conv2d(G):
    N, IC, H, W, OC, k = 3, 8, 11, 10, 12, 3
    x = rng.uniform(-1, 1, (N, IC, H, W)).astype(np.float32)
    wc = rng.uniform(-1, 1, (OC, IC // G, k, k)).astype(np.float32)  # conv2d's (K, C/G, kH, kW)
    b = rng.uniform(-1, 1, OC).astype(np.float32)
    # (K, C/G, kH, kW) -> (G, 1, 1, C/G, kH, kW, K/G)
    wl = wc.reshape(G, OC // G, IC // G, k, k).transpose(0, 2, 3, 4, 1)[:, None, None]
    wl = wl if G > 1 else wl[0]
    for s, p, d in [(1, 1, 1), (2, 0, 1), (1, 2, 2)]:
        want = heron.conv2d(t(x), t(wc), t(b), stride=s, padding=p, dilation=d, groups=G).numpy()
        got = F.local_share_conv2d(t(x), t(wl), t(b), stride=s, padding=p, dilation=d, groups=G).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # convolution mode is the cross-correlation with the filter flipped
    got = F.local_share_conv2d(t(x), t(wl), None, padding=1, groups=G, mode="convolution").numpy()
    want = heron.conv2d(t(x), t(np.ascontiguousarray(wc[:, :, ::-1, ::-1])), None, padding=1, groups=G).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_degenerate_sizes():
    # one output position, a single channel, batch 1, 1x1 filters, output size exactly the spatial groups
    for gm in [dict(N=1, IC=1, IH=1, IW=1, OC=1, FH=1, FW=1, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                    sg=(1, 1), G=1, flip=False),
               dict(N=1, IC=1, IH=1, IW=1, OC=1, FH=3, FW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                    sg=(1, 1), G=1, flip=True),
               dict(N=2, IC=3, IH=2, IW=7, OC=5, FH=1, FW=7, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                    sg=(2, 1), G=1, flip=False)]:
        x, w, b = make(gm)
        k = kw(gm)
        y = _ops.local_share_conv2d(t(x), t(w[0]), t(b), **k)
        np.testing.assert_allclose(y.numpy(), ref_local_share(x, w, b, gm["stride"], gm["padding"], gm["dilation"],
                                                              gm["sg"], 1, gm["flip"]), rtol=1e-5, atol=1e-5)
        assert same_bits(y.numpy(), _ops.local_share_conv2d(t(x), t(w[0]), t(b), algo="naive", **k).numpy())
    # an empty batch
    x = np.zeros((0, 2, 4, 4), np.float32)
    w = np.ones((1, 1, 2, 3, 3, 3), np.float32)
    assert F.local_share_conv2d(t(x), t(w)).shape == (0, 3, 2, 2)
    gx, gw = _ops.local_share_conv2d_backward(t(np.zeros((0, 3, 2, 2))), t(x), t(w))
    assert gx.shape == (0, 2, 4, 4) and np.all(gw.numpy() == 0)


def test_gradcheck_float64():
    x = t(rng.uniform(-1, 1, (2, 4, 6, 5)), np.float64, True)
    w = t(rng.uniform(-1, 1, (2, 2, 1, 2, 3, 3, 3)), np.float64, True)  # G=2, SG 2x1 (OH=6, OW=3 below)
    b = t(rng.uniform(-1, 1, 6), np.float64, True)

    def f(x, w, b):
        return F.local_share_conv2d(x, w, b, stride=(1, 2), padding=1, dilation=(1, 1), spatial_groups=(2, 1),
                                    groups=2, mode="convolution")

    assert gradcheck(f, (x, w, b))
    wl = t(rng.uniform(-1, 1, (3, 2, 4, 2, 2, 3)), np.float64, True)  # local: OH=3, OW=2 from 6x5, k2, s2

    def g(x, w, b):
        return F.local_conv2d(x, w, b[:3], stride=2, padding=0)

    assert gradcheck(g, (x, wl, b))


def test_modules_and_training_step():
    heron.manual_seed(0)
    m = heron.nn.Sequential(heron.nn.LocalShareConv2d(3, 8, 3, padding=1, spatial_groups=(2, 2)), heron.nn.ReLU(),
                            heron.nn.LocalConv2d(8, 4, 8, 8, 3, stride=2, padding=1))
    assert tuple(m[0].weight.shape) == (2, 2, 3, 3, 3, 8)
    assert tuple(m[2].weight.shape) == (4, 4, 8, 3, 3, 4)
    x = t(rng.uniform(-1, 1, (5, 3, 8, 8)))
    loss = m(x).square().mean()
    loss.backward()
    assert m[0].weight.grad is not None and m[2].weight.grad is not None and m[2].bias.grad is not None
    g = heron.nn.LocalShareConv2d(4, 6, 3, spatial_groups=(1, 2), groups=2)
    assert tuple(g.weight.shape) == (2, 1, 2, 2, 3, 3, 3)


def test_traced_model_in_session():
    heron.manual_seed(1)
    m = heron.nn.Sequential(heron.nn.LocalShareConv2d(3, 8, 3, padding=1, spatial_groups=(2, 2), mode="convolution"),
                            heron.nn.ReLU(), heron.nn.LocalConv2d(8, 4, 6, 6, 3, padding=0))
    x = rng.uniform(-1, 1, (2, 3, 6, 6)).astype(np.float32)
    want = m(t(x)).numpy()
    traced = heron.jit.trace(m, t(x))
    sess = heron.inference.Session(traced)
    got = sess.run({"input": x})["output"]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert "local_share_conv2d" in sess.graph_text() and "local_conv2d" in sess.graph_text()


def test_bad_arguments():
    x = t(np.zeros((2, 4, 8, 8)))
    with pytest.raises(ValueError, match=r"expected weight of shape \(6, 6, 4, 3, 3, 5\)"):
        F.local_conv2d(x, t(np.zeros((5, 5, 4, 3, 3, 5))))
    with pytest.raises(ValueError, match=r"IC dim must be 4"):
        F.local_conv2d(x, t(np.zeros((6, 6, 3, 3, 3, 5))))
    with pytest.raises(ValueError, match=r"spatial_groups \[4, 4\] must divide the output's 6x6"):
        F.local_share_conv2d(x, t(np.zeros((4, 4, 4, 3, 3, 5))), spatial_groups=4)
    with pytest.raises(ValueError, match=r"expect weight of shape \(2, 3, 4, 3, 3, 5\)"):
        F.local_share_conv2d(x, t(np.zeros((2, 2, 4, 3, 3, 5))), spatial_groups=(2, 3))
    with pytest.raises(ValueError, match="mode must be"):
        F.local_share_conv2d(x, t(np.zeros((1, 1, 4, 3, 3, 5))), mode="correlation")
    with pytest.raises(ValueError, match="mode"):
        _ops.local_share_conv2d(x, t(np.zeros((1, 1, 4, 3, 3, 5))), mode="correlation")
    with pytest.raises(ValueError, match="groups=2 needs a 7-d weight"):
        F.local_share_conv2d(x, t(np.zeros((1, 1, 2, 3, 3, 5))), groups=2)
    with pytest.raises(ValueError, match=r"bias of shape \(5\)"):
        F.local_share_conv2d(x, t(np.zeros((1, 1, 4, 3, 3, 5))), t(np.zeros(4)))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, IC, IH, IW\)"):
        _ops.local_share_conv2d(t(np.zeros((4, 8))), t(np.zeros((1, 1, 4, 3, 3, 5))))
    with pytest.raises(ValueError, match="smaller than the filter"):
        F.local_share_conv2d(t(np.zeros((1, 4, 2, 2))), t(np.zeros((1, 1, 4, 3, 3, 5))))
    with pytest.raises(ValueError, match=r"expected grad of shape \[2, 5, 6, 6\]"):
        _ops.local_share_conv2d_backward(t(np.zeros((2, 5, 5, 5))), x, t(np.zeros((1, 1, 4, 3, 3, 5))))
    with pytest.raises(TypeError):
        F.local_share_conv2d(x, t(np.zeros((1, 1, 4, 3, 3, 5)), np.float64))


@pytest.mark.parametrize("isa", ["avx2", "scalar"])
def test_bitwise_under_other_isas(isa):
    """The same bitwise checks with the SIMD level capped (HERON_SIMD), so the AVX2 and scalar GEMMs are
    exercised on an AVX-512 machine too (a no-op cap on a machine without them)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, HERON_SIMD=isa)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__, "-k",
                        "bitwise_equal_to_naive or bitwise_larger or bitwise_backward_data"], env=env, capture_output=True, text=True,
                       cwd=os.path.dirname(__file__))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
