"""The inference fast paths of MobileNetV2's layers against float64 numpy: the small-batch linear
(AVX-512 GEMV: batch 1-4, every register-block and column tail, the OpenBLAS path just past it),
pointwise convolutions on small planes in a session (pixels as rows: whole-image slivers with
vector packing, slivers across images and partial last slivers), and results that are the same
bits at every thread count."""
import re

import numpy as np
import pytest

import heron
from test_conv import ref_conv2d

rng = np.random.default_rng(123)


def t(a):
    return heron.from_numpy(np.ascontiguousarray(a, np.float32))


def with_threads(n, fn):
    prev = heron.get_num_threads()
    heron.set_num_threads(n)
    try:
        return fn()
    finally:
        heron.set_num_threads(prev)


# (M, K, O): M 1-4 take the GEMV (8-row blocks for M <= 2, 4-row blocks for 3-4, single rows
# after them, a masked tail when K % 16 != 0); M = 5 and O < 8 take OpenBLAS.
LINEAR_SHAPES = [(1, 1280, 1000), (1, 16, 8), (1, 17, 9), (2, 40, 23), (3, 33, 13), (4, 100, 70), (4, 1280, 64),
                 (5, 64, 32), (1, 64, 7), (2, 15, 16)]


@pytest.mark.parametrize("M,K,O", LINEAR_SHAPES, ids=[f"{m}x{k}x{o}" for m, k, o in LINEAR_SHAPES])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_small_batch_matches_numpy(M, K, O, bias):
    x = rng.uniform(-1, 1, (M, K))
    w = rng.uniform(-1, 1, (O, K))
    b = rng.uniform(-1, 1, O) if bias else None
    want = x @ w.T + (b if bias else 0)
    got = heron.linear(t(x), t(w), t(b) if bias else None).numpy()
    assert got.dtype == np.float32 and got.shape == (M, O)
    tol = 3e-6 * np.sqrt(K) + 1e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_linear_small_batch_nan_and_inf_propagate():
    x = rng.uniform(-1, 1, (2, 48)).astype(np.float32)
    w = rng.uniform(-1, 1, (24, 48)).astype(np.float32)
    x[0, 5] = np.nan
    w[3, 47] = np.inf
    got = heron.linear(t(x), t(w)).numpy()
    assert np.isnan(got[0]).all()
    assert np.isinf(got[1, 3]) and np.isfinite(np.delete(got[1], 3)).all()


@pytest.mark.parametrize("M,K,O", [(1, 1280, 1000), (3, 77, 131)])
def test_linear_small_batch_same_bits_at_any_thread_count(M, K, O):
    x, w, b = t(rng.standard_normal((M, K))), t(rng.standard_normal((O, K))), t(rng.standard_normal(O))
    res = [with_threads(n, lambda: heron.linear(x, w, b).numpy().copy()) for n in (1, 2, 3, 2)]
    for r in res[1:]:
        np.testing.assert_array_equal(r, res[0])


def test_classifier_in_a_session_equals_eager():
    x = rng.standard_normal((1, 1280)).astype(np.float32)
    wt, bt = t(rng.standard_normal((1000, 1280)) / 36), t(rng.standard_normal(1000))
    traced = heron.jit.trace(lambda xx: heron.linear(xx, wt, bt), t(x))
    got = heron.inference.Session(traced).run({"input": x})["output"]
    np.testing.assert_array_equal(got, heron.linear(t(x), wt, bt).numpy())


# (N, C, H, W, K, residual): 1x1 convolutions on small planes in a session (frozen weights), the
# pixels-as-rows kernel: 7x7 (49 = 7 slivers of 7 pixels, one image each: vector packing), batch 2
# (slivers never straddle images), 5x5 at batch 3 (25 pixels: slivers across images, scalar
# packing), 6x6 (36: a partial last sliver), MobileNetV2's 960 -> 160 and 320 -> 1280 shapes; then
# larger planes on the direct kernel.
POINTWISE = [(1, 960, 7, 7, 160, True), (1, 320, 7, 7, 1280, False), (2, 64, 7, 7, 96, False), (3, 32, 5, 5, 64, True),
             (1, 48, 6, 6, 32, False), (2, 20, 3, 3, 32, True),
             # the direct kernel (32-pixel panels): 196 = 6 x 32 + 4 and 784 = 24 x 32 + 16 end with a
             # half-width panel, 12544 = 392 x 32 with none; 16 output rows; k blocks (1x1: 1300 = 3 x 434 rows)
             (1, 576, 14, 14, 96, True), (1, 64, 14, 14, 384, False), (1, 32, 28, 28, 192, False), (1, 32, 112, 112, 16, False),
             (2, 40, 9, 9, 24, True),  # 1x1 with panels read straight from x (and a packed partial one)
             (2, 24, 14, 14, 40, True), (1, 1300, 9, 9, 24, True),
             # batch > 1 on larger planes (inputs over 1 MB), where items hold several panels and each
             # one prefetches the next one's rows: read in place (MobileNetV2's 144 -> 24 reduction) and
             # packed (96 -> 144)
             (2, 144, 56, 56, 24, True), (4, 96, 28, 28, 144, False), (2, 192, 28, 28, 32, True),
             # pixels as rows reading x in place (1x1, 7 divides the plane): batch > 1, 7 x 14 planes,
             # the fewest reduction rows it takes (16), two k blocks (960 = 2 x 480)
             (3, 960, 7, 7, 160, True), (2, 40, 7, 14, 64, True), (2, 16, 7, 7, 32, False), (1, 576, 7, 7, 160, False),
             # reductions with more than 8 slivers read in place on planes of <= 256 pixels: 14x14 at
             # batch 2, 13x13 (a partial 9-pixel panel, packed), 16x16 (the largest such plane); 17x17
             # and an expansion (more slivers than rows per 8) are packed
             (2, 576, 14, 14, 96, True), (2, 200, 13, 13, 72, True), (1, 100, 16, 16, 72, False), (1, 100, 17, 17, 72, True),
             (2, 64, 14, 14, 384, True),
             # pooled tails (1x1, batch > 1, planes ending with < 16 pixels of a panel): 8 images' 4-pixel
             # tails in one panel (14x14), 3 in one (10x10), 13-pixel tails two to a panel with an odd
             # image left and rows past K (20), planes of a tail only (3x5) with three k blocks
             (8, 576, 14, 14, 96, True), (3, 100, 10, 10, 72, True), (5, 40, 5, 9, 20, False), (2, 1300, 3, 5, 20, True),
             (4, 24, 14, 14, 40, False)]


def pointwise_session(N, C, H, W, K, residual, threads=None):
    x = rng.uniform(-1, 1, (N, C, H, W)).astype(np.float32)
    w = (rng.uniform(-1, 1, (K, C, 1, 1)) / np.sqrt(C)).astype(np.float32)
    b = rng.uniform(-1, 1, K).astype(np.float32)
    r = rng.uniform(-1, 1, (N, K, H, W)).astype(np.float32) if residual else None
    wt, bt = t(w), t(b)

    def fn(xx, rr=None):
        y = heron.conv2d(xx, wt, bt)
        if rr is not None:
            y = y + rr  # a graph input: fused as the residual (an initializer would not be)
        return heron.clamp(y, 0.0, 6.0)

    ex = (t(x), t(r)) if residual else t(x)
    sess = heron.inference.Session(heron.jit.trace(fn, ex, input_names=["input", "residual"][:1 + residual]), threads=threads)
    want = ref_conv2d(x, w, b) + (r if residual else 0)
    feeds = {"input": x, "residual": r} if residual else {"input": x}
    return sess, feeds, np.clip(want, 0, 6)


@pytest.mark.parametrize("shape", POINTWISE, ids=lambda s: "x".join(map(str, s[:5])) + ("-res" if s[5] else ""))
def test_pointwise_small_planes_in_a_session(shape):
    sess, feeds, want = pointwise_session(*shape)
    assert re.findall(r"= (\w+)\(", sess.graph_text()) == ["conv2d_fused"], sess.graph_text()
    for _ in range(2):  # the second run uses the cached packed weights
        got = sess.run(feeds)["output"]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_pooled_tails_keep_nan_and_clamp():
    # 10x10 planes at batch 3: pixels 96-99 of every image go through one pooled panel; a nan in
    # image 1's tail and one in its main panels must give nan at exactly those pixels (all channels)
    sess, feeds, _ = pointwise_session(3, 100, 10, 10, 72, True)
    x = feeds["input"].copy()
    x[1, 7, 9, 8] = np.nan  # pixel 98: pooled tail
    x[1, 3, 0, 5] = np.nan  # pixel 5: a main panel
    feeds = dict(feeds, input=x)
    got = sess.run(feeds)["output"]
    nan = np.isnan(got)
    assert nan[1, :, 9, 8].all() and nan[1, :, 0, 5].all() and nan.sum() == 2 * 72
    assert ((got[~nan] >= 0) & (got[~nan] <= 6)).all()


@pytest.mark.parametrize("shape", [POINTWISE[0], POINTWISE[3], (2, 24, 14, 14, 40, True), (1, 576, 14, 14, 96, True),
                                   (2, 144, 56, 56, 24, True), (4, 96, 28, 28, 144, False), (3, 960, 7, 7, 160, True),
                                   (2, 64, 14, 14, 384, True), (2, 200, 13, 13, 72, True), (8, 576, 14, 14, 96, True),
                                   (5, 40, 5, 9, 20, True)],
                         ids=["7x7", "5x5-batch3", "in-place-panels", "in-place-14x14-reduction", "in-place-batch2", "packed-batch4",
                              "7x7-batch3", "packed-14x14", "in-place-13x13-reduction", "pooled-tails-batch8",
                              "pooled-tails-odd"])
def test_pointwise_small_planes_same_bits_at_any_thread_count(shape):
    sess, feeds, _ = pointwise_session(*shape)
    res = [with_threads(n, lambda: sess.run(feeds)["output"].copy()) for n in (1, 2, 3, 2)]
    for r in res[1:]:
        np.testing.assert_array_equal(r, res[0])


# (N, C, H, W, K, (kh, kw), (sh, sw), (ph, pw)): stride-2-in-width convolutions with few reduction
# rows (C * kh * kw <= 256, kw >= 3) run on an input split into even and odd columns once per call:
# MobileNetV2's and ResNet's stems, odd sizes, padding 0 to 3, even kernel widths, stride 1 in
# height, the largest and (just past it) too many reduction rows, panels over rows and images.
STRIDE2 = [(1, 3, 224, 224, 32, (3, 3), (2, 2), (1, 1)), (2, 3, 37, 41, 16, (7, 7), (2, 2), (3, 3)),
           (1, 4, 9, 8, 8, (3, 3), (2, 2), (0, 0)), (3, 2, 15, 33, 24, (5, 3), (2, 2), (2, 2)),
           (1, 8, 6, 35, 8, (3, 4), (2, 2), (1, 1)), (1, 28, 10, 10, 16, (3, 3), (2, 2), (1, 1)),
           (1, 29, 10, 10, 16, (3, 3), (2, 2), (1, 1)), (2, 3, 11, 20, 8, (3, 3), (1, 2), (1, 0)),
           (1, 1, 3, 3, 8, (3, 3), (2, 2), (1, 1)),
           # whole panels inside one output row (read in place through row pointers, zero rows for
           # the padding) next to panels across rows (copied)
           (2, 3, 9, 150, 16, (3, 3), (2, 2), (1, 1)), (1, 3, 70, 70, 8, (7, 7), (2, 2), (3, 3))]


@pytest.mark.parametrize("shape", STRIDE2, ids=lambda s: f"{s[0]}x{s[1]}x{s[2]}x{s[3]}-K{s[4]}-k{s[5][0]}{s[5][1]}-s{s[6][0]}{s[6][1]}-p{s[7][0]}{s[7][1]}")
def test_stride2_stems_match_reference(shape):
    N, C, H, W, K, k, s, p = shape
    x = rng.uniform(-1, 1, (N, C, H, W))
    w = rng.uniform(-1, 1, (K, C) + k) / np.sqrt(C * k[0] * k[1])
    b = rng.uniform(-1, 1, K)
    want = ref_conv2d(x, w, b, stride=s, padding=p)
    got = heron.conv2d(t(x), t(w), t(b), stride=list(s), padding=list(p)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    r = rng.uniform(-1, 1, want.shape)
    got = heron.conv2d_fused(t(x), t(w), t(b), t(r), stride=list(s), padding=list(p), min=0.0, max=6.0).numpy()
    np.testing.assert_allclose(got, np.clip(want + r, 0, 6), rtol=1e-4, atol=1e-4)


def test_stem_same_bits_at_any_thread_count_and_in_a_session():
    x = rng.uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    wt = t(rng.uniform(-1, 1, (32, 3, 3, 3)) / 5)
    bt = t(rng.uniform(-1, 1, 32))
    res = [with_threads(n, lambda: heron.conv2d(t(x), wt, bt, stride=2, padding=1).numpy().copy()) for n in (1, 2, 3, 2)]
    for r in res[1:]:
        np.testing.assert_array_equal(r, res[0])
    sess = heron.inference.Session(heron.jit.trace(lambda xx: heron.conv2d(xx, wt, bt, stride=2, padding=1), t(x)))
    np.testing.assert_array_equal(sess.run({"input": x})["output"], res[0])


# 1x1 convolutions whose last 32-pixel panel holds 1-8 pixels (14x14 at batch 1: 4) run that tail
# as pixels-as-rows FMAs on 8 output channels. Planes with every such tail length, reductions over
# one and two k blocks (> 640 input channels), output channels not a multiple of 8, grouped, with
# bias, residual, clamp and a nan; eager and in a session, against float64 numpy.
NARROW_TAILS = [(1, 20, 9, 3, 11), (1, 24, 16, 2, 17), (1, 384, 64, 14, 14), (1, 70, 13, 5, 7), (1, 16, 24, 4, 9),
                (1, 33, 40, 2, 19), (1, 10, 12, 37, 1), (1, 30, 20, 1, 7), (1, 1000, 24, 5, 8), (1, 96, 576, 14, 14), (2, 12, 18, 3, 13)]


@pytest.mark.parametrize("N,C,K,H,W", NARROW_TAILS, ids=[f"{n}x{c}x{h}x{w}-{k}" for n, c, k, h, w in NARROW_TAILS])
def test_pointwise_narrow_tail_matches_numpy(N, C, K, H, W):
    x = rng.uniform(-1, 1, (N, C, H, W))
    x[0, 1, H - 1, W - 1] = np.nan  # the last pixel: in the tail
    w = rng.uniform(-1, 1, (K, C, 1, 1)) / np.sqrt(C)
    b = rng.uniform(-1, 1, K)
    r = rng.uniform(-1, 1, (N, K, H, W))
    want = ref_conv2d(x, w, b)
    tol = 3e-6 * np.sqrt(C) + 1e-6
    np.testing.assert_allclose(heron.conv2d(t(x), t(w), t(b)).numpy(), want, rtol=tol, atol=tol)
    fused = heron.conv2d_fused(t(x), t(w), t(b), t(r), min=-0.5, max=0.5).numpy()
    want_f = np.clip(want + r, -0.5, 0.5)
    want_f[np.isnan(want)] = np.nan
    np.testing.assert_allclose(fused, want_f, rtol=tol, atol=tol)
    assert np.isnan(fused[0, :, H - 1, W - 1]).all()
    if N == 2:  # grouped: 3 groups of C/3 -> K/3
        wg = rng.uniform(-1, 1, (K, C // 3, 1, 1))
        np.testing.assert_allclose(heron.conv2d(t(x), t(wg), t(b), groups=3).numpy(), ref_conv2d(x, wg, b, groups=3),
                                   rtol=tol, atol=tol)
    # in a session (frozen weights), at 1 and 2 threads: the same bits
    traced = heron.jit.trace(lambda a: heron.conv2d(a, t(w), t(b)), (t(x),), input_names=["input"])
    outs = [with_threads(n, lambda: heron.inference.Session(traced, threads=n).run({"input": x.astype(np.float32)})) for n in (1, 2)]
    a, c = (list(o.values())[0] for o in outs)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(a, want, rtol=tol, atol=tol)
