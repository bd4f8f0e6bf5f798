"""heron.optim against numpy implementations of PyTorch's documented algorithms.

Gradients are set by hand (p.grad = ...), so these tests need no backward pass. Until autograd gives
Tensor a `.grad` attribute, a module-level fixture installs a stand-in property for it.
"""
import copy
import math

import numpy as np
import pytest

import heron
from heron import _ops
from heron.nn.utils import clip_grad_norm_, clip_grad_value_
from heron.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop


@pytest.fixture(autouse=True, scope="module")
def _grad_attribute():
    """A stand-in `.grad` attribute while Tensor has none (before autograd lands)."""
    if hasattr(heron.Tensor, "grad"):
        yield
        return
    store = {}  # id -> (tensor, grad); holding the tensor keeps its id from being reused

    def get(self):
        entry = store.get(id(self))
        return entry[1] if entry is not None and entry[0] is self else None

    heron.Tensor.grad = property(get, lambda self, v: store.__setitem__(id(self), (self, v)))
    try:
        yield
    finally:
        del heron.Tensor.grad


def np_of(t):
    return np.array(t.tolist(), dtype=np.float64)


def t64(a):
    return heron.tensor(np.asarray(a, dtype=np.float64))


# ---------------------------------------------------------------------- numpy oracles (PyTorch's docs)
def ref_sgd(p, g, st, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        buf = st.get("momentum_buffer")
        buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
        st["momentum_buffer"] = buf
        g = g + momentum * buf if nesterov else buf
    return p - lr * g


def ref_adam(p, g, st, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
             decoupled=False):
    b1, b2 = betas
    t = st["step"] = st.get("step", 0) + 1
    m = st.get("exp_avg", np.zeros_like(p))
    v = st.get("exp_avg_sq", np.zeros_like(p))
    g = -g if maximize else g
    if weight_decay:
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    st["exp_avg"], st["exp_avg_sq"] = m, v
    m_hat = m / (1 - b1 ** t)
    if amsgrad:
        vmax = np.maximum(st.get("max_exp_avg_sq", np.zeros_like(p)), v)
        st["max_exp_avg_sq"] = vmax
        v_hat = vmax / (1 - b2 ** t)
    else:
        v_hat = v / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_rmsprop(p, g, st, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                maximize=False):
    st["step"] = st.get("step", 0) + 1
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    v = alpha * st.get("square_avg", np.zeros_like(p)) + (1 - alpha) * g * g
    st["square_avg"] = v
    if centered:
        ga = alpha * st.get("grad_avg", np.zeros_like(p)) + (1 - alpha) * g
        st["grad_avg"] = ga
        avg = np.sqrt(v - ga * ga) + eps
    else:
        avg = np.sqrt(v) + eps
    if momentum > 0:
        buf = momentum * st.get("momentum_buffer", np.zeros_like(p)) + g / avg
        st["momentum_buffer"] = buf
        return p - lr * buf
    return p - lr * g / avg


def ref_adagrad(p, g, st, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                maximize=False):
    t = st["step"] = st.get("step", 0) + 1
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s = st.get("sum", np.full_like(p, initial_accumulator_value)) + g * g
    st["sum"] = s
    return p - clr * g / (np.sqrt(s) + eps)


# name -> (class, oracle, list of option dicts; the oracle's names where they differ from PyTorch's)
CASES = {
    "sgd": (SGD, ref_sgd, [
        dict(lr=0.1),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
        dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
        dict(lr=0.05, momentum=0.5, maximize=True),
    ]),
    "adam": (Adam, ref_adam, [
        dict(),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, maximize=True, amsgrad=True, weight_decay=0.05),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    ]),
    "adamw": (AdamW, ref_adam, [
        dict(),
        dict(lr=0.02, weight_decay=0.3, amsgrad=True),
        dict(lr=0.02, weight_decay=0.0, maximize=True),
    ]),
    "rmsprop": (RMSprop, ref_rmsprop, [
        dict(),
        dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1),
        dict(lr=0.01, momentum=0.9),
        dict(lr=0.01, centered=True),
        dict(lr=0.005, momentum=0.5, centered=True, maximize=True, weight_decay=0.01),
    ]),
    "adagrad": (Adagrad, ref_adagrad, [
        dict(),
        dict(lr=0.1, lr_decay=0.05),
        dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6),
        dict(lr=0.1, maximize=True),
    ]),
}


def _oracle_kwargs(name, opts):
    o = dict(opts)
    if name == "adamw":
        o.setdefault("weight_decay", 1e-2)
        o["decoupled"] = True
    if name == "adam" and o.pop("decoupled_weight_decay", False):
        o["decoupled"] = True
    return o


def _case_ids():
    return [(n, i) for n, (_, _, opts) in CASES.items() for i in range(len(opts))]


@pytest.mark.parametrize("name,i", _case_ids())
def test_optimizer_matches_numpy_over_steps(name, i):
    cls, ref, options = CASES[name]
    opts = options[i]
    rng = np.random.default_rng(10 * i + len(name))
    shapes = [(3, 4), (5,), ()]
    values = [rng.standard_normal(s) for s in shapes]
    params = [t64(v) for v in values]
    opt = cls(params, **opts)
    states = [{} for _ in shapes]
    oracle_opts = _oracle_kwargs(name, opts)
    for step in range(6):
        grads = [rng.standard_normal(s) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = t64(g)
        opt.step()
        values = [ref(v, g, st, **oracle_opts) for v, g, st in zip(values, grads, states)]
        for p, v in zip(params, values):
            np.testing.assert_allclose(np_of(p), v, rtol=1e-10, atol=1e-12, err_msg=f"{name} {opts} step {step}")
    # the state has PyTorch's names and values
    for p, st in zip(params, states):
        hs = opt.state[p]
        for key, val in st.items():
            assert key in hs, f"{name}: state lacks {key!r}"
            got = hs[key]
            if key == "step":
                assert got.dtype == heron.float32 and got.ndim == 0 and got.item() == val
            else:
                np.testing.assert_allclose(np_of(got), val, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
def test_float32_params(cls):
    rng = np.random.default_rng(0)
    v = rng.standard_normal((4, 3)).astype(np.float32)
    p = heron.tensor(v)
    opt = cls([p], lr=0.01) if cls is not SGD else cls([p], lr=0.01, momentum=0.9)
    ref = {SGD: ref_sgd, Adam: ref_adam, AdamW: ref_adam, RMSprop: ref_rmsprop, Adagrad: ref_adagrad}[cls]
    kw = dict(lr=0.01, momentum=0.9) if cls is SGD else dict(lr=0.01)
    if cls is AdamW:
        kw.update(weight_decay=1e-2, decoupled=True)
    st = {}
    vv = v.astype(np.float64)
    for _ in range(3):
        g = rng.standard_normal((4, 3)).astype(np.float32)
        p.grad = heron.tensor(g)
        opt.step()
        vv = ref(vv, g.astype(np.float64), st, **kw)
    assert p.dtype == heron.float32
    np.testing.assert_allclose(np.asarray(p.tolist()), vv, rtol=2e-5, atol=2e-6)


def test_param_groups_with_different_lrs():
    rng = np.random.default_rng(1)
    a0, b0 = rng.standard_normal(3), rng.standard_normal(2)
    a, b = t64(a0), t64(b0)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    sa, sb = {}, {}
    for _ in range(4):
        ga, gb = rng.standard_normal(3), rng.standard_normal(2)
        a.grad, b.grad = t64(ga), t64(gb)
        opt.step()
        a0 = ref_sgd(a0, ga, sa, lr=0.1)
        b0 = ref_sgd(b0, gb, sb, lr=0.5, momentum=0.9)
    np.testing.assert_allclose(np_of(a), a0, rtol=1e-12)
    np.testing.assert_allclose(np_of(b), b0, rtol=1e-12)
    # changing a group's lr takes effect at the next step
    opt.param_groups[0]["lr"] = 0.0
    a.grad = t64(np.ones(3))
    b.grad = None
    before = np_of(a)
    opt.step()
    np.testing.assert_array_equal(np_of(a), before)


def test_add_param_group_and_errors():
    a, b = t64([1.0]), t64([2.0])
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "betas": (0.5, 0.6)})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[1]["betas"] == (0.5, 0.6) and opt.param_groups[1]["params"] == [b]
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        SGD(a, lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        SGD([a, 1.0], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        SGD({a}, lr=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        SGD([heron.arange(3)], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        SGD([a], lr=-1)
    with pytest.raises(ValueError, match="Invalid momentum"):
        SGD([a], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        Adam([a], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid epsilon"):
        AdamW([a], eps=-1.0)
    with pytest.raises(ValueError, match="Invalid weight_decay"):
        Adam([a], weight_decay=-0.1)
    with pytest.raises(ValueError, match="Invalid alpha"):
        RMSprop([a], alpha=-0.1)
    with pytest.raises(ValueError, match="Invalid lr_decay"):
        Adagrad([a], lr_decay=-1)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        Adagrad([a], initial_accumulator_value=-1)


def test_sgd_default_lr_and_adamw_defaults():
    a = t64([1.0])
    assert SGD([a]).defaults["lr"] == 1e-3
    d = AdamW([a]).defaults
    assert d["weight_decay"] == 1e-2 and d["decoupled_weight_decay"] is True and d["betas"] == (0.9, 0.999)
    assert Adam([a]).defaults["decoupled_weight_decay"] is False


def test_params_without_grad_are_skipped():
    a, b = t64([1.0, 2.0]), t64([3.0])
    opt = Adam([a, b], lr=0.1)
    a.grad = t64([1.0, 1.0])
    opt.step()
    assert b not in opt.state or len(opt.state[b]) == 0
    assert np_of(b).tolist() == [3.0]
    assert opt.state[a]["step"].item() == 1
    # b joins later: its own step count starts at 1 while a's is at 2
    a.grad, b.grad = t64([1.0, 1.0]), t64([1.0])
    opt.step()
    assert opt.state[a]["step"].item() == 2 and opt.state[b]["step"].item() == 1
    st = {}
    np.testing.assert_allclose(np_of(b), ref_adam(np.array([3.0]), np.array([1.0]), st, lr=0.1), rtol=1e-12)


def test_zero_grad():
    a, b = t64([1.0, 2.0]), t64([3.0])
    opt = SGD([a, b], lr=0.1)
    a.grad = t64([5.0, 6.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    a.grad = t64([5.0, 6.0])
    g = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and a.grad.tolist() == [0.0, 0.0] and g.tolist() == [0.0, 0.0]
    assert b.grad is None


def test_step_closure():
    a = t64([1.0])
    opt = SGD([a], lr=0.5)
    calls = []

    def closure():
        calls.append(1)
        a.grad = t64([2.0])
        return 42.0

    assert opt.step(closure) == 42.0
    assert calls == [1] and np_of(a).tolist() == [0.0]


def _run(opt, params, grads_seq):
    for grads in grads_seq:
        for p, g in zip(params, grads):
            p.grad = t64(g)
        opt.step()
    return [np_of(p) for p in params]


@pytest.mark.parametrize("make", [
    lambda ps: SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}], lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: AdamW([{"params": ps[:1], "weight_decay": 0.5}, {"params": ps[1:]}], lr=0.01),
    lambda ps: RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.01),
], ids=["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_state_dict_round_trip_resumes_identically(make):
    rng = np.random.default_rng(3)
    shapes = [(2, 3), (4,)]
    init = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(8)]
    # straight run
    ps = [t64(v) for v in init]
    opt = make(ps)
    straight = _run(opt, ps, grads)
    # 4 steps, save, rebuild from the saved values and state, 4 more steps
    ps1 = [t64(v) for v in init]
    opt1 = make(ps1)
    _run(opt1, ps1, grads[:4])
    sd = opt1.state_dict()
    # PyTorch's format
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == [0, 1]
    flat = [i for g in sd["param_groups"] for i in g["params"]]
    assert flat == [0, 1]
    assert all("lr" in g and "params" in g for g in sd["param_groups"])
    saved = {k: {n: (np_of(v) if isinstance(v, heron.Tensor) else v) for n, v in s.items()}
             for k, s in sd["state"].items()}
    ps2 = [t64(np_of(p)) for p in ps1]
    opt2 = make(ps2)
    opt2.load_state_dict(copy.deepcopy(sd) if _deepcopyable(sd) else sd)
    resumed = _run(opt2, ps2, grads[4:])
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    # loading copied the state: running opt2 did not touch the state dict taken from opt1
    for k, s in sd["state"].items():
        for n, v in s.items():
            if isinstance(v, heron.Tensor):
                np.testing.assert_array_equal(np_of(v), saved[k][n])


def _deepcopyable(obj):
    try:
        copy.deepcopy(obj)
        return True
    except Exception:
        return False


def test_load_state_dict_errors_and_casts():
    a, b = t64([1.0]), t64([2.0])
    opt = Adam([a, b], lr=0.1)
    a.grad, b.grad = t64([1.0]), t64([1.0])
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="number of parameter groups"):
        Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size"):
        Adam([a]).load_state_dict(sd)
    # float32 params get float32 state; 'step' stays as it was
    c, d = heron.tensor([1.0]), heron.tensor([2.0])
    opt32 = Adam([c, d], lr=0.5)
    opt32.load_state_dict(sd)
    assert opt32.state[c]["exp_avg"].dtype == heron.float32
    assert opt32.state[c]["step"].dtype == heron.float32
    assert opt32.param_groups[0]["lr"] == 0.1  # hyper-parameters come from the state dict


def test_fused_op_called_once_per_group(monkeypatch):
    calls = []
    for name in ("sgd_step_", "adam_step_", "rmsprop_step_", "adagrad_step_"):
        from heron.optim import _reference
        impl = getattr(_ops, name, None) or getattr(_reference, name)

        def wrapper(tensors, *args, _impl=impl, _name=name, **kwargs):
            calls.append((_name, len(tensors)))
            return _impl(tensors, *args, **kwargs)

        monkeypatch.setattr(_ops, name, wrapper, raising=False)
    ps = [t64(np.ones(3)) for _ in range(5)]
    for cls, name, per in ((SGD, "sgd_step_", 3), (Adam, "adam_step_", 4), (RMSprop, "rmsprop_step_", 3),
                           (Adagrad, "adagrad_step_", 3)):
        calls.clear()
        kw = dict(lr=0.1, momentum=0.9) if cls is SGD else dict(lr=0.1)
        opt = cls([{"params": ps[:3]}, {"params": ps[3:]}], **kw)
        for p in ps:
            p.grad = t64(np.ones(3))
        ps[4].grad = None
        opt.step()
        opt.step()
        assert calls == [(name, 3 * per), (name, 1 * per)] * 2, (cls.__name__, calls)


def test_lr_as_tensor_and_repr():
    a = t64([1.0])
    opt = SGD([a], lr=heron.tensor(0.5))
    a.grad = t64([1.0])
    opt.step()
    assert np_of(a).tolist() == [0.5]
    assert "SGD (" in repr(opt) and "lr:" in repr(opt)


# ---------------------------------------------------------------------- gradient clipping
def _np_total_norm(grads, norm_type):
    if math.isinf(norm_type):
        return max(np.abs(g).max() for g in grads)
    return sum((np.abs(g) ** norm_type).sum() for g in grads) ** (1.0 / norm_type)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm(norm_type, max_norm):
    rng = np.random.default_rng(4)
    gs = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ps = [t64(np.zeros_like(g)) for g in gs]
    for p, g in zip(ps, gs):
        p.grad = t64(g)
    total = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    want = _np_total_norm(gs, norm_type)
    assert total.ndim == 0
    np.testing.assert_allclose(total.item(), want, rtol=1e-10)
    coef = min(max_norm / (want + 1e-6), 1.0)
    for p, g in zip(ps, gs):
        np.testing.assert_allclose(np_of(p.grad), g * coef, rtol=1e-10)
    if max_norm < want:
        np.testing.assert_allclose(_np_total_norm([np_of(p.grad) for p in ps], norm_type), max_norm, rtol=1e-5)


def test_clip_grad_norm_edge_cases():
    p = t64([0.0, 0.0])
    assert clip_grad_norm_([p], 1.0).item() == 0.0  # no grads at all
    p.grad = t64([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0, norm_type="inf").item() == 4.0  # a single tensor, norm type as string
    q = t64([1.0])
    q.grad = t64([float("inf")])
    with pytest.raises(RuntimeError, match="total norm"):
        clip_grad_norm_([q], 1.0, error_if_nonfinite=True)


def test_clip_grad_value():
    p = t64([0.0, 0.0, 0.0])
    p.grad = t64([-3.0, 0.5, 7.0])
    clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, 0.5, 1.0]


# ---------------------------------------------------------------------- with autograd (once it exists)
@pytest.mark.skipif(not hasattr(heron.Tensor, "backward"), reason="needs autograd (Tensor.backward)")
def test_adam_minimizes_a_quadratic_through_backward():
    target = heron.tensor([1.0, -2.0, 3.0], dtype=heron.float64)
    w = heron.zeros(3, dtype=heron.float64)
    w.requires_grad_(True)
    opt = Adam([w], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        loss = heron.sum(heron.square(heron.sub(w, target)))
        loss.backward()
        opt.step()
    np.testing.assert_allclose(np_of(w.detach()), [1.0, -2.0, 3.0], atol=1e-3)
    assert w.requires_grad and w.is_leaf


def test_optimizer_base_is_abstract():
    class Plain(Optimizer):
        pass

    a = t64([1.0])
    opt = Plain([a], {"lr": 0.1})
    a.grad = t64([1.0])
    with pytest.raises(NotImplementedError):
        opt.step()
