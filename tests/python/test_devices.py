"""Devices: the registry, and the cuda device compared with the cpu when a GPU is present."""
import numpy as np
import pytest

import heron


def test_cpu_is_always_there():
    assert "cpu" in heron.device_types()
    assert heron.device_count("cpu") == 1
    assert heron.zeros(2).device == heron.device("cpu")
    assert str(heron.device("cpu")) == "cpu"


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        heron.zeros(2, device="gpu")
    with pytest.raises(ValueError):
        heron.device("gpu")


def _cuda_available():
    return "cuda" in heron.device_types() and heron.device_count("cuda") > 0


@pytest.mark.skipif("cuda" not in heron.device_types() or heron.device_count("cuda") > 0,
                    reason="only for builds with the cuda device on a machine without a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="cuda has 0 devices"):
        heron.zeros(2, device="cuda")


needs_gpu = pytest.mark.skipif(not _cuda_available(), reason="no GPU here (runs on a lent GPU machine)")


@needs_gpu
@pytest.mark.parametrize("dtype", [heron.float32, heron.float64])
def test_cuda_matches_cpu(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((33, 65)).astype(np.float64)
    b = rng.standard_normal((65, 17)).astype(np.float64)
    ha = heron.tensor(a, dtype=dtype)
    hb = heron.tensor(b, dtype=dtype)
    ga, gb = ha.to("cuda"), hb.to("cuda")
    assert ga.device.type == "cuda"
    tol = 1e-4 if dtype == heron.float32 else 1e-10
    for f in [lambda x, y: x @ y, lambda x, y: (x @ y).exp(), lambda x, y: (x @ y).sum(dim=0),
              lambda x, y: (x @ y).amax(dim=1), lambda x, y: heron.sigmoid(x[:, :17] * 2 - y[:33].T)]:
        np.testing.assert_allclose(f(ga, gb).cpu().numpy(), f(ha, hb).numpy(), rtol=tol, atol=tol)
    # strided copies and casts on the device
    np.testing.assert_array_equal(ga.T.contiguous().cpu().numpy(), ha.T.contiguous().numpy())
    np.testing.assert_array_equal(ga.to(heron.float16).cpu().numpy(), ha.to(heron.float16).numpy())
    assert heron.zeros(3, device="cuda").cpu().tolist() == [0.0, 0.0, 0.0]
