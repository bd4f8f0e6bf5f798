"""SGD with momentum, dampening, Nesterov and weight decay (one fused sgd_step_ per group)."""
from .. import _ops
from . import _reference
from .optimizer import Optimizer, _fused, _scalar, required


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's torch.optim.SGD (same arguments and update rule):

        g = -grad if maximize else grad;  g += weight_decay * p
        buf = g (first step) or momentum * buf + (1 - dampening) * g;  g = g + momentum * buf (nesterov) or buf
        p -= lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False,
                 foreach=None, differentiable=False, fused=None):
        if lr is not required and _scalar(lr, "lr") < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if differentiable:
            raise NotImplementedError("SGD: differentiable=True is not supported")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)

    def _step_group(self, group, params, grads):
        op = _fused("sgd_step_") or _reference.sgd_step_
        lr = float(_scalar(group["lr"], "lr"))
        momentum = float(group["momentum"])
        attrs = dict(lr=lr, momentum=momentum, dampening=float(group["dampening"]),
                     weight_decay=float(group["weight_decay"]), nesterov=bool(group["nesterov"]),
                     maximize=bool(group["maximize"]))
        if momentum == 0:
            op(list(params) + list(grads), first_step=False, **attrs)
            return
        # Parameters with a momentum buffer take the running update; those without get one now and
        # take PyTorch's first step (buffer = gradient). Usually all are in one of the two lists.
        old = [i for i, p in enumerate(params) if self.state[p].get("momentum_buffer") is not None]
        new = [i for i, p in enumerate(params) if self.state[p].get("momentum_buffer") is None]
        for p in (params[i] for i in new):
            self.state[p]["momentum_buffer"] = _ops.zeros_like(p)
        for idx, first in ((old, False), (new, True)):
            if idx:
                ps = [params[i] for i in idx]
                op(ps + [grads[i] for i in idx] + [self.state[p]["momentum_buffer"] for p in ps], first_step=first,
                   **attrs)
