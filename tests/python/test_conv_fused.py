"""conv2d_fused (conv + bias + residual + clamp in one pass) and the float32 convolution fast paths
(implicit GEMM, depthwise, SIMD max pooling) against the float64 numpy references of
test_conv.py: random geometries over every path (1x1, stride-1 row copies, gathers, k blocks,
several panels per image, output-channel splits, groups, depthwise), nan through the clamp, bad
arguments, and weights that change between calls (no stale packed weights)."""
import random

import numpy as np
import pytest

import heron
from test_conv import ref_conv2d, ref_max_pool2d

rng = np.random.default_rng(7)


def fused_ref(x, w, b, r, lo, hi, **kw):
    y = ref_conv2d(x, w, b, **kw)
    if r is not None:
        y = y + r
    if lo is not None:
        y = np.where(np.isnan(y), y, np.maximum(y, lo))
    if hi is not None:
        y = np.where(np.isnan(y), y, np.minimum(y, hi))
    return y


def t(a):
    return heron.from_numpy(np.ascontiguousarray(a, np.float32))


def geometries(n, seed):
    r = random.Random(seed)
    out = []
    while len(out) < n:
        depthwise = r.random() < 0.3
        G = r.choice([1, 2, 4, 32, 33]) if depthwise else r.choice([1, 1, 1, 2, 3])
        Cg = 1 if depthwise else r.choice([1, 2, 3, 8, 17, 70])
        Kg = 1 if depthwise else r.choice([1, 3, 8, 9, 16, 40])
        kh, kw = r.choice([(1, 1), (3, 3), (1, 3), (5, 2), (7, 7)])
        sh, sw = r.choice([(1, 1), (1, 1), (2, 2), (1, 2), (3, 1)])
        ph, pw = r.choice([(0, 0), (1, 1), (2, 0), (3, 3)])
        dh, dw = r.choice([(1, 1), (1, 1), (2, 2), (1, 3)])
        H, W = r.randint(1, 24), r.randint(1, 45)
        if H + 2 * ph < dh * (kh - 1) + 1 or W + 2 * pw < dw * (kw - 1) + 1:
            continue
        out.append(dict(N=r.choice([1, 2, 3]), C=Cg * G, K=Kg * G, H=H, W=W, k=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                        dilation=(dh, dw), groups=G, bias=r.random() < 0.6, res=r.random() < 0.5,
                        clamp=r.choice([(None, None), (0, None), (0, 6), (None, 0.25), (-0.5, 0.5)])))
    return out


def run_case(c):
    x = rng.uniform(-1, 1, (c["N"], c["C"], c["H"], c["W"]))
    w = rng.uniform(-1, 1, (c["K"], c["C"] // c["groups"]) + c["k"])
    b = rng.uniform(-1, 1, c["K"]) if c["bias"] else None
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
    want = ref_conv2d(x, w, b, **kw)
    r = rng.uniform(-1, 1, want.shape) if c["res"] else None
    lo, hi = c["clamp"]
    tol = 2e-5 * np.sqrt(w[0].size) + 1e-5
    got = heron.conv2d(t(x), t(w), None if b is None else t(b), stride=list(c["stride"]), padding=list(c["padding"]),
                       dilation=list(c["dilation"]), groups=c["groups"]).numpy()
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    got = heron.conv2d_fused(t(x), t(w), None if b is None else t(b), None if r is None else t(r), stride=list(c["stride"]),
                             padding=list(c["padding"]), dilation=list(c["dilation"]), groups=c["groups"], min=lo, max=hi).numpy()
    np.testing.assert_allclose(got, fused_ref(x, w, b, r, lo, hi, **kw), rtol=tol, atol=tol)


@pytest.mark.parametrize("c", geometries(120, 1), ids=lambda c: f"{c['N']}x{c['C']}x{c['H']}x{c['W']}-K{c['K']}-g{c['groups']}")
def test_conv2d_float32_paths_match_reference(c):
    run_case(c)


@pytest.mark.parametrize("shape", [
    # (N, C, H, W, K, k, stride, padding): k blocks (C*k*k > 256), several panels and chunks per
    # image, output-channel splits at batch 1, ResNet / MobileNet layer shapes.
    (1, 64, 30, 30, 64, 3, 1, 1),
    (2, 40, 17, 19, 24, 3, 2, 1),
    (1, 128, 7, 7, 96, 3, 1, 1),
    (1, 300, 9, 9, 16, 1, 1, 0),
    (2, 16, 45, 45, 40, 1, 1, 0),
    (1, 3, 60, 60, 16, 7, 2, 3),
    # Winograd F(2x2, 3x3): odd output sizes (partial tiles), panels across images and tile rows,
    # padding 0 and 2, channel blocks (C > 256)
    (2, 20, 15, 17, 24, 3, 1, 1),
    (3, 300, 9, 11, 40, 3, 1, 0),
    (2, 16, 13, 13, 16, 3, 1, 2),
    (4, 32, 8, 8, 64, 3, 1, 1),
    (1, 32, 11, 11, 24, 3, 1, 1),
    # inputs over 1 MB (an item's input rows are read once first), plain loads up to the end of
    # the last plane: stride-2 3x3 and 1x1 (odd width), stride-1 5x5 row copies
    (4, 32, 48, 47, 24, 3, 2, 1),
    (4, 64, 34, 35, 48, 1, 2, 0),
    (4, 24, 61, 59, 16, 5, 1, 2),
    # stride-2 stems read in place from the deinterleaved input, half a panel per output row:
    # ResNet-18's (112-wide rows, halves across rows), 32-wide rows, a half-panel tail (17 x 16)
    (1, 3, 224, 224, 64, 7, 2, 3),
    (2, 3, 64, 64, 32, 3, 2, 1),
    (1, 3, 34, 32, 16, 3, 2, 1),
])
def test_conv2d_fused_large_shapes(shape):
    N, C, H, W, K, k, s, p = shape
    x = rng.uniform(-1, 1, (N, C, H, W))
    w = rng.uniform(-1, 1, (K, C, k, k)) / np.sqrt(C * k * k)
    b = rng.uniform(-1, 1, K)
    want = ref_conv2d(x, w, b, stride=s, padding=p)
    r = rng.uniform(-1, 1, want.shape)
    got = heron.conv2d_fused(t(x), t(w), t(b), t(r), stride=s, padding=p, min=0.0).numpy()
    np.testing.assert_allclose(got, np.maximum(want + r, 0), rtol=1e-4, atol=1e-4)


def test_conv2d_fused_clamp_keeps_nan_and_float64():
    x = rng.uniform(-1, 1, (1, 2, 5, 5))
    x[0, 0, 2, 2] = np.nan
    w = rng.uniform(-1, 1, (3, 2, 3, 3))
    for dt in (np.float32, np.float64):
        y = heron.conv2d_fused(heron.from_numpy(x.astype(dt)), heron.from_numpy(w.astype(dt)), padding=1, min=0, max=6).numpy()
        assert y.dtype == dt
        assert np.isnan(y[:, :, 1:4, 1:4]).all() and not np.isnan(y[:, :, 0, 0]).any()
        finite = y[~np.isnan(y)]
        assert finite.min() >= 0 and finite.max() <= 6


def test_conv2d_fused_errors():
    x, w = t(np.zeros((1, 2, 5, 5))), t(np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="residual of shape"):
        heron.conv2d_fused(x, w, None, t(np.zeros((1, 3, 5, 5))))
    with pytest.raises(ValueError, match="min .* must be <= max"):
        heron.conv2d_fused(x, w, min=1.0, max=0.0)
    with pytest.raises(TypeError, match="residual"):
        heron.conv2d_fused(x, w, None, heron.from_numpy(np.zeros((1, 3, 3, 3))))


def test_weights_changed_between_calls_are_seen():
    # Eager weights may change in place (optimizer steps, numpy views): never served stale packs.
    x = rng.uniform(-1, 1, (1, 8, 10, 10)).astype(np.float32)
    wn = rng.uniform(-1, 1, (16, 8, 3, 3)).astype(np.float32)
    w = heron.from_numpy(wn)  # shares memory with wn
    y1 = heron.conv2d(t(x), w, padding=1).numpy()
    np.testing.assert_allclose(y1, ref_conv2d(x, wn, padding=1), rtol=1e-4, atol=1e-4)
    wn *= -2.0  # through numpy: no op sees it
    y2 = heron.conv2d(t(x), w, padding=1).numpy()
    np.testing.assert_allclose(y2, -2.0 * y1, rtol=1e-4, atol=1e-4)
    w.copy_(heron.from_numpy(wn * 0.25))  # through an in-place op: -0.5 x the first weights
    y3 = heron.conv2d(t(x), w, padding=1).numpy()
    np.testing.assert_allclose(y3, -0.5 * y1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", range(40))
def test_max_pool2d_float32_matches_reference_with_ties_and_infinities(case):
    r = random.Random(case)
    k = (r.randint(1, 4), r.randint(1, 4))
    s = (r.randint(1, 3), r.randint(1, 3))
    d = r.choice([(1, 1), (1, 1), (2, 1), (1, 2)])
    p = (r.randint(0, k[0] // 2), r.randint(0, k[1] // 2))
    H, W = r.randint(d[0] * (k[0] - 1) + 1, 20), r.randint(d[1] * (k[1] - 1) + 1, 40)
    x = np.round(rng.standard_normal((2, 3, H, W)), 1)  # many ties: the first maximum must win
    x[rng.random(x.shape) < 0.05] = -np.inf
    y, i = heron.max_pool2d(t(x), kernel_size=list(k), stride=list(s), padding=list(p), dilation=list(d))
    want, widx = ref_max_pool2d(x, k, s, p, d)
    np.testing.assert_array_equal(y.numpy(), want.astype(np.float32))
    np.testing.assert_array_equal(i.numpy(), widx)


@pytest.mark.parametrize("shape", [
    # (N, C, H, W, K, k, stride, padding): small planes in a session (frozen weights), where the
    # pixels-as-rows kernel runs: 7x7 (49 = 7 x 7 pixels), 5x5 (25: a partial last sliver),
    # slivers across images, strided, 1x1.
    (1, 64, 7, 7, 64, 3, 1, 1),
    (3, 16, 5, 5, 32, 3, 1, 1),
    (2, 32, 14, 14, 64, 3, 2, 1),
    (2, 48, 7, 7, 96, 1, 1, 0),
])
def test_small_planes_in_a_session(shape):
    N, C, H, W, K, k, s, p = shape
    x = rng.uniform(-1, 1, (N, C, H, W)).astype(np.float32)
    w = (rng.uniform(-1, 1, (K, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    b = rng.uniform(-1, 1, K).astype(np.float32)
    want = ref_conv2d(x, w, b, stride=s, padding=p)
    residual = want.shape == x.shape  # the block's input as the residual when shapes allow
    wt, bt = t(w), t(b)

    def fn(xx):
        y = heron.conv2d(xx, wt, bt, stride=s, padding=p)
        return heron.relu(y + xx if residual else y)

    traced = heron.jit.trace(fn, t(x))
    sess = heron.inference.Session(traced)
    assert heron_ops(sess) == ["conv2d_fused"], sess.graph_text()
    expect = np.maximum(want + (x if residual else 0), 0)
    for _ in range(2):  # the second run uses the cached packed weights
        got = sess.run({"input": x})["output"]
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [
    # Pixels as rows at batch > 1: packed pixels over 1 MB, several k blocks and output-channel
    # panels (5: an odd count), slivers across images, at 1-3 threads.
    (8, 128, 7, 7, 256, 3, 1, 1),
    (6, 256, 7, 7, 160, 3, 1, 1),
    (6, 960, 7, 7, 128, 1, 1, 0),
])
def test_small_planes_large_batch_in_a_session(shape, threads):
    N, C, H, W, K, k, s, p = shape
    x = rng.uniform(-1, 1, (N, C, H, W)).astype(np.float32)
    w = (rng.uniform(-1, 1, (K, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    b = rng.uniform(-1, 1, K).astype(np.float32)
    r = rng.uniform(-1, 1, (N, K, H, W)).astype(np.float32)
    want = np.clip(ref_conv2d(x, w, b, stride=s, padding=p) + r, 0, 6)
    wt, bt = t(w), t(b)
    traced = heron.jit.trace(lambda xx, rr: heron.clamp(heron.conv2d(xx, wt, bt, stride=s, padding=p) + rr, 0.0, 6.0), (t(x), t(r)),
                             input_names=["input", "residual"])
    sess = heron.inference.Session(traced, threads=threads)
    assert heron_ops(sess) == ["conv2d_fused"], sess.graph_text()
    got = sess.run({"input": x, "residual": r})["output"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [
    # Winograd F(2x2, 3x3) in a session (frozen weights: from 32 tiles): the input transform reads
    # rows of tiles with plain loads (halves of 16 tiles in one or several tile rows and images,
    # columns and rows outside the image, padding 0-2) or, next to the ends of the input, gathers.
    (1, 16, 12, 12, 16, 1),
    (2, 20, 15, 17, 24, 1),
    (3, 17, 9, 33, 16, 0),
    (1, 24, 31, 30, 32, 2),
    (2, 16, 7, 64, 16, 1),
    (1, 32, 56, 56, 16, 1),
])
def test_winograd_input_rows_in_a_session(shape):
    N, C, H, W, K, p = shape
    x = rng.uniform(-1, 1, (N, C, H, W)).astype(np.float32)
    w = (rng.uniform(-1, 1, (K, C, 3, 3)) / np.sqrt(C * 9)).astype(np.float32)
    b = rng.uniform(-1, 1, K).astype(np.float32)
    want = np.maximum(ref_conv2d(x, w, b, stride=1, padding=p), 0)
    wt, bt = t(w), t(b)
    traced = heron.jit.trace(lambda xx: heron.relu(heron.conv2d(xx, wt, bt, padding=p)), t(x))
    for threads in (1, 2):
        got = heron.inference.Session(traced, threads=threads).run({"input": x})["output"]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def heron_ops(sess):
    import re
    return re.findall(r"= (\w+)\(", sess.graph_text())


# The four epilogues (residual or not, clamp or not) of the depthwise kernels.
EPILOGUES = [(False, None, None), (True, None, None), (False, 0.0, 6.0), (True, -0.5, 0.7)]


def depthwise_case(N, C, H, W, k, s, p, d, epilogue):
    """(heron's conv2d_fused, the float64 numpy reference) for one depthwise geometry."""
    residual, lo, hi = epilogue
    x = rng.uniform(-1, 1, (N, C, H, W))
    w = rng.uniform(-1, 1, (C, 1, k, k))
    b = rng.uniform(-1, 1, C)
    y = ref_conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=C)
    r = rng.uniform(-1, 1, y.shape) if residual else None
    want = fused_ref(x, w, b, r, lo, hi, stride=s, padding=p, dilation=d, groups=C)
    got = heron.conv2d_fused(t(x), t(w), t(b), None if r is None else t(r), stride=s, padding=p, dilation=d, groups=C,
                             min=lo, max=hi).numpy()
    return got, want


@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 0, 1), (3, 2, 0, 1), (3, 1, 2, 1), (3, 2, 2, 1),
                                     (5, 1, 2, 1), (3, 1, 2, 2), (3, 2, 1, 2)])
def test_depthwise_every_small_width(k, s, p, d):
    # Every plane width 1..40 and heights 1..20: the 3x3 paths (stride-1 rows in steps of 8, 7 or
    # 4 output rows, the flat path of planes at most 8 wide, stride-2 rows and pairs of 7-wide
    # rows) with their interior and edge column blocks, the general path (5x5, dilation), every
    # epilogue, two images. Stride 2 also over 63..70 wide (outputs > 32 wide: 2-row steps).
    C = 3
    heights = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 14, 15, 16, 17, 20]
    widths = list(range(1, 41)) + ([63, 64, 65, 66, 67, 70] if s == 2 else [])
    for H in heights:
        for W in widths:
            if H + 2 * p < d * (k - 1) + 1 or W + 2 * p < d * (k - 1) + 1:
                continue
            got, want = depthwise_case(2, C, H, W, k, s, p, d, EPILOGUES[(H + W) % 4])
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"H={H} W={W}")


# MobileNetV2's depthwise layers (C, H = W, stride), 3x3, padding 1.
MOBILENET_V2_DW = [(32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1), (192, 28, 2), (384, 14, 1),
                   (576, 14, 1), (576, 14, 2), (960, 7, 1)]


@pytest.mark.parametrize("C,H,s", MOBILENET_V2_DW, ids=[f"{c}x{h}s{s}" for c, h, s in MOBILENET_V2_DW])
def test_depthwise_mobilenet_v2_shapes(C, H, s):
    # Each layer with its ReLU6, and with a residual and no clamp, batch 1 and 2 (every plane a
    # different channel's weights and bias: a plane or channel offset error shows).
    for n, epilogue in [(1, EPILOGUES[2]), (2, EPILOGUES[1])]:
        got, want = depthwise_case(n, C, H, H, 3, s, 1, 1, epilogue)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"N={n}")


@pytest.mark.parametrize("shape,p", [((8, 96, 112, 112), 1), ((1, 3, 1201, 1203), 0)], ids=["mbv2-batch8", "odd"])
def test_depthwise_stride2_large_input(shape, p):
    # Inputs over 16 MB take one output row per step of the stride-2 kernel (streams from memory).
    N, C, H, W = shape
    got, want = depthwise_case(N, C, H, W, 3, 2, p, 1, EPILOGUES[3 if p else 2])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("C,H,s,p", [(32, 112, 1, 1), (96, 112, 2, 1), (144, 56, 2, 1), (192, 28, 1, 1), (576, 14, 1, 1),
                                     (576, 14, 2, 1), (960, 7, 1, 1), (7, 23, 1, 0), (7, 37, 2, 2)])
def test_depthwise_same_bits_at_any_thread_count(C, H, s, p):
    # Planes are split over the pool; each output is summed by one thread in a fixed order.
    x = t(rng.uniform(-1, 1, (2, C, H, H)))
    w = t(rng.uniform(-1, 1, (C, 1, 3, 3)))
    b = t(rng.uniform(-1, 1, C))
    prev = heron.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3, 4):
            heron.set_num_threads(threads)
            results.append(heron.conv2d_fused(x, w, b, stride=s, padding=p, groups=C, min=0.0, max=6.0).numpy().copy())
    finally:
        heron.set_num_threads(prev)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
