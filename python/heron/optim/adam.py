"""Adam and AdamW (one fused adam_step_ per group and step count)."""
from .. import _ops
from . import _reference
from .optimizer import Optimizer, _by_step, _fused, _scalar, _step_tensor


class Adam(Optimizer):
    """Adam, PyTorch's torch.optim.Adam (same arguments, state names and update rule):

        g = -grad if maximize else grad;  g += weight_decay * p  (or p *= 1 - lr * weight_decay when decoupled)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g;  v_max = max(v_max, v) (amsgrad)
        p -= lr / (1 - beta1^t) * m / (sqrt(v or v_max) / sqrt(1 - beta2^t) + eps)

    State per parameter: 'step' (0-d float32 tensor), 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq' (amsgrad).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False, fused=None, decoupled_weight_decay=False):
        if _scalar(lr, "lr") < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise NotImplementedError(f"{type(self).__name__}: differentiable=True is not supported")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _step_group(self, group, params, grads):
        op = _fused("adam_step_") or _reference.adam_step_
        amsgrad = bool(group["amsgrad"])
        for p in params:
            st = self.state[p]
            if len(st) == 0:
                st["step"] = _step_tensor(0.0)
                st["exp_avg"] = _ops.zeros_like(p)
                st["exp_avg_sq"] = _ops.zeros_like(p)
                if amsgrad:
                    st["max_exp_avg_sq"] = _ops.zeros_like(p)
            elif amsgrad and "max_exp_avg_sq" not in st:
                st["max_exp_avg_sq"] = _ops.zeros_like(p)
        beta1, beta2 = group["betas"]
        attrs = dict(lr=float(_scalar(group["lr"], "lr")), beta1=float(_scalar(beta1, "beta1")),
                     beta2=float(_scalar(beta2, "beta2")), eps=float(group["eps"]),
                     weight_decay=float(group["weight_decay"]), amsgrad=amsgrad, maximize=bool(group["maximize"]),
                     decoupled_weight_decay=bool(group.get("decoupled_weight_decay", False)))
        for step, idx in _by_step(params, self.state):
            ps = [params[i] for i in idx]
            sts = [self.state[p] for p in ps]
            tensors = ps + [grads[i] for i in idx] + [s["exp_avg"] for s in sts] + [s["exp_avg_sq"] for s in sts]
            if amsgrad:
                tensors += [s["max_exp_avg_sq"] for s in sts]
            op(tensors, step=int(step), **attrs)


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the Adam update), PyTorch's
    torch.optim.AdamW; weight_decay defaults to 1e-2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)
