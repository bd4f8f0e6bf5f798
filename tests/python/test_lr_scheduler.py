"""heron.optim.lr_scheduler against PyTorch's closed forms."""
import bisect
import math

import pytest

import heron
from heron.optim import SGD, Adam
from heron.optim.lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, LRScheduler, MultiStepLR,
                                      OneCycleLR, StepLR)


def make_opt(lrs=(0.1,), cls=SGD, **kw):
    groups = [{"params": [heron.zeros(2, dtype=heron.float64)], "lr": lr} for lr in lrs]
    return cls(groups, **kw)


def trajectory(sched, n):
    """lr of every group after construction and after each of n steps."""
    out = [list(sched.get_last_lr())]
    for _ in range(n):
        sched.step()
        out.append(list(sched.get_last_lr()))
        assert out[-1] == [g["lr"] for g in sched.optimizer.param_groups]
    return out


def assert_close(got, want, rtol=1e-9, atol=1e-15):
    assert len(got) == len(want)
    for e, (g, w) in enumerate(zip(got, want)):
        for a, b in zip(g, w):
            assert math.isclose(a, b, rel_tol=rtol, abs_tol=atol), f"epoch {e}: {g} != {w}"


def test_step_lr():
    s = StepLR(make_opt((0.1, 0.5)), step_size=3, gamma=0.5)
    want = [[b * 0.5 ** (e // 3) for b in (0.1, 0.5)] for e in range(13)]
    assert_close(trajectory(s, 12), want)


def test_multistep_lr_with_repeated_milestones():
    ms = [3, 6, 6, 9]
    s = MultiStepLR(make_opt((0.2,)), milestones=ms, gamma=0.1)
    want = [[0.2 * 0.1 ** bisect.bisect_right(ms, e)] for e in range(13)]
    assert_close(trajectory(s, 12), want)


def test_exponential_lr():
    s = ExponentialLR(make_opt((0.3, 0.01)), gamma=0.9)
    want = [[b * 0.9 ** e for b in (0.3, 0.01)] for e in range(21)]
    assert_close(trajectory(s, 20), want)


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing_follows_closed_form_past_t_max(eta_min):
    T = 10
    s = CosineAnnealingLR(make_opt((0.1, 1.0)), T_max=T, eta_min=eta_min)
    want = [[eta_min + (b - eta_min) * (1 + math.cos(math.pi * e / T)) / 2 for b in (0.1, 1.0)]
            for e in range(3 * T + 1)]
    assert_close(trajectory(s, 3 * T), want, rtol=1e-9, atol=1e-12)
    assert math.isclose(want[T][0], eta_min, abs_tol=1e-15)


def test_lambda_lr_and_its_state_dict():
    opt = make_opt((0.1, 0.2))

    class Warm:
        def __init__(self, n):
            self.n = n

        def __call__(self, e):
            return min(1.0, (e + 1) / self.n)

    warm = Warm(4)
    s = LambdaLR(opt, [warm, lambda e: 0.5 ** e])
    want = [[0.1 * min(1.0, (e + 1) / 4), 0.2 * 0.5 ** e] for e in range(8)]
    assert_close(trajectory(s, 7), want)
    sd = s.state_dict()
    assert sd["lr_lambdas"][0] == {"n": 4} and sd["lr_lambdas"][1] is None and "optimizer" not in sd
    warm2 = Warm(100)
    s2 = LambdaLR(make_opt((0.1, 0.2)), [warm2, lambda e: 0.5 ** e])
    s2.load_state_dict(sd)
    assert warm2.n == 4 and s2.last_epoch == 7
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        LambdaLR(make_opt((0.1, 0.2)), [lambda e: 1.0])


def _onecycle_reference(step, total, max_lr, pct, div, final_div, three_phase, strategy, base_m=0.85, max_m=0.95):
    """OneCycleLR's documented schedule, written independently: (lr, momentum) at `step`."""
    init, low = max_lr / div, max_lr / div / final_div

    def anneal(a, b, t):
        if strategy == "cos":
            return b + (a - b) / 2 * (math.cos(math.pi * t) + 1)
        return a + (b - a) * t

    up = pct * total - 1
    if three_phase:
        down = 2 * pct * total - 2
        if step <= up:
            t = step / up
            return anneal(init, max_lr, t), anneal(max_m, base_m, t)
        if step <= down:
            t = (step - up) / (down - up)
            return anneal(max_lr, init, t), anneal(base_m, max_m, t)
        t = (step - down) / (total - 1 - down)
        return anneal(init, low, t), max_m
    if step <= up:
        t = step / up
        return anneal(init, max_lr, t), anneal(max_m, base_m, t)
    t = (step - up) / (total - 1 - up)
    return anneal(max_lr, low, t), anneal(base_m, max_m, t)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_lr_and_momentum(three_phase, strategy):
    total = 50
    opt = make_opt((0.5,), momentum=0.9)
    s = OneCycleLR(opt, max_lr=1.0, total_steps=total, pct_start=0.3, anneal_strategy=strategy,
                   three_phase=three_phase, div_factor=25.0, final_div_factor=1e4)
    for step in range(total):
        lr, m = _onecycle_reference(step, total, 1.0, 0.3, 25.0, 1e4, three_phase, strategy)
        assert math.isclose(s.get_last_lr()[0], lr, rel_tol=1e-9, abs_tol=1e-15), step
        assert math.isclose(opt.param_groups[0]["momentum"], m, rel_tol=1e-9), step
        if step < total - 1:
            s.step()
    assert math.isclose(s.get_last_lr()[0], 1.0 / 25 / 1e4, rel_tol=1e-9)
    with pytest.raises(ValueError, match="Tried to step"):
        s.step()
        s.step()


def test_one_cycle_peak_and_adam_betas():
    opt = make_opt((0.1, 0.1), cls=Adam, betas=(0.9, 0.99))
    s = OneCycleLR(opt, max_lr=[0.01, 0.02], epochs=2, steps_per_epoch=10, pct_start=0.25)
    assert s.total_steps == 20
    lrs = trajectory(s, 19)
    assert_close(lrs[:1], [[0.01 / 25, 0.02 / 25]])
    peak = max(range(20), key=lambda i: lrs[i][0])
    assert peak == 4 and math.isclose(lrs[4][1], 0.02)  # pct_start * total - 1
    assert opt.param_groups[0]["betas"][1] == 0.99
    assert math.isclose(opt.param_groups[0]["betas"][0], 0.95)  # back to max_momentum at the end
    assert opt.param_groups[0]["max_lr"] == 0.01 and opt.param_groups[1]["initial_lr"] == 0.02 / 25


def test_one_cycle_errors():
    with pytest.raises(ValueError, match="total_steps OR"):
        OneCycleLR(make_opt(), max_lr=0.1)
    with pytest.raises(ValueError, match="positive integer total_steps"):
        OneCycleLR(make_opt(), max_lr=0.1, total_steps=0)
    with pytest.raises(ValueError, match="pct_start"):
        OneCycleLR(make_opt(), max_lr=0.1, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(make_opt(), max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="expected 1 values for max_lr"):
        OneCycleLR(make_opt(), max_lr=[0.1, 0.2], total_steps=10)
    from heron.optim import Adagrad
    with pytest.raises(ValueError, match="momentum or beta1"):
        OneCycleLR(Adagrad([heron.zeros(1)]), max_lr=0.1, total_steps=10)
    OneCycleLR(Adagrad([heron.zeros(1)]), max_lr=0.1, total_steps=10, cycle_momentum=False)


@pytest.mark.parametrize("make", [
    lambda o: StepLR(o, 2, 0.5),
    lambda o: MultiStepLR(o, [2, 5], 0.3),
    lambda o: ExponentialLR(o, 0.8),
    lambda o: CosineAnnealingLR(o, 7, 0.001),
    lambda o: OneCycleLR(o, max_lr=0.4, total_steps=20, three_phase=True),
], ids=["step", "multistep", "exp", "cosine", "onecycle"])
def test_scheduler_state_dict_resume(make):
    s = make(make_opt((0.1, 0.3), momentum=0.9))
    straight = trajectory(s, 15)
    a_opt = make_opt((0.1, 0.3), momentum=0.9)
    a = make(a_opt)
    trajectory(a, 6)
    sd, osd = a.state_dict(), a_opt.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 6
    b_opt = make_opt((0.1, 0.3), momentum=0.9)
    b_opt.load_state_dict(osd)
    b = make(b_opt)
    b.load_state_dict(sd)
    assert b.get_last_lr() == straight[6]
    rest = trajectory(b, 9)
    assert_close(rest, straight[6:], rtol=1e-12)


def test_resume_without_initial_lr_and_step_with_epoch():
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(make_opt(), 2, last_epoch=3)
    opt = make_opt((1.0,))
    s = StepLR(opt, step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter"):
        s.step(5)
    assert s.get_last_lr() == [0.25]
    s2 = StepLR(opt, step_size=2, gamma=0.5, last_epoch=5)  # resumes from the stored initial_lr
    assert s2.base_lrs == [1.0]
    with pytest.raises(TypeError, match="is not an Optimizer"):
        StepLR(object(), 2)


def test_scheduler_initial_lr_setdefault_and_base():
    opt = make_opt((0.2,))
    StepLR(opt, 3)
    opt.param_groups[0]["lr"] = 0.7
    s = ExponentialLR(opt, 0.5)  # a second scheduler keeps the first one's initial_lr
    assert s.base_lrs == [0.2]
    assert isinstance(s, LRScheduler)
