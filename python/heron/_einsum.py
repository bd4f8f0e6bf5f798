"""heron.einsum and heron.einsum_path: numpy's calling conventions over the core's `einsum` and
`einsum_path` ops. Parsing, path optimization, caching and execution all happen in the core (so every
language gets the same behaviour); this module only translates arguments.
"""
from . import _C, _ops
from ._creation import as_tensor

_OPTIMIZE_NAMES = {"auto": "auto", "greedy": "greedy", "optimal": "optimal", "dp": "optimal", "none": "none"}


def _label(v, where):
    if v is Ellipsis:
        return "..."
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise _C.InvalidArgumentError(f"einsum: sublist {where} holds {v!r}; subscripts are ints 0-51 or Ellipsis")
    i = v.__index__()
    if 0 <= i < 26:
        return chr(ord("A") + i)
    if 26 <= i < 52:
        return chr(ord("a") + i - 26)
    raise _C.InvalidArgumentError(f"einsum: subscript {i} in sublist {where} is out of range: there are 52 labels (0-51)")


def _sublists_to_equation(args):
    """einsum(a, [0, 1], b, [1, 2], [0, 2]) -> ('AB,BC->AC', (a, b))."""
    args = list(args)
    operands, terms = [], []
    while len(args) >= 2:
        operands.append(args.pop(0))
        sub = args.pop(0)
        try:
            terms.append("".join(_label(v, len(terms)) for v in sub))
        except TypeError:
            raise _C.InvalidArgumentError(f"einsum: expected a sublist after operand {len(terms)}, got {sub!r}") from None
    eq = ",".join(terms)
    if args:
        out = args.pop(0)
        try:
            eq += "->" + "".join(_label(v, "output") for v in out)
        except TypeError:
            raise _C.InvalidArgumentError(f"einsum: expected the output sublist last, got {out!r}") from None
    return eq, operands


def _split_args(equation, operands):
    if isinstance(equation, str):
        return equation, list(operands)
    return _sublists_to_equation((equation,) + tuple(operands))


def _as_operand(x):
    return x if isinstance(x, _C.Tensor) else as_tensor(x)


def _optimize_args(optimize):
    """-> (strategy name, memory_limit, flattened explicit path or None)."""
    if optimize is False or optimize is None:
        return "none", None, None
    if optimize is True:
        return "auto", None, None
    if isinstance(optimize, str):
        if optimize not in _OPTIMIZE_NAMES:
            raise _C.InvalidArgumentError(
                f"einsum: optimize must be False, True, 'auto', 'greedy', 'optimal' or a path, got {optimize!r}")
        return _OPTIMIZE_NAMES[optimize], None, None
    seq = list(optimize)
    if len(seq) == 2 and isinstance(seq[0], str) and seq[0] != "einsum_path":
        name, limit = seq
        strategy = _optimize_args(name)[0]
        return strategy, int(limit), None
    if seq and seq[0] == "einsum_path":
        seq = seq[1:]
    flat = []
    for step in seq:
        try:
            step = [int(p) for p in step]
        except TypeError:
            raise _C.InvalidArgumentError(f"einsum: a contraction path is a list of tuples of positions, got {optimize!r}") from None
        flat.append(len(step))
        flat.extend(step)
    return "auto", None, flat


def einsum(equation, *operands, optimize="auto"):
    """Einstein summation, numpy's ``einsum``: ``einsum('ij,jk->ik', a, b)`` or the sublist form
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.

    The equation grammar (explicit/implicit output, ``...`` broadcasting, repeated labels for
    diagonals, 52 labels a-z A-Z) is in docs/design/einsum.md. Errors raise ``ValueError`` with the
    equation and a caret under the offending character.

    Args:
        equation (str | Tensor): subscripts, or the first operand of the sublist form.
        *operands: tensors (or array-likes), one per input term.
        optimize: False (left to right), True or 'auto', 'greedy', 'optimal', ('greedy', memory_limit)
            or an explicit path such as ``['einsum_path', (0, 1), (0, 1)]`` from :func:`einsum_path`.

    Returns:
        Tensor. A single operand with nothing summed gives a view (``'ii->i'``, ``'ij->ji'``).
    """
    eq, ops = _split_args(equation, operands)
    strategy, limit, path = _optimize_args(optimize)
    return _ops.einsum(tuple(_as_operand(x) for x in ops), eq, strategy, limit, path)


def _label_str(ids):
    """Label ids as text: letters for 0-51, digits for the '...' dims (52 -> '0', 53 -> '1', ...)."""
    out = []
    for i in ids:
        if i < 0:
            break
        out.append(chr(ord("A") + i) if i < 26 else chr(ord("a") + i - 26) if i < 52 else str((i - 52) % 10))
    return "".join(out)


def einsum_path(equation, *operands, optimize="auto"):
    """The contraction path einsum takes, like ``numpy.einsum_path``: returns ``(path, report)``
    where ``path`` is ``['einsum_path', (i, j), ...]`` (positions in the current operand list, the
    result appended at the end; ``(i,)`` moves one operand) and ``report`` a printable summary of
    the cost, step by step. In the report, '...' dims are shown as digits."""
    eq, ops = _split_args(equation, operands)
    strategy, limit, explicit = _optimize_args(optimize)
    if explicit is not None:
        raise _C.InvalidArgumentError("einsum_path: optimize must be a strategy, not an explicit path")
    ops = tuple(_as_operand(x) for x in ops)
    path_t, stats_t, terms_t = _ops.einsum_path(ops, eq, strategy, limit)
    pairs = path_t.numpy().tolist()
    stats = stats_t.numpy()
    terms = [_label_str(row) for row in terms_t.numpy().tolist()]
    n = len(ops)
    cur, results, out = terms[:n], terms[n:n + len(pairs)], terms[-1]
    path = ["einsum_path"] + [(a,) if b < 0 else (a, b) for a, b in pairs]
    naive, opt, largest, naive_scaling = (float(v) for v in stats[0])
    opt_scaling = max([int(r[3]) for r in stats[1:]], default=int(naive_scaling))
    lines = [
        f"  Complete contraction:  {eq}",
        f"         Naive scaling:  {int(naive_scaling)}",
        f"     Optimized scaling:  {opt_scaling}",
        f"      Naive FLOP count:  {naive:.3e}",
        f"  Optimized FLOP count:  {opt:.3e}",
        f"   Theoretical speedup:  {naive / opt if opt else 1.0:.3f}",
        f"  Largest intermediate:  {largest:.3e} elements",
        "-" * 74,
        f"{'scaling':>7}  {'current':<30} {'remaining':<33}",
        "-" * 74,
    ]
    for (a, b), row, res in zip(pairs, stats[1:], results):
        took = [cur[a]] if b < 0 else [cur[a], cur[b]]
        for i in sorted([a] if b < 0 else [a, b], reverse=True):
            del cur[i]
        cur.append(res)
        current = ",".join(took) + "->" + res
        lines.append(f"{int(row[3]):>7}  {current:<30} {','.join(cur) + '->' + out:<33}")
    return path, "\n".join(lines)
