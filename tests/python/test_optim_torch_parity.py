"""heron.optim and heron.optim.lr_scheduler next to torch.optim, when PyTorch is installed (skipped
otherwise; never a CI dependency): the same updates, state, state_dict layout and schedules, and
state dicts that move between the two."""
import math

import numpy as np
import pytest

import heron

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _grad_attribute():
    """A stand-in `.grad` attribute while heron.Tensor has none (before autograd lands)."""
    if hasattr(heron.Tensor, "grad"):
        yield
        return
    store = {}

    def get(self):
        entry = store.get(id(self))
        return entry[1] if entry is not None and entry[0] is self else None

    heron.Tensor.grad = property(get, lambda self, v: store.__setitem__(id(self), (self, v)))
    try:
        yield
    finally:
        del heron.Tensor.grad


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-5)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, maximize=True, momentum=0.3)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2, maximize=True)),
]


def _to_torch(v):
    if isinstance(v, heron.Tensor):
        return torch.from_numpy(np.array(v.tolist(), dtype=np.float64 if v.dtype == heron.float64 else np.float32))
    return v


def _to_heron(v):
    if isinstance(v, torch.Tensor):
        return heron.tensor(v.detach().numpy().copy())
    return v


def _convert_sd(sd, conv):
    return {"state": {k: {n: conv(x) for n, x in s.items()} for k, s in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}


def _pair(name, kw, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in [(3, 4), (5,)]]
    tp = [torch.tensor(v, requires_grad=True) for v in init]
    hp = [heron.tensor(v) for v in init]
    return (getattr(torch.optim, name)(tp, **kw), tp), (getattr(heron.optim, name)(hp, **kw), hp)


def _steps(t, h, grads):
    (topt, tp), (hopt, hp) = t, h
    for gs in grads:
        for p, q, g in zip(tp, hp, gs):
            p.grad = torch.tensor(g)
            q.grad = heron.tensor(g)
        topt.step()
        hopt.step()


def _compare(t, h, rtol=1e-11):
    (topt, tp), (hopt, hp) = t, h
    for p, q in zip(tp, hp):
        np.testing.assert_allclose(np.array(q.tolist()), p.detach().numpy(), rtol=rtol, atol=1e-13)
    tsd, hsd = topt.state_dict(), hopt.state_dict()
    assert sorted(tsd["state"]) == sorted(hsd["state"])
    for k in tsd["state"]:
        assert sorted(tsd["state"][k]) == sorted(hsd["state"][k])
        for n, v in tsd["state"][k].items():
            w = hsd["state"][k][n]
            if isinstance(v, torch.Tensor):
                assert tuple(w.shape) == tuple(v.shape), n
                np.testing.assert_allclose(np.array(w.tolist()), v.numpy(), rtol=rtol, atol=1e-13, err_msg=n)
    assert len(tsd["param_groups"]) == len(hsd["param_groups"])
    for tg, hg in zip(tsd["param_groups"], hsd["param_groups"]):
        assert set(tg) == set(hg)
        for key in tg:
            assert tg[key] == hg[key] or (isinstance(tg[key], float) and math.isclose(tg[key], hg[key])), key


@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_same_updates_state_and_state_dict_as_torch(name, kw):
    rng = np.random.default_rng(5)
    grads = [[rng.standard_normal(s) for s in [(3, 4), (5,)]] for _ in range(7)]
    t, h = _pair(name, kw)
    _steps(t, h, grads)
    _compare(t, h)


@pytest.mark.parametrize("name,kw", CONFIGS[1::2], ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS[1::2])])
def test_state_dicts_move_between_torch_and_heron(name, kw):
    rng = np.random.default_rng(6)
    grads = [[rng.standard_normal(s) for s in [(3, 4), (5,)]] for _ in range(6)]
    t, h = _pair(name, kw)
    _steps(t, h, grads[:3])
    # swap: each optimizer continues from the other's state dict, on fresh parameters with the same values
    (topt, tp), (hopt, hp) = t, h
    tp2 = [torch.tensor(np.array(q.tolist()), requires_grad=True) for q in hp]
    hp2 = [heron.tensor(p.detach().numpy().copy()) for p in tp]
    topt2 = getattr(torch.optim, name)(tp2, **kw)
    hopt2 = getattr(heron.optim, name)(hp2, **kw)
    topt2.load_state_dict(_convert_sd(hopt.state_dict(), _to_torch))
    hopt2.load_state_dict(_convert_sd(topt.state_dict(), _to_heron))
    _steps((topt2, tp2), (hopt2, hp2), grads[3:])
    _compare((topt2, tp2), (hopt2, hp2))


def _sched_pair(make, opt_name="SGD", opt_kw=None, groups=(0.1, 0.3)):
    opt_kw = opt_kw or dict(momentum=0.9)
    tgroups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in groups]
    hgroups = [{"params": [heron.zeros(1)], "lr": lr} for lr in groups]
    topt = getattr(torch.optim, opt_name)(tgroups, **opt_kw)
    hopt = getattr(heron.optim, opt_name)(hgroups, **opt_kw)
    return make(torch.optim.lr_scheduler, topt), make(heron.optim.lr_scheduler, hopt)


SCHEDULERS = [
    ("step", lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), "SGD", None, 20),
    ("multistep", lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3), "SGD", None, 20),
    ("exp", lambda m, o: m.ExponentialLR(o, gamma=0.85), "SGD", None, 20),
    ("cosine", lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001), "SGD", None, 30),
    ("lambda", lambda m, o: m.LambdaLR(o, lambda e: 1 / (1 + e)), "SGD", None, 10),
    ("onecycle-cos", lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=40), "SGD", None, 39),
    ("onecycle-lin3", lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=40, anneal_strategy="linear",
                                                 three_phase=True, pct_start=0.2), "SGD", None, 39),
    ("onecycle-adam", lambda m, o: m.OneCycleLR(o, max_lr=0.01, epochs=3, steps_per_epoch=7, div_factor=10,
                                                 final_div_factor=100, base_momentum=0.8, max_momentum=0.9),
     "Adam", dict(betas=(0.9, 0.99)), 20),
]


@pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")
@pytest.mark.parametrize("label,make,opt_name,opt_kw,n", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_schedulers_match_torch(label, make, opt_name, opt_kw, n):
    ts, hs = _sched_pair(make, opt_name, opt_kw)
    for step in range(n + 1):
        np.testing.assert_allclose(hs.get_last_lr(), ts.get_last_lr(), rtol=1e-12, err_msg=f"step {step}")
        for tg, hg in zip(ts.optimizer.param_groups, hs.optimizer.param_groups):
            for key in ("momentum", "betas"):
                if key in tg:
                    np.testing.assert_allclose(np.ravel(hg[key]), np.ravel(tg[key]), rtol=1e-12, err_msg=key)
        if step < n:
            ts.step()
            hs.step()
    tsd, hsd = ts.state_dict(), hs.state_dict()
    assert set(tsd) - {"_get_lr_called_within_step", "_is_initial"} <= set(hsd) | {"_anneal_func"}
    assert tsd["last_epoch"] == hsd["last_epoch"] and tsd["base_lrs"] == hsd["base_lrs"]
