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


def _rnn_run(module, x, lengths, device, seed):
    """Forward and backward of a recurrent module on `device`; returns outputs and gradients."""
    from heron.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    m = module.to(device)
    xd = x.detach().to(device).requires_grad_()
    heron.manual_seed(seed)  # the same dropout masks on both devices (one Philox stream)
    inp = pack_padded_sequence(xd, lengths) if lengths is not None else xd
    out, state = m(inp)
    if lengths is not None:
        out, _ = pad_packed_sequence(out)
    states = list(state) if isinstance(state, tuple) else [state]
    loss = (out * out).sum() + sum((s * (k + 2)).sum() for k, s in enumerate(states))
    loss.backward()
    res = [out, *states, xd.grad] + [p.grad for p in m.parameters()]
    for p in m.parameters():
        p.grad = None
    return [r.cpu().numpy() for r in res]


@needs_gpu
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("opts", [
    dict(),
    dict(num_layers=2, bidirectional=True, dropout=0.4),
    dict(nonlinearity="relu", bias=False),
    dict(proj_size=5, num_layers=2),
    dict(lengths=[7, 5, 5, 2], bidirectional=True),
])
def test_cuda_recurrent_layers_match_cpu(kind, opts):
    """The cuda kernels (cuBLAS + fused gate kernels) against the cpu ones, forward and backward."""
    opts = dict(opts)
    lengths = opts.pop("lengths", None)
    if kind != "RNN" and "nonlinearity" in opts:
        opts.pop("nonlinearity")
    if kind != "LSTM" and "proj_size" in opts:
        opts.pop("proj_size")
    heron.manual_seed(3)
    m = getattr(heron.nn, kind)(6, 40, **opts).double()
    x = heron.randn(7, 4, 6, dtype=heron.float64)
    cpu = _rnn_run(m, x, lengths, "cpu", 11)
    gpu = _rnn_run(m, x, lengths, "cuda", 11)
    assert len(cpu) == len(gpu)
    for a, b in zip(gpu, cpu):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@needs_gpu
def test_cuda_lstm_float32_and_cells_match_cpu():
    heron.manual_seed(0)
    m = heron.nn.LSTM(16, 64, num_layers=2)
    x = heron.randn(12, 3, 16)
    a = _rnn_run(m, x, None, "cpu", 0)
    b = _rnn_run(m, x, None, "cuda", 0)
    for u, v in zip(b, a):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)
    for cell in (heron.nn.LSTMCell(5, 33), heron.nn.GRUCell(5, 33), heron.nn.RNNCell(5, 33)):
        cell = cell.double()
        xin = heron.randn(4, 5, dtype=heron.float64)
        want = cell(xin)
        got = cell.to("cuda")(xin.to("cuda"))
        for u, v in zip(got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want]):
            np.testing.assert_allclose(u.cpu().numpy(), v.numpy(), rtol=1e-10, atol=1e-12)
        cell.to("cpu")
