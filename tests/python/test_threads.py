"""The intra-op pool and concurrent callers: results do not depend on the thread count, and several
Python threads may run ops at once (large calls release the GIL)."""
import threading

import numpy as np
import pytest

import heron


@pytest.fixture
def restore_threads():
    n = heron.get_num_threads()
    yield
    heron.set_num_threads(n)


def test_set_num_threads_round_trip(restore_threads):
    heron.set_num_threads(1)
    assert heron.get_num_threads() == 1
    heron.set_num_threads(3)
    assert heron.get_num_threads() == 3
    with pytest.raises(ValueError):
        heron.set_num_threads(0)
    assert heron.get_num_threads() == 3


def test_results_do_not_depend_on_thread_count(restore_threads):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 1000)).astype(np.float32)
    b = rng.standard_normal((1000, 200)).astype(np.float32)
    results = []
    for n in (1, 2, 4):
        heron.set_num_threads(n)
        ha, hb = heron.tensor(a), heron.tensor(b)
        results.append(((ha @ hb).numpy(), heron.exp(ha).sum(dim=1).numpy(), heron.rand(100003, seed=5).numpy(),
                        (ha + 1).numpy()))
    for r in results[1:]:
        np.testing.assert_allclose(r[0], results[0][0], rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(r[1], results[0][1])  # reductions split by size, not threads
        np.testing.assert_array_equal(r[2], results[0][2])  # Philox: same stream for any thread count
        np.testing.assert_array_equal(r[3], results[0][3])


def test_concurrent_python_threads():
    rng = np.random.default_rng(1)
    data = [rng.standard_normal((256, 256)).astype(np.float32) for _ in range(4)]
    expected = [np.exp(d).sum(axis=0) + (d @ d).sum(axis=1) for d in data]
    errors = []

    def work(i):
        try:
            t = heron.tensor(data[i])
            for _ in range(20):
                got = (heron.exp(t).sum(dim=0) + (t @ t).sum(dim=1)).numpy()
                np.testing.assert_allclose(got, expected[i], rtol=1e-4, atol=1e-2)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a worker hung"
    assert errors == []
