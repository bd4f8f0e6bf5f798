"""Recurrent layers (issue 7): the core ops rnn / lstm / gru and their cells, heron.nn.RNN / LSTM / GRU /
RNNCell / LSTMCell / GRUCell and heron.nn.utils.rnn, against the numpy reference in rnn_reference.py
(forward and every gradient, by manual backpropagation through time), which is itself checked against
finite differences here. Every combination of mode (rnn tanh, rnn relu, lstm, lstm with projections,
gru), layers, directions, bias, batch_first, initial states, lengths and unbatched input in float64
with tight tolerances; float32 looser. Dropout by reproducibility and finite differences under one seed.
Parameter names, shapes and initialisation as PyTorch documents them; errors of bad input."""
import itertools
import math
import os

import numpy as np
import pytest

import heron
from heron import nn
from heron.nn.utils.rnn import (PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence,
                                pad_sequence, unpack_sequence, unpad_sequence)

import rnn_reference as R
from blas_helpers import openblas_threads_change_bits, why_openblas_threads_change_bits

ops = heron._ops
MODES = ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"]
T_, B_, I_, H_, P_ = 5, 3, 4, 3, 2
LENGTHS = [5, 3, 1]
TOL64 = dict(rtol=1e-9, atol=1e-11)
TOL32 = dict(rtol=2e-4, atol=2e-5)


def config(mode, num_layers=1, bidirectional=False, bias=True, batch_first=False, hidden=H_):
    ref_mode = "lstm" if mode == "lstm_proj" else mode
    return R.Config(ref_mode, hidden, num_layers, bias, batch_first, bidirectional,
                    P_ if mode == "lstm_proj" else 0)


def ht(arr, dtype=np.float64, grad=False):
    t = heron.tensor(np.ascontiguousarray(np.asarray(arr, dtype=dtype)))
    if grad:
        t.requires_grad_(True)
    return t


def npy(t):
    return None if t is None else t.detach().numpy()


def call_op(cfg, x, hx, cx, lengths, params, dropout=0.0, training=False):
    """The core op of cfg.mode; returns (output, h_n, c_n or None)."""
    common = dict(hidden_size=cfg.H, num_layers=cfg.L, bias=cfg.bias, batch_first=cfg.batch_first,
                  dropout=dropout, training=training, bidirectional=cfg.bidir)
    if cfg.mode == "lstm":
        r = ops.lstm(x, hx, cx, lengths, params, proj_size=cfg.P, **common)
        return r[0], r[1], r[2]
    if cfg.mode == "gru":
        r = ops.gru(x, hx, lengths, params, **common)
    else:
        r = ops.rnn(x, hx, lengths, params, nonlinearity=cfg.mode[4:], **common)
    return r[0], r[1], None


def make_inputs(cfg, rng, unbatched=False, states=True, batch=B_, steps=T_):
    if unbatched:
        x = rng.standard_normal((steps, I_))
    else:
        x = rng.standard_normal((batch, steps, I_) if cfg.batch_first else (steps, batch, I_))
    lead = (cfg.L * cfg.D,) if unbatched else (cfg.L * cfg.D, batch)
    hx = rng.standard_normal(lead + (cfg.Hout,)) * 0.5 if states else None
    cx = rng.standard_normal(lead + (cfg.H,)) * 0.5 if (states and cfg.mode == "lstm") else None
    return x, hx, cx


def assert_close(got, want, tol, what):
    np.testing.assert_allclose(got, want, err_msg=what, **tol)


# ------------------------------------------------------------------ the reference against finite differences
def _fd_check(f, arrays, grads, eps=1e-6):
    for k, (arr, g) in enumerate(zip(arrays, grads)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + eps
            lp = f()
            arr[i] = old - eps
            lm = f()
            arr[i] = old
            num[i] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8, err_msg=f"array {k} of shape {arr.shape}")


FD_CASES = [(m, L, bd, bias, lens, unb) for m in MODES
            for (L, bd, bias, lens, unb) in [(2, True, True, True, False), (1, False, False, False, True),
                                             (2, False, True, False, False)]]


@pytest.mark.parametrize("mode,L,bidir,bias,lengths,unbatched", FD_CASES)
def test_reference_gradients_match_finite_differences(mode, L, bidir, bias, lengths, unbatched):
    rng = np.random.default_rng(7)
    cfg = config(mode, L, bidir, bias, batch_first=not unbatched and L == 1)
    x, hx, cx = make_inputs(cfg, rng, unbatched=unbatched, batch=3, steps=4)
    params = R.make_params(cfg, I_, rng, scale=0.8)
    lens = [4, 2, 1] if lengths else None
    masks = None
    if L > 1:  # explicit dropout masks between layers (scaled by 1 / (1 - p) = 2)
        masks = [rng.choice([0.0, 2.0], size=(4, 1 if unbatched else 3, cfg.D * cfg.Hout)) for _ in range(L - 1)]
    out, hn, cn = R.sequence_forward(cfg, x, params, hx, cx, lens, masks)
    gy, gh = rng.standard_normal(out.shape), rng.standard_normal(hn.shape)
    gc = None if cn is None else rng.standard_normal(cn.shape)

    def loss():
        o, h, c = R.sequence_forward(cfg, x, params, hx, cx, lens, masks)
        return (o * gy).sum() + (h * gh).sum() + (0.0 if c is None else (c * gc).sum())
    dx, dhx, dcx, dp = R.sequence_backward(cfg, x, params, hx, cx, lens, gy, gh, gc, masks)
    arrays, grads = [x, hx] + params, [dx, dhx] + dp
    if cfg.mode == "lstm":
        arrays.insert(2, cx)
        grads.insert(2, dcx)
    _fd_check(loss, arrays, grads)


@pytest.mark.parametrize("mode", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_reference_cell_gradients_match_finite_differences(mode):
    rng = np.random.default_rng(3)
    G = R.GATES[mode]
    x, h, c = rng.standard_normal((2, I_)), rng.standard_normal((2, H_)), rng.standard_normal((2, H_))
    c = c if mode == "lstm" else None
    w = [rng.uniform(-0.7, 0.7, s) for s in [(G * H_, I_), (G * H_, H_), (G * H_,), (G * H_,)]]
    dh, dc = rng.standard_normal((2, H_)), rng.standard_normal((2, H_))

    def loss():
        hn, cn = R.cell(mode, x, h, c, *w)
        return (hn * dh).sum() + (0.0 if cn is None else (cn * dc).sum())
    g = R.cell_grads(mode, x, h, c, *w, dh, dc if mode == "lstm" else None)
    arrays = [x, h] + ([c] if mode == "lstm" else []) + w
    grads = [g[0], g[1]] + ([g[2]] if mode == "lstm" else []) + g[3:]
    _fd_check(loss, arrays, grads)


# ------------------------------------------------------------------ the sequence ops, every combination
def _op_cases():
    cases = []
    for mode, L, bidir, bias, states in itertools.product(MODES, [1, 2], [False, True], [False, True], [False, True]):
        for bf, lens in itertools.product([False, True], [False, True]):
            cases.append((mode, L, bidir, bias, bf, states, lens, False))
        for bf in (False, True):  # unbatched: batch_first does not apply
            cases.append((mode, L, bidir, bias, bf, states, False, True))
    return cases


def _case_id(c):
    mode, L, bidir, bias, bf, states, lens, unb = c
    return (f"{mode}-L{L}-{'bi' if bidir else 'uni'}-{'bias' if bias else 'nobias'}-{'bf' if bf else 'tf'}-"
            f"{'h0' if states else 'noh0'}-{'len' if lens else 'full'}{'-unbatched' if unb else ''}")


OP_CASES = _op_cases()


def _check_sequence_op(case, dtype, tol, seed=0):
    mode, L, bidir, bias, bf, states, lens, unbatched = case
    rng = np.random.default_rng(seed)
    cfg = config(mode, L, bidir, bias, bf)
    x, hx, cx = make_inputs(cfg, rng, unbatched=unbatched, states=states)
    params = R.make_params(cfg, I_, rng)
    # float32: the reference runs in float64 on the float32-rounded values
    x, hx, cx = [None if a is None else a.astype(dtype).astype(np.float64) for a in (x, hx, cx)]
    params = [p.astype(dtype).astype(np.float64) for p in params]
    lengths = LENGTHS if lens else None
    want = R.sequence_forward(cfg, x, params, hx, cx, lengths)
    gy = rng.standard_normal(want[0].shape)
    gh = rng.standard_normal(want[1].shape)
    gc = None if want[2] is None else rng.standard_normal(want[2].shape)
    wgrads = R.sequence_backward(cfg, x, params, hx, cx, lengths, gy, gh, gc)

    hxt = None if hx is None else ht(hx, dtype, grad=True)
    cxt = None if cx is None else ht(cx, dtype, grad=True)
    xt = ht(x, dtype, grad=True)
    pt = [ht(p, dtype, grad=True) for p in params]
    lt = None if lengths is None else ht(lengths, np.int64)
    out, hn, cn = call_op(cfg, xt, hxt, cxt, lt, pt)
    assert out.dtype == xt.dtype and tuple(out.shape) == want[0].shape and tuple(hn.shape) == want[1].shape
    assert_close(npy(out), want[0], tol, "output")
    assert_close(npy(hn), want[1], tol, "h_n")
    loss = (out * ht(gy, dtype)).sum() + (hn * ht(gh, dtype)).sum()
    if cfg.mode == "lstm":
        assert tuple(cn.shape) == want[2].shape
        assert_close(npy(cn), want[2], tol, "c_n")
        loss = loss + (cn * ht(gc, dtype)).sum()
    loss.backward()
    dx, dhx, dcx, dps = wgrads
    assert_close(npy(xt.grad), dx, tol, "grad input")
    if hxt is not None:
        assert_close(npy(hxt.grad), dhx, tol, "grad hx")
    if cxt is not None:
        assert_close(npy(cxt.grad), dcx, tol, "grad cx")
    names = cfg.param_names()
    for name, p, g in zip(names, pt, dps):
        assert p.grad is not None, f"no gradient for {name}"
        assert_close(npy(p.grad), g, tol, f"grad {name}")


@pytest.mark.parametrize("case", OP_CASES, ids=[_case_id(c) for c in OP_CASES])
def test_sequence_op_float64(case):
    _check_sequence_op(case, np.float64, TOL64)


F32_CASES = [c for c in OP_CASES if c[1] == 2 and c[2] and c[3] and (c[6] or c[7])]


@pytest.mark.parametrize("case", F32_CASES, ids=[_case_id(c) for c in F32_CASES])
def test_sequence_op_float32(case):
    _check_sequence_op(case, np.float32, TOL32, seed=1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sizes", [(520, 40, 13), (33, 64, 2), (17, 19, 9), (24, 40, 70), (100, 36, 45)],
                         ids=["I520-H40", "I33-H64", "I17-H19", "I24-H40-B70", "I100-H36-B45"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_larger_sizes(mode, sizes, dtype):
    """Sizes past the kernels' vector widths and GEMM blocks (and odd ones, for the tails)."""
    I, H, B = sizes
    rng = np.random.default_rng(15)
    cfg = R.Config("lstm" if mode == "lstm_proj" else mode, H, 2, True, True, True, 7 if mode == "lstm_proj" else 0)
    T = 4
    x = rng.standard_normal((B, T, I)).astype(dtype).astype(np.float64)
    params = [p.astype(dtype).astype(np.float64) for p in R.make_params(cfg, I, rng)]
    lengths = sorted(rng.integers(1, T + 1, size=B).tolist(), reverse=True)
    lengths[0] = T
    want = R.sequence_forward(cfg, x, params, None, None, lengths)
    gy = rng.standard_normal(want[0].shape)
    dx, _, _, dps = R.sequence_backward(cfg, x, params, lengths=lengths, grad_output=gy)
    xt, pt = ht(x, dtype, grad=True), [ht(p, dtype, grad=True) for p in params]
    out = call_op(cfg, xt, None, None, ht(lengths, np.int64), pt)[0]
    (out * ht(gy, dtype)).sum().backward()

    def check(got, ref, what):
        scale = max(1.0, float(np.abs(ref).max()))
        tol = dict(rtol=1e-9, atol=1e-11 * scale) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5 * scale)
        assert_close(got, ref, tol, what)
    check(npy(out), want[0], "output")
    check(npy(xt.grad), dx, "grad input")
    for name, p, d in zip(cfg.param_names(), pt, dps):
        check(npy(p.grad), d, f"grad {name}")


@pytest.mark.parametrize("which", ["h_only", "c_only"])
def test_lstm_op_one_initial_state(which):
    """hx and cx are independently optional in the op (the absent one is zeros)."""
    rng = np.random.default_rng(5)
    cfg = config("lstm", 2, True)
    x, hx, cx = make_inputs(cfg, rng)
    params = R.make_params(cfg, I_, rng)
    ref_h = hx if which == "h_only" else np.zeros_like(hx)
    ref_c = cx if which == "c_only" else np.zeros_like(cx)
    want = R.sequence_forward(cfg, x, params, ref_h, ref_c)
    got = call_op(cfg, ht(x), ht(hx) if which == "h_only" else None, ht(cx) if which == "c_only" else None, None,
                  [ht(p) for p in params])
    for g, w in zip(got, want):
        assert_close(npy(g), w, TOL64, which)


def test_lengths_all_full_equal_no_lengths():
    rng = np.random.default_rng(2)
    cfg = config("gru", 2, True)
    x, hx, _ = make_inputs(cfg, rng)
    params = [ht(p) for p in R.make_params(cfg, I_, rng)]
    a = call_op(cfg, ht(x), ht(hx), None, ht([T_] * B_, np.int64), params)
    b = call_op(cfg, ht(x), ht(hx), None, None, params)
    np.testing.assert_array_equal(npy(a[0]), npy(b[0]))
    np.testing.assert_array_equal(npy(a[1]), npy(b[1]))


def test_no_grad_forward_equals_recorded_forward():
    rng = np.random.default_rng(4)
    cfg = config("lstm_proj", 2, True)
    x, hx, cx = make_inputs(cfg, rng)
    params = R.make_params(cfg, I_, rng)
    want = R.sequence_forward(cfg, x, params, hx, cx, LENGTHS)
    with heron.no_grad():
        got = call_op(cfg, ht(x), ht(hx), ht(cx), ht(LENGTHS, np.int64), [ht(p) for p in params])
    for g, w in zip(got, want):
        assert_close(npy(g), w, TOL64, "no_grad")


@pytest.mark.parametrize("mode", MODES)
def test_non_contiguous_inputs_states_and_weights(mode):
    """Transposed views for the input, the initial states and the weight matrices."""
    rng = np.random.default_rng(6)
    cfg = config(mode, 2, True)
    x, hx, cx = make_inputs(cfg, rng)
    params = R.make_params(cfg, I_, rng)
    want = R.sequence_forward(cfg, x, params, hx, cx, LENGTHS)

    def view(a):  # the same values, as a non-contiguous view
        if a.ndim == 3:
            return ht(a.transpose(1, 0, 2)).transpose(0, 1)
        if a.ndim == 2:
            return ht(a.T).T
        return ht(a)
    xv = view(x)
    assert not xv.is_contiguous()
    got = call_op(cfg, xv, view(hx), None if cx is None else view(cx), ht(LENGTHS, np.int64),
                  [view(p) for p in params])
    for g, w, what in zip(got, want, ["output", "h_n", "c_n"]):
        if w is not None:
            assert_close(npy(g), w, TOL64, what)


@pytest.mark.parametrize("used", ["output", "h_n", "c_n"])
def test_gradients_when_only_some_outputs_are_used(used):
    """The other outputs' gradients are absent (zeros); backward twice with retain_graph accumulates."""
    rng = np.random.default_rng(13)
    cfg = config("lstm_proj", 2, True)
    x, _, _ = make_inputs(cfg, rng)
    params = R.make_params(cfg, I_, rng)
    xt, pt = ht(x, grad=True), [ht(p, grad=True) for p in params]
    outs = dict(zip(["output", "h_n", "c_n"], call_op(cfg, xt, None, None, ht(LENGTHS, np.int64), pt)))
    g = rng.standard_normal(tuple(outs[used].shape))
    loss = (outs[used] * ht(g)).sum()
    loss.backward(retain_graph=True)
    kw = {"grad_output": g} if used == "output" else ({"grad_hn": g} if used == "h_n" else {"grad_cn": g})
    dx, _, _, dps = R.sequence_backward(cfg, x, params, lengths=LENGTHS, **kw)
    assert_close(npy(xt.grad), dx, TOL64, "grad input")
    for name, p, d in zip(cfg.param_names(), pt, dps):
        assert_close(npy(p.grad), d, TOL64, f"grad {name}")
    loss.backward()
    assert_close(npy(xt.grad), 2 * dx, TOL64, "accumulated grad input")


# ------------------------------------------------------------------ cells
CELL_MODES = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


@pytest.mark.parametrize("mode", CELL_MODES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("states", [False, True])
@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("via", ["op", "module"])
def test_cell(mode, bias, states, unbatched, dtype, via):
    rng = np.random.default_rng(11)
    G = R.GATES[mode]
    bshape = () if unbatched else (B_,)
    x = rng.standard_normal(bshape + (I_,)).astype(dtype).astype(np.float64)
    h = rng.standard_normal(bshape + (H_,)).astype(dtype).astype(np.float64) if states else None
    c = rng.standard_normal(bshape + (H_,)).astype(dtype).astype(np.float64) if states and mode == "lstm" else None
    bound = 1 / math.sqrt(H_)
    w = [rng.uniform(-bound, bound, s).astype(dtype).astype(np.float64)
         for s in [(G * H_, I_), (G * H_, H_), (G * H_,), (G * H_,)]]
    if not bias:
        w[2] = w[3] = None
    want_h, want_c = R.cell(mode, x, h, c, *w)
    dh = rng.standard_normal(want_h.shape)
    dc = rng.standard_normal(want_h.shape) if mode == "lstm" else None
    wg = R.cell_grads(mode, x, h, c, *w, dh, dc)
    tol = TOL64 if dtype == np.float64 else TOL32

    xt = ht(x, dtype, grad=True)
    htt = None if h is None else ht(h, dtype, grad=True)
    ctt = None if c is None else ht(c, dtype, grad=True)
    if via == "op":
        wt = [None if a is None else ht(a, dtype, grad=True) for a in w]
        if mode == "lstm":
            got_h, got_c, _ = ops.lstm_cell(xt, htt, ctt, *wt)
        elif mode == "gru":
            got_h, got_c = ops.gru_cell(xt, htt, *wt)[0], None
        else:
            got_h, got_c = ops.rnn_cell(xt, htt, *wt, nonlinearity=mode[4:])[0], None
    else:
        hdt = heron.float64 if dtype == np.float64 else heron.float32
        if mode == "lstm":
            m = nn.LSTMCell(I_, H_, bias=bias, dtype=hdt)
        elif mode == "gru":
            m = nn.GRUCell(I_, H_, bias=bias, dtype=hdt)
        else:
            m = nn.RNNCell(I_, H_, bias=bias, nonlinearity=mode[4:], dtype=hdt)
        sd = {"weight_ih": ht(w[0], dtype), "weight_hh": ht(w[1], dtype)}
        if bias:
            sd.update(bias_ih=ht(w[2], dtype), bias_hh=ht(w[3], dtype))
        m.load_state_dict(sd)
        if mode == "lstm":
            got_h, got_c = m(xt, None if htt is None else (htt, ctt))
        else:
            got_h, got_c = m(xt, htt), None
        wt = [m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh]
    assert tuple(got_h.shape) == want_h.shape
    assert_close(npy(got_h), want_h, tol, "h")
    loss = (got_h * ht(dh, dtype)).sum()
    if mode == "lstm":
        assert_close(npy(got_c), want_c, tol, "c")
        loss = loss + (got_c * ht(dc, dtype)).sum()
    loss.backward()
    assert_close(npy(xt.grad), wg[0], tol, "grad input")
    if htt is not None:
        assert_close(npy(htt.grad), wg[1], tol, "grad hx")
    if ctt is not None:
        assert_close(npy(ctt.grad), wg[2], tol, "grad cx")
    for name, t, g in zip(["w_ih", "w_hh", "b_ih", "b_hh"], wt, wg[3:]):
        if g is None:
            assert t is None
        else:
            assert_close(npy(t.grad), g, tol, f"grad {name}")


@pytest.mark.parametrize("mode", CELL_MODES)
@pytest.mark.parametrize("sizes", [(520, 40, 13), (33, 64, 2)], ids=["I520-H40", "I33-H64"])
def test_cell_larger_sizes_float32(mode, sizes):
    I, H, B = sizes
    rng = np.random.default_rng(16)
    G = R.GATES[mode]
    r32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    x, h, c = r32(rng.standard_normal((B, I))), r32(rng.standard_normal((B, H))), r32(rng.standard_normal((B, H)))
    c = c if mode == "lstm" else None
    w = [r32(rng.uniform(-0.15, 0.15, sh)) for sh in [(G * H, I), (G * H, H), (G * H,), (G * H,)]]
    want_h, want_c = R.cell(mode, x, h, c, *w)
    dh = rng.standard_normal(want_h.shape)
    wg = R.cell_grads(mode, x, h, c, *w, dh, None)
    xt, htt = ht(x, np.float32, grad=True), ht(h, np.float32, grad=True)
    wt = [ht(a, np.float32, grad=True) for a in w]
    if mode == "lstm":
        got = ops.lstm_cell(xt, htt, ht(c, np.float32), *wt)[0]
    elif mode == "gru":
        got = ops.gru_cell(xt, htt, *wt)[0]
    else:
        got = ops.rnn_cell(xt, htt, *wt, nonlinearity=mode[4:])[0]
    (got * ht(dh, np.float32)).sum().backward()
    pairs = [(npy(got), want_h, "h"), (npy(xt.grad), wg[0], "grad input"), (npy(htt.grad), wg[1], "grad hx")]
    pairs += [(npy(t.grad), r, f"grad w{k}") for k, (t, r) in enumerate(zip(wt, wg[3:]))]
    for g, ref, what in pairs:
        scale = max(1.0, float(np.abs(ref).max()))
        assert_close(g, ref, dict(rtol=1e-4, atol=2e-5 * scale), what)


# ------------------------------------------------------------------ the modules
def make_module(mode, L=1, bidir=False, bias=True, batch_first=False, dtype=heron.float64, dropout=0.0,
                input_size=I_, hidden=H_):
    kw = dict(num_layers=L, bias=bias, batch_first=batch_first, dropout=dropout, bidirectional=bidir, dtype=dtype)
    if mode in ("rnn_tanh", "rnn_relu"):
        return nn.RNN(input_size, hidden, nonlinearity=mode[4:], **kw)
    if mode == "gru":
        return nn.GRU(input_size, hidden, **kw)
    return nn.LSTM(input_size, hidden, proj_size=P_ if mode == "lstm_proj" else 0, **kw)


def load_params(module, cfg, params):
    sd = {n: ht(p) for n, p in zip(cfg.param_names(), params)}
    res = module.load_state_dict(sd)
    assert not res.missing_keys and not res.unexpected_keys


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layout", ["padded", "batch_first", "unbatched", "packed", "packed_unsorted"])
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("states", [False, True])
def test_module_matches_reference(mode, layout, bidir, states):
    rng = np.random.default_rng(21)
    bf = layout == "batch_first"
    cfg = config(mode, 2, bidir, True, bf)
    batch = 4
    x, hx, cx = make_inputs(cfg, rng, unbatched=layout == "unbatched", states=states, batch=batch)
    params = R.make_params(cfg, I_, rng)
    lengths = None
    if layout == "packed":
        lengths = [5, 5, 3, 1]
    elif layout == "packed_unsorted":
        lengths = [3, 5, 1, 5]
    want = R.sequence_forward(cfg, x, params, hx, cx, lengths)
    gy, gh = rng.standard_normal(want[0].shape), rng.standard_normal(want[1].shape)
    gc = None if want[2] is None else rng.standard_normal(want[2].shape)
    dx, dhx, dcx, dps = R.sequence_backward(cfg, x, params, hx, cx, lengths, gy, gh, gc)

    m = make_module(mode, 2, bidir, True, bf)
    load_params(m, cfg, params)
    xt = ht(x, grad=True)
    hxt = None if hx is None else ht(hx, grad=True)
    cxt = None if cx is None else ht(cx, grad=True)
    state = None if hxt is None else ((hxt, cxt) if cfg.mode == "lstm" else hxt)
    if lengths is not None:
        packed = pack_padded_sequence(xt, heron.tensor(lengths), enforce_sorted=layout == "packed")
        out_p, hidden = m(packed, state)
        assert isinstance(out_p, PackedSequence)
        assert out_p.batch_sizes.tolist() == packed.batch_sizes.tolist()
        out, out_lens = pad_packed_sequence(out_p, total_length=T_)
        assert out_lens.tolist() == lengths
    else:
        out, hidden = m(xt, state)
    if cfg.mode == "lstm":
        hn, cn = hidden
    else:
        hn, cn = hidden, None
    assert_close(npy(out), want[0], TOL64, "output")
    assert_close(npy(hn), want[1], TOL64, "h_n")
    loss = (out * ht(gy)).sum() + (hn * ht(gh)).sum()
    if cn is not None:
        assert_close(npy(cn), want[2], TOL64, "c_n")
        loss = loss + (cn * ht(gc)).sum()
    loss.backward()
    assert_close(npy(xt.grad), dx, TOL64, "grad input")
    if hxt is not None:
        assert_close(npy(hxt.grad), dhx, TOL64, "grad hx")
    if cxt is not None:
        assert_close(npy(cxt.grad), dcx, TOL64, "grad cx")
    for name, g in zip(cfg.param_names(), dps):
        assert_close(npy(getattr(m, name).grad), g, TOL64, f"grad {name}")


def test_module_float32_default_dtype_and_shapes():
    m = nn.LSTM(I_, 6, num_layers=2, batch_first=True, bidirectional=True, proj_size=4)
    assert m.weight_ih_l0.dtype == heron.float32
    out, (hn, cn) = m(heron.randn(3, T_, I_))
    assert out.shape == (3, T_, 8) and hn.shape == (4, 3, 4) and cn.shape == (4, 3, 6)
    out, (hn, cn) = m(heron.randn(T_, I_))
    assert out.shape == (T_, 8) and hn.shape == (4, 4) and cn.shape == (4, 6)
    g = nn.GRU(I_, 6)
    out, hn = g(heron.randn(T_, 2, I_))
    assert out.shape == (T_, 2, 6) and hn.shape == (1, 2, 6)


@pytest.mark.parametrize("mode", MODES)
def test_empty_batch(mode):
    m = make_module(mode, 2, True)
    x = ht(np.zeros((T_, 0, I_)), grad=True)
    out, hidden = m(x)
    hn = hidden[0] if isinstance(hidden, tuple) else hidden
    Hout = P_ if mode == "lstm_proj" else H_
    assert out.shape == (T_, 0, 2 * Hout) and hn.shape == (4, 0, Hout)
    (out.sum() + hn.sum()).backward()
    assert x.grad.shape == (T_, 0, I_)
    for name, p in m.named_parameters():
        assert p.grad is not None and not npy(p.grad).any(), name


# ------------------------------------------------------------------ parameters: names, shapes, init, repr
def _expected_names(L, bidir, bias, proj):
    """PyTorch's documented layout, written out by hand."""
    names = []
    for k in range(L):
        for sfx in ([f"_l{k}", f"_l{k}_reverse"] if bidir else [f"_l{k}"]):
            names += ["weight_ih" + sfx, "weight_hh" + sfx]
            if bias:
                names += ["bias_ih" + sfx, "bias_hh" + sfx]
            if proj:
                names += ["weight_hr" + sfx]
    return names


def test_state_dict_names_and_shapes_are_pytorchs():
    m = nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)
    sd = m.state_dict()
    assert list(sd) == _expected_names(2, True, True, True)
    assert [tuple(v.shape) for v in sd.values()] == [
        (80, 10), (80, 5), (80,), (80,), (5, 20), (80, 10), (80, 5), (80,), (80,), (5, 20),
        (80, 10), (80, 5), (80,), (80,), (5, 20), (80, 10), (80, 5), (80,), (80,), (5, 20)]
    m = nn.GRU(7, 4, num_layers=2, bias=False)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        ("weight_ih_l0", (12, 7)), ("weight_hh_l0", (12, 4)), ("weight_ih_l1", (12, 4)), ("weight_hh_l1", (12, 4))]
    m = nn.RNN(3, 6, bidirectional=True, nonlinearity="relu")
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        ("weight_ih_l0", (6, 3)), ("weight_hh_l0", (6, 6)), ("bias_ih_l0", (6,)), ("bias_hh_l0", (6,)),
        ("weight_ih_l0_reverse", (6, 3)), ("weight_hh_l0_reverse", (6, 6)), ("bias_ih_l0_reverse", (6,)),
        ("bias_hh_l0_reverse", (6,))]
    m = nn.LSTM(3, 6, num_layers=2, bidirectional=True)
    assert tuple(m.weight_ih_l1.shape) == (24, 12)  # the second layer reads both directions
    assert [[tuple(p.shape) for p in ws] for ws in m.all_weights][0] == [(24, 3), (24, 6), (24,), (24,)]
    for cls, g in ((nn.RNNCell, 1), (nn.LSTMCell, 4), (nn.GRUCell, 3)):
        c = cls(5, 7)
        assert [(k, tuple(v.shape)) for k, v in c.state_dict().items()] == [
            ("weight_ih", (g * 7, 5)), ("weight_hh", (g * 7, 7)), ("bias_ih", (g * 7,)), ("bias_hh", (g * 7,))]
        assert list(cls(5, 7, bias=False).state_dict()) == ["weight_ih", "weight_hh"]
        assert cls(5, 7, bias=False).bias_ih is None


@pytest.mark.parametrize("ctor", [lambda: nn.LSTM(8, 50, num_layers=2, proj_size=10), lambda: nn.GRU(8, 50),
                                  lambda: nn.RNN(8, 50), lambda: nn.LSTMCell(8, 50), lambda: nn.GRUCell(8, 50),
                                  lambda: nn.RNNCell(8, 50)])
def test_init_is_uniform_in_plus_minus_one_over_sqrt_hidden(ctor):
    heron.manual_seed(0)
    m = ctor()
    bound = 1 / math.sqrt(50)
    allv = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert np.abs(allv).max() <= bound
    assert np.abs(allv).max() > 0.97 * bound and abs(allv.mean()) < 0.05 * bound
    # uniform: about a quarter of the values in each quarter of the range
    hist, _ = np.histogram(allv, bins=4, range=(-bound, bound))
    assert np.all(np.abs(hist / allv.size - 0.25) < 0.03), hist
    for p in m.parameters():
        assert p.requires_grad


def test_repr_is_pytorchs():
    assert repr(nn.RNN(3, 4, num_layers=2, nonlinearity="relu", bias=False, batch_first=True, dropout=0.5,
                       bidirectional=True)) == \
        "RNN(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)"
    assert repr(nn.LSTM(3, 4, proj_size=2)) == "LSTM(3, 4, proj_size=2)"
    assert repr(nn.GRU(3, 4)) == "GRU(3, 4)"
    assert repr(nn.RNNCell(3, 4, bias=False, nonlinearity="relu")) == "RNNCell(3, 4, bias=False, nonlinearity=relu)"
    assert repr(nn.LSTMCell(3, 4)) == "LSTMCell(3, 4)"
    assert repr(nn.GRUCell(3, 4)) == "GRUCell(3, 4)"


def test_module_train_eval_and_parameters_in_optimizer():
    m = nn.Sequential(nn.Linear(2, 2))
    m.add_module("rnn", nn.GRU(2, 3))
    assert len(list(m.parameters())) == 6
    m.eval()
    assert not m.rnn.training
    m.train()
    assert m.rnn.training
    # a double() copy keeps working
    g = nn.GRU(2, 3).double()
    out, h = g(heron.randn(4, 1, 2, dtype=heron.float64))
    assert out.dtype == heron.float64


# ------------------------------------------------------------------ dropout between layers
def _dropout_module(mode, p, dtype=heron.float64):
    heron.manual_seed(123)
    return make_module(mode, 3, True, True, False, dtype=dtype, dropout=p)


@pytest.mark.parametrize("mode", MODES)
def test_dropout_zero_and_eval_equal_no_dropout(mode):
    rng = np.random.default_rng(8)
    cfg = config(mode, 3, True)
    x, hx, cx = make_inputs(cfg, rng)
    params = R.make_params(cfg, I_, rng)
    want = R.sequence_forward(cfg, x, params, hx, cx)
    state = ht(hx) if cfg.mode != "lstm" else (ht(hx), ht(cx))
    for p, training in ((0.0, True), (0.6, False)):
        m = make_module(mode, 3, True, dropout=p)
        load_params(m, cfg, params)
        m.train(training)
        out, hidden = m(ht(x), state)
        assert_close(npy(out), want[0], TOL64, f"p={p} training={training}")
        assert_close(npy(hidden[0] if cfg.mode == "lstm" else hidden), want[1], TOL64, "h_n")


@pytest.mark.parametrize("mode", MODES)
def test_dropout_training_is_reproducible_and_random(mode):
    rng = np.random.default_rng(9)
    m = _dropout_module(mode, 0.5)
    m.train()
    x = ht(rng.standard_normal((T_, B_, I_)))

    def run(seed):
        heron.manual_seed(seed)
        out, hidden = m(x)
        return npy(out)
    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    m.eval()
    e = npy(m(x)[0])
    assert not np.allclose(a, e)
    # one layer: nothing to drop (PyTorch warns at construction)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        one = make_module(mode, 1, dropout=0.5)
    one.train()
    heron.manual_seed(1)
    t1 = npy(one(x)[0])
    one.eval()
    np.testing.assert_array_equal(t1, npy(one(x)[0]))


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_dropout_one_drops_everything_between_layers(mode):
    """p = 1 zeroes the inputs of the upper layers: the reference with all-zero masks."""
    rng = np.random.default_rng(10)
    cfg = config(mode, 2, True)
    x, hx, cx = make_inputs(cfg, rng)
    params = R.make_params(cfg, I_, rng)
    masks = [np.zeros((T_, B_, cfg.D * cfg.Hout))]
    want = R.sequence_forward(cfg, x, params, hx, cx, None, masks)
    got = call_op(cfg, ht(x), ht(hx), None if cx is None else ht(cx), None, [ht(p) for p in params], dropout=1.0,
                  training=True)
    assert_close(npy(got[0]), want[0], TOL64, "output")
    assert_close(npy(got[1]), want[1], TOL64, "h_n")


@pytest.mark.parametrize("p", [0.25, 0.6])
def test_dropout_mask_rate_and_scale(p):
    """A relu RNN whose layers copy their input (w_ih = I, w_hh = 0, no bias) shows the dropout between
    its layers: on positive inputs the output is x * mask / (1 - p), masks zeroing about a fraction p."""
    n = 8
    m = nn.RNN(n, n, num_layers=2, nonlinearity="relu", bias=False, dropout=p, dtype=heron.float64)
    eye, zero = np.eye(n), np.zeros((n, n))
    m.load_state_dict({"weight_ih_l0": ht(eye), "weight_hh_l0": ht(zero), "weight_ih_l1": ht(eye),
                       "weight_hh_l1": ht(zero)})
    x = np.random.default_rng(14).uniform(0.5, 1.5, size=(60, 20, n))
    m.eval()
    np.testing.assert_array_equal(npy(m(ht(x))[0]), x)
    m.train()
    heron.manual_seed(5)
    ratio = npy(m(ht(x))[0]) / x
    kept = ratio != 0
    np.testing.assert_allclose(ratio[kept], 1 / (1 - p), rtol=1e-12)
    assert abs((~kept).mean() - p) < 0.02, (~kept).mean()


@pytest.mark.parametrize("mode", ["lstm_proj", "gru", "rnn_relu"])
def test_dropout_gradients_match_finite_differences_under_one_seed(mode):
    rng = np.random.default_rng(12)
    cfg = config(mode, 2, True, hidden=3)
    x, hx, cx = make_inputs(cfg, rng, batch=2, steps=3)
    params = R.make_params(cfg, I_, rng)
    lengths = ht([3, 2], np.int64)
    xt, hxt = ht(x, grad=True), ht(hx, grad=True)
    cxt = None if cx is None else ht(cx, grad=True)
    pt = [ht(p, grad=True) for p in params]

    def f():
        heron.manual_seed(77)
        out, hn, cn = call_op(cfg, xt, hxt, cxt, lengths, pt, dropout=0.4, training=True)
        return out, hn, cn
    out, hn, cn = f()
    gy, gh = ht(rng.standard_normal(tuple(out.shape))), ht(rng.standard_normal(tuple(hn.shape)))
    gc = None if cn is None else ht(rng.standard_normal(tuple(cn.shape)))

    def loss():
        o, h, c = f()
        s = (o * gy).sum() + (h * gh).sum()
        return s if c is None else s + (c * gc).sum()
    loss().backward()
    # dropout did something: the output differs from the eval-mode one
    with heron.no_grad():
        ev = call_op(cfg, xt, hxt, cxt, lengths, pt)[0]
        assert not np.allclose(npy(ev), npy(out))
    leaves = [xt, hxt] + ([cxt] if cxt is not None else []) + pt
    eps = 1e-6
    with heron.no_grad():
        for k, t in enumerate(leaves):
            arr = t.detach().numpy().copy()
            analytic = npy(t.grad).copy()
            num = np.zeros_like(arr)
            for i in np.ndindex(arr.shape):
                old = arr[i]
                vals = []
                for v in (old + eps, old - eps):
                    arr[i] = v
                    t.copy_(ht(arr))
                    vals.append(float(loss().item()))
                arr[i] = old
                t.copy_(ht(arr))
                num[i] = (vals[0] - vals[1]) / (2 * eps)
            np.testing.assert_allclose(analytic, num, rtol=1e-6, atol=1e-8, err_msg=f"leaf {k}")


# ------------------------------------------------------------------ packed sequences
def _np_pack(x, lengths):
    """The oracle: (T, B, *) sorted by decreasing length -> rows t-major."""
    rows, bs = [], []
    for t in range(max(lengths)):
        n = sum(1 for L in lengths if L > t)
        bs.append(n)
        rows.extend(x[t, :n])
    return np.array(rows), bs


def test_pack_padded_sequence_layout():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 2))
    p = pack_padded_sequence(ht(x), [5, 3, 1])
    want, bs = _np_pack(x, [5, 3, 1])
    np.testing.assert_array_equal(npy(p.data), want)
    assert p.batch_sizes.tolist() == bs == [3, 2, 2, 1, 1] and p.batch_sizes.dtype == heron.int64
    assert p.sorted_indices is None and p.unsorted_indices is None
    # batch_first, lengths as a tensor
    pb = pack_padded_sequence(ht(x.transpose(1, 0, 2)), heron.tensor([5, 3, 1]), batch_first=True)
    np.testing.assert_array_equal(npy(pb.data), want)
    # unsorted, with enforce_sorted=False
    xu = x[:, [1, 0, 2]]
    pu = pack_padded_sequence(ht(xu), [3, 5, 1], enforce_sorted=False)
    np.testing.assert_array_equal(npy(pu.data), want)
    assert pu.sorted_indices.tolist() == [1, 0, 2] and pu.unsorted_indices.tolist() == [1, 0, 2]
    padded, lens = pad_packed_sequence(pu)
    assert lens.tolist() == [3, 5, 1]
    mask = (np.arange(5)[:, None] < np.array([3, 5, 1])[None])[..., None]
    np.testing.assert_array_equal(npy(padded), xu * mask)
    padded, lens = pad_packed_sequence(pu, batch_first=True, padding_value=-7.0, total_length=7)
    want_p = np.full((7, 3, 2), -7.0)
    want_p[:5] = np.where(mask, xu, -7.0)
    np.testing.assert_array_equal(npy(padded), want_p.transpose(1, 0, 2))
    # conversions keep the layout
    p32 = pu.float()
    assert p32.data.dtype == heron.float32 and p32.batch_sizes.tolist() == bs
    assert p32.sorted_indices.tolist() == [1, 0, 2]
    assert pu.to(heron.float64) is pu and pu.double().data.dtype == heron.float64 and not pu.is_cuda
    assert PackedSequence(p32.data, [3, 2, 2, 1, 1], p32.sorted_indices).unsorted_indices.tolist() == [1, 0, 2]


def test_pack_sequence_pad_sequence_round_trip():
    rng = np.random.default_rng(1)
    seqs = [rng.standard_normal((n, 2)) for n in (2, 4, 1)]
    p = pack_sequence([ht(s) for s in seqs], enforce_sorted=False)
    back = unpack_sequence(p)
    for a, b in zip(back, seqs):
        np.testing.assert_array_equal(npy(a), b)
    padded = pad_sequence([ht(s) for s in seqs], batch_first=True, padding_value=9.0)
    assert padded.shape == (3, 4, 2)
    np.testing.assert_array_equal(npy(padded)[0], np.concatenate([seqs[0], np.full((2, 2), 9.0)]))
    left = pad_sequence([ht(s) for s in seqs], padding_side="left")
    assert left.shape == (4, 3, 2)
    np.testing.assert_array_equal(npy(left)[:, 2], np.concatenate([np.zeros((3, 2)), seqs[2]]))
    for a, b in zip(unpad_sequence(padded, [2, 4, 1], batch_first=True), seqs):
        np.testing.assert_array_equal(npy(a), b)
    with pytest.raises(ValueError, match="sorted in decreasing order"):
        pack_sequence([ht(s) for s in seqs])


def test_gradient_flows_through_pack_and_unpack():
    rng = np.random.default_rng(2)
    x = ht(rng.standard_normal((4, 2, 3)), grad=True)
    p = pack_padded_sequence(x, [4, 2])
    padded, _ = pad_packed_sequence(p)
    g = rng.standard_normal((4, 2, 3))
    (padded * ht(g)).sum().backward()
    mask = (np.arange(4)[:, None] < np.array([4, 2])[None])[..., None]
    np.testing.assert_array_equal(npy(x.grad), g * mask)


# ------------------------------------------------------------------ bad input: clear errors
def test_bad_lengths_errors():
    x = heron.randn(5, 3, 2)
    with pytest.raises(RuntimeError, match=r"`lengths` must be sorted in decreasing order.*enforce_sorted"):
        pack_padded_sequence(x, [3, 5, 1])
    with pytest.raises(ValueError, match=r"at least 1.*\[4, 3, 0\]"):
        pack_padded_sequence(x, [4, 3, 0])
    with pytest.raises(ValueError, match=r"at most the sequence length 5.*\[6, 3, 1\]"):
        pack_padded_sequence(x, [6, 3, 1])
    with pytest.raises(ValueError, match=r"one entry per batch item \(3\), got 2"):
        pack_padded_sequence(x, [5, 3])
    with pytest.raises(ValueError, match=r"at most the sequence length 5"):
        pack_padded_sequence(x, [6, 3, 1], enforce_sorted=False)
    p = pack_padded_sequence(x, [5, 3, 1])
    with pytest.raises(ValueError, match="total_length=3 and max sequence length being 5"):
        pad_packed_sequence(p, total_length=3)


@pytest.mark.parametrize("bad,match", [
    ([3, 5, 1], "lengths"),    # not sorted
    ([5, 3, 0], "lengths"),    # zero
    ([6, 3, 1], "lengths"),    # longer than the sequence
    ([5, 3], "lengths"),       # one per batch item
])
def test_core_op_rejects_bad_lengths(bad, match):
    cfg = config("lstm", 1)
    params = [ht(p) for p in R.make_params(cfg, I_, np.random.default_rng(0))]
    with pytest.raises(heron.InvalidArgumentError, match=match):
        call_op(cfg, heron.randn(5, 3, I_, dtype=heron.float64), None, None, ht(bad, np.int64), params)


def test_module_input_and_hidden_errors():
    m = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM: Expected input to be 2D or 3D, got 4D.*\(T, B, input_size\)"):
        m(heron.randn(2, 2, 2, 3))
    with pytest.raises(ValueError, match=r"got 1D"):
        m(heron.randn(3))
    with pytest.raises(RuntimeError, match=r"input.size\(-1\) must be equal to input_size. Expected 3, got 2"):
        m(heron.randn(5, 2, 2))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 2, 4\), got \(1, 2, 4\)"):
        m(heron.randn(5, 2, 3), (heron.randn(1, 2, 4), heron.randn(2, 2, 4)))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(2, 2, 4\), got \(2, 3, 4\)"):
        m(heron.randn(5, 2, 3), (heron.randn(2, 2, 4), heron.randn(2, 3, 4)))
    with pytest.raises(RuntimeError, match=r"For batched 3-D input, hx and cx should also be 3-D but got \(2-D, 2-D\)"):
        m(heron.randn(5, 2, 3), (heron.randn(2, 4), heron.randn(2, 4)))
    with pytest.raises(RuntimeError, match=r"For unbatched 2-D input, hx and cx should also be 2-D"):
        m(heron.randn(5, 3), (heron.randn(2, 1, 4), heron.randn(2, 1, 4)))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        m(heron.randn(5, 2, 3), heron.randn(2, 2, 4))
    with pytest.raises(TypeError, match="dtype float32.*got float64"):
        m(heron.randn(5, 2, 3, dtype=heron.float64))
    mp = nn.LSTM(3, 4, proj_size=2, bidirectional=True, batch_first=True)
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 6, 2\), got \(2, 6, 4\)"):
        mp(heron.randn(6, 5, 3), (heron.randn(2, 6, 4), heron.randn(2, 6, 4)))
    g = nn.GRU(3, 4)
    with pytest.raises(RuntimeError, match=r"GRU: Expected hidden size \(1, 2, 4\), got \(2, 2, 4\)"):
        g(heron.randn(5, 2, 3), heron.randn(2, 2, 4))
    with pytest.raises(TypeError, match=r"hx must be a tensor"):
        g(heron.randn(5, 2, 3), (heron.randn(1, 2, 4),))
    with pytest.raises(RuntimeError, match=r"GRU: For batched 3-D input, hx should also be 3-D but got 2-D tensor"):
        g(heron.randn(5, 2, 3), heron.randn(2, 4))
    r = nn.RNN(3, 4)
    with pytest.raises(RuntimeError, match=r"RNN: Expected hidden size \(1, 4\), got \(1, 1, 4\)|should also be 2-D"):
        r(heron.randn(5, 3), heron.randn(1, 1, 4))
    # packed input: the hidden state's batch is the packed batch
    p = pack_padded_sequence(heron.randn(5, 2, 3), [5, 2])
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 4\), got \(1, 3, 4\)"):
        r(p, heron.randn(1, 3, 4))


def test_cell_errors():
    c = nn.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"LSTMCell: Expected input to be 1D or 2D, got 3D"):
        c(heron.randn(2, 2, 3))
    with pytest.raises(RuntimeError, match=r"Expected hx\[0\] of shape \(2, 4\).*got \(3, 4\)"):
        c(heron.randn(2, 3), (heron.randn(3, 4), heron.randn(3, 4)))
    with pytest.raises(RuntimeError, match=r"inconsistent input_size: got 5 expected 3"):
        c(heron.randn(2, 5))
    g = nn.GRUCell(3, 4)
    with pytest.raises(RuntimeError, match=r"Expected hx of shape \(4,\)"):
        g(heron.randn(3), heron.randn(1, 4))


def test_constructor_errors():
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sig'"):
        nn.RNN(3, 4, nonlinearity="sig")
    with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\]"):
        nn.GRU(3, 4, dropout=2)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.RNN(3, 0)
    with pytest.raises(ValueError, match="num_layers must be greater than zero"):
        nn.LSTM(3, 4, num_layers=0)
    with pytest.raises(TypeError, match="hidden_size should be of type int"):
        nn.GRU(3, 4.5)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="gelu")


def _generic_rnn():
    return os.environ.get("HERON_RNN_GENERIC", "0") not in ("", "0")


def _packed_rnn_kernels():
    """Whether the float32 CPU kernels run the packed AVX-512 products (rnn_gemm.cpp) here."""
    if os.environ.get("HERON_SIMD") in ("scalar", "avx2") or os.environ.get("HERON_RNN_FAST") == "0":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(not (_generic_rnn() or _packed_rnn_kernels()),
                    reason="known: the OpenBLAS step products (no AVX-512) split columns per thread and OpenBLAS's "
                           "results depend on the call's shape")
@pytest.mark.skipif(_generic_rnn() and openblas_threads_change_bits(),
                    reason="the device-generic algorithm's products are matmuls that OpenBLAS threads itself: "
                           + why_openblas_threads_change_bits())
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("I,B", [(20, 45), (90, 45), (90, 13)], ids=["narrow-input", "wide-input", "wide-input-small-batch"])
def test_results_do_not_depend_on_thread_count(mode, I, B):
    """The CPU kernels split only output columns/rows over threads (never a sum), and the paths
    with the input projection folded into the steps (narrow inputs; batches from 32 rows) likewise:
    bitwise equal at 1 and 2 threads. B = 13 keeps a wide input's projection as one GEMM."""
    rng = np.random.default_rng(21)
    H, T = 72, 5
    cfg = R.Config(mode, H, 2, True, True, True, 0)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    params = [p.astype(np.float32) for p in R.make_params(cfg, I, rng)]
    lengths = sorted(rng.integers(1, T + 1, size=B).tolist(), reverse=True)
    lengths[0] = T
    outs = []
    old = heron.get_num_threads()
    try:
        for threads in (1, 2):
            heron.set_num_threads(threads)
            xt, pt = ht(x, np.float32, grad=True), [ht(p, np.float32, grad=True) for p in params]
            out = call_op(cfg, xt, None, None, ht(lengths, np.int64), pt)[0]
            out.sum().backward()
            outs.append([npy(out), npy(xt.grad)] + [npy(p.grad) for p in pt])
    finally:
        heron.set_num_threads(old)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
