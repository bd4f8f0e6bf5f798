"""A ConvNet saved by PyTorch (safetensors.torch.save_file, committed fixture) loads into the demo's
heron ConvNet unchanged and gives PyTorch's logits, loss, gradients and SGD step (oracle: PyTorch's
values stored with the fixture; see tests/data/make_convnet_torch_fixture.py). When torch is
importable, the same is checked live for an Adam step on fresh weights."""
import pathlib

import numpy as np
import pytest

import heron
from blas_helpers import openblas_threads_change_bits, why_openblas_threads_change_bits
from heron.examples.mnist import ConvNet

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def test_pytorch_safetensors_file_loads_and_matches_pytorch():
    sd = heron.load(str(DATA / "convnet_torch.safetensors"))
    model = ConvNet()
    res = model.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    ref = np.load(DATA / "convnet_torch_expected.npz")
    x, y = heron.from_numpy(ref["x"]), heron.from_numpy(ref["y"])
    logits = model(x)
    np.testing.assert_allclose(logits.detach().numpy(), ref["logits"], rtol=1e-4, atol=1e-5)
    loss = heron.nn.functional.cross_entropy(logits, y)
    np.testing.assert_allclose(loss.item(), float(ref["loss"]), rtol=1e-5)
    opt = heron.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    loss.backward()
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), ref[f"grad.{k}"], rtol=1e-3, atol=1e-5, err_msg=k)
    opt.step()
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), ref[f"step.{k}"], rtol=1e-4, atol=1e-6, err_msg=k)


def test_live_parity_with_pytorch_adam_step():
    torch = pytest.importorskip("torch")
    import importlib.util
    spec = importlib.util.spec_from_file_location("fixture", DATA / "make_convnet_torch_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except ImportError:
        pytest.skip("safetensors.torch not installed")
    tm = mod.ConvNet().double()
    hm = ConvNet().double()
    hm.load_state_dict({k: heron.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(5)
    x = rng.random((4, 1, 28, 28))
    y = rng.integers(0, 10, 4)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2, weight_decay=1e-3)
    hopt = heron.optim.Adam(hm.parameters(), lr=1e-2, weight_decay=1e-3)
    tl = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    hl = heron.nn.functional.cross_entropy(hm(heron.from_numpy(x)), heron.from_numpy(y))
    np.testing.assert_allclose(hl.item(), tl.item(), rtol=1e-10)
    tl.backward()
    hl.backward()
    tp = dict(tm.named_parameters())
    for k, p in hm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[k].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=k)
    topt.step()
    hopt.step()
    for k, p in hm.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), tp[k].detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.skipif(openblas_threads_change_bits(), reason=why_openblas_threads_change_bits())
def test_convnet_gradients_are_bitwise_identical_at_any_thread_count():
    """Reproducibility: same seed and data give the same bits whatever the thread count."""
    rng = np.random.default_rng(0)
    x = heron.from_numpy(rng.random((64, 1, 28, 28), dtype=np.float32))
    y = heron.from_numpy(rng.integers(0, 10, 64))
    prev = heron.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 3):
            heron.set_num_threads(threads)
            heron.manual_seed(0)
            m = ConvNet()
            loss = heron.nn.functional.cross_entropy(m(x), y)
            loss.backward()
            runs.append([loss.detach().numpy().copy()] + [p.grad.numpy().copy() for p in m.parameters()])
    finally:
        heron.set_num_threads(prev)
    for r in runs[1:]:
        for a, b in zip(runs[0], r):
            np.testing.assert_array_equal(a, b)
