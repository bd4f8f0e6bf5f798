"""Tensor.register_post_accumulate_grad_hook: when the hooks run, what .grad holds then (against numpy
sums of the contributions), removal, and errors."""
import numpy as np
import pytest

import heron


def leaf(values):
    t = heron.from_numpy(np.asarray(values, dtype=np.float64))
    t.requires_grad_(True)
    return t


def test_hook_sees_the_final_gradient_once_per_backward():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 4.0])
    w = leaf([0.5, -2.0, 1.5])
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    # w is used twice: the hook must run once, after both contributions are summed.
    loss = (w * heron.from_numpy(a)).sum() + (w * w * heron.from_numpy(b)).sum()
    loss.backward()
    want = a + 2 * w.detach().numpy() * b
    assert len(seen) == 1 and np.allclose(seen[0], want, rtol=0, atol=1e-12)
    # a second backward accumulates: the hook sees the sum of both
    ((w * heron.from_numpy(a)).sum()).backward()
    assert len(seen) == 2 and np.allclose(seen[1], want + a, rtol=0, atol=1e-12)


def test_hooks_run_in_registration_order_and_can_be_removed():
    w = leaf([1.0, 2.0])
    calls = []
    h1 = w.register_post_accumulate_grad_hook(lambda t: calls.append("first"))
    w.register_post_accumulate_grad_hook(lambda t: calls.append("second"))
    (w * 3).sum().backward()
    assert calls == ["first", "second"]
    h1.remove()
    h1.remove()  # removing twice is harmless
    (w * 3).sum().backward()
    assert calls == ["first", "second", "second"]


def test_each_leaf_is_reported_after_its_gradient_is_final():
    x = heron.from_numpy(np.array([[1.0, 2.0]]))
    w1, w2 = leaf([[1.0], [2.0]]), leaf([[3.0]])
    order = []
    for name, p in (("w1", w1), ("w2", w2)):
        p.register_post_accumulate_grad_hook(lambda t, name=name: order.append((name, t.grad.numpy().copy())))
    (x.matmul(w1).matmul(w2)).sum().backward()
    # w2 is nearer the loss: its gradient is ready first
    assert [n for n, _ in order] == ["w2", "w1"]
    assert np.allclose(order[0][1], [[5.0]]) and np.allclose(order[1][1], [[3.0], [6.0]])


def test_not_called_by_autograd_grad_nor_for_unused_leaves():
    w, unused = leaf([1.0]), leaf([2.0])
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append("w"))
    unused.register_post_accumulate_grad_hook(lambda t: calls.append("unused"))
    (g,) = heron.autograd.grad((w * 2).sum(), (w,))
    assert calls == [] and w.grad is None and float(g.item()) == 2.0
    (w * 2 + unused.detach()).sum().backward()
    assert calls == ["w"] and unused.grad is None


def test_bad_registrations_and_a_raising_hook():
    w = leaf([1.0, 2.0])
    with pytest.raises(TypeError):
        w.register_post_accumulate_grad_hook(42)
    with pytest.raises(ValueError, match="leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(ValueError, match="leaf"):
        heron.zeros(2).register_post_accumulate_grad_hook(lambda t: None)

    def boom(t):
        raise KeyError("no such bucket")

    w.register_post_accumulate_grad_hook(boom)
    with pytest.raises(RuntimeError, match="post-accumulate-grad hook failed.*no such bucket"):
        (w * 2).sum().backward()
