"""The session's graph optimisation (core/graph/passes.cpp): batch_norm folding and conv epilogue
fusion. Optimised sessions equal eager and unoptimised sessions up to float rounding; the graph
they run has the expected nodes; patterns that must not be rewritten are left alone; sessions own
their weights (later changes to the module do not leak into a session's packed weights)."""
import re

import numpy as np
import pytest

import heron
import heron.models
from heron import nn


def close(a, b, tol=1e-4):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def ops_of(text):
    return re.findall(r"= (\w+)\(", text)


def sessions(model, x):
    traced = heron.jit.trace(model, x)
    return traced, heron.inference.Session(traced), heron.inference.Session(traced, optimize=False)


def randomize_bn(model, seed=0):
    # Non-trivial running statistics and affine parameters, so folding is really exercised.
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            k = m.num_features
            m.running_mean.copy_(heron.from_numpy(rng.uniform(-0.5, 0.5, k).astype(np.float32)))
            m.running_var.copy_(heron.from_numpy(rng.uniform(0.5, 2.0, k).astype(np.float32)))
            m.weight.detach().copy_(heron.from_numpy(rng.uniform(0.5, 1.5, k).astype(np.float32)))
            m.bias.detach().copy_(heron.from_numpy(rng.uniform(-0.5, 0.5, k).astype(np.float32)))


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_models_optimised_equal_eager(name):
    heron.manual_seed(0)
    model = getattr(heron.models, name)(num_classes=10)
    randomize_bn(model)
    model.eval()
    x = heron.randn(2, 3, 64, 64)
    traced, opt, plain = sessions(model, x)
    with heron.no_grad():
        want = model(x).numpy()
    close(opt.run({"input": x.numpy()})["output"], want)
    close(plain.run({"input": x.numpy()})["output"], want, 1e-5)
    ops = ops_of(opt.graph_text())
    assert "batch_norm" not in ops and "conv2d_fused" in ops
    if name == "resnet18":
        # every residual add and every relu after a convolution is fused; 20 convolutions remain
        assert "add" not in ops and ops.count("relu") == 0
        assert ops.count("conv2d_fused") + ops.count("conv2d") == 20
    else:
        assert "clamp" not in ops and "add" not in ops
    assert "batch_norm" in ops_of(plain.graph_text())


class Block(nn.Module):
    def __init__(self, c, act):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(c)
        self.act = act

    def forward(self, x):
        return self.act(self.bn(self.conv(x)) + x)


@pytest.mark.parametrize("act,op", [(nn.ReLU(), "relu"), (nn.ReLU6(), "clamp"), (nn.Hardtanh(-0.5, 0.5), "clamp")])
def test_conv_bn_add_activation_becomes_one_node(act, op):
    heron.manual_seed(1)
    m = Block(8, act)
    randomize_bn(m, 1)
    m.eval()
    x = heron.randn(3, 8, 9, 11)
    traced, opt, plain = sessions(m, x)
    assert ops_of(opt.graph_text()) == ["conv2d_fused"]
    with heron.no_grad():
        want = m(x).numpy()
    close(opt.run({"input": x.numpy()})["output"], want)
    close(plain.run({"input": x.numpy()})["output"], want, 1e-5)


def test_patterns_that_must_stay():
    heron.manual_seed(2)
    conv = nn.Conv2d(4, 4, 3, padding=1)
    bn = nn.BatchNorm2d(4)
    randomize_bn(bn, 2)
    bn.eval()

    def shared(x):  # the conv output is read twice: nothing folds into it
        y = conv(x)
        return bn(y) + y

    def scaled_add(x):  # add with alpha != 1 is not a residual
        return heron.add(conv(x), x, alpha=2.0)

    def broadcast_add(x):  # the other operand broadcasts: not a residual of the output's shape
        return conv(x) + heron.ones(1, 4, 1, 1)

    def inverted_clamp(x):  # clamp with min > max keeps its own rule (max wins)
        return heron.clamp(conv(x), min=1.0, max=0.0)

    x = heron.randn(2, 4, 6, 6)
    for fn, must in [(shared, "batch_norm"), (scaled_add, "add"), (broadcast_add, "add"), (inverted_clamp, "clamp")]:
        traced, opt, plain = sessions(fn, x)
        assert must in ops_of(opt.graph_text()), (fn.__name__, opt.graph_text())
        with heron.no_grad():
            want = fn(x).numpy()
        close(opt.run({"input": x.numpy()})["output"], want)


def test_training_mode_batch_norm_is_not_folded():
    heron.manual_seed(3)
    conv = nn.Conv2d(3, 4, 3)
    rm, rv, g, b = heron.zeros(4), heron.ones(4), heron.ones(4), heron.zeros(4)

    def fn(x):  # batch statistics: nothing constant to fold
        return heron.relu(heron.batch_norm(conv(x), g, b, rm, rv, training=True)[0])

    traced = heron.jit.trace(fn, heron.randn(2, 3, 8, 8), check=False)
    assert "batch_norm" in ops_of(heron.inference.Session(traced).graph_text())


def test_session_weights_are_a_snapshot():
    # A session copies (and packs) its convolution weights when it is made: changing the module
    # afterwards changes neither the session's results nor, through a stale pack, later ones.
    heron.manual_seed(4)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    m.eval()
    x = heron.randn(2, 3, 10, 10)
    traced, opt, plain = sessions(m, x)
    with heron.no_grad():
        before = m(x).numpy()
    close(opt.run({"input": x.numpy()})["output"], before)
    with heron.no_grad():
        m[0].weight.copy_(m[0].weight * -1.0)
    close(opt.run({"input": x.numpy()})["output"], before)
