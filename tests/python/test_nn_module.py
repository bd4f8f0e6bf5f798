"""heron.nn: Module mechanics (registration, traversal, state_dict, hooks, modes, conversion),
Parameter, containers, initialisers (statistics against closed forms), layer input checks, and the
layers whose ops exist in the base tree (activations, Flatten, ...) against numpy."""
import collections
import copy
import math

import numpy as np
import pytest

import heron
from heron import nn
from heron.nn import functional as F
from heron.nn import init

HAS_AUTOGRAD = hasattr(heron.Tensor, "backward")
HAS_LINEAR = hasattr(heron._ops, "linear")


def N(t):
    return np.array(t.numpy(), copy=True)


def T(a, dtype=None):
    return heron.tensor(np.asarray(a), dtype=dtype)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 3, bias=False)
        self.register_buffer("steps", heron.zeros(1))
        self.register_buffer("scratch", heron.ones(2), persistent=False)

    def forward(self, x):
        return heron.matmul(self.act(heron.matmul(x, self.fc1.weight.T)), self.fc2.weight.T)


def convnet():
    return nn.Sequential(collections.OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Linear(4 * 3 * 3, 10)),
    ]))


# ------------------------------------------------------------------ Parameter
def test_parameter_is_a_tensor_sharing_memory():
    data = heron.tensor([[1.0, 2.0], [3.0, 4.0]])
    p = nn.Parameter(data)
    assert isinstance(p, heron.Tensor) and isinstance(p, nn.Parameter)
    assert p.shape == (2, 2) and p.dtype == heron.float32
    assert p.data_ptr() == data.data_ptr()
    # behaves as a tensor in ops, operators and methods
    np.testing.assert_allclose(N(p + 1), N(data) + 1)
    np.testing.assert_allclose(N(heron.matmul(p, p)), N(data) @ N(data))
    np.testing.assert_allclose(N(p.sum()), 10.0)
    assert type(p * 2) is heron.Tensor
    assert repr(p).startswith("Parameter containing:\ntensor([[1., 2.],")
    if HAS_AUTOGRAD:
        assert p.requires_grad and p.is_leaf and not data.requires_grad
        assert not nn.Parameter(data, requires_grad=False).requires_grad


def test_parameter_rejects_non_tensors_and_deepcopies():
    with pytest.raises(TypeError, match="Parameter"):
        nn.Parameter([1.0, 2.0])
    p = nn.Parameter(heron.tensor([1.0, 2.0]))
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.data_ptr() != p.data_ptr()
    np.testing.assert_array_equal(N(q), N(p))
    assert nn.Parameter().shape == (0,)


# ------------------------------------------------------------------ registration
def test_registration_and_attribute_access():
    m = MLP()
    assert list(m._parameters) == []
    assert list(m._modules) == ["fc1", "act", "fc2"]
    assert list(m._buffers) == ["steps", "scratch"]
    assert isinstance(m.fc1.weight, nn.Parameter)
    assert m.fc2.bias is None
    assert [n for n, _ in m.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight"]
    assert [n for n, _ in m.named_buffers()] == ["steps", "scratch"]
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert len(list(m.parameters(recurse=False))) == 0
    # reassigning: a plain tensor may not replace a parameter; None may
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.fc1.weight = heron.zeros(8, 4)
    m.fc1.bias = None
    assert "bias" in m.fc1._parameters and m.fc1.bias is None
    # a module replacing a plain attribute, and deletion
    m.extra = nn.Tanh()
    assert "extra" in m._modules
    del m.extra
    assert "extra" not in m._modules and not hasattr(m, "extra")
    with pytest.raises(AttributeError, match="'MLP' object has no attribute 'nope'"):
        m.nope


def test_register_methods_validate():
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(heron.zeros(2)))
    m.register_buffer("b", heron.zeros(2))
    m.add_module("sub", nn.ReLU())
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", nn.Parameter(heron.zeros(1)))
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("w", heron.zeros(1))
    with pytest.raises(TypeError, match="heron.nn.Parameter or None"):
        m.register_parameter("x", heron.zeros(1))
    with pytest.raises(TypeError, match="buffer"):
        m.register_buffer("y", [1, 2])
    with pytest.raises(TypeError, match="not a Module subclass"):
        m.add_module("z", 3)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(heron.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_shared_modules_and_parameters_are_listed_once():
    shared = nn.Linear(3, 3)
    m = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(m.parameters())) == 2
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in m.named_modules()] == ["", "0", "1"]
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4
    tied = nn.Module()
    tied.a = nn.Linear(2, 2)
    tied.b = nn.Linear(2, 2)
    tied.b.weight = tied.a.weight
    assert [n for n, _ in tied.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    assert list(tied.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert tied.get_submodule("a") is tied.a and tied.get_parameter("b.weight") is tied.a.weight


# ------------------------------------------------------------------ state_dict
def test_state_dict_key_names_like_pytorch():
    m = convnet()
    sd = m.state_dict()
    assert isinstance(sd, collections.OrderedDict)
    assert list(sd) == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
                        "classifier.weight", "classifier.bias"]
    assert sd["features.1.num_batches_tracked"].dtype == heron.int64
    assert sd["features.1.num_batches_tracked"].shape == ()
    assert sd["features.0.weight"].shape == (4, 1, 3, 3)
    # the tensors share memory with the module's
    assert sd["classifier.weight"].data_ptr() == m.classifier.weight.data_ptr()
    assert not isinstance(sd["classifier.weight"], nn.Parameter) or not HAS_AUTOGRAD
    assert isinstance(m.state_dict(keep_vars=True)["classifier.weight"], nn.Parameter)
    assert "scratch" not in MLP().state_dict() and "steps" in MLP().state_dict()


def test_load_state_dict_round_trip_copies_in_place():
    heron.manual_seed(1)
    a = convnet()
    heron.manual_seed(2)
    b = convnet()
    assert not np.array_equal(N(a.classifier.weight), N(b.classifier.weight))
    with heron.no_grad() if hasattr(heron, "no_grad") else _null():
        a.features[1].running_mean.copy_(heron.tensor([1.0, 2.0, 3.0, 4.0]))
        a.features[1].num_batches_tracked.fill_(7)
    w_obj, w_ptr = b.classifier.weight, b.classifier.weight.data_ptr()
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(N(b.state_dict()[k]), N(v))
    assert b.classifier.weight is w_obj and b.classifier.weight.data_ptr() == w_ptr
    assert int(b.features[1].num_batches_tracked.item()) == 7
    # from numpy arrays and float64 tensors (converted into the parameter's dtype)
    sd = {k: N(v) for k, v in a.state_dict().items()}
    sd["classifier.bias"] = heron.tensor(np.arange(10.0))
    b.load_state_dict(sd)
    np.testing.assert_array_equal(N(b.classifier.bias), np.arange(10.0, dtype=np.float32))
    assert b.classifier.bias.dtype == heron.float32


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_load_state_dict_strict_and_non_strict():
    m = convnet()
    sd = m.state_dict()
    del sd["classifier.bias"]
    sd["classifier.extra"] = heron.zeros(1)
    sd["head.weight"] = heron.zeros(1)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert "Error(s) in loading state_dict for Sequential" in msg
    assert 'Missing key(s) in state_dict: "classifier.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "head.weight", "classifier.extra"' in msg
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["classifier.bias"]
    assert res.unexpected_keys == ["head.weight", "classifier.extra"]


def test_load_state_dict_shape_mismatch_names_key_and_shapes():
    m = convnet()
    sd = m.state_dict()
    sd["classifier.weight"] = heron.zeros(10, 35)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for classifier\.weight: copying a param with shape "
                                               r"\(10, 35\) from checkpoint, the shape in current model is \(10, 36\)"):
            m.load_state_dict(sd, strict=strict)
    with pytest.raises(TypeError, match="dict-like"):
        m.load_state_dict([1, 2])


def test_load_state_dict_assign():
    m = nn.Linear(2, 3)
    w = heron.ones(3, 2)
    m.load_state_dict({"weight": w, "bias": heron.zeros(3)}, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight.data_ptr() == w.data_ptr()


# ------------------------------------------------------------------ hooks
def test_forward_hooks_and_removable_handles():
    m = nn.Identity()
    calls = []

    def pre(mod, args):
        calls.append("pre")
        return (args[0] + 1,)

    def post(mod, args, out):
        calls.append("post")
        assert mod is m
        return out * 10

    h1 = m.register_forward_pre_hook(pre)
    h2 = m.register_forward_hook(post)
    x = heron.tensor([1.0, 2.0])
    np.testing.assert_array_equal(N(m(x)), [20.0, 30.0])
    assert calls == ["pre", "post"]
    h1.remove()
    np.testing.assert_array_equal(N(m(x)), [10.0, 20.0])
    with h2:
        pass  # removes on exit
    np.testing.assert_array_equal(N(m(x)), [1.0, 2.0])
    h2.remove()  # twice is harmless

    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("a"))
    m.register_forward_hook(lambda mod, a, o: order.append("b"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a: order.append("pre-a"))
    m(x)
    assert order == ["pre-a", "b", "a"]


def test_forward_hooks_with_kwargs():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    seen = {}

    def pre(mod, args, kwargs):
        return args, {"factor": kwargs.get("factor", 1.0) * 2}

    def post(mod, args, kwargs, out):
        seen.update(kwargs)
        return out + 1

    m.register_forward_pre_hook(pre, with_kwargs=True)
    m.register_forward_hook(post, with_kwargs=True)
    np.testing.assert_array_equal(N(m(heron.tensor([1.0]), factor=3.0)), [7.0])
    assert seen == {"factor": 6.0}


# ------------------------------------------------------------------ modes, apply, conversion
def test_train_eval_propagate():
    m = convnet()
    assert m.training and all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.features.train()
    assert m.features[1].training and not m.classifier.training and not m.training
    with pytest.raises(ValueError, match="boolean"):
        m.train("yes")
    # Dropout is the identity in eval
    d = nn.Dropout(0.5).eval()
    x = heron.ones(100)
    assert d(x) is x


def test_apply_visits_children_first():
    m = convnet()
    names = []
    assert m.apply(lambda mod: names.append(type(mod).__name__)) is m
    assert names == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Sequential", "Flatten", "Linear", "Sequential"]

    def reinit(mod):
        if isinstance(mod, nn.Linear):
            init.constant_(mod.weight, 0.5)

    m.apply(reinit)
    assert np.all(N(m.classifier.weight) == 0.5)


def test_to_dtype_keeps_parameter_objects():
    m = convnet()
    w = m.classifier.weight
    before = N(w).astype(np.float64)
    assert m.to(heron.float64) is m
    assert m.classifier.weight is w and w.dtype == heron.float64
    np.testing.assert_array_equal(N(w), before)
    assert all(p.dtype == heron.float64 for p in m.parameters())
    assert m.features[1].running_var.dtype == heron.float64
    assert m.features[1].num_batches_tracked.dtype == heron.int64  # integer buffers keep their dtype
    m.float()
    assert all(p.dtype == heron.float32 for p in m.parameters()) and m.classifier.weight is w
    m.double()
    assert w.dtype == heron.float64
    m.to(heron.zeros(1))  # to(tensor): its dtype and device
    assert w.dtype == heron.float32
    m.to("cpu")
    m.cpu()
    m.to(device="cpu", dtype=heron.float64)
    assert w.dtype == heron.float64
    if HAS_AUTOGRAD:
        assert w.requires_grad and w.is_leaf
    with pytest.raises(TypeError, match="floating point"):
        m.to(heron.int64)
    m.half()
    assert w.dtype == heron.float16


def test_state_dict_round_trip_across_dtypes():
    a = convnet()
    b = convnet().double()
    b.load_state_dict(a.state_dict())
    np.testing.assert_allclose(N(b.classifier.weight), N(a.classifier.weight).astype(np.float64))
    assert b.classifier.weight.dtype == heron.float64


def test_requires_grad_and_zero_grad():
    if not HAS_AUTOGRAD:
        pytest.skip("needs autograd (lead's branch)")
    m = nn.Linear(3, 2).double()
    x = heron.tensor(np.ones((4, 3)))
    m(x).sum().backward()
    assert m.weight.grad is not None and m.weight.grad.shape == (2, 3)
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(N(m.weight.grad), 0.0)
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


# ------------------------------------------------------------------ containers
def test_sequential_indexing_slicing_append():
    s = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    assert len(s) == 3 and isinstance(s[1], nn.Tanh) and isinstance(s[-1], nn.Sigmoid)
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and isinstance(sub[0], nn.Tanh)
    assert [type(m).__name__ for m in s] == ["ReLU", "Tanh", "Sigmoid"]
    s.append(nn.Identity())
    assert list(s._modules) == ["0", "1", "2", "3"]
    del s[0]
    assert list(s._modules) == ["0", "1", "2"] and isinstance(s[0], nn.Tanh)
    s[0] = nn.ReLU()
    assert isinstance(s[0], nn.ReLU)
    with pytest.raises(IndexError):
        s[5]
    x = heron.tensor([-1.0, 0.5])
    np.testing.assert_allclose(N(s(x)), 1 / (1 + np.exp(-np.maximum(N(x), 0))), rtol=1e-6)
    named = nn.Sequential(collections.OrderedDict([("a", nn.ReLU()), ("b", nn.Tanh())]))
    assert list(named._modules) == ["a", "b"] and isinstance(named.b, nn.Tanh)
    s.insert(0, nn.Tanh())
    assert isinstance(s[0], nn.Tanh) and len(s) == 4
    assert len(s + named) == 6


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2", "3", "4"]
    assert isinstance(ml[-1], nn.Tanh) and isinstance(ml[1:3], nn.ModuleList)
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2", "3"]
    ml.insert(1, nn.Sigmoid())
    assert isinstance(ml[1], nn.Sigmoid) and len(ml) == 5
    assert "0.weight" in ml.state_dict()

    md = nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU()})
    assert list(md.keys()) == ["enc", "act"] and "enc" in md and len(md) == 2
    md["dec"] = nn.Linear(3, 2)
    assert [k for k in md] == ["enc", "act", "dec"]
    assert list(md.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert isinstance(md.pop("act"), nn.ReLU) and "act" not in md
    md.update([("x", nn.Tanh())])
    assert isinstance(md["x"], nn.Tanh)


# ------------------------------------------------------------------ repr
def test_repr_like_pytorch():
    m = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(10, 2),
                      nn.BatchNorm2d(4), nn.Dropout(0.25), nn.Softmax(dim=1))
    assert repr(m) == """Sequential(
  (0): Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1))
  (1): ReLU()
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (3): Flatten(start_dim=1, end_dim=-1)
  (4): Linear(in_features=10, out_features=2, bias=True)
  (5): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
  (6): Dropout(p=0.25, inplace=False)
  (7): Softmax(dim=1)
)"""
    outer = nn.Sequential(collections.OrderedDict([("block", nn.Sequential(nn.Tanh()))]))
    assert repr(outer) == "Sequential(\n  (block): Sequential(\n    (0): Tanh()\n  )\n)"
    assert repr(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False, groups=1)) == \
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"
    assert repr(nn.Conv2d(2, 4, (1, 3), padding="same", dilation=2, groups=2)) == \
        "Conv2d(2, 4, kernel_size=(1, 3), stride=(1, 1), padding=same, dilation=(2, 2), groups=2)"
    assert repr(nn.LayerNorm(8)) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"


# ------------------------------------------------------------------ layer construction
def test_layer_parameter_shapes_and_names():
    def shapes(m):
        return {k: tuple(v.shape) for k, v in m.state_dict().items()}

    assert shapes(nn.Linear(5, 3)) == {"weight": (3, 5), "bias": (3,)}
    assert shapes(nn.Conv1d(2, 6, 5, groups=2)) == {"weight": (6, 1, 5), "bias": (6,)}
    assert shapes(nn.Conv2d(4, 8, (3, 5), groups=2, bias=False)) == {"weight": (8, 2, 3, 5)}
    assert shapes(nn.ConvTranspose2d(4, 6, 3, groups=2)) == {"weight": (4, 3, 3, 3), "bias": (6,)}
    assert shapes(nn.BatchNorm1d(3)) == {"weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,),
                                         "num_batches_tracked": ()}
    assert shapes(nn.BatchNorm2d(3, affine=False, track_running_stats=False)) == {}
    assert shapes(nn.LayerNorm([2, 3])) == {"weight": (2, 3), "bias": (2, 3)}
    assert shapes(nn.LayerNorm(4, bias=False)) == {"weight": (4,)}
    assert shapes(nn.GroupNorm(2, 6)) == {"weight": (6,), "bias": (6,)}
    assert shapes(nn.InstanceNorm2d(3)) == {}
    assert shapes(nn.InstanceNorm2d(3, affine=True, track_running_stats=True)) == {
        "weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}
    assert shapes(nn.Embedding(7, 2)) == {"weight": (7, 2)}
    assert shapes(nn.CrossEntropyLoss(weight=heron.ones(3))) == {"weight": (3,)}
    assert nn.Linear(2, 2, dtype=heron.float64).weight.dtype == heron.float64


def test_layer_constructor_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding string"):
        nn.Conv2d(3, 6, 3, padding="full")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 6, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="Padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)


def test_default_initialisation_bounds():
    heron.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = N(lin.weight), N(lin.bias)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert np.abs(b).max() <= bound
    conv = nn.Conv2d(16, 32, 3)
    cb = 1 / math.sqrt(16 * 9)
    assert np.abs(N(conv.weight)).max() <= cb and np.abs(N(conv.weight)).max() > 0.98 * cb
    assert np.abs(N(conv.bias)).max() <= cb
    ct = nn.ConvTranspose2d(16, 8, 3)  # fan_in from weight dim 1 (out_channels / groups), like PyTorch
    assert np.abs(N(ct.weight)).max() <= 1 / math.sqrt(8 * 9)
    bn = nn.BatchNorm2d(5)
    assert np.all(N(bn.weight) == 1) and np.all(N(bn.bias) == 0)
    assert np.all(N(bn.running_mean) == 0) and np.all(N(bn.running_var) == 1)
    emb = nn.Embedding(1000, 64, padding_idx=3)
    e = N(emb.weight)
    assert np.all(e[3] == 0) and abs(e.std() - 1) < 0.02 and abs(e.mean()) < 0.02
    heron.manual_seed(5)
    a = N(nn.Linear(3, 3).weight)
    heron.manual_seed(5)
    np.testing.assert_array_equal(a, N(nn.Linear(3, 3).weight))


# ------------------------------------------------------------------ init
def test_calculate_gain_and_fans():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    assert init._calculate_fan_in_and_fan_out(heron.empty(8, 3, 5, 5)) == (75, 200)
    assert init._calculate_fan_in_and_fan_out(heron.empty(4, 6)) == (6, 4)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(heron.empty(5))


@pytest.mark.parametrize("dtype", [heron.float32, heron.float64], ids=["float32", "float64"])
def test_init_statistics(dtype):
    heron.manual_seed(123)
    t = heron.empty(500, 400, dtype=dtype)
    n = t.numel()
    se = 4 / math.sqrt(n)  # 4 standard errors, in units of the std

    def check(mean, std, lo=None, hi=None):
        a = N(t).astype(np.float64)
        assert abs(a.mean() - mean) < se * std, (a.mean(), mean)
        assert abs(a.std() - std) < 2 * se * std, (a.std(), std)
        if lo is not None:
            assert a.min() >= lo and a.max() <= hi
            assert a.min() < lo + 0.01 * (hi - lo) and a.max() > hi - 0.01 * (hi - lo)

    assert init.uniform_(t, -2.0, 3.0) is t
    check(0.5, 5 / math.sqrt(12), -2.0, 3.0)
    init.normal_(t, 1.5, 0.2)
    check(1.5, 0.2)
    fan_in, fan_out = 400, 500
    init.xavier_uniform_(t, gain=2.0)
    a = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    check(0.0, a / math.sqrt(3), -a, a)
    init.xavier_normal_(t)
    check(0.0, math.sqrt(2 / (fan_in + fan_out)))
    init.kaiming_uniform_(t, nonlinearity="relu")
    b = math.sqrt(2) * math.sqrt(3 / fan_in)
    check(0.0, b / math.sqrt(3), -b, b)
    init.kaiming_uniform_(t, a=math.sqrt(5))
    b = 1 / math.sqrt(fan_in)
    check(0.0, b / math.sqrt(3), -b, b)
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    check(0.0, math.sqrt(2 / fan_out))
    init.constant_(t, 0.25)
    assert np.all(N(t) == 0.25)
    init.zeros_(t)
    assert np.all(N(t) == 0)
    init.ones_(t)
    assert np.all(N(t) == 1)


def test_trunc_normal_statistics():
    heron.manual_seed(7)
    t = heron.empty(200_000, dtype=heron.float64)
    mean, std, a, b = 0.5, 2.0, -1.0, 3.0
    init.trunc_normal_(t, mean, std, a, b)
    x = N(t)
    assert x.min() >= a and x.max() <= b
    # closed-form mean and std of the truncated normal
    al, be = (a - mean) / std, (b - mean) / std
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    Z = Phi(be) - Phi(al)
    m = mean + std * (phi(al) - phi(be)) / Z
    v = std ** 2 * (1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2)
    assert abs(x.mean() - m) < 4 * math.sqrt(v / x.size)
    assert abs(x.std() - math.sqrt(v)) < 0.01 * math.sqrt(v)
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(t, a=1.0, b=0.0)


def test_orthogonal_eye_and_errors():
    heron.manual_seed(3)
    for shape in [(6, 4), (4, 6), (3, 2, 2)]:
        t = heron.empty(*shape, dtype=heron.float64)
        init.orthogonal_(t, gain=2.0)
        q = N(t).reshape(shape[0], -1)
        if q.shape[0] >= q.shape[1]:
            np.testing.assert_allclose(q.T @ q, 4 * np.eye(q.shape[1]), atol=1e-10)
        else:
            np.testing.assert_allclose(q @ q.T, 4 * np.eye(q.shape[0]), atol=1e-10)
    e = heron.empty(3, 4)
    init.eye_(e)
    np.testing.assert_array_equal(N(e), np.eye(3, 4))
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_uniform_(heron.empty(3, 3), mode="fan_avg")
    with pytest.raises(TypeError, match="heron.Tensor"):
        init.uniform_(np.zeros(3))


def test_init_is_seeded_and_runs_without_recording():
    heron.manual_seed(42)
    a = N(init.normal_(heron.empty(50)))
    heron.manual_seed(42)
    b = N(init.normal_(heron.empty(50)))
    np.testing.assert_array_equal(a, b)
    p = nn.Parameter(heron.empty(3, 3))
    init.uniform_(p)  # a leaf that requires grad: in place under no_grad
    if HAS_AUTOGRAD:
        assert p.is_leaf and p.grad_fn is None


# ------------------------------------------------------------------ layers on existing ops
def _gelu(x):
    from math import erf
    return 0.5 * x * (1 + np.vectorize(erf)(x / math.sqrt(2)))


@pytest.mark.parametrize("dtype", [heron.float32, heron.float64], ids=["float32", "float64"])
def test_activation_layers(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4))
    t = heron.tensor(x).to(dtype)
    tol = 1e-5 if dtype == heron.float32 else 1e-12

    def close(got, want):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(N(got), want, rtol=tol, atol=tol)

    close(nn.ReLU()(t), np.maximum(x, 0))
    close(nn.Tanh()(t), np.tanh(x))
    close(nn.Sigmoid()(t), 1 / (1 + np.exp(-x)))
    close(nn.SiLU()(t), x / (1 + np.exp(-x)))
    close(nn.GELU()(t), _gelu(x))
    g = math.sqrt(2 / math.pi)
    close(nn.GELU(approximate="tanh")(t), 0.5 * x * (1 + np.tanh(g * (x + 0.044715 * x ** 3))))
    e = np.exp(x - x.max(1, keepdims=True))
    close(nn.Softmax(dim=1)(t), e / e.sum(1, keepdims=True))
    close(nn.LogSoftmax(dim=-1)(t), x - x.max(-1, keepdims=True)
          - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = nn.Softmax()(t)  # 3-d: dim 0, like PyTorch
    e0 = np.exp(x - x.max(0, keepdims=True))
    close(out, e0 / e0.sum(0, keepdims=True))
    close(F.relu(t), np.maximum(x, 0))
    close(F.gelu(t, approximate="tanh"), 0.5 * x * (1 + np.tanh(g * (x + 0.044715 * x ** 3))))


def test_flatten_unflatten_identity():
    x = heron.tensor(np.arange(120.0).reshape(2, 3, 4, 5))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    np.testing.assert_array_equal(N(nn.Flatten()(x)), np.arange(120.0).reshape(2, 60))
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert nn.Unflatten(-1, (5, 1))(x).shape == (2, 3, 4, 5, 1)
    assert nn.Identity(3, foo=1)(x) is x


def test_functional_helpers_on_existing_ops():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    t = heron.tensor(x)
    want = x / np.maximum(np.sqrt((x * x).sum(1, keepdims=True)), 1e-12)
    np.testing.assert_allclose(N(F.normalize(t)), want, rtol=1e-12)
    want0 = x / np.abs(x).sum(0, keepdims=True)
    np.testing.assert_allclose(N(F.normalize(t, p=1, dim=0)), want0, rtol=1e-12)
    z = F.normalize(heron.zeros(2, 3, dtype=heron.float64))
    np.testing.assert_array_equal(N(z), 0.0)
    idx = heron.tensor([0, 2, 1, 2])
    oh = F.one_hot(idx)
    assert oh.dtype == heron.int64 and oh.shape == (4, 3)
    np.testing.assert_array_equal(N(oh), np.eye(3, dtype=np.int64)[[0, 2, 1, 2]])
    assert F.one_hot(idx, num_classes=5).shape == (4, 5)
    with pytest.raises(ValueError, match="class values"):
        F.one_hot(idx, num_classes=2)
    with pytest.raises(TypeError, match="int64"):
        F.one_hot(heron.tensor([0.0]))
    a = np.arange(12.0).reshape(1, 3, 4)
    ta = heron.tensor(a)
    np.testing.assert_array_equal(N(F.pad(ta, (1, 2))), np.pad(a, ((0, 0), (0, 0), (1, 2))))
    np.testing.assert_array_equal(N(F.pad(ta, (1, 2, 2, 1), mode="circular")),
                                  np.pad(a, ((0, 0), (2, 1), (1, 2)), mode="wrap"))
    np.testing.assert_array_equal(N(F.pad(ta, (2, 1), mode="reflect")), np.pad(a, ((0, 0), (0, 0), (2, 1)),
                                                                               mode="reflect"))
    np.testing.assert_array_equal(N(F.pad(ta, (1, 1), value=7.0)), np.pad(a, ((0, 0), (0, 0), (1, 1)),
                                                                          constant_values=7.0))
    with pytest.raises(ValueError, match="divisible by 2"):
        F.pad(ta, (1, 2, 3))
    assert F.dropout(ta, 0.5, training=False) is ta
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(ta, -0.1)


# ------------------------------------------------------------------ input checks (before any op runs)
def test_layer_input_errors_name_the_layer_and_the_expected_shape():
    conv = nn.Conv2d(1, 16, kernel_size=3)
    with pytest.raises(ValueError) as e:
        conv(heron.zeros(8, 3, 28, 28))
    assert str(e.value) == ("Conv2d(1, 16, kernel_size=(3, 3)): expected input of shape (N, 1, H, W) or (1, H, W), "
                            "got (8, 3, 28, 28)")
    with pytest.raises(ValueError, match=r"Conv2d\(1, 16, kernel_size=\(3, 3\)\): .* got \(28, 28\)"):
        conv(heron.zeros(28, 28))
    with pytest.raises(TypeError, match=r"Conv2d\(1, 16, kernel_size=\(3, 3\)\): expected input of dtype float32"):
        conv(heron.zeros(2, 1, 8, 8, dtype=heron.float64))
    with pytest.raises(ValueError, match=r"Conv1d\(2, 4, kernel_size=\(3,\)\): expected input of shape "
                                         r"\(N, 2, L\) or \(2, L\), got \(5, 3, 10\)"):
        nn.Conv1d(2, 4, 3)(heron.zeros(5, 3, 10))
    with pytest.raises(ValueError, match=r"Linear\(in_features=4, out_features=2, bias=True\): expected input of "
                                         r"shape \(\*, 4\), got \(3, 5\)"):
        nn.Linear(4, 2)(heron.zeros(3, 5))
    with pytest.raises(TypeError, match="Linear.*dtype float32.*got float64"):
        nn.Linear(4, 2)(heron.zeros(3, 4, dtype=heron.float64))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4\): expected input of shape \(N, 4, H, W\), got \(2, 4, 5\)"):
        nn.BatchNorm2d(4)(heron.zeros(2, 4, 5))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4\): expected input of shape \(N, 4\) or \(N, 4, L\)"):
        nn.BatchNorm1d(4)(heron.zeros(2, 3))
    with pytest.raises(ValueError, match=r"LayerNorm\(\(8,\)\): expected input of shape \(\*, 8\), got \(2, 4\)"):
        nn.LayerNorm(8)(heron.zeros(2, 4))
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 6\): expected input of shape \(N, 6, \*\)"):
        nn.GroupNorm(2, 6)(heron.zeros(2, 4, 3))
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2\): expected input of shape \(N, C, H, W\)"):
        nn.MaxPool2d(2)(heron.zeros(4, 4))
    with pytest.raises(ValueError, match=r"AvgPool2d"):
        nn.AvgPool2d(2)(heron.zeros(4))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\)"):
        nn.InstanceNorm2d(3, affine=True)(heron.zeros(1, 2, 4, 4))
    with pytest.raises(TypeError, match=r"Embedding\(10, 3\): expected indices of an integer dtype"):
        nn.Embedding(10, 3)(heron.zeros(4))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: expected target of shape \(8,\) \(class indices\) for "
                                         r"input of shape \(8, 10\), got \(8, 2\)"):
        nn.CrossEntropyLoss()(heron.zeros(8, 10), heron.zeros(8, 2, dtype=heron.int64))
    with pytest.raises(TypeError, match="NLLLoss: expected class-index target of dtype int64"):
        nn.NLLLoss()(heron.zeros(8, 10), heron.zeros(8, dtype=heron.bool))
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        nn.Upsample()(heron.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(heron.zeros(1, 1, 2, 2), scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="output size"):
        nn.ConvTranspose2d(2, 2, 3, stride=2)(heron.zeros(1, 2, 4, 4), output_size=(20, 20))


def test_parameter_list_and_dict():
    m = nn.Module()
    m.plist = nn.ParameterList([heron.zeros(2), nn.Parameter(heron.ones(3))])
    m.pdict = nn.ParameterDict({"a": heron.zeros(1)})
    m.pdict["b"] = nn.Parameter(heron.ones(2, 2))
    assert all(isinstance(p, nn.Parameter) for p in m.plist) and len(m.plist) == 2
    assert m.plist[-1].shape == (3,)
    m.plist.append(heron.zeros(4))
    assert list(m.state_dict()) == ["plist.0", "plist.1", "plist.2", "pdict.a", "pdict.b"]
    assert "b" in m.pdict and len(m.pdict) == 2 and isinstance(m.pdict["a"], nn.Parameter)
    assert [k for k in m.pdict] == ["a", "b"]
    assert len(list(m.parameters())) == 5


def test_deepcopy_clones_parameters_and_buffers():
    m = convnet()
    m.tied = m.classifier  # the same module twice
    c = copy.deepcopy(m)
    assert c.tied is c.classifier and c.classifier is not m.classifier
    for (k, a), (_, b) in zip(m.state_dict().items(), c.state_dict().items()):
        assert a.data_ptr() != b.data_ptr(), k
        np.testing.assert_array_equal(N(a), N(b))
    assert isinstance(c.classifier.weight, nn.Parameter)
    init.zeros_(c.classifier.weight)
    assert np.any(N(m.classifier.weight) != 0)
    assert [n for n, _ in c.named_parameters()] == [n for n, _ in m.named_parameters()]


def test_load_state_dict_without_num_batches_tracked_and_custom_loader():
    m = convnet()
    sd = m.state_dict()
    del sd["features.1.num_batches_tracked"]
    assert m.load_state_dict(sd).missing_keys == []  # PyTorch accepts it too (no version metadata)

    class Legacy(nn.Module):  # PyTorch's 7-argument _load_from_state_dict override still works
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(heron.zeros(2))
            self.seen = None

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
            self.seen = sorted(k for k in state_dict if k.startswith(prefix))
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    outer = nn.Sequential(Legacy())
    outer.load_state_dict({"0.w": heron.ones(2)})
    assert outer[0].seen == ["0.w"] and np.all(N(outer[0].w) == 1)
