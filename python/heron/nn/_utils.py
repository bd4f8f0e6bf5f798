"""Small helpers shared by heron.nn: argument normalisation and a grad-mode guard."""
import contextlib
import numbers

from .. import _C

Tensor = _C.Tensor


def _ntuple(n, name="argument"):
    def parse(x):
        if type(x) is int:  # the hot paths first
            return (x,) * n
        if type(x) is tuple and len(x) == n and type(x[0]) is int:
            return x
        if isinstance(x, (list, tuple)):
            if len(x) != n:
                raise ValueError(f"{name}: expected an int or a tuple of {n} ints, got {tuple(x)}")
            return tuple(int(v) for v in x)
        if isinstance(x, numbers.Integral) and not isinstance(x, bool):
            return (int(x),) * n
        raise TypeError(f"{name}: expected an int or a tuple of {n} ints, got {type(x).__name__}")
    return parse


_single = _ntuple(1)
_pair = _ntuple(2)


def no_grad():
    """heron.no_grad() once autograd exists; a no-op context before that."""
    import heron
    f = getattr(heron, "no_grad", None)
    return f() if f is not None else contextlib.nullcontext()


def detached(t):
    """`t` without autograd history, sharing its memory."""
    d = getattr(t, "detach", None)
    return d() if d is not None else Tensor(t)  # before autograd: a plain Tensor object on the same handle


def shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
