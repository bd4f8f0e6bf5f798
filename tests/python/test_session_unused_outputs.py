"""Outputs no node reads: a session tells the op (OpCtx::unused_outputs) and max_pool2d then skips
its indices, with a values-only kernel (a separable one for 3x3 / stride 2 / padding 1 windows,
ResNet's stem pool). Oracle: float64 numpy max over -inf padded windows, a nan anywhere in a
window giving nan. A graph that returns the indices still gets them (checked against the eager op)."""
import numpy as np
import pytest

import heron
import heron.nn.functional as F


def numpy_max_pool(x, k, s, p):
    N, C, H, W = x.shape
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    xp = np.full((N, C, H + 2 * p, W + 2 * p), -np.inf)
    xp[:, :, p:p + H, p:p + W] = x
    out = np.empty((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            win = xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, -1)
            out[:, :, i, j] = np.where(np.isnan(win).any(-1), np.nan, win.max(-1))
    return out


def run_session(fn, x, **kw):
    traced = heron.jit.trace(fn, heron.from_numpy(x), check=False)
    s = heron.inference.Session(traced, **kw)
    return [np.asarray(v) for v in s.run({s.input_names[0]: x}).values()]


PLANES = [(112, 112), (56, 57), (7, 9), (1, 1), (2, 3), (33, 65), (5, 40), (17, 16), (8, 31), (3, 100)]
WINDOWS = [(3, 2, 1), (2, 2, 0), (3, 1, 1), (5, 3, 2)]


# Every plane with every window that fits in its padded input (a 2x2 unpadded window has no
# output on a 1x1 plane).
@pytest.mark.parametrize("H,W,k,s,p", [(H, W, k, s, p) for (H, W) in PLANES for (k, s, p) in WINDOWS
                                       if H + 2 * p >= k and W + 2 * p >= k])
def test_values_only_max_pool_against_numpy(H, W, k, s, p):
    rng = np.random.default_rng(H * 1000 + W + k)
    x = rng.standard_normal((2, 3, H, W)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    x[1, 2, -1, -1] = -np.inf
    x[1, 1, H // 2, :] = np.inf
    if W > 4:
        x[0, 1, :, 3] = 5.0  # ties
    x[1, 0] = np.round(x[1, 0])  # many ties
    (y,) = run_session(lambda a: F.max_pool2d(a, k, s, p), x)
    np.testing.assert_array_equal(y, numpy_max_pool(x.astype(np.float64), k, s, p).astype(np.float32))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_planes_of_different_widths_in_one_thread(threads):
    """The separable kernel keeps one row buffer per thread: a narrower plane after a wider one
    must not see the wider row's cells (they are -inf again)."""
    old = heron.get_num_threads()
    try:
        heron.set_num_threads(threads)
        rng = np.random.default_rng(7)
        for W in (64, 9, 40, 3, 17):
            x = (rng.standard_normal((1, 4, 6, W)) - 10).astype(np.float32)  # all below the stale cells
            (y,) = run_session(lambda a: F.max_pool2d(a, 3, 2, 1), x)
            np.testing.assert_array_equal(y, numpy_max_pool(x.astype(np.float64), 3, 2, 1).astype(np.float32))
    finally:
        heron.set_num_threads(old)


def test_indices_still_computed_when_returned():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 20, 23)).astype(np.float32)
    y, idx = run_session(lambda a: F.max_pool2d(a, 3, 2, 1, return_indices=True), x)
    ey, eidx = F.max_pool2d(heron.from_numpy(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ey.numpy())
    np.testing.assert_array_equal(idx, eidx.numpy())
    assert idx.dtype == np.int64


def test_resnet_stem_pool_same_as_unoptimized_run():
    """ResNet-18 (whose pool's indices the session drops) gives the same output as the eager model."""
    import heron.models
    heron.manual_seed(0)
    m = heron.models.resnet18().eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    (y,) = run_session(m, x)
    with heron.no_grad():
        e = m(heron.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, e, rtol=1e-4, atol=1e-4)
