"""heron.nn.RNN / LSTM / GRU and the cells against PyTorch, when PyTorch is importable (directly or from
the site-packages folder named by HERON_BENCH_EXTRA_PATH, as for the benchmarks); skipped otherwise,
since PyTorch is never a dependency. A PyTorch state_dict (as numpy) loads unchanged, and with the same
weights the outputs and every gradient agree within 1e-5 relative, packed sequences included."""
import os
import sys

import numpy as np
import pytest

import heron
from heron import nn
from heron.nn.utils import rnn as hrnn

if os.environ.get("HERON_BENCH_EXTRA_PATH"):
    sys.path.append(os.environ["HERON_BENCH_EXTRA_PATH"])
torch = pytest.importorskip(
    "torch", reason="PyTorch is not importable (install it, or set HERON_BENCH_EXTRA_PATH to a site-packages folder "
                    "holding it): the RNN parity checks against torch.nn need it; the numpy-reference suite "
                    "(test_rnn.py) runs regardless")
tnn = torch.nn
trnn = torch.nn.utils.rnn

DT = {np.float64: (torch.float64, heron.float64), np.float32: (torch.float32, heron.float32)}


def rel_close(got, want, what, rtol=1e-5):
    """Every element within rtol of the reference, relative to the tensor's scale."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def copy_torch_weights(tm, hm):
    sd = {k: heron.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()}
    res = hm.load_state_dict(sd)  # strict: the same names and shapes
    assert not res.missing_keys and not res.unexpected_keys
    assert list(hm.state_dict()) == list(tm.state_dict())


SEQ = [
    ("RNN", dict(nonlinearity="tanh")),
    ("RNN", dict(nonlinearity="relu", num_layers=2, bidirectional=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=3, num_layers=2)),
    ("LSTM", dict(bias=False, bidirectional=True, proj_size=2)),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(bias=False)),
]


@pytest.mark.parametrize("name,kw", SEQ, ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in SEQ])
@pytest.mark.parametrize("layout", ["time_major", "batch_first", "unbatched", "packed_unsorted"])
@pytest.mark.parametrize("states", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sequence_modules_match_pytorch(name, kw, layout, states, dtype):
    tdt, hdt = DT[dtype]
    torch.manual_seed(0)
    I, H, T, B = 5, 6, 7, 4
    bf = layout == "batch_first"
    tm = getattr(tnn, name)(I, H, batch_first=bf, **kw).to(tdt)
    hm = getattr(nn, name)(I, H, batch_first=bf, dtype=hdt, **kw)
    copy_torch_weights(tm, hm)
    D = 2 if kw.get("bidirectional") else 1
    L = kw.get("num_layers", 1)
    Hout = kw.get("proj_size", 0) or H
    rng = np.random.default_rng(0)
    if layout == "unbatched":
        x = rng.standard_normal((T, I))
        lead = (L * D,)
    else:
        x = rng.standard_normal((B, T, I) if bf else (T, B, I))
        lead = (L * D, B)
    x = x.astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    hx = heron.tensor(x)
    hx.requires_grad_(True)
    tstate = hstate = None
    if states:
        h0 = rng.standard_normal(lead + (Hout,)).astype(dtype)
        c0 = rng.standard_normal(lead + (H,)).astype(dtype)
        th0, tc0 = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
        hh0, hc0 = heron.tensor(h0), heron.tensor(c0)
        hh0.requires_grad_(True)
        hc0.requires_grad_(True)
        tstate, hstate = ((th0, tc0), (hh0, hc0)) if name == "LSTM" else (th0, hh0)
    if layout == "packed_unsorted":
        lengths = [4, 7, 1, 7]
        tin = trnn.pack_padded_sequence(tx, lengths, enforce_sorted=False)
        hin = hrnn.pack_padded_sequence(hx, lengths, enforce_sorted=False)
        np.testing.assert_array_equal(hin.data.numpy(), tin.data.detach().numpy())
        assert hin.batch_sizes.tolist() == tin.batch_sizes.tolist()
        assert hin.sorted_indices.tolist() == tin.sorted_indices.tolist()
    else:
        tin, hin = tx, hx
    tout, thid = tm(tin, tstate)
    hout, hhid = hm(hin, hstate)
    if layout == "packed_unsorted":
        tout, _ = trnn.pad_packed_sequence(tout)
        hout, _ = hrnn.pad_packed_sequence(hout)
    touts = [tout] + (list(thid) if name == "LSTM" else [thid])
    houts = [hout] + (list(hhid) if name == "LSTM" else [hhid])
    for k, (a, b) in enumerate(zip(houts, touts)):
        assert tuple(a.shape) == tuple(b.shape)
        rel_close(a.detach().numpy(), b.detach().numpy(), f"output {k}")
    tloss = sum((o * torch.tensor(np.cos(np.arange(o.numel())).reshape(o.shape).astype(dtype))).sum() for o in touts)
    hloss = None
    for o in houts:
        term = (o * heron.tensor(np.cos(np.arange(int(np.prod(o.shape)))).reshape(tuple(o.shape)).astype(dtype))).sum()
        hloss = term if hloss is None else hloss + term
    tloss.backward()
    hloss.backward()
    rel_close(hx.grad.numpy(), tx.grad.numpy(), "grad input")
    if states:
        pairs = [(hh0, th0)] + ([(hc0, tc0)] if name == "LSTM" else [])
        for a, b in pairs:
            rel_close(a.grad.numpy(), b.grad.numpy(), "grad initial state")
    for (k, tp), (k2, hp) in zip(tm.named_parameters(), hm.named_parameters()):
        assert k == k2
        rel_close(hp.grad.numpy(), tp.grad.numpy(), f"grad {k}")


@pytest.mark.parametrize("name,kw", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu", "bias": False}),
                                     ("LSTMCell", {}), ("LSTMCell", {"bias": False}), ("GRUCell", {})])
@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cells_match_pytorch(name, kw, unbatched, dtype):
    tdt, hdt = DT[dtype]
    torch.manual_seed(1)
    tm = getattr(tnn, name)(5, 6, **kw).to(tdt)
    hm = getattr(nn, name)(5, 6, dtype=hdt, **kw)
    copy_torch_weights(tm, hm)
    rng = np.random.default_rng(1)
    shp = (5,) if unbatched else (3, 5)
    sshp = (6,) if unbatched else (3, 6)
    x = rng.standard_normal(shp).astype(dtype)
    s = [rng.standard_normal(sshp).astype(dtype) for _ in range(2)]
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(a, requires_grad=True) for a in s]
    hx = heron.tensor(x)
    hs = [heron.tensor(a) for a in s]
    for t in [hx] + hs:
        t.requires_grad_(True)
    if name == "LSTMCell":
        tout, hout = list(tm(tx, tuple(ts))), list(hm(hx, tuple(hs)))
    else:
        tout, hout = [tm(tx, ts[0])], [hm(hx, hs[0])]
    for a, b in zip(hout, tout):
        rel_close(a.detach().numpy(), b.detach().numpy(), "output")
    sum((o * (k + 1.5)).sum() for k, o in enumerate(tout)).backward()
    hl = None
    for k, o in enumerate(hout):
        term = (o * (k + 1.5)).sum()
        hl = term if hl is None else hl + term
    hl.backward()
    rel_close(hx.grad.numpy(), tx.grad.numpy(), "grad input")
    for a, b in zip(hs[:len(hout)], ts[:len(tout)]):
        rel_close(a.grad.numpy(), b.grad.numpy(), "grad state")
    for (k, tp), (_, hp) in zip(tm.named_parameters(), hm.named_parameters()):
        rel_close(hp.grad.numpy(), tp.grad.numpy(), f"grad {k}")


def test_packing_utilities_match_pytorch():
    rng = np.random.default_rng(3)
    seqs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (3, 6, 6, 1, 4)]
    tp = trnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    hp = hrnn.pack_sequence([heron.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(hp.data.numpy(), tp.data.numpy())
    assert hp.batch_sizes.tolist() == tp.batch_sizes.tolist()
    assert hp.sorted_indices.tolist() == tp.sorted_indices.tolist()
    assert hp.unsorted_indices.tolist() == tp.unsorted_indices.tolist()
    for bf in (False, True):
        tpad, tl = trnn.pad_packed_sequence(tp, batch_first=bf, padding_value=-1.0, total_length=8)
        hpad, hl = hrnn.pad_packed_sequence(hp, batch_first=bf, padding_value=-1.0, total_length=8)
        np.testing.assert_array_equal(hpad.numpy(), tpad.numpy())
        assert hl.tolist() == tl.tolist()
    np.testing.assert_array_equal(hrnn.pad_sequence([heron.tensor(s) for s in seqs], batch_first=True).numpy(),
                                  trnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True).numpy())
