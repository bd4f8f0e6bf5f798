"""Optimizer: PyTorch's base class (param_groups, state, zero_grad, state_dict) over Heron's fused ops."""
import contextlib
import copy
import warnings
from collections.abc import Mapping, MutableMapping

from .. import _C, _ops
from .. import _dtypes as _dt

Tensor = _C.Tensor


class _RequiredParameter:
    """Marks a hyper-parameter without default (PyTorch's `required`)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _no_grad():
    import heron
    ng = getattr(heron, "no_grad", None)
    return ng() if ng is not None else contextlib.nullcontext()


def _enable_grad():
    import heron
    eg = getattr(heron, "enable_grad", None)
    return eg() if eg is not None else contextlib.nullcontext()


def _grad(p):
    return getattr(p, "grad", None)


def _fused(name):
    """The fused op heron.<name> (None while the core lacks it; the optimizers then fall back to a
    reference implementation made of elementwise ops, see _reference.py)."""
    return getattr(_ops, name, None)


class _ParamState(MutableMapping):
    """optimizer.state: a defaultdict(dict) keyed by parameter identity (like PyTorch's, whose
    tensors hash by id)."""

    def __init__(self):
        self._d = {}

    def __getitem__(self, p):
        entry = self._d.get(id(p))
        if entry is None:
            if not isinstance(p, Tensor):
                raise KeyError(p)
            entry = self._d[id(p)] = (p, {})
        return entry[1]

    def __setitem__(self, p, value):
        self._d[id(p)] = (p, value)

    def __delitem__(self, p):
        del self._d[id(p)]

    def __contains__(self, p):
        return id(p) in self._d

    def __iter__(self):
        return (entry[0] for entry in list(self._d.values()))

    def __len__(self):
        return len(self._d)

    def __repr__(self):
        return "{" + ", ".join(f"<param {tuple(p.shape)}>: {s!r}" for p, s in self._d.values()) + "}"


def _scalar(v, name):
    if isinstance(v, Tensor):
        if v.numel() != 1:
            raise ValueError(f"{name} given as a tensor must have one element, got shape {tuple(v.shape)}")
        return float(v.item())
    return v


class Optimizer:
    """Base class of the optimizers.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups: {'params': [...], 'lr': ..., ...}).
        defaults: the hyper-parameters a group gets when it does not set them.
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = _ParamState()
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                            "tensors in sets will change between runs. Please use a list instead.")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Adds a group ({'params': ..., hyper-parameters}); missing hyper-parameters take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                            "tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.dtype.is_floating_point:
                raise TypeError(f"optimizer can only optimize floating-point Tensors, but one of the params has "
                                f"dtype {p.dtype}")
            if getattr(p, "is_leaf", True) is False:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in param_group["params"]]
        if len(ids) != len(set(ids)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error", stacklevel=3)
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ gradients
    def zero_grad(self, set_to_none=True):
        """Resets the gradients of every parameter: to None (default) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                g = _grad(p)
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if getattr(g, "grad_fn", None) is not None:
                        g.detach_()
                    elif getattr(g, "requires_grad", False):
                        g.requires_grad_(False)
                    g.zero_()

    def step(self, closure=None):
        """One optimization step over every group; `closure` (re-evaluating the loss) is called first,
        with grad mode on, and its result returned."""
        loss = None
        if closure is not None:
            with _enable_grad():
                loss = closure()
        with _no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if _grad(p) is not None]
                if params:
                    self._step_group(group, params, [_grad(p) for p in params])
        return loss

    def _step_group(self, group, params, grads):
        raise NotImplementedError

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """{'state': {index: {name: value}}, 'param_groups': [{..., 'params': [index, ...]}]}, PyTorch's
        format: parameters are numbered in group order; state tensors are references, not copies."""
        mapping = {}
        start = 0
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {mapping[id(p)]: s for p, s in self.state.items() if id(p) in mapping}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Loads a state_dict() (of this optimizer type, with the same group sizes). State tensors are
        copied and cast to each parameter's dtype (except 'step')."""
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with keys 'state' and 'param_groups'")
        groups = self.param_groups
        saved_groups = list(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups ({len(saved_groups)}) "
                             f"than the optimizer ({len(groups)})")
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group: group {i} has {len(sg['params'])} parameters in the state "
                                 f"dict, {len(g['params'])} in the optimizer")
        id_map = {}
        for g, sg in zip(groups, saved_groups):
            for old, p in zip(sg["params"], g["params"]):
                id_map[old] = p
        new_state = _ParamState()
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k
            if key in id_map:
                p = id_map[key]
                new_state[p] = {name: self._cast_state(p, name, val) for name, val in v.items()}
            else:
                raise ValueError(f"load_state_dict: state for parameter {k!r}, which no parameter group lists")
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            ng = {k: copy.deepcopy(v) for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            # hyper-parameters added since the state dict was saved keep their current values
            for k, v in g.items():
                ng.setdefault(k, v)
            new_groups.append(ng)
        self.state = new_state
        self.param_groups = new_groups

    @staticmethod
    def _cast_state(p, name, value):
        if isinstance(value, Tensor):
            out = value
            if name != "step":
                if out.dtype.is_floating_point and out.dtype != p.dtype:
                    out = _ops.cast(out, p.dtype)
                if out.device != p.device:
                    out = _ops.to_device(out, str(p.device))
            return _ops.clone(out) if out is value else out
        if name == "step" and isinstance(value, (int, float)):
            return _step_tensor(float(value))
        return copy.deepcopy(value)


# ---------------------------------------------------------------------- helpers for the subclasses
def _step_tensor(value):
    """The per-parameter step counter as PyTorch keeps it: a 0-d float32 tensor."""
    return _ops.full([], float(value), _dt.float32)


def _step_value(state):
    s = state["step"]
    return float(s.item()) if isinstance(s, Tensor) else float(s)


def _by_step(params, state, increment=True):
    """Increments each parameter's step and groups the parameters by it (almost always one group),
    so that one fused call covers each distinct step. Yields (step, indices)."""
    buckets = {}
    for i, p in enumerate(params):
        st = state[p]
        s = _step_value(st) + (1.0 if increment else 0.0)
        st["step"] = _step_tensor(s)
        buckets.setdefault(s, []).append(i)
    return buckets.items()


def _check_group_devices(params, grads, opname):
    for p, g in zip(params, grads):
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(f"{opname}: a parameter of shape {tuple(p.shape)} has a gradient of shape "
                             f"{tuple(g.shape)}")

