"""Reference implementations of the fused optimizer ops, made of elementwise ops.

Same signatures and semantics as heron.sgd_step_, adam_step_, rmsprop_step_, adagrad_step_ and
clip_grad_norm_ (PyTorch's single-tensor algorithms). heron.optim uses them only when the core has
no fused op of that name (a build that predates them); they are several ops per tensor, where the
fused op is one pass over the whole group.
"""
import math

from .. import _ops


def _split(tensors, k, name):
    tensors = list(tensors)
    if len(tensors) % k:
        raise ValueError(f"{name}: expected {k} groups of n tensors, got {len(tensors)} tensors")
    n = len(tensors) // k
    return [tensors[i * n:(i + 1) * n] for i in range(k)]


def sgd_step_(tensors, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
              first_step=False):
    k = 3 if momentum != 0 else 2
    groups = _split(tensors, k, "sgd_step_")
    params, grads = groups[0], groups[1]
    bufs = groups[2] if k == 3 else [None] * len(params)
    for p, g, buf in zip(params, grads, bufs):
        d = _ops.neg(g) if maximize else g
        if weight_decay != 0:
            d = _ops.add(d, _ops.mul(p, weight_decay))
        if momentum != 0:
            if first_step:
                _ops.copy_(buf, d)
            else:
                _ops.copy_(buf, _ops.add(_ops.mul(buf, momentum), _ops.mul(d, 1.0 - dampening)))
            d = _ops.add(d, _ops.mul(buf, momentum)) if nesterov else buf
        _ops.copy_(p, _ops.sub(p, _ops.mul(d, lr)))
    return params


def adam_step_(tensors, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
               step=1, decoupled_weight_decay=False):
    k = 5 if amsgrad else 4
    groups = _split(tensors, k, "adam_step_")
    params, grads, exp_avgs, exp_avg_sqs = groups[:4]
    maxs = groups[4] if amsgrad else [None] * len(params)
    bc1 = 1.0 - beta1 ** step
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    step_size = lr / bc1
    for p, g, m, v, vmax in zip(params, grads, exp_avgs, exp_avg_sqs, maxs):
        if maximize:
            g = _ops.neg(g)
        if weight_decay != 0:
            if decoupled_weight_decay:
                _ops.copy_(p, _ops.mul(p, 1.0 - lr * weight_decay))
            else:
                g = _ops.add(g, _ops.mul(p, weight_decay))
        _ops.copy_(m, _ops.add(m, _ops.mul(_ops.sub(g, m), 1.0 - beta1)))
        _ops.copy_(v, _ops.add(_ops.mul(v, beta2), _ops.mul(_ops.mul(g, g), 1.0 - beta2)))
        if amsgrad:
            _ops.copy_(vmax, _ops.maximum(vmax, v))
            denom = _ops.add(_ops.div(_ops.sqrt(vmax), bc2_sqrt), eps)
        else:
            denom = _ops.add(_ops.div(_ops.sqrt(v), bc2_sqrt), eps)
        _ops.copy_(p, _ops.sub(p, _ops.mul(_ops.div(m, denom), step_size)))
    return params


def rmsprop_step_(tensors, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                  maximize=False):
    k = 3 + (momentum > 0) + bool(centered)
    groups = _split(tensors, k, "rmsprop_step_")
    params, grads, square_avgs = groups[:3]
    rest = groups[3:]
    bufs = rest.pop(0) if momentum > 0 else [None] * len(params)
    gavgs = rest.pop(0) if centered else [None] * len(params)
    for p, g, sq, buf, ga in zip(params, grads, square_avgs, bufs, gavgs):
        if maximize:
            g = _ops.neg(g)
        if weight_decay != 0:
            g = _ops.add(g, _ops.mul(p, weight_decay))
        _ops.copy_(sq, _ops.add(_ops.mul(sq, alpha), _ops.mul(_ops.mul(g, g), 1.0 - alpha)))
        if centered:
            _ops.copy_(ga, _ops.add(ga, _ops.mul(_ops.sub(g, ga), 1.0 - alpha)))
            avg = _ops.sqrt(_ops.sub(sq, _ops.mul(ga, ga)))
        else:
            avg = _ops.sqrt(sq)
        avg = _ops.add(avg, eps)
        if momentum > 0:
            _ops.copy_(buf, _ops.add(_ops.mul(buf, momentum), _ops.div(g, avg)))
            _ops.copy_(p, _ops.sub(p, _ops.mul(buf, lr)))
        else:
            _ops.copy_(p, _ops.sub(p, _ops.mul(_ops.div(g, avg), lr)))
    return params


def adagrad_step_(tensors, lr=0.01, lr_decay=0.0, weight_decay=0.0, eps=1e-10, step=1, maximize=False):
    params, grads, sums = _split(tensors, 3, "adagrad_step_")
    clr = lr / (1.0 + (step - 1) * lr_decay)
    for p, g, s in zip(params, grads, sums):
        if maximize:
            g = _ops.neg(g)
        if weight_decay != 0:
            g = _ops.add(g, _ops.mul(p, weight_decay))
        _ops.copy_(s, _ops.add(s, _ops.mul(g, g)))
        _ops.copy_(p, _ops.sub(p, _ops.mul(_ops.div(g, _ops.add(_ops.sqrt(s), eps)), clr)))
    return params


def _norm(g, norm_type):
    a = _ops.abs(g)
    if math.isinf(norm_type):
        return _ops.amax(a) if norm_type > 0 else _ops.amin(a)
    if norm_type == 0:
        return _ops.sum(_ops.cast(_ops.ne(g, 0), g.dtype))
    if norm_type == 1:
        return _ops.sum(a)
    if norm_type == 2:
        return _ops.sqrt(_ops.sum(_ops.mul(g, g)))
    return _ops.pow(_ops.sum(_ops.pow(a, norm_type)), 1.0 / norm_type)


def clip_grad_norm_(tensors, max_norm, norm_type=2.0, error_if_nonfinite=False):
    grads = list(tensors)
    norms = [_ops.reshape(_norm(_ops.reshape(g, [-1]), norm_type), [1]) for g in grads]
    total = _ops.reshape(_norm(_ops.concat(norms, 0), norm_type), [])
    t = float(total.item())
    if error_if_nonfinite and not math.isfinite(t):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    coef = max_norm / (t + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        for g in grads:
            _ops.copy_(g, _ops.mul(g, coef))
    return total
