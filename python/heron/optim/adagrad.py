"""Adagrad (one fused adagrad_step_ per group and step count)."""
from .. import _ops
from . import _reference
from .optimizer import Optimizer, _by_step, _fused, _scalar, _step_tensor


class Adagrad(Optimizer):
    """Adagrad, PyTorch's torch.optim.Adagrad (same arguments, state names and update rule):

        g = -grad if maximize else grad;  g += weight_decay * p;  clr = lr / (1 + (t - 1) * lr_decay)
        sum += g * g;  p -= clr * g / (sqrt(sum) + eps)

    State per parameter (created at construction, as in PyTorch): 'step', 'sum'
    (initial_accumulator_value everywhere).
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        if _scalar(lr, "lr") < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if lr_decay < 0.0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if initial_accumulator_value < 0.0:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if differentiable:
            raise NotImplementedError("Adagrad: differentiable=True is not supported")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)  # add_param_group creates the state

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        self._init_state(self.param_groups[-1])

    def _init_state(self, group):
        for p in group["params"]:
            st = self.state[p]
            if len(st) == 0:
                st["step"] = _step_tensor(0.0)
                st["sum"] = _ops.full_like(p, float(group["initial_accumulator_value"]))

    def _step_group(self, group, params, grads):
        op = _fused("adagrad_step_") or _reference.adagrad_step_
        for p in params:
            if len(self.state[p]) == 0:
                self._init_state({"params": [p], "initial_accumulator_value": group["initial_accumulator_value"]})
        attrs = dict(lr=float(_scalar(group["lr"], "lr")), lr_decay=float(group["lr_decay"]),
                     weight_decay=float(group["weight_decay"]), eps=float(group["eps"]),
                     maximize=bool(group["maximize"]))
        for step, idx in _by_step(params, self.state):
            ps = [params[i] for i in idx]
            op(ps + [grads[i] for i in idx] + [self.state[p]["sum"] for p in ps], step=int(step), **attrs)
