"""Autograd: finite-difference gradient checks (float64) for every differentiable op of the
foundation schema, engine semantics (accumulation, retain_graph, no_grad, grad(), views, in-place
errors, anomaly detection) and the errors of bad use."""
import json

import numpy as np
import pytest

import heron
from heron.autograd import gradcheck

RNG = np.random.default_rng(1234)


def T(shape, lo=-2.0, hi=2.0, noncontig=False, requires_grad=True, positive=False):
    """A float64 tensor; optionally non-contiguous (a transposed view of a larger buffer)."""
    if positive:
        lo, hi = 0.5, 2.0
    if noncontig and len(shape) >= 2:
        base = RNG.uniform(lo, hi, size=tuple(shape[:-2]) + (shape[-1], shape[-2] * 2))
        t = heron.from_numpy(base)[..., ::2].transpose(-1, -2)
        assert not t.is_contiguous()
    else:
        t = heron.from_numpy(RNG.uniform(lo, hi, size=shape))
    t.requires_grad_(requires_grad)
    return t


def I(shape, high):
    return heron.from_numpy(RNG.integers(0, high, size=shape).astype(np.int64))


UNARY = {
    "neg": {}, "abs": {}, "exp": {}, "expm1": {}, "log": {"positive": True}, "log1p": {"positive": True},
    "log2": {"positive": True}, "sqrt": {"positive": True}, "rsqrt": {"positive": True}, "square": {}, "sin": {},
    "cos": {}, "tan": {"lo": -1.0, "hi": 1.0}, "tanh": {}, "sigmoid": {}, "relu": {}, "silu": {}, "erf": {},
    "reciprocal": {"positive": True}, "softplus": {},
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("noncontig", [False, True])
def test_unary_gradcheck(name, noncontig):
    x = T((3, 4), noncontig=noncontig, **UNARY[name])
    if name in ("relu", "abs"):  # keep away from the kink
        with heron.no_grad():
            x.copy_(heron.where(x.abs() < 0.1, heron.full_like(x, 0.5), x))
    fn = getattr(heron, name)
    assert gradcheck(fn, (x,))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradcheck(approximate):
    assert gradcheck(lambda x: heron.gelu(x, approximate), (T((5,)),))


def test_softplus_threshold_gradcheck():
    x = T((6,), lo=-3, hi=3)
    assert gradcheck(lambda x: heron.softplus(x, 2.0, 1.0), (x,))


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "sign"])
def test_piecewise_constant_have_zero_grad(name):
    x = T((4,))
    getattr(heron, name)(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(4))


BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3,)), ((5,), ())]


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "maximum", "minimum", "atan2", "pow", "remainder"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
def test_binary_gradcheck(name, shapes):
    kw = {"positive": True} if name in ("pow", "div", "remainder") else {}
    a, b = T(shapes[0], **kw), T(shapes[1], **kw)
    if name == "remainder":  # away from the jumps
        with heron.no_grad():
            a.copy_(a * 3 + 0.05)
    assert gradcheck(getattr(heron, name), (a, b))


def test_add_sub_alpha_and_scalars():
    a, b = T((3,)), T((3,))
    assert gradcheck(lambda a, b: heron.add(a, b, 2.5), (a, b))
    assert gradcheck(lambda a, b: heron.sub(a, b, -1.5), (a, b))
    assert gradcheck(lambda a: a * 3 + 2 - 1 / (a * a + 1) + a ** 2, (a,))
    assert gradcheck(lambda a: 2 ** a, (a,))


def test_noncontiguous_binary():
    a, b = T((4, 3), noncontig=True), T((4, 3), noncontig=True)
    assert gradcheck(lambda a, b: a * b + a / (b * b + 1), (a, b))


def test_where_clamp_masked_fill():
    c = heron.from_numpy(RNG.random((3, 4)) > 0.5)
    a, b = T((3, 4)), T((4,))
    assert gradcheck(lambda a, b: heron.where(c, a, b), (a, b))
    assert gradcheck(lambda a: heron.clamp(a, -0.5, 0.7), (a,))
    assert gradcheck(lambda a: heron.clamp(a, min=-0.5), (a,))
    assert gradcheck(lambda a: heron.masked_fill(a, c, 3.0), (a,))


REDUCTIONS = [("sum", {}), ("mean", {}), ("prod", {}), ("amax", {}), ("amin", {}), ("var", {}), ("std", {}),
              ("logsumexp", {})]


@pytest.mark.parametrize("name,kw", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
@pytest.mark.parametrize("dim,keepdim", [(None, False), ([1], False), ([0, 2], True), ([-1], True)])
def test_reduction_gradcheck(name, kw, dim, keepdim):
    x = T((2, 3, 4), positive=(name == "prod"))
    fn = getattr(heron, name)
    assert gradcheck(lambda x: fn(x, dim=dim, keepdim=keepdim, **kw), (x,))


def test_var_correction_and_prod_with_zeros():
    x = T((3, 5))
    assert gradcheck(lambda x: heron.var(x, [1], correction=0), (x,))
    z = heron.from_numpy(np.array([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.5]]))
    z.requires_grad_()
    heron.prod(z, [1]).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [[0, 3.0, 0], [0, 0, 0], [1.0, 0.5, 2.0]])


def test_amax_ties_split_gradient():
    x = heron.tensor([1.0, 3.0, 3.0, 2.0], dtype=heron.float64)
    x.requires_grad_()
    heron.amax(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0.5, 0.5, 0])


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_scan_gradcheck(name):
    x = T((3, 4), positive=(name == "cumprod"))
    fn = getattr(heron, name)
    assert gradcheck(lambda x: fn(x, 1), (x,))
    assert gradcheck(lambda x: fn(x, 0), (x,))


def test_cumprod_with_zero_gradcheck():
    x = heron.from_numpy(np.array([1.5, 0.0, 2.0, -1.0, 0.5]))
    x.requires_grad_()
    assert gradcheck(lambda x: heron.cumprod(x, 0), (x,))


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)), ((3,), (2, 3, 4))], ids=str)
def test_matmul_gradcheck(shapes):
    assert gradcheck(heron.matmul, (T(shapes[0]), T(shapes[1])))


def test_matmul_noncontiguous():
    assert gradcheck(heron.matmul, (T((3, 4), noncontig=True), T((4, 2), noncontig=True)))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_gradcheck(name):
    fn = getattr(heron, name)
    x = T((3, 5))
    assert gradcheck(lambda x: fn(x, 1), (x,))
    assert gradcheck(lambda x: fn(x, 0), (x,))


VIEWS = [
    ("reshape", lambda x: heron.reshape(x, [4, 6])),
    ("view", lambda x: x.contiguous().view(6, 4)),
    ("permute", lambda x: heron.permute(x, [2, 0, 1])),
    ("transpose", lambda x: heron.transpose(x, 0, 2)),
    ("slice", lambda x: heron.slice(x, 2, 1, None, 2)),
    ("slice_neg", lambda x: x[:, ::-1]),
    ("select", lambda x: heron.select(x, 1, -1)),
    ("expand", lambda x: heron.expand(x[:, :1], [2, 3, 4, 4]) if False else heron.expand(x[:, :1, :], [5, 2, 3, 4])),
    ("broadcast_to", lambda x: heron.broadcast_to(x, [3, 2, 3, 4])),
    ("squeeze", lambda x: heron.squeeze(x[:, :1], [1])),
    ("unsqueeze", lambda x: heron.unsqueeze(x, 1)),
    ("flatten", lambda x: heron.flatten(x, 1)),
    ("as_strided", lambda x: heron.as_strided(x.contiguous(), [3, 3], [2, 1], 1)),
    ("contiguous", lambda x: heron.contiguous(x.transpose(0, 1))),
    ("clone", lambda x: heron.clone(x)),
    ("cast", lambda x: heron.cast(x, heron.float32).double() * 1.0),
    ("to_device", lambda x: heron.to_device(x, "cpu")),
    ("getitem", lambda x: x[1:, [0, 2], ::2]),
    ("getitem_bool", lambda x: x[x > 0]),
    ("flip", lambda x: heron.flip(x, [0, 2])),
    ("roll", lambda x: heron.roll(x, [1, -2], [1, 2])),
    ("tril", lambda x: heron.tril(x, 0)),
    ("triu", lambda x: heron.triu(x, 1)),
    ("pad_constant", lambda x: heron.pad(x, [1, 2, 0, 1], "constant", 1.5)),
    ("pad_reflect", lambda x: heron.pad(x, [2, 1], "reflect")),
    ("pad_replicate", lambda x: heron.pad(x, [2, 3, 1, 1], "replicate")),
]


@pytest.mark.parametrize("name,fn", VIEWS, ids=[v[0] for v in VIEWS])
@pytest.mark.parametrize("noncontig", [False, True])
def test_view_and_movement_gradcheck(name, fn, noncontig):
    x = T((2, 3, 4), noncontig=noncontig)
    if name == "cast":  # float32 in the middle: finite differences need a larger step
        assert gradcheck(fn, (x,), eps=1e-2, atol=1e-3)
    else:
        assert gradcheck(fn, (x,))


def test_join_split_gradcheck():
    a, b, c = T((2, 3)), T((2, 1)), T((2, 2))
    assert gradcheck(lambda a, b, c: heron.concat([a, b, c], 1), (a, b, c))
    a2, b2 = T((2, 3)), T((2, 3))
    assert gradcheck(lambda a, b: heron.stack([a, b], 1), (a2, b2))
    x = T((6, 4))
    assert gradcheck(lambda x: heron.split(x, 2), (x,))
    assert gradcheck(lambda x: heron.split(x, None, [1, 3, 2])[2] * 2, (x,))  # only one output used
    assert gradcheck(lambda x: heron.chunk(x, 3, 1), (x,))


def test_index_ops_gradcheck():
    x = T((4, 5))
    idx = I((4, 3), 5)
    assert gradcheck(lambda x: heron.gather(x, idx, 1), (x,))
    src = T((4, 3))
    assert gradcheck(lambda x, s: heron.scatter_add(x, idx, s, 1), (x, src))
    uidx = heron.from_numpy(np.stack([RNG.permutation(5)[:3] for _ in range(4)]).astype(np.int64))
    assert gradcheck(lambda x, s: heron.scatter(x, uidx, s, 1), (x, src))
    sel = heron.tensor([3, 0, 3, 1])
    assert gradcheck(lambda x: heron.index_select(x, sel, 0), (x,))
    assert gradcheck(lambda x: heron.index_select(x, sel, 1), (x,))
    assert gradcheck(lambda x: heron.take_along_dim(x, idx, 1), (x,))
    assert gradcheck(lambda x: heron.take_along_dim(x, heron.tensor([0, 7, 7, 19])), (x,))
    assert gradcheck(lambda x: heron.index(x, [heron.tensor([0, 2, 2]), heron.tensor([1, 1, 4])]), (x,))


@pytest.mark.parametrize("name", ["sort", "topk"])
def test_sort_topk_gradcheck(name):
    x = T((3, 6))
    if name == "sort":
        assert gradcheck(lambda x: heron.sort(x, 1, True).values, (x,))
        assert gradcheck(lambda x: heron.sort(x, 0).values, (x,))
    else:
        assert gradcheck(lambda x: heron.topk(x, 2, 1).values, (x,))


def test_every_differentiable_foundation_op_is_covered():
    """Every op with a gradient formula appears in this file's gradient checks (new ops must add one)."""
    import pathlib
    schema = json.loads(heron._C._schema_json())
    here = pathlib.Path(__file__).read_text()
    others = "".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_*.py"))
    missing = []
    for op in schema["ops"]:
        if not op.get("differentiable"):
            continue
        n = op["name"]
        if f'"{n}"' in here or f"heron.{n}(" in here or f"F.{n}(" in others or f"heron.{n}(" in others:
            continue
        missing.append(n)
    assert not missing, f"differentiable ops without a gradient check: {missing}"


# ------------------------------------------------------------------ engine semantics
def test_accumulation_and_zeroing():
    x = T((3,))
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 5.0))
    x.grad = None
    assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())
    x._zero_grad()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3))


def test_shared_subexpression_and_diamond():
    x = T((4,))
    y = x * x
    z = y + y * y  # y used twice
    z.sum().backward()
    xn = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 2 * xn + 4 * xn ** 3)


def test_explicit_gradient_and_nonscalar_error():
    x = T((2, 3))
    y = x * 2
    with pytest.raises(heron.InvalidArgumentError, match="implicitly created only for scalar"):
        y.backward()
    y.backward(heron.ones_like(y) * 0.5)
    np.testing.assert_allclose(x.grad.numpy(), np.ones((2, 3)))
    with pytest.raises(heron.InvalidArgumentError, match="shape"):
        (x * 2).backward(heron.ones(3, dtype=heron.float64))


def test_backward_twice_needs_retain_graph():
    x = T((3,))
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp(x.detach().numpy()))
    with pytest.raises(heron.InvalidArgumentError, match="second time.*retain_graph"):
        y.backward()


def test_backward_without_requires_grad_is_clear_error():
    x = heron.ones(3)
    with pytest.raises(heron.InvalidArgumentError, match="does not require grad"):
        x.sum().backward()


def test_no_grad_enable_grad_and_decorator():
    x = T((3,))
    with heron.no_grad():
        y = x * 2
        assert not heron.is_grad_enabled()
        with heron.enable_grad():
            z = x * 2
    assert heron.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn.name() == "MulBackward"

    @heron.no_grad()
    def f(t):
        return t * 3
    assert not f(x).requires_grad
    prev = heron.set_grad_enabled(False)
    assert not (x * 1).requires_grad
    heron.set_grad_enabled(True)
    with heron.set_grad_enabled(False):
        assert not heron.is_grad_enabled()
    assert heron.is_grad_enabled()
    del prev


def test_grad_mode_is_per_thread():
    import threading
    seen = []
    with heron.no_grad():
        th = threading.Thread(target=lambda: seen.append(heron.is_grad_enabled()))
        th.start()
        th.join()
    assert seen == [True]


def test_detach_and_leaf_properties():
    x = T((3,))
    y = x * 2
    assert x.is_leaf and not y.is_leaf
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d._shares_storage(y)
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), d.numpy())
    assert "grad_fn=<MulBackward>" in repr(y)
    assert "requires_grad=True" in repr(x)
    with pytest.raises(heron.InvalidArgumentError, match="leaf"):
        y.requires_grad = False
    with pytest.raises(TypeError, match="floating-point"):
        heron.tensor([1, 2]).requires_grad_()


def test_integer_outputs_do_not_require_grad():
    x = T((5,))
    assert not heron.argmax(x).requires_grad
    assert not (x > 0).requires_grad
    v, i = heron.sort(x)
    assert v.requires_grad and not i.requires_grad


def test_autograd_grad_leaves_grad_untouched():
    x, w = T((3,)), T((3,))
    y = (x * w).sum()
    gx, gw = heron.autograd.grad(y, (x, w), retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), w.detach().numpy())
    np.testing.assert_allclose(gw.numpy(), x.detach().numpy())
    assert x.grad is None and w.grad is None
    u = T((2,))
    with pytest.raises(heron.InvalidArgumentError, match="allow_unused"):
        heron.autograd.grad(y, (x, u), retain_graph=True)
    gx, gu = heron.autograd.grad(y, (x, u), allow_unused=True)
    assert gu is None
    # w.r.t. an intermediate
    h = x * 2
    out = (h * h).sum()
    (gh,) = heron.autograd.grad(out, h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.detach().numpy())


def test_retain_grad_on_intermediate():
    x = T((3,))
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.detach().numpy())


def test_gradient_through_views_of_leaf():
    x = T((4, 4))
    y = x[1:3].transpose(0, 1).reshape(-1)
    (y * heron.arange(8, dtype=heron.float64)).sum().backward()
    expected = np.zeros((4, 4))
    expected[1:3] = np.arange(8).reshape(4, 2).T
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_broadcast_gradients_reduce_to_input_shape():
    a = T((3, 1))
    b = T((4,))
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), b.detach().numpy().sum()))


def test_mixed_dtype_gradients_keep_input_dtype():
    a = heron.ones(3, dtype=heron.float32).requires_grad_()
    b = heron.ones(3, dtype=heron.float64).requires_grad_()
    (a * b).sum().backward()
    assert a.grad.dtype == heron.float32 and b.grad.dtype == heron.float64


def test_inplace_on_tensor_requiring_grad_is_error():
    x = T((3,))
    with pytest.raises(heron.InvalidArgumentError, match="in-place"):
        x.copy_(heron.zeros(3, dtype=heron.float64))
    y = x * 2
    with pytest.raises(heron.InvalidArgumentError, match="in-place"):
        y[0] = 5.0
    with heron.no_grad():
        x.copy_(heron.zeros(3, dtype=heron.float64))  # fine: not recorded


def test_modified_saved_tensor_detected():
    x = T((3,))
    y = x.exp()  # saves its result
    with heron.no_grad():
        y.copy_(heron.zeros(3, dtype=heron.float64))
    with pytest.raises(heron.InvalidArgumentError, match="modified by an in-place operation"):
        y.sum().backward()


def test_detect_anomaly_names_op():
    x = T((3,), positive=True)
    with heron.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="'log'"):
            heron.log(x - 5.0)
        y = heron.sqrt(x * 0.0)  # sqrt(0): finite forward, inf gradient in backward
        with pytest.raises(RuntimeError, match="SqrtBackward"):
            y.sum().backward()
    assert not heron.autograd.is_anomaly_enabled()
    heron.log(x - 5.0)  # outside the block: no check


def test_graph_is_freed_no_leaks():
    import gc
    gc.collect()
    before = heron.live_handles()
    for _ in range(3):
        x = T((10,))
        y = ((x * 2).exp() + x).sum()
        y.backward()
        del x, y
    gc.collect()
    assert heron.live_handles() == before


def test_create_graph_not_supported_is_clear():
    x = T((2,))
    with pytest.raises(NotImplementedError):
        heron.autograd.grad((x * x).sum(), x, create_graph=True)


# ------------------------------------------------------------------ [training] ops through autograd
def _probs(shape):
    p = RNG.random(shape) + 0.1
    return heron.from_numpy(p / p.sum(axis=1, keepdims=True))


NN_CASES = {
    "linear": lambda: ((T((4, 3)), T((5, 3)), T((5,))), lambda x, w, b: heron.linear(x, w, b)),
    "leaky_relu": lambda: ((T((3, 4)),), lambda x: heron.leaky_relu(x, 0.2)),
    "conv1d": lambda: ((T((2, 4, 7)), T((6, 2, 3)), T((6,))), lambda x, w, b: heron.conv1d(x, w, b, 2, 1, 1, 2)),
    "conv2d": lambda: ((T((2, 2, 5, 5)), T((3, 2, 3, 3)), T((3,))),
                       lambda x, w, b: heron.conv2d(x, w, b, [1, 2], [1, 0], [1, 1], 1)),
    "conv2d_same": lambda: ((T((1, 2, 4, 4)), T((2, 1, 2, 3))),
                            lambda x, w: heron.conv2d(x, w, None, 1, 0, [2, 1], 2, True)),
    "conv_transpose2d": lambda: ((T((1, 2, 3, 3)), T((2, 3, 3, 3)), T((3,))),
                                 lambda x, w, b: heron.conv_transpose2d(x, w, b, 2, 1, 1)),
    "max_pool2d": lambda: ((T((2, 2, 5, 5)),), lambda x: heron.max_pool2d(x, 2, [], 0, 1, True)[0]),
    "avg_pool2d": lambda: ((T((2, 2, 5, 5)),), lambda x: heron.avg_pool2d(x, 3, 2, 1, False, False)),
    "adaptive_avg_pool2d": lambda: ((T((2, 2, 5, 7)),), lambda x: heron.adaptive_avg_pool2d(x, [3, 2])),
    "batch_norm": lambda: ((T((4, 3, 2)), T((3,)), T((3,))),
                           lambda x, w, b: heron.batch_norm(x, w, b, None, None, True)[0]),
    "batch_norm_eval": lambda: ((T((4, 3)), T((3,)), T((3,))),
                                lambda x, w, b: heron.batch_norm(x, w, b, heron.zeros(3, dtype=heron.float64),
                                                                 heron.ones(3, dtype=heron.float64), False)[0]),
    "layer_norm": lambda: ((T((3, 2, 4)), T((2, 4)), T((2, 4))),
                           lambda x, w, b: heron.layer_norm(x, w, b, [2, 4])[0]),
    "group_norm": lambda: ((T((2, 4, 3)), T((4,)), T((4,))), lambda x, w, b: heron.group_norm(x, w, b, 2)[0]),
    "instance_norm": lambda: ((T((2, 3, 4)), T((3,)), T((3,))),
                              lambda x, w, b: heron.instance_norm(x, w, b, None, None)[0]),
    "embedding": lambda: ((T((5, 3)),), lambda w: heron.embedding(w, heron.tensor([[0, 2], [4, 2]]))),
    "cross_entropy": lambda: (lambda w: ((T((4, 5)),), lambda x: heron.cross_entropy(
        x, heron.tensor([0, 3, -100, 4]), w, -100, "mean", 0.1)))(T((5,), positive=True, requires_grad=False)),
    "cross_entropy_probs": lambda: (lambda p: ((T((3, 4)),), lambda x: heron.cross_entropy(x, p)))(_probs((3, 4))),
    "nll_loss": lambda: ((T((4, 5)),), lambda x: heron.nll_loss(x, heron.tensor([1, 0, 4, 4]), None, -100, "sum")),
    "mse_loss": lambda: ((T((3, 4)), T((3, 4))), lambda a, b: heron.mse_loss(a, b)),
    "l1_loss": lambda: ((T((3, 4)), T((3, 4))), lambda a, b: heron.l1_loss(a, b, "sum")),
    "smooth_l1_loss": lambda: ((T((3, 4)), T((3, 4))), lambda a, b: heron.smooth_l1_loss(a, b, "mean", 0.5)),
    "binary_cross_entropy": lambda: (lambda t: ((T((3, 4), lo=0.1, hi=0.9),),
                                                lambda p: heron.binary_cross_entropy(p, t)))(heron.from_numpy(RNG.random((3, 4)))),
    "binary_cross_entropy_with_logits": lambda: (lambda t, pw: (
        (T((3, 4)),), lambda x: heron.binary_cross_entropy_with_logits(x, t, None, pw)))(
        heron.from_numpy(RNG.random((3, 4))), T((4,), positive=True, requires_grad=False)),
    "interpolate_nearest": lambda: ((T((1, 2, 3, 3)),), lambda x: heron.interpolate(x, [5, 4])),
    "interpolate_bilinear": lambda: ((T((1, 2, 3, 3)),), lambda x: heron.interpolate(x, [5, 4], None, "bilinear", True)),
    "interpolate_bilinear_scale": lambda: ((T((1, 1, 3, 4)),),
                                           lambda x: heron.interpolate(x, None, [2.0, 1.5], "bilinear", False)),
    "pixel_shuffle": lambda: ((T((1, 8, 2, 3)),), lambda x: heron.pixel_shuffle(x, 2)),
    "pixel_unshuffle": lambda: ((T((1, 2, 4, 6)),), lambda x: heron.pixel_unshuffle(x, 2)),
}


@pytest.mark.parametrize("name", sorted(NN_CASES))
def test_training_ops_gradcheck_through_autograd(name):
    inputs, fn = NN_CASES[name]()
    if name == "max_pool2d":  # distinct values: no ties at the max
        with heron.no_grad():
            inputs[0].copy_(heron.from_numpy(RNG.permutation(50).reshape(2, 5, 5).astype(np.float64)[None].repeat(2, 0)
                                             .reshape(2, 2, 5, 5) / 10.0))
    assert gradcheck(fn, inputs)


def test_missing_derivative_is_a_clear_error():
    x, w = T((4, 5)), T((5,), positive=True)
    loss = heron.cross_entropy(x, heron.tensor([0, 3, 1, 4]), w)
    with pytest.raises(NotImplementedError, match="cross_entropy.*'weight'"):
        loss.backward()


def test_embedding_padding_idx_gets_no_gradient():
    w = T((5, 3))
    heron.embedding(w, heron.tensor([[0, 2], [4, 2]]), 4).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1, 0, 2, 0, 0])


def test_dropout_gradient_uses_the_mask():
    x = T((100,))
    heron.manual_seed(3)
    y, mask = heron.dropout(x, 0.3, True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), mask.numpy() / 0.7)
