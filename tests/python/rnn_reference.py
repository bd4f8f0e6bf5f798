"""A numpy reference for RNN / LSTM / GRU, written from PyTorch's documented equations: forward and
backward (manual backpropagation through time) of cells and of whole sequences with layers,
directions, bias, LSTM projections, variable lengths and explicit dropout masks between layers.

This is the oracle of tests/python/test_rnn.py; the test file checks it against finite differences.
Everything here is plain numpy on arrays; nothing imports heron.

Conventions (PyTorch's):
  rnn:  h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)
  lstm: gates = x W_ih^T + b_ih + h W_hh^T + b_hh split i, f, g, o;  i, f, o = sigmoid, g = tanh;
        c' = f c + i g;  h' = o tanh(c'), and with a projection h' = (o tanh(c')) W_hr^T
  gru:  gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh, split r, z, n;  r = sig(gi_r + gh_r),
        z = sig(gi_z + gh_z), n = tanh(gi_n + r gh_n), h' = (1 - z) n + z h
Flat params, per layer and direction (forward then reverse): w_ih, w_hh, [b_ih, b_hh], [w_hr].
"""
import numpy as np

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------ one step
def cell_forward(mode, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    """One step on a batch: x (B, I), h (B, Hout), c (B, H) or None. Returns (h', c', cache)."""
    gi = x @ w_ih.T
    gh = h @ w_hh.T
    if b_ih is not None:
        gi = gi + b_ih
        gh = gh + b_hh
    if mode in ("rnn_tanh", "rnn_relu"):
        pre = gi + gh
        hn = np.tanh(pre) if mode == "rnn_tanh" else np.maximum(pre, 0.0)
        return hn, None, (x, h, pre, hn)
    if mode == "lstm":
        g = gi + gh
        H = w_hh.shape[0] // 4
        i, f, gg, o = (sigmoid(g[:, :H]), sigmoid(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]),
                       sigmoid(g[:, 3 * H:]))
        cn = f * c + i * gg
        tc = np.tanh(cn)
        m = o * tc
        hn = m @ w_hr.T if w_hr is not None else m
        return hn, cn, (x, h, c, i, f, gg, o, tc, m)
    if mode == "gru":
        H = w_hh.shape[0] // 3
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        hn = (1 - z) * n + z * h
        return hn, None, (x, h, r, z, n, gh[:, 2 * H:])
    raise ValueError(mode)


def cell_backward(mode, cache, dh, dc, w_ih, w_hh, has_bias, w_hr=None):
    """Gradients of one step from dh (of h') and dc (of c', lstm). Returns
    (dx, dh_prev, dc_prev, [dw_ih, dw_hh, (db_ih, db_hh), (dw_hr)])."""
    if mode in ("rnn_tanh", "rnn_relu"):
        x, h, pre, hn = cache
        dpre = dh * (1 - hn * hn) if mode == "rnn_tanh" else dh * (pre > 0)
        dgi = dgh = dpre
        dc_prev = None
        extra = []
    elif mode == "lstm":
        x, h, c, i, f, gg, o, tc, m = cache
        extra = []
        if w_hr is not None:
            extra = [dh.T @ m]
            dm = dh @ w_hr
        else:
            dm = dh
        do = dm * tc
        dcn = dc + dm * o * (1 - tc * tc)
        di = dcn * gg
        df = dcn * c
        dgg = dcn * i
        dc_prev = dcn * f
        dgi = np.concatenate([di * i * (1 - i), df * f * (1 - f), dgg * (1 - gg * gg), do * o * (1 - o)], axis=1)
        dgh = dgi
    elif mode == "gru":
        x, h, r, z, n, ghn = cache
        dn = dh * (1 - z)
        dz = dh * (h - n)
        dh_direct = dh * z
        dpn = dn * (1 - n * n)           # d of (gi_n + r * ghn)
        dr = dpn * ghn
        dpr = dr * r * (1 - r)
        dpz = dz * z * (1 - z)
        dgi = np.concatenate([dpr, dpz, dpn], axis=1)
        dgh = np.concatenate([dpr, dpz, dpn * r], axis=1)
        dc_prev = None
        extra = []
    else:
        raise ValueError(mode)
    dx = dgi @ w_ih
    dh_prev = dgh @ w_hh
    if mode == "gru":
        dh_prev = dh_prev + dh_direct
    grads = [dgi.T @ x, dgh.T @ h]
    if has_bias:
        grads += [dgi.sum(0), dgh.sum(0)]
    return dx, dh_prev, dc_prev, grads + extra


# ------------------------------------------------------------------ cells (PyTorch's RNNCell & co.)
def cell(mode, x, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """PyTorch's cell semantics: x (B, I) or (I,); hx / cx None = zeros. Returns (h', c')."""
    unbatched = x.ndim == 1
    if unbatched:
        x = x[None]
        hx = None if hx is None else hx[None]
        cx = None if cx is None else cx[None]
    H = w_hh.shape[1]
    B = x.shape[0]
    h = np.zeros((B, H), x.dtype) if hx is None else hx
    c = None
    if mode == "lstm":
        c = np.zeros((B, H), x.dtype) if cx is None else cx
    hn, cn, _ = cell_forward(mode, x, h, c, w_ih, w_hh, b_ih, b_hh)
    if unbatched:
        hn = hn[0]
        cn = None if cn is None else cn[0]
    return hn, cn


def cell_grads(mode, x, hx, cx, w_ih, w_hh, b_ih, b_hh, dh, dc=None):
    """Gradients of sum(h' * dh) + sum(c' * dc) w.r.t. (x, hx, cx, w_ih, w_hh, b_ih, b_hh) (None where
    the input is None)."""
    unbatched = x.ndim == 1
    up = (lambda a: None if a is None else a[None]) if unbatched else (lambda a: a)
    x1, hx1, cx1, dh1, dc1 = up(x), up(hx), up(cx), up(dh), up(dc)
    B, H = x1.shape[0], w_hh.shape[1]
    h = np.zeros((B, H), x.dtype) if hx1 is None else hx1
    c = (np.zeros((B, H), x.dtype) if cx1 is None else cx1) if mode == "lstm" else None
    _, _, cache = cell_forward(mode, x1, h, c, w_ih, w_hh, b_ih, b_hh)
    if dc1 is None and mode == "lstm":
        dc1 = np.zeros((B, H), x.dtype)
    dx, dhp, dcp, pg = cell_backward(mode, cache, dh1, dc1, w_ih, w_hh, b_ih is not None)
    down = (lambda a: None if a is None else a[0]) if unbatched else (lambda a: a)
    out = [down(dx), None if hx is None else down(dhp), None if (cx is None or mode != "lstm") else down(dcp)]
    out += [pg[0], pg[1]] + ([pg[2], pg[3]] if b_ih is not None else [None, None])
    return out


# ------------------------------------------------------------------ whole sequences
class Config:
    def __init__(self, mode, hidden_size, num_layers=1, bias=True, batch_first=False, bidirectional=False,
                 proj_size=0):
        self.mode, self.H, self.L = mode, hidden_size, num_layers
        self.bias, self.batch_first, self.bidir, self.P = bias, batch_first, bidirectional, proj_size
        self.D = 2 if bidirectional else 1
        self.Hout = proj_size if proj_size > 0 else hidden_size

    def per_direction(self):
        return 2 + (2 if self.bias else 0) + (1 if self.P > 0 else 0)

    def param_shapes(self, input_size):
        """Shapes of the flat params, in PyTorch's order."""
        G, H = GATES[self.mode], self.H
        shapes = []
        for layer in range(self.L):
            isz = input_size if layer == 0 else self.D * self.Hout
            for _ in range(self.D):
                shapes += [(G * H, isz), (G * H, self.Hout)]
                if self.bias:
                    shapes += [(G * H,), (G * H,)]
                if self.P > 0:
                    shapes += [(self.P, H)]
        return shapes

    def param_names(self):
        names = []
        for layer in range(self.L):
            for d in range(self.D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                names += [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                if self.bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                if self.P > 0:
                    names += [f"weight_hr{sfx}"]
        return names

    def unpack(self, params, layer, d):
        k = self.per_direction()
        p = params[(layer * self.D + d) * k:(layer * self.D + d + 1) * k]
        w_ih, w_hh = p[0], p[1]
        b_ih, b_hh = (p[2], p[3]) if self.bias else (None, None)
        w_hr = p[-1] if self.P > 0 else None
        return w_ih, w_hh, b_ih, b_hh, w_hr


def _prepare(cfg, x, hx, cx, lengths):
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None]
        hx = None if hx is None else hx[:, None]
        cx = None if cx is None else cx[:, None]
    elif cfg.batch_first:
        x = x.transpose(1, 0, 2)
    T, B = x.shape[:2]
    if hx is None:
        hx = np.zeros((cfg.L * cfg.D, B, cfg.Hout), x.dtype)
    if cfg.mode == "lstm" and cx is None:
        cx = np.zeros((cfg.L * cfg.D, B, cfg.H), x.dtype)
    lengths = np.full(B, T, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(x.dtype)[:, :, None]  # (T, B, 1)
    return unbatched, x, hx, cx, mask


def _finish_output(cfg, unbatched, y):
    if unbatched:
        return y[:, 0]
    return y.transpose(1, 0, 2) if cfg.batch_first else y


def sequence_forward(cfg, x, params, hx=None, cx=None, lengths=None, dropout_masks=None, _keep=None):
    """Returns (output, h_n, c_n) (c_n None unless lstm). dropout_masks: None or one array per layer
    but the last, (T, B, D*Hout), already scaled by 1/(1-p), multiplied into that layer's output."""
    unbatched, xs, hx, cx, mask = _prepare(cfg, x, hx, cx, lengths)
    T, B = xs.shape[:2]
    layer_in = xs
    h_n = np.zeros_like(hx)
    c_n = None if cx is None else np.zeros_like(cx)
    caches = []
    for layer in range(cfg.L):
        outs = []
        for d in range(cfg.D):
            w_ih, w_hh, b_ih, b_hh, w_hr = cfg.unpack(params, layer, d)
            idx = layer * cfg.D + d
            h = hx[idx]
            c = cx[idx] if cx is not None else None
            y = np.zeros((T, B, cfg.Hout), xs.dtype)
            steps = range(T - 1, -1, -1) if d else range(T)
            step_caches = []
            for t in steps:
                hn, cn, cache = cell_forward(cfg.mode, layer_in[t], h, c, w_ih, w_hh, b_ih, b_hh, w_hr)
                m = mask[t]
                step_caches.append((t, cache, h, c))
                y[t] = m * hn
                h = m * hn + (1 - m) * h
                if c is not None:
                    c = m * cn + (1 - m) * c
            h_n[idx] = h
            if c_n is not None:
                c_n[idx] = c
            outs.append(y)
            caches.append(step_caches)
        out = np.concatenate(outs, axis=2)
        if dropout_masks is not None and layer < cfg.L - 1:
            out = out * dropout_masks[layer]
        if _keep is not None:
            _keep.append(layer_in)
        layer_in = out
    if _keep is not None:
        _keep.append(caches)
        _keep.append(mask)
    if unbatched:
        h_n = h_n[:, 0]
        c_n = None if c_n is None else c_n[:, 0]
    return _finish_output(cfg, unbatched, layer_in), h_n, c_n


def sequence_backward(cfg, x, params, hx=None, cx=None, lengths=None, grad_output=None, grad_hn=None,
                      grad_cn=None, dropout_masks=None):
    """Gradients of sum(output * grad_output) + sum(h_n * grad_hn) + sum(c_n * grad_cn) (absent grads
    = zeros). Returns (d_input, d_hx, d_cx, [d_param for each param]); d_hx / d_cx are returned even
    when hx / cx are None (the gradient of the zero initial state)."""
    keep = []
    out, h_n, c_n = sequence_forward(cfg, x, params, hx, cx, lengths, dropout_masks, _keep=keep)
    layer_inputs, caches, mask = keep[:cfg.L], keep[cfg.L], keep[cfg.L + 1]
    unbatched = x.ndim == 2
    gy = np.zeros_like(out) if grad_output is None else grad_output
    ghn = np.zeros_like(h_n) if grad_hn is None else grad_hn
    gcn = None
    if cfg.mode == "lstm":
        gcn = np.zeros_like(c_n) if grad_cn is None else grad_cn
    if unbatched:
        gy = gy[:, None]
        ghn = ghn[:, None]
        gcn = None if gcn is None else gcn[:, None]
    elif cfg.batch_first:
        gy = gy.transpose(1, 0, 2)
    T, B = gy.shape[:2]
    dparams = [np.zeros_like(p) for p in params]
    dhx = np.zeros_like(ghn)
    dcx = None if gcn is None else np.zeros_like(gcn)
    k = cfg.per_direction()
    g_out = gy  # gradient of the current layer's (post-dropout) output
    for layer in range(cfg.L - 1, -1, -1):
        if dropout_masks is not None and layer < cfg.L - 1:
            g_out = g_out * dropout_masks[layer]
        layer_in = layer_inputs[layer]
        d_in = np.zeros_like(layer_in)
        for d in range(cfg.D):
            w_ih, w_hh, b_ih, b_hh, w_hr = cfg.unpack(params, layer, d)
            idx = layer * cfg.D + d
            gy_d = g_out[:, :, d * cfg.Hout:(d + 1) * cfg.Hout]
            dh = ghn[idx].copy()
            dc = gcn[idx].copy() if gcn is not None else None
            base = idx * k
            for t, cache, h_prev, c_prev in reversed(caches[idx]):
                m = mask[t]
                # h_t = m * hn + (1 - m) * h_prev, y_t = m * hn
                dhn = m * (dh + gy_d[t])
                dcn = m * dc if dc is not None else None
                dx, dhp, dcp, pg = cell_backward(cfg.mode, cache, dhn, dcn, w_ih, w_hh, cfg.bias, w_hr)
                d_in[t] += dx
                dh = dhp + (1 - m) * dh
                if dc is not None:
                    dc = dcp + (1 - m) * dc
                for j, g in enumerate(pg):
                    dparams[base + j] += g
            dhx[idx] = dh
            if dcx is not None:
                dcx[idx] = dc
        g_out = d_in
    dx = g_out
    if unbatched:
        dx, dhx = dx[:, 0], dhx[:, 0]
        dcx = None if dcx is None else dcx[:, 0]
    elif cfg.batch_first:
        dx = dx.transpose(1, 0, 2)
    return dx, dhx, dcx, dparams


def make_params(cfg, input_size, rng, dtype=np.float64, scale=None):
    """Random params in PyTorch's init range U(-1/sqrt(H), 1/sqrt(H)) (or U(-scale, scale))."""
    s = scale if scale is not None else 1.0 / np.sqrt(cfg.H)
    return [rng.uniform(-s, s, size=shp).astype(dtype) for shp in cfg.param_shapes(input_size)]
