"""heron.nn against PyTorch, when PyTorch is installed (skipped otherwise; never a dependency):
the same constructor calls give the same state_dict keys, shapes, dtypes and reprs, PyTorch's
weights load unchanged, and the outputs agree (for the layers whose ops are in the build)."""
import collections

import numpy as np
import pytest

import heron
from heron import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

# (constructor name, args, kwargs, input shape or None, ops the forward needs)
LAYERS = [
    ("Linear", (5, 3), {}, (4, 5), ["linear"]),
    ("Linear", (5, 3), {"bias": False}, (2, 6, 5), ["linear"]),
    ("Conv1d", (4, 6, 3), {"stride": 2, "padding": 1, "groups": 2}, (2, 4, 9), ["conv1d"]),
    ("Conv2d", (3, 8, 3), {}, (2, 3, 9, 9), ["conv2d"]),
    ("Conv2d", (4, 4, (3, 1)), {"padding": "same", "dilation": 2, "groups": 4, "bias": False}, (1, 4, 7, 6),
     ["conv2d"]),
    ("Conv2d", (2, 3, 3), {"padding": 1, "padding_mode": "reflect"}, (1, 2, 5, 5), ["conv2d", "pad"]),
    ("ConvTranspose2d", (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, (1, 4, 5, 5),
     ["conv_transpose2d"]),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 3, 8, 8), ["max_pool2d"]),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, (2, 3, 8, 8), ["avg_pool2d"]),
    ("AdaptiveAvgPool2d", ((3, 2),), {}, (2, 3, 8, 7), ["adaptive_avg_pool2d"]),
    ("BatchNorm1d", (6,), {}, (4, 6), ["batch_norm"]),
    ("BatchNorm2d", (3,), {"momentum": None, "affine": False}, (4, 3, 5, 5), ["batch_norm"]),
    ("BatchNorm2d", (3,), {"track_running_stats": False}, (4, 3, 5, 5), ["batch_norm"]),
    ("LayerNorm", ((4, 5),), {"eps": 1e-3}, (2, 3, 4, 5), ["layer_norm"]),
    ("GroupNorm", (2, 6), {}, (2, 6, 3, 3), ["group_norm"]),
    ("GroupNorm", (3, 6), {"affine": False}, (2, 6, 4), ["group_norm"]),
    ("LayerNorm", (5,), {"bias": False}, (2, 5), ["layer_norm"]),
    ("LayerNorm", (5,), {"elementwise_affine": False}, (2, 5), ["layer_norm"]),
    ("InstanceNorm2d", (3,), {"affine": True, "track_running_stats": True}, (2, 3, 4, 4), ["instance_norm"]),
    ("Dropout", (0.3,), {}, None, []),
    ("Embedding", (10, 4), {"padding_idx": 2}, None, []),
    ("Flatten", (), {}, (2, 3, 4), []),
    ("Unflatten", (1, (2, 6)), {}, (3, 12), []),
    ("Identity", (), {}, (3,), []),
    ("Upsample", (), {"scale_factor": 2, "mode": "bilinear", "align_corners": True}, (1, 2, 3, 4), ["interpolate"]),
    ("ReLU", (), {}, (3, 4), []),
    ("LeakyReLU", (0.2,), {}, (3, 4), ["leaky_relu"]),
    ("GELU", (), {"approximate": "tanh"}, (3, 4), []),
    ("SiLU", (), {}, (3, 4), []),
    ("Tanh", (), {}, (3, 4), []),
    ("Sigmoid", (), {}, (3, 4), []),
    ("Softmax", (), {"dim": 1}, (3, 4), []),
    ("LogSoftmax", (), {"dim": -1}, (3, 4), []),
    ("CrossEntropyLoss", (), {"label_smoothing": 0.1}, None, []),
    ("BCEWithLogitsLoss", (), {"reduction": "sum"}, None, []),
    ("SmoothL1Loss", (), {"beta": 0.5}, None, []),
]


def ids(case):
    return f"{case[0]}{case[1]}{case[2]}"


def to_heron(sd):
    return collections.OrderedDict((k, heron.tensor(v.detach().numpy().copy())) for k, v in sd.items())


@pytest.mark.parametrize("case", LAYERS, ids=[ids(c) for c in LAYERS])
def test_same_state_dict_and_repr(case):
    name, args, kwargs, _, _ = case
    h, t = getattr(nn, name)(*args, **kwargs), getattr(tnn, name)(*args, **kwargs)
    hs, ts = h.state_dict(), t.state_dict()
    assert list(hs) == list(ts)
    for k in ts:
        assert tuple(hs[k].shape) == tuple(ts[k].shape), k
        assert str(hs[k].dtype).replace("heron.", "") == str(ts[k].dtype).replace("torch.", ""), k
    assert [n for n, _ in h.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in h.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert _repr(h) == _repr(t)


def _repr(m):
    # PyTorch versions before the norms' bias= keyword print no `bias=` for them
    r = repr(m)
    if "Norm" in type(m).__name__ and hasattr(tnn.BatchNorm2d(1), "bias") and "bias=" not in repr(tnn.BatchNorm2d(1)):
        r = r.replace(", bias=True", "").replace(", bias=False", "")
    return r


@pytest.mark.parametrize("case", [c for c in LAYERS if c[3] is not None], ids=[ids(c) for c in LAYERS if c[3]])
def test_same_outputs_with_pytorch_weights(case):
    name, args, kwargs, shape, ops = case
    missing = [o for o in ops if not hasattr(heron._ops, o)]
    if missing:
        pytest.skip(f"op(s) {missing} not in this build yet")
    torch.manual_seed(0)
    t = getattr(tnn, name)(*args, **kwargs).double()
    h = getattr(nn, name)(*args, **kwargs).double()
    h.load_state_dict(to_heron(t.state_dict()))
    x = np.random.default_rng(0).normal(size=shape)
    for mode in ("train", "eval"):
        getattr(t, mode)()
        getattr(h, mode)()
        want = t(torch.from_numpy(x.copy()))
        got = h(heron.tensor(x))
        if isinstance(want, tuple):
            want, got = want[0], got[0]
        np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-9, atol=1e-9)
    # running statistics after one training step agree too
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(np.asarray(h.state_dict()[k]), v.numpy(), rtol=1e-9, atol=1e-9, err_msg=k)


def test_convnet_state_dict_from_pytorch_loads_unchanged():
    def build(m):
        return m.Sequential(collections.OrderedDict([
            ("features", m.Sequential(m.Conv2d(1, 16, 3), m.ReLU(), m.MaxPool2d(2), m.Conv2d(16, 32, 3),
                                      m.BatchNorm2d(32), m.ReLU(), m.MaxPool2d(2))),
            ("flatten", m.Flatten()),
            ("classifier", m.Sequential(m.Linear(32 * 5 * 5, 64), m.ReLU(), m.Dropout(0.5), m.Linear(64, 10))),
        ]))

    t, h = build(tnn), build(nn)
    assert repr(h).replace(", bias=True, track", ", track") == repr(t).replace(", bias=True, track", ", track")
    res = h.load_state_dict(to_heron(t.state_dict()))
    assert res.missing_keys == [] and res.unexpected_keys == []
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(np.asarray(h.state_dict()[k]), v.numpy())
    ops = ["conv2d", "max_pool2d", "batch_norm", "linear"]
    if all(hasattr(heron._ops, o) for o in ops):
        t.eval()
        h.eval()
        x = np.random.default_rng(1).normal(size=(4, 1, 28, 28)).astype(np.float32)
        np.testing.assert_allclose(np.asarray(h(heron.tensor(x))), t(torch.from_numpy(x)).detach().numpy(),
                                   rtol=1e-4, atol=1e-5)
