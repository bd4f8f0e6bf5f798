"""heron.nn.Parameter: a Tensor that a Module registers as one of its parameters."""
from .. import _C
from ._utils import detached

Tensor = _C.Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and that Module registers when assigned.

    Parameter(data) shares data's memory (not its autograd history), like torch.nn.Parameter.
    It is a heron.Tensor: every op and method accepts it.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            from .. import _ops
            data = _ops.empty((0,))
        elif not isinstance(data, Tensor):
            raise TypeError(f"Parameter(): data must be a heron.Tensor, not {type(data).__name__}")
        Tensor.__init__(self, detached(data))
        if requires_grad and hasattr(Tensor, "requires_grad_"):
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        from .. import _ops
        result = Parameter(_ops.clone(detached(self)), getattr(self, "requires_grad", True))
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto):
        raise TypeError("heron.nn.Parameter cannot be pickled; save a state_dict with heron.save instead")
