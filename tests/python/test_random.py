"""Random ops (Philox4x32-10): a pure-Python reference of the generator, determinism across seeds and
thread counts, the default generator, statistics (numpy as the oracle) and errors."""
import numpy as np
import pytest

import heron
from heron import _ops

FLOATS = [heron.float32, heron.float64, heron.float16, heron.bfloat16]
INTS = [heron.int8, heron.uint8, heron.int32, heron.int64]
fids = [str(d) for d in FLOATS]
iids = [str(d) for d in INTS]
MASK = 0xFFFFFFFF


def philox4x32(ctr, key):
    """Philox4x32-10, written from the paper's description (Salmon et al., SC'11)."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK, p1 & MASK, ((p0 >> 32) ^ c3 ^ k1) & MASK, p0 & MASK
        k0 = (k0 + 0x9E3779B9) & MASK
        k1 = (k1 + 0xBB67AE85) & MASK
    return c0, c1, c2, c3


def block(seed, b):
    return philox4x32((b & MASK, b >> 32, 0, 0), (seed & MASK, seed >> 32))


def N(t):
    if t.dtype == heron.bfloat16:
        t = heron.cast(t, heron.float32)
    return t.numpy().copy()


@pytest.fixture
def restore_threads():
    n = heron.get_num_threads()
    yield
    heron.set_num_threads(n)


def test_philox_known_answer():
    assert philox4x32((0, 0, 0, 0), (0, 0)) == (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)


def test_rand_matches_reference():
    seed = 2024
    got = N(heron.rand(11, seed=seed))
    want = [(block(seed, i // 4)[i % 4] >> 8) / 2.0 ** 24 for i in range(11)]
    np.testing.assert_array_equal(got, np.array(want, np.float32))
    got = N(heron.rand(5, dtype=heron.float64, seed=seed))
    want = []
    for i in range(5):
        w = block(seed, i // 2)
        x = (w[2 * (i % 2)] << 32) | w[2 * (i % 2) + 1]
        want.append((x >> 11) / 2.0 ** 53)
    np.testing.assert_array_equal(got, np.array(want))


def test_randint_matches_reference():
    got = N(heron.randint(-5, 7, (9,), seed=3))
    want = []
    for i in range(9):
        w = block(3, i // 2)
        x = (w[2 * (i % 2)] << 32) | w[2 * (i % 2) + 1]
        want.append(-5 + x % 12)
    np.testing.assert_array_equal(got, np.array(want))


def test_randperm_matches_reference():
    n, seed = 20, 9
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        w = block(seed, i)
        j = ((w[0] << 32) | w[1]) % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    np.testing.assert_array_equal(N(heron.randperm(n, seed=seed)), np.array(perm))


@pytest.mark.parametrize("dt", FLOATS, ids=fids)
def test_seeded_is_reproducible(dt):
    a = N(heron.rand(3, 5, dtype=dt, seed=42))
    np.testing.assert_array_equal(a, N(heron.rand(3, 5, dtype=dt, seed=42)))
    assert not np.array_equal(a, N(heron.rand(3, 5, dtype=dt, seed=43)))
    b = N(heron.randn(7, dtype=dt, seed=42))
    np.testing.assert_array_equal(b, N(heron.randn(7, dtype=dt, seed=42)))


def test_thread_count_independent(restore_threads):
    n = 300001

    def draw():
        heron.manual_seed(31)
        return [N(heron.rand(n, seed=1)), N(heron.rand(n, dtype=heron.float16, seed=1)),
                N(heron.randn(n, dtype=heron.float64, seed=2)), N(heron.randint(0, 1000, (n,), seed=3)),
                N(heron.bernoulli(heron.full((n,), 0.3), seed=4)), N(heron.rand(n)), N(heron.randn(n))]

    heron.set_num_threads(1)
    ref = draw()
    for t in (2, 4):
        heron.set_num_threads(t)
        for a, b in zip(ref, draw()):
            np.testing.assert_array_equal(a, b)


def test_default_generator():
    heron.manual_seed(5)
    a = N(heron.rand(8))
    b = N(heron.rand(8))
    assert not np.array_equal(a, b)
    heron.manual_seed(5)
    np.testing.assert_array_equal(a, N(heron.rand(8)))
    # a seed argument leaves the default generator alone
    heron.manual_seed(5)
    heron.rand(8, seed=123)
    np.testing.assert_array_equal(a, N(heron.rand(8)))
    # the default generator's first stream after manual_seed(s) is the stream of seed=s
    heron.manual_seed(123)
    np.testing.assert_array_equal(N(heron.rand(8)), N(heron.rand(8, seed=123)))


@pytest.mark.parametrize("dt", FLOATS, ids=fids)
def test_rand_statistics(dt):
    x = N(_ops.rand([200000], -2.0, 3.0, dt, None, 7)).astype(np.float64)
    assert x.min() >= -2.0 and x.max() < 3.0
    assert abs(x.mean() - 0.5) < 0.03
    assert abs(x.var() - 25 / 12) < 0.05
    u = N(heron.rand(100000, dtype=dt, seed=8))
    assert u.min() >= 0.0 and u.max() < 1.0
    hist, _ = np.histogram(u, bins=10, range=(0, 1))
    assert hist.min() > 9000 and hist.max() < 11000


@pytest.mark.parametrize("dt", FLOATS, ids=fids)
def test_randn_statistics(dt):
    x = N(_ops.randn([200000], 3.0, 2.0, dt, None, 11)).astype(np.float64)
    assert abs(x.mean() - 3.0) < 0.05
    assert abs(x.std() - 2.0) < 0.05
    z = (x - 3.0) / 2.0
    # tails of a normal: P(|z| > 2) ~ 0.0455, P(|z| > 3) ~ 0.0027
    assert abs((np.abs(z) > 2).mean() - 0.0455) < 0.004
    assert abs((np.abs(z) > 3).mean() - 0.0027) < 0.001
    assert abs(np.mean(z ** 3)) < 0.05  # symmetric


@pytest.mark.parametrize("dt", INTS + FLOATS, ids=iids + fids)
def test_randint(dt):
    lo, hi = (-3, 4) if dt != heron.uint8 else (250, 256)
    x = N(heron.randint(lo, hi, (50000,), dtype=dt, seed=5))
    assert heron.randint(lo, hi, (2,), dtype=dt).dtype == dt
    assert set(np.unique(x).tolist()) == set(range(lo, hi))
    counts = np.bincount((x.astype(np.int64) - lo))
    assert counts.min() > 50000 / (hi - lo) * 0.9
    assert heron.randint(10, (3, 4)).shape == (3, 4)


def test_randint_large_range():
    x = N(heron.randint(-(2 ** 62), 2 ** 62, (1000,), seed=1))
    assert x.min() < -(2 ** 60) and x.max() > 2 ** 60


@pytest.mark.parametrize("dt", FLOATS, ids=fids)
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
def test_bernoulli(dt, p):
    probs = heron.full((40000,), p, dtype=dt)
    x = N(heron.bernoulli(probs, seed=6))
    assert heron.bernoulli(probs).dtype == dt
    assert set(np.unique(x).tolist()) <= {0.0, 1.0}
    assert abs(x.mean() - p) < 0.015


def test_bernoulli_per_element_probabilities():
    p = np.tile(np.array([0.0, 0.1, 0.9, 1.0], np.float64), 20000).reshape(20000, 4)
    x = N(heron.bernoulli(heron.tensor(p), seed=12))
    np.testing.assert_allclose(x.mean(axis=0), [0.0, 0.1, 0.9, 1.0], atol=0.01)
    # a strided input works too
    xt = N(heron.bernoulli(heron.transpose(heron.tensor(p), 0, 1), seed=12))
    np.testing.assert_allclose(xt.mean(axis=1), [0.0, 0.1, 0.9, 1.0], atol=0.01)


@pytest.mark.parametrize("dt", INTS, ids=iids)
@pytest.mark.parametrize("n", [0, 1, 2, 10, 100])
def test_randperm(dt, n):
    x = N(heron.randperm(n, dtype=dt, seed=4))
    assert heron.randperm(n, dtype=dt).dtype == dt
    np.testing.assert_array_equal(np.sort(x), np.arange(n))


def test_randperm_is_shuffled():
    perms = {tuple(N(heron.randperm(5, seed=s))) for s in range(200)}
    assert len(perms) > 90  # 120 permutations in all


def test_errors():
    with pytest.raises(TypeError):
        heron.rand(3, dtype=heron.int32)
    with pytest.raises(TypeError):
        heron.randn(3, dtype=heron.int64)
    with pytest.raises(ValueError):
        _ops.rand([3], 2.0, 1.0)
    with pytest.raises(ValueError):
        _ops.randn([3], 0.0, -1.0)
    with pytest.raises(ValueError):
        heron.rand(-1)
    with pytest.raises(ValueError):
        heron.randint(3, 3, (2,))
    with pytest.raises(ValueError):
        heron.randint(0, 1000, (2,), dtype=heron.int8)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        heron.bernoulli(heron.full((3,), 1.5))
    with pytest.raises(ValueError):
        heron.bernoulli(heron.full((3,), float("nan")))
    with pytest.raises(ValueError):
        heron.bernoulli(heron.full((3,), -0.1))
    with pytest.raises(TypeError):
        heron.bernoulli(heron.full((3,), 1))
    with pytest.raises(ValueError):
        heron.randperm(-1)
    with pytest.raises(ValueError):
        heron.randperm(300, dtype=heron.uint8)
    with pytest.raises(TypeError):
        heron.randperm(3, dtype=heron.float32)
