"""RMSprop (one fused rmsprop_step_ per group)."""
from .. import _ops
from . import _reference
from .optimizer import Optimizer, _fused, _scalar, _step_tensor, _step_value


class RMSprop(Optimizer):
    """RMSprop, PyTorch's torch.optim.RMSprop (same arguments, state names and update rule):

        g = -grad if maximize else grad;  g += weight_decay * p;  v = alpha * v + (1 - alpha) * g * g
        centered: g_avg = alpha * g_avg + (1 - alpha) * g;  avg = sqrt(v - g_avg^2) + eps, else sqrt(v) + eps
        momentum > 0: buf = momentum * buf + g / avg;  p -= lr * buf,  else p -= lr * g / avg

    State per parameter: 'step', 'square_avg', 'momentum_buffer' (momentum > 0), 'grad_avg' (centered).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        if _scalar(lr, "lr") < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        if differentiable:
            raise NotImplementedError("RMSprop: differentiable=True is not supported")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay,
                        capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group, params, grads):
        op = _fused("rmsprop_step_") or _reference.rmsprop_step_
        momentum = float(group["momentum"])
        centered = bool(group["centered"])
        for p in params:
            st = self.state[p]
            if len(st) == 0:
                st["step"] = _step_tensor(0.0)
                st["square_avg"] = _ops.zeros_like(p)
            if momentum > 0 and "momentum_buffer" not in st:
                st["momentum_buffer"] = _ops.zeros_like(p)
            if centered and "grad_avg" not in st:
                st["grad_avg"] = _ops.zeros_like(p)
            st["step"] = _step_tensor(_step_value(st) + 1.0)
        sts = [self.state[p] for p in params]
        tensors = list(params) + list(grads) + [s["square_avg"] for s in sts]
        if momentum > 0:
            tensors += [s["momentum_buffer"] for s in sts]
        if centered:
            tensors += [s["grad_avg"] for s in sts]
        op(tensors, lr=float(_scalar(group["lr"], "lr")), alpha=float(group["alpha"]), eps=float(group["eps"]),
           weight_decay=float(group["weight_decay"]), momentum=momentum, centered=centered,
           maximize=bool(group["maximize"]))
