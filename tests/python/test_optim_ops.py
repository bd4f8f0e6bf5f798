"""Fused optimizer ops (sgd_step_, adam_step_, rmsprop_step_, adagrad_step_, clip_grad_norm_)
against numpy implementations of PyTorch's documented algorithms (torch.optim, foreach=False),
over several steps and every option; in-place semantics, non-contiguous params, parameter groups
whose elements span the kernels' parallel chunks, 16-bit params, and the errors.
"""
import itertools
import math

import numpy as np
import pytest

import heron
from dtype_helpers import BF16, F16, F32, F64, H, N

rng = np.random.default_rng(1234)

SHAPES = [(3, 4), (5,), (), (2, 3, 2)]
TOL = {F64: 1e-12, F32: 2e-5, F16: 2e-2, BF16: 1e-1}


def rand(shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape)


def make_group(dtype, shapes=SHAPES, n_states=0, state_lo=0.0, state_hi=0.0):
    """numpy float64 copies (params, grads per step, states) and the heron tensors (exactly representable)."""
    params = [N(H(rand(s), dtype)).astype(np.float64) for s in shapes]
    states = [[N(H(rng.uniform(state_lo, state_hi, s), dtype)).astype(np.float64) for s in shapes] for _ in range(n_states)]
    return params, states


def to_heron(arrs, dtype):
    return [H(a, dtype) for a in arrs]


def grads_for(shapes, dtype):
    return [N(H(rand(s), dtype)).astype(np.float64) for s in shapes]


def close(got, want, dtype, what=""):
    tol = TOL[dtype]
    g = N(got).astype(np.float64)
    np.testing.assert_allclose(g, want, rtol=tol, atol=tol, err_msg=what)


def lerp(a, b, w):
    return a + w * (b - a) if w < 0.5 else b - (b - a) * (1 - w)


# ------------------------------------------------------------------ numpy references (PyTorch's algorithms)
def ref_sgd(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    g = -g if maximize else g.copy()
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        buf = g.copy() if first else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


def ref_adam(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled):
    g = -g if maximize else g.copy()
    if weight_decay:
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = lerp(m, g, 1 - beta1)
    v = v * beta2 + (1 - beta2) * g * g
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    if amsgrad:
        vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax) / math.sqrt(bc2) + eps
    else:
        denom = np.sqrt(v) / math.sqrt(bc2) + eps
    return p - (lr / bc1) * (m / denom), m, v, vmax


def ref_rmsprop(p, g, sq, buf, ga, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    g = -g if maximize else g.copy()
    if weight_decay:
        g = g + weight_decay * p
    sq = sq * alpha + (1 - alpha) * g * g
    if centered:
        ga = lerp(ga, g, 1 - alpha)
        avg = np.sqrt(sq - ga * ga)
    else:
        avg = np.sqrt(sq)
    avg = avg + eps
    if momentum > 0:
        buf = buf * momentum + g / avg
        p = p - lr * buf
    else:
        p = p - lr * (g / avg)
    return p, sq, buf, ga


def ref_adagrad(p, g, s, step, lr, lr_decay, weight_decay, eps, maximize):
    g = -g if maximize else g.copy()
    if weight_decay:
        g = g + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    s = s + g * g
    return p - clr * g / (np.sqrt(s) + eps), s


def ref_clip(grads, max_norm, p):
    def vnorm(x, p):
        a = np.abs(np.asarray(x, dtype=np.float64).ravel())
        if p == math.inf:
            return a.max() if a.size else 0.0
        if p == -math.inf:
            return a.min() if a.size else math.inf
        if p == 0:
            return float(np.count_nonzero(a))
        return float(np.sum(a ** p) ** (1.0 / p))
    if not grads:
        return 0.0, grads
    total = vnorm([vnorm(g, p) for g in grads], p)
    coef = min(max_norm / (total + 1e-6), 1.0)
    return total, [g * coef for g in grads]


# ------------------------------------------------------------------ SGD
SGD_CASES = [
    dict(momentum=m, dampening=d, weight_decay=wd, nesterov=nest, maximize=mx)
    for m, d, wd, nest, mx in itertools.product([0.0, 0.9], [0.0, 0.3], [0.0, 0.01], [False, True], [False, True])
    if not (nest and (m == 0.0 or d != 0.0)) and not (m == 0.0 and d != 0.0)
]


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("opts", SGD_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_sgd_matches_pytorch_algorithm(dtype, opts):
    lr = 0.1
    params, _ = make_group(dtype)
    hp = to_heron(params, dtype)
    use_mom = opts["momentum"] != 0
    hbufs = [heron.zeros(list(p.shape), dtype=dtype) for p in params] if use_mom else []
    bufs = [np.zeros(p.shape) for p in params]
    for step in range(4):
        grads = grads_for(SHAPES, dtype)
        first = step == 0
        out = heron.sgd_step_(hp + to_heron(grads, dtype) + hbufs, lr, first_step=first, **opts)
        assert len(out) == len(hp)
        for i in range(len(params)):
            params[i], bufs[i] = ref_sgd(params[i], grads[i], bufs[i], lr, first=first, **opts)
        for i in range(len(params)):
            close(hp[i], params[i], dtype, f"param {i} step {step}")
            close(out[i], params[i], dtype)
            if use_mom:
                close(hbufs[i], bufs[i], dtype, f"buf {i} step {step}")


def test_sgd_returns_the_params_themselves_and_writes_in_place():
    p = heron.tensor(np.array([1.0, 2.0]))
    g = heron.tensor(np.array([0.5, -1.0]))
    out = heron.sgd_step_([p, g], lr=0.5)
    np.testing.assert_allclose(N(p), [0.75, 2.5])
    out[0].copy_(heron.tensor(np.array([7.0, 7.0])))
    np.testing.assert_allclose(N(p), [7.0, 7.0])  # the output aliases the param
    np.testing.assert_allclose(N(g), [0.5, -1.0])  # grads are not written


# ------------------------------------------------------------------ Adam / AdamW
ADAM_CASES = [
    dict(amsgrad=a, weight_decay=wd, decoupled_weight_decay=dec, maximize=mx)
    for a, wd, dec, mx in itertools.product([False, True], [0.0, 0.05], [False, True], [False, True])
    if not (dec and wd == 0.0)
]


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("opts", ADAM_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_adam_matches_pytorch_algorithm(dtype, opts):
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-6
    params, _ = make_group(dtype)
    hp = to_heron(params, dtype)
    n = len(params)
    zeros = lambda: [heron.zeros(list(p.shape), dtype=dtype) for p in params]  # noqa: E731
    hm, hv = zeros(), zeros()
    hvmax = zeros() if opts["amsgrad"] else []
    m = [np.zeros(p.shape) for p in params]
    v = [np.zeros(p.shape) for p in params]
    vmax = [np.zeros(p.shape) for p in params]
    for step in range(1, 6):
        grads = grads_for(SHAPES, dtype)
        heron.adam_step_(hp + to_heron(grads, dtype) + hm + hv + hvmax, lr=lr, beta1=b1, beta2=b2, eps=eps, step=step, **opts)
        for i in range(n):
            params[i], m[i], v[i], vmax[i] = ref_adam(params[i], grads[i], m[i], v[i], vmax[i], step, lr, b1, b2, eps,
                                                      opts["weight_decay"], opts["amsgrad"], opts["maximize"],
                                                      opts["decoupled_weight_decay"])
        for i in range(n):
            close(hp[i], params[i], dtype, f"param {i} step {step}")
            close(hm[i], m[i], dtype, f"exp_avg {i} step {step}")
            close(hv[i], v[i], dtype, f"exp_avg_sq {i} step {step}")
            if opts["amsgrad"]:
                close(hvmax[i], vmax[i], dtype, f"max_exp_avg_sq {i} step {step}")


def test_adam_defaults_are_pytorchs():
    p0 = rand((4,))
    g = rand((4,))
    p = heron.tensor(p0)
    m, v = heron.zeros([4], dtype=F64), heron.zeros([4], dtype=F64)
    heron.adam_step_([p, heron.tensor(g), m, v])
    want, *_ = ref_adam(p0, g, np.zeros(4), np.zeros(4), None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    np.testing.assert_allclose(N(p), want, rtol=1e-12)
    # the first Adam step moves every coordinate by about lr
    np.testing.assert_allclose(np.abs(N(p) - p0), 1e-3, rtol=1e-3)


# ------------------------------------------------------------------ RMSprop
RMS_CASES = [
    dict(momentum=mo, centered=c, weight_decay=wd, maximize=mx)
    for mo, c, wd, mx in itertools.product([0.0, 0.5], [False, True], [0.0, 0.02], [False, True])
]


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("opts", RMS_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_rmsprop_matches_pytorch_algorithm(dtype, opts):
    lr, alpha, eps = 0.01, 0.9, 1e-6
    params, _ = make_group(dtype)
    hp = to_heron(params, dtype)
    n = len(params)
    zeros = lambda: [heron.zeros(list(p.shape), dtype=dtype) for p in params]  # noqa: E731
    hsq = zeros()
    hbuf = zeros() if opts["momentum"] > 0 else []
    hga = zeros() if opts["centered"] else []
    sq = [np.zeros(p.shape) for p in params]
    buf = [np.zeros(p.shape) for p in params]
    ga = [np.zeros(p.shape) for p in params]
    for step in range(5):
        grads = grads_for(SHAPES, dtype)
        heron.rmsprop_step_(hp + to_heron(grads, dtype) + hsq + hbuf + hga, lr=lr, alpha=alpha, eps=eps, **opts)
        for i in range(n):
            params[i], sq[i], buf[i], ga[i] = ref_rmsprop(params[i], grads[i], sq[i], buf[i], ga[i], lr, alpha, eps, **opts)
        for i in range(n):
            close(hp[i], params[i], dtype, f"param {i} step {step}")
            close(hsq[i], sq[i], dtype, f"square_avg {i} step {step}")
            if hbuf:
                close(hbuf[i], buf[i], dtype, f"momentum_buffer {i} step {step}")
            if hga:
                close(hga[i], ga[i], dtype, f"grad_avg {i} step {step}")


# ------------------------------------------------------------------ Adagrad
ADAGRAD_CASES = [
    dict(lr_decay=ld, weight_decay=wd, maximize=mx, init=init)
    for ld, wd, mx, init in itertools.product([0.0, 0.1], [0.0, 0.03], [False, True], [0.0, 0.1])
]


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("opts", ADAGRAD_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_adagrad_matches_pytorch_algorithm(dtype, opts):
    opts = dict(opts)
    init = opts.pop("init")
    lr, eps = 0.05, 1e-10
    params, _ = make_group(dtype)
    hp = to_heron(params, dtype)
    n = len(params)
    hs = [heron.full(list(p.shape), init, dtype=dtype) for p in params]
    s = [np.full(p.shape, N(H(np.float64(init), dtype)).astype(np.float64)) for p in params]
    for step in range(1, 6):
        grads = grads_for(SHAPES, dtype)
        heron.adagrad_step_(hp + to_heron(grads, dtype) + hs, lr=lr, eps=eps, step=step, **opts)
        for i in range(n):
            params[i], s[i] = ref_adagrad(params[i], grads[i], s[i], step, lr, opts["lr_decay"], opts["weight_decay"], eps,
                                          opts["maximize"])
        for i in range(n):
            close(hp[i], params[i], dtype, f"param {i} step {step}")
            close(hs[i], s[i], dtype, f"state_sum {i} step {step}")


# ------------------------------------------------------------------ layout: non-contiguous, many and large tensors
def test_non_contiguous_params_and_states_are_updated_in_place():
    base_p = rand((6, 5))
    base_g = rand((5, 6))
    P = heron.tensor(base_p)
    p = heron.transpose(P, 0, 1)            # (5, 6) view, non-contiguous
    g = heron.tensor(base_g)
    M = heron.zeros([6, 5], dtype=F64)
    V = heron.zeros([6, 5], dtype=F64)
    m, v = heron.transpose(M, 0, 1), heron.transpose(V, 0, 1)
    heron.adam_step_([p, g, m, v], lr=0.1)
    want, wm, wv, _ = ref_adam(base_p.T, base_g, np.zeros((5, 6)), np.zeros((5, 6)), None, 1, 0.1, 0.9, 0.999, 1e-8, 0.0,
                               False, False, False)
    np.testing.assert_allclose(N(P), want.T, rtol=1e-12)
    np.testing.assert_allclose(N(M), wm.T, rtol=1e-12)
    np.testing.assert_allclose(N(V), wv.T, rtol=1e-12)
    # a strided grad (every other column) and a strided param
    Pb = heron.tensor(rand((4, 8)))
    before = N(Pb)
    gb = heron.tensor(rand((4, 8)))
    pv = Pb[:, ::2]
    gv = gb[:, ::2]
    heron.sgd_step_([pv, gv], lr=1.0)
    after = N(Pb)
    np.testing.assert_allclose(after[:, ::2], before[:, ::2] - N(gb)[:, ::2], rtol=1e-12)
    np.testing.assert_array_equal(after[:, 1::2], before[:, 1::2])


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
def test_large_group_spanning_parallel_chunks(dtype):
    shapes = [(40000,), (3,), (0,), (70001,), (1,), (33000, 2)]
    params = [N(H(rand(s), dtype)).astype(np.float64) for s in shapes]
    grads = grads_for(shapes, dtype)
    hp = to_heron(params, dtype)
    hm = [heron.zeros(list(s), dtype=dtype) for s in shapes]
    hv = [heron.zeros(list(s), dtype=dtype) for s in shapes]
    heron.adam_step_(hp + to_heron(grads, dtype) + hm + hv, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)
    for i in range(len(shapes)):
        want, *_ = ref_adam(params[i], grads[i], np.zeros(shapes[i]), np.zeros(shapes[i]), None, 1, 0.01, 0.9, 0.999, 1e-8,
                            0.1, False, False, True)
        close(hp[i], want, dtype, f"param {i}")


def test_mixed_dtypes_in_one_group():
    p32, p64 = heron.tensor(np.ones(3, np.float32)), heron.tensor(np.ones(2))
    g32, g64 = heron.tensor(np.full(3, 2.0, np.float32)), heron.tensor(np.full(2, 4.0))
    heron.sgd_step_([p32, p64, g32, g64], lr=0.25)
    np.testing.assert_allclose(N(p32), 0.5)
    np.testing.assert_allclose(N(p64), 0.0)


@pytest.mark.parametrize("dtype", [F16, BF16], ids=["float16", "bfloat16"])
def test_16bit_params_compute_in_float(dtype):
    params, _ = make_group(dtype)
    hp = to_heron(params, dtype)
    zeros = lambda: [heron.zeros(list(p.shape), dtype=dtype) for p in params]  # noqa: E731
    hm, hv = zeros(), zeros()
    grads = grads_for(SHAPES, dtype)
    heron.adam_step_(hp + to_heron(grads, dtype) + hm + hv, lr=0.05)
    for i in range(len(params)):
        want, *_ = ref_adam(params[i], grads[i], np.zeros(params[i].shape), np.zeros(params[i].shape), None, 1, 0.05, 0.9,
                            0.999, 1e-8, 0.0, False, False, False)
        close(hp[i], want, dtype)
    grads = grads_for(SHAPES, dtype)
    before = [N(t).astype(np.float64) for t in hp]
    heron.sgd_step_(hp + to_heron(grads, dtype), lr=0.5)
    for i in range(len(params)):
        close(hp[i], before[i] - 0.5 * grads[i], dtype)


def test_empty_group_is_a_no_op():
    assert list(heron.sgd_step_([], lr=0.1)) == []
    assert list(heron.adam_step_([])) == []


# ------------------------------------------------------------------ clip_grad_norm_
@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf, 0.0, 0.5])
@pytest.mark.parametrize("max_norm", [0.3, 1e6])
def test_clip_grad_norm_matches_pytorch(dtype, norm_type, max_norm):
    shapes = [(3, 4), (5,), (), (40000,)]
    grads = grads_for(shapes, dtype)
    hg = to_heron(grads, dtype)
    total = heron.clip_grad_norm_(hg, max_norm, norm_type=norm_type)
    want_total, want = ref_clip(grads, max_norm, norm_type)
    assert total.dtype == dtype and total.shape == ()
    tol = 1e-10 if dtype == F64 else 1e-5
    np.testing.assert_allclose(float(N(total)), want_total, rtol=tol)
    for i in range(len(grads)):
        np.testing.assert_allclose(N(hg[i]).astype(np.float64), want[i], rtol=tol, atol=tol)
        if want_total < max_norm:
            np.testing.assert_array_equal(N(hg[i]).astype(np.float64), grads[i])  # untouched below the limit


def test_clip_grad_norm_non_contiguous_and_mixed_dtypes():
    G = heron.tensor(rand((4, 6)))
    g = heron.transpose(G, 0, 1)
    h = heron.tensor(rand((7,)).astype(np.float32))
    ref_total, want = ref_clip([N(g), N(h).astype(np.float64)], 0.1, 2.0)
    total = heron.clip_grad_norm_([g, h], 0.1)
    assert total.dtype == F64
    np.testing.assert_allclose(float(N(total)), ref_total, rtol=1e-6)
    np.testing.assert_allclose(N(G), want[0].T, rtol=1e-6)
    np.testing.assert_allclose(N(h), want[1], rtol=1e-5)


def test_clip_grad_norm_empty_and_nonfinite():
    t = heron.clip_grad_norm_([], 1.0)
    assert float(N(t)) == 0.0 and t.dtype == F32
    g = heron.tensor(np.array([1.0, np.inf]))
    with pytest.raises(RuntimeError, match="clip_grad_norm_.*inf"):
        heron.clip_grad_norm_([g], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(N(g), [1.0, np.inf])  # nothing written on error
    total = heron.clip_grad_norm_([g], 1.0)
    assert math.isinf(float(N(total)))
    g2 = heron.tensor(np.array([1.0, np.nan]))
    with pytest.raises(RuntimeError, match="nan"):
        heron.clip_grad_norm_([g2], 1.0, error_if_nonfinite=True)
    total = heron.clip_grad_norm_([heron.tensor(np.array([3.0, -4.0]))], 1.0, norm_type=math.inf)
    assert float(N(total)) == 4.0


# ------------------------------------------------------------------ errors
def test_group_size_errors():
    p = [heron.zeros([2], dtype=F64), heron.zeros([3], dtype=F64)]
    g = [heron.zeros([2], dtype=F64)]
    with pytest.raises(ValueError, match=r"sgd_step_: expected 2 groups of n tensors \(params, grads\).*got 3 tensors"):
        heron.sgd_step_(p + g, lr=0.1)
    with pytest.raises(ValueError, match=r"sgd_step_: expected 3 groups.*momentum_buffers.*momentum != 0"):
        heron.sgd_step_(p + p, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"adam_step_: expected 5 groups.*max_exp_avg_sqs.*amsgrad"):
        heron.adam_step_(p + p + p + p, amsgrad=True)
    with pytest.raises(ValueError, match=r"rmsprop_step_: expected 5 groups.*grad_avgs.*centered"):
        heron.rmsprop_step_(p * 3 + p[:1], momentum=0.5, centered=True)
    with pytest.raises(ValueError, match=r"adagrad_step_: expected 3 groups"):
        heron.adagrad_step_(p * 2)


def test_shape_dtype_and_value_errors():
    p = heron.zeros([2, 3], dtype=F64)
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \[3, 2\] but param 0 has shape \[2, 3\]|grads\[0\] has shape \(3, 2\)"):
        heron.sgd_step_([p, heron.zeros([3, 2], dtype=F64)], lr=0.1)
    with pytest.raises(TypeError, match=r"exp_avgs\[0\] has dtype float32 but param 0 has dtype float64"):
        heron.adam_step_([p, p, heron.zeros([2, 3], dtype=F32), p])
    with pytest.raises(TypeError, match="params must be floating point.*int64"):
        heron.sgd_step_([heron.zeros([2], dtype=heron.int64)] * 2, lr=0.1)
    with pytest.raises(ValueError, match="nesterov momentum requires"):
        heron.sgd_step_([p, p, p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="step must be >= 1"):
        heron.adam_step_([p, p, p, p], step=0)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0, 1\)"):
        heron.adam_step_([p, p, p, p], beta2=1.0)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        heron.adagrad_step_([p, p, p], lr=-1.0)
    with pytest.raises(TypeError, match="grads must be floating point"):
        heron.clip_grad_norm_([heron.zeros([2], dtype=heron.int32)], 1.0)
    before = N(p).copy()
    with pytest.raises(ValueError):
        heron.sgd_step_([p, heron.tensor(np.ones(6))], lr=0.1)
    np.testing.assert_array_equal(N(p), before)  # a failing op writes nothing
