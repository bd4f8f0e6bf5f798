"""heron.jit and heron.inference: traced graphs equal eager (ConvNet, ResNet-18, MobileNetV2 in
eval mode), .heron round trips, a symbolic batch, concurrency, and the errors of bad use."""
import threading

import numpy as np
import pytest

import heron
import heron.models
from heron import nn
from heron.examples.mnist import ConvNet


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["convnet", "resnet18", "mobilenet_v2"])
def test_traced_equals_eager_and_round_trips(name, tmp_path):
    heron.manual_seed(0)
    if name == "convnet":
        model, shape = ConvNet(), (2, 1, 28, 28)
    elif name == "resnet18":
        model, shape = heron.models.resnet18(num_classes=10), (2, 3, 64, 64)
    else:
        model, shape = heron.models.mobilenet_v2(num_classes=10), (2, 3, 64, 64)
    model.eval()
    x = heron.randn(*shape)
    traced = heron.jit.trace(model, x)
    with heron.no_grad():
        close(traced(x).numpy(), model(x).numpy())
        x3 = heron.randn(3, *shape[1:])  # the batch dim is symbolic
        close(traced(x3).numpy(), model(x3).numpy())
    assert traced.inputs[0][2][0] == -1
    path = tmp_path / f"{name}.heron"
    heron.jit.save(traced, path)
    loaded = heron.jit.load(path)
    with heron.no_grad():
        close(loaded(x3).numpy(), model(x3).numpy())
    sess = heron.inference.Session(path)
    out = sess.run({"input": x3.numpy()})
    close(out["output"], model(x3).detach().numpy())


def test_text_form_names_weights_and_ops():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    traced = heron.jit.trace(model, heron.randn(2, 4))
    g = traced.graph
    assert "%0.weight" in g and "linear(%input, %0.weight, %0.bias)" in g and "relu(" in g
    assert "float32[N, 3]" in g


def test_functions_numbers_and_several_outputs():
    def fn(a, b):
        s = a * 2 + b - 1.5
        return s.sum(dim=1), heron.softmax(s, dim=-1)
    a, b = heron.randn(3, 4), heron.randn(3, 4)
    traced = heron.jit.trace(fn, (a, b), input_names=["a", "b"], output_names=["total", "probs"])
    assert traced.input_names == ["a", "b"] and traced.output_names == ["total", "probs"]
    a2, b2 = heron.randn(5, 4), heron.randn(5, 4)
    got = traced(a2, b2)
    want = fn(a2, b2)
    close(got[0].numpy(), want[0].numpy())
    close(got[1].numpy(), want[1].numpy())
    # integer inputs keep integer arithmetic (the captured 2 stays a weak scalar)
    ti = heron.jit.trace(lambda x: x * 2 + 1, heron.tensor([[1, 2]]), check=True)
    r = ti(heron.tensor([[3, 4], [5, 6]]))
    assert r.dtype == heron.int64 and r.tolist() == [[7, 9], [11, 13]]
    # float32 input times a captured Python float stays float32
    tf = heron.jit.trace(lambda x: x * 0.5, heron.ones(2, 2))
    assert tf(heron.ones(3, 2)).dtype == heron.float32


def test_eight_threads_share_one_session(tmp_path):
    heron.manual_seed(1)
    model = ConvNet().eval()
    traced = heron.jit.trace(model, heron.randn(4, 1, 28, 28))
    sess = heron.inference.Session(traced)
    xs = [np.random.default_rng(i).random((4, 1, 28, 28), dtype=np.float32) for i in range(8)]
    want = [sess.run({"input": x})["output"] for x in xs]
    got = [None] * 8

    def work(i):
        for _ in range(3):
            got[i] = sess.run({"input": xs[i]})["output"]
    ths = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_session_errors_list_what_the_model_expects(tmp_path):
    traced = heron.jit.trace(ConvNet().eval(), heron.randn(2, 1, 28, 28))
    sess = heron.inference.Session(traced)
    with pytest.raises(ValueError, match="no input named 'image'; it expects 'input': float32"):
        sess.run({"image": np.zeros((1, 1, 28, 28), np.float32)})
    with pytest.raises(ValueError, match=r"28"):
        sess.run({"input": np.zeros((1, 1, 27, 28), np.float32)})
    with pytest.raises((ValueError, TypeError), match="float32"):
        sess.run({"input": np.zeros((1, 1, 28, 28), np.float64)})
    bad = tmp_path / "bad.heron"
    bad.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ValueError):
        heron.jit.load(bad)


def test_trace_errors_are_clear():
    with pytest.raises(TypeError, match="heron.Tensor"):
        heron.jit.trace(lambda x: x, np.zeros(3))
    c = heron.ones(3)
    with pytest.raises(heron.InvalidArgumentError, match="not computed from the traced inputs"):
        heron.jit.trace(lambda x: c, heron.ones(3))
    assert heron.is_grad_enabled()
