"""heron.einsum / heron.einsum_path against numpy.einsum: numpy's einsum test matrix (error forms,
ellipsis placements, broadcasting, repeated labels, every dtype, the 52-label limit, long paths,
precision), hypothesis-generated equations, gradients, and path optimality against brute force."""
import itertools
import math
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import heron
from dtype_helpers import ALL, BF16, BOOL, F16, F32, F64, FLOATS, H, N, ids

rng = np.random.default_rng(0)


def R(*shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def check(eq, *arrays, rtol=1e-10, atol=1e-10, np_optimize=False, **kw):
    want = np.einsum(eq, *arrays, optimize=np_optimize)
    got = heron.einsum(eq, *[heron.tensor(a) for a in arrays], **kw)
    assert tuple(got.shape) == want.shape, (eq, got.shape, want.shape)
    np.testing.assert_allclose(N(got), want, rtol=rtol, atol=atol, err_msg=eq)
    return got


# ------------------------------------------------------------------ the basic matrix
CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("i,i->", [(7,), (7,)]),
    ("i,i", [(7,), (7,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ij", [(3, 4)]),
    ("ji", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("iij->j", [(3, 3, 5)]),
    ("iji->j", [(3, 5, 3)]),
    ("iii->i", [(3, 3, 3)]),
    ("ijij->ij", [(2, 3, 2, 3)]),
    ("ii,i->i", [(4, 4), (4,)]),
    ("abc,cd,de->abe", [(3, 4, 5), (5, 6), (6, 2)]),
    ("ea,fb,abcd,gc,hd->efgh", [(2, 3), (2, 3), (3, 3, 3, 3), (2, 3), (2, 3)]),
    ("bn,anm,bm->ba", [(4, 3), (2, 3, 3), (4, 3)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,ji->", [(3, 4), (4, 3)]),
    ("i,i,i->i", [(5,), (5,), (5,)]),
    ("ijk,jil->kl", [(3, 4, 5), (4, 3, 2)]),
    ("ab,cd->abcd", [(2, 3), (4, 2)]),
    ("ab,cd->cadb", [(2, 3), (4, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,kl,jk->il", [(2, 3), (4, 5), (3, 4)]),
    ("a,b,c,d->", [(2,), (3,), (4,), (5,)]),
    ("abc,abc->c", [(2, 3, 4), (2, 3, 4)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("j,ij->i", [(4,), (3, 4)]),
    ("i , j -> i j", [(3,), (2,)]),
    ("  ij  ", [(3, 4)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    ("aB,Ba", [(2, 3), (3, 2)]),
]


@pytest.mark.parametrize("eq,shapes", CASES, ids=[c[0] for c in CASES])
def test_against_numpy(eq, shapes):
    check(eq, *[R(*s) for s in shapes])


# ------------------------------------------------------------------ ellipsis and broadcasting
ELLIPSIS = [
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
    ("i...j,j...k->...ik", [(3, 2, 4), (4, 2, 5)]),
    ("ij...,jk...->ik...", [(3, 4, 2), (4, 5, 2)]),
    ("...,...", [(2, 3), (3,)]),
    ("...->...", [(2, 3)]),
    ("...i->...", [(2, 3)]),
    ("i...->...", [(2, 3, 4)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("i...i->...", [(3, 2, 3)]),
    ("...i,...i->...", [(5, 1, 3), (4, 3)]),
    ("...i,i", [(2, 3), (3,)]),
    ("ij...,j", [(2, 3), (3,)]),  # zero broadcast dims
    ("...ij,j->...i", [(3, 4), (4,)]),
    ("...,ij->...ij", [(), (2, 3)]),
    ("ij,ij->ij", [(1, 3), (4, 3)]),  # size-1 broadcasting of a label
    ("i,i->i", [(1,), (4,)]),
    ("ij,jk->ik", [(3, 1), (4, 5)]),  # contracted label broadcast
    ("ab,bc,cd->ad", [(2, 1), (3, 4), (1, 5)]),
]


@pytest.mark.parametrize("eq,shapes", ELLIPSIS, ids=[c[0] for c in ELLIPSIS])
def test_ellipsis_and_broadcasting(eq, shapes):
    check(eq, *[R(*s) for s in shapes])


def test_zero_size_and_zero_d():
    check("ij,jk->ik", R(0, 3), R(3, 4))
    check("ij,jk->ik", R(2, 0), R(0, 4))  # empty contraction: zeros
    check("ij,jk", R(2, 3), R(3, 0))
    check("i->", R(0))
    check("ii->i", R(0, 0))
    check(",", R(), R())
    check(",->", R(), R())
    check(",i->i", R(), R(3))
    check("", R())
    check("->", R())
    check("ab,b->a", R(0, 1), R(5))  # 0 against a broadcast 1


def test_views_like_numpy():
    x = heron.tensor(R(4, 4))
    d = heron.einsum("ii->i", x)
    t = heron.einsum("ij->ji", x)
    assert d.data_ptr() == x.data_ptr() and tuple(d.stride()) == (5,)
    assert t.data_ptr() == x.data_ptr()
    np.testing.assert_array_equal(N(d), np.diagonal(N(x)))
    np.testing.assert_array_equal(N(t), N(x).T)
    # A computed result never aliases an input.
    s = heron.einsum("ij->j", x)
    assert s.data_ptr() != x.data_ptr()
    np.testing.assert_allclose(N(s), N(x).sum(0))
    one = heron.einsum("ij,jk->ik", x, heron.eye(4, dtype=F64))
    assert one.data_ptr() != x.data_ptr()


# ------------------------------------------------------------------ every dtype
@pytest.mark.parametrize("dt", ALL, ids=ids(ALL))
@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(3, 4), (4, 5)]), ("ii->i", [(3, 3)]), ("ij->j", [(3, 4)]),
                                       ("i,j->ij", [(3,), (2,)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
                                       ("ij,ij->", [(3, 4), (3, 4)])])
def test_every_dtype(dt, eq, shapes):
    if dt == BOOL:
        arrays = [rng.integers(0, 2, s).astype(bool) for s in shapes]
    elif dt in FLOATS:
        arrays = [rng.integers(-3, 4, s).astype(np.float32) for s in shapes]
    else:
        lo = 0 if dt == heron.uint8 else -3
        arrays = [rng.integers(lo, 4, s).astype(np.int64) for s in shapes]
    ts = [H(a, dt) for a in arrays]
    got = heron.einsum(eq, *ts)
    assert got.dtype == dt
    ref = np.einsum(eq, *[a.astype(np.float64) if dt != BOOL else a for a in arrays])
    if dt == BOOL:
        np.testing.assert_array_equal(N(got), ref)
    else:
        np.testing.assert_allclose(N(got).astype(np.float64), ref.astype(np.float64), rtol=0, atol=0)


def test_integer_wraparound_like_numpy():
    a = np.full((4, 40), 7, dtype=np.int8)
    b = np.full((40, 3), 9, dtype=np.int8)
    np.testing.assert_array_equal(N(heron.einsum("ij,jk->ik", heron.tensor(a), heron.tensor(b))), np.einsum("ij,jk->ik", a, b))


def test_half_accumulates_in_float32():
    # 4096 ones summed: float16 accumulation would stall at 2048.
    x = heron.ones(4096, dtype=F16)
    assert float(heron.einsum("i->", x).to(F32).item()) == 4096.0
    y = heron.ones(4096, dtype=BF16)
    assert float(heron.einsum("i,i->", y, y).to(F32).item()) == 4096.0


def test_mixed_dtypes_promote():
    a = heron.tensor(R(2, 3).astype(np.float32))
    b = heron.tensor(R(3, 4))
    c = heron.einsum("ij,jk->ik", a, b)
    assert c.dtype == F64
    np.testing.assert_allclose(N(c), np.einsum("ij,jk->ik", N(a).astype(np.float64), N(b)), rtol=1e-6)


def test_sum_1e6_float64_to_full_precision():
    x = np.full(10**6, 0.1)
    got = heron.einsum("i->", heron.tensor(x)).item()
    assert abs(got - math.fsum(x)) <= 1e-9 * math.fsum(x)
    v = rng.standard_normal(10**6)
    w = rng.standard_normal(10**6)
    ref = math.fsum(v * w)
    got = heron.einsum("i,i->", heron.tensor(v), heron.tensor(w)).item()
    assert abs(got - ref) <= 1e-11 * np.abs(v * w).sum()


# ------------------------------------------------------------------ the 52 labels and the sublist form
def test_52_labels():
    letters = string.ascii_letters
    x = R(*([1] * 52))
    check(letters, x)
    check(letters + "->" + letters[::-1], x)
    y = R(*([2] * 10 + [1] * 42))
    check(letters + "->" + letters[:10], y)
    with pytest.raises(ValueError, match="invalid character '1'"):
        heron.einsum(letters + "1", heron.tensor(R(*([1] * 53))))


def test_sublist_form():
    a, b = R(3, 4), R(4, 5)
    ta, tb = heron.tensor(a), heron.tensor(b)
    np.testing.assert_allclose(N(heron.einsum(ta, [0, 1], tb, [1, 2], [0, 2])), np.einsum(a, [0, 1], b, [1, 2], [0, 2]))
    np.testing.assert_allclose(N(heron.einsum(ta, [0, 1], tb, [1, 2])), np.einsum(a, [0, 1], b, [1, 2]))
    c = R(2, 3, 3)
    np.testing.assert_allclose(N(heron.einsum(heron.tensor(c), [Ellipsis, 0, 0], [Ellipsis, 0])),
                               np.einsum(c, [Ellipsis, 0, 0], [Ellipsis, 0]))
    np.testing.assert_allclose(N(heron.einsum(ta, [51, 0], [0, 51])), a.T)
    with pytest.raises(ValueError, match="out of range"):
        heron.einsum(ta, [0, 52])
    with pytest.raises(ValueError, match="subscripts are ints"):
        heron.einsum(ta, [0, "a"])


def test_numpy_inputs_accepted():
    a, b = R(3, 4), R(4, 2)
    np.testing.assert_allclose(N(heron.einsum("ij,jk", a, b)), a @ b)


# ------------------------------------------------------------------ errors (numpy's error forms)
ERRORS = [
    ("ij,j1->i", [(2, 3), (3,)], "invalid character '1'", 4),
    ("ij,jk->ik->i", [(2, 3), (3, 4)], "a second '->'", 9),
    ("ij-jk", [(2, 3)], "'-' must be part of the arrow", 2),
    ("ij>jk", [(2, 3)], "'>' without a '-'", 2),
    ("i..j", [(2, 3)], "'.' must be part of an ellipsis", 1),
    ("...i...", [(2, 3)], "more than one ellipsis", 4),
    ("ij->ii", [(2, 3)], "more than once in the output", 5),
    ("ij->k", [(2, 3)], "does not appear in any input", 4),
    ("ij,jk", [(2, 3)], "2 input terms but 1 operand", 3),
    ("ij", [(2, 3), (3, 4)], "1 input term but 2 operands", 2),
    ("ij,jk", [(2, 3), (4, 5)], "size 4 in operand 1", 3),
    ("ii", [(2, 3)], "repeated in operand 0", 1),
    ("ij", [(2, 3, 4)], "operand 0 has 3 dims", 0),
    ("ijk", [(2, 3)], "operand 0 has 2 dims", 0),
    ("...i->i", [(2, 3)], "no '...' to hold them", 6),
    ("...i,...i", [(2, 3), (4, 3)], "cannot be broadcast", 5),
    ("i,i", [(2,), (3,)], "size 3 in operand 1", 2),
    ("ij->i,j", [(2, 3)], "single term", 5),
    ("i$", [(2, 3)], "invalid character '$'", 1),
]


@pytest.mark.parametrize("eq,shapes,msg,col", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_show_a_caret(eq, shapes, msg, col):
    with pytest.raises(ValueError) as ei:
        heron.einsum(eq, *[heron.tensor(R(*s)) for s in shapes])
    text = str(ei.value)
    assert msg in text, text
    lines = text.split("\n")
    eq_line, caret_line = lines[-2], lines[-1]
    indent = len(eq_line) - len(eq_line.lstrip(" "))
    assert eq_line[indent:] == eq
    assert caret_line.index("^") - indent == col, text


def test_other_bad_input():
    x = heron.tensor(R(2, 2))
    with pytest.raises(ValueError, match="at least one operand"):
        heron.einsum("ij")
    with pytest.raises(ValueError, match="optimize must be"):
        heron.einsum("ij", x, optimize="fastest")
    with pytest.raises(ValueError, match="invalid contraction path"):
        heron.einsum("ij,jk,kl", x, x, x, optimize=["einsum_path", (0, 5), (0, 1)])
    with pytest.raises(ValueError, match="uncontracted"):
        heron.einsum("ij,jk,kl", x, x, x, optimize=["einsum_path", (0, 1)])
    with pytest.raises(ValueError):
        heron.einsum("\x00\xff", x)
    with pytest.raises(ValueError, match="memory_limit"):
        heron.einsum("ij,jk,kl->il", x, x, x, optimize=("greedy", 1))
    long_eq = "i" * 100000
    with pytest.raises(ValueError):
        heron.einsum(long_eq, x)


# ------------------------------------------------------------------ optimize and paths
@pytest.mark.parametrize("opt", [False, True, "greedy", "optimal", "auto", "dp", ("greedy", 10**6), ("optimal", 10**6)])
def test_optimize_values(opt):
    arrays = [R(3, 4), R(4, 5), R(5, 2), R(2, 3)]
    check("ij,jk,kl,lm->im", *arrays, optimize=opt)


def test_explicit_paths():
    arrays = [R(3, 4), R(4, 5), R(5, 2)]
    for path in (["einsum_path", (0, 1), (0, 1)], ["einsum_path", (1, 2), (0, 1)], [(0, 2), (0, 1)],
                 ["einsum_path", (0, 1, 2)], ["einsum_path", (2,), (0, 1), (0, 1)]):
        check("ij,jk,kl->il", *arrays, optimize=path)
    np_path = np.einsum_path("ij,jk,kl->il", *arrays, optimize="optimal")[0]
    check("ij,jk,kl->il", *arrays, optimize=np_path)


def test_einsum_path_report():
    a, b, c = heron.zeros(10, 100), heron.zeros(100, 5), heron.zeros(5, 50)
    path, report = heron.einsum_path("ij,jk,kl->il", a, b, c)
    assert path[0] == "einsum_path"
    assert path[1:] == [(0, 1), (0, 1)]  # (10x100)(100x5) first: 5000 + 2500 against 25000 + 50000
    assert "Optimized FLOP count" in report and "Complete contraction:  ij,jk,kl->il" in report
    assert "ij,jk->ik" in report and "kl,ik->il" in report and "Naive scaling:  4" in report
    _, rep2 = heron.einsum_path("...ij,...jk", heron.zeros(2, 3, 4), heron.zeros(4, 5))
    assert "0ij,jk->ik0" in rep2
    assert heron.einsum_path("ij,jk,kl->il", a, b, c, optimize="greedy")[0] == path


def _brute_force_flops(terms, out, sizes):
    """Minimal total multiply-adds over every pairwise contraction order."""
    terms = [frozenset(t) for t in terms]

    def rec(ts):
        if len(ts) == 1:
            return 0
        best = math.inf
        for i, j in itertools.combinations(range(len(ts)), 2):
            rest = set(out).union(*[t for k, t in enumerate(ts) if k not in (i, j)])
            # Labels of one operand only (needed nowhere else) are summed before the product.
            both = (ts[i] & (rest | ts[j])) | (ts[j] & (rest | ts[i]))
            res = frozenset(both & rest)
            fl = math.prod(sizes[c] for c in both)
            best = min(best, fl + rec([t for k, t in enumerate(ts) if k not in (i, j)] + [res]))
        return best

    return rec(terms)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_optimal_path_matches_brute_force(data):
    letters = "abcdefg"
    n = data.draw(st.integers(2, 5))
    sizes = {c: data.draw(st.integers(1, 8)) for c in letters}
    terms = ["".join(sorted(data.draw(st.sets(st.sampled_from(letters), min_size=1, max_size=4)))) for _ in range(n)]
    used = sorted(set("".join(terms)))
    out = "".join(sorted(data.draw(st.sets(st.sampled_from(used), max_size=3))))
    eq = ",".join(terms) + "->" + out
    ops = [heron.zeros(*[sizes[c] for c in t]) for t in terms]
    path_t, stats, _ = heron._ops.einsum_path(tuple(ops), eq, "optimal")
    # No size-1 broadcasting here, so every label of a term is an effective label.
    eff = [set(t) for t in terms]
    want = _brute_force_flops(eff, out, sizes)
    assert stats.numpy()[0, 1] == pytest.approx(want), eq
    greedy = heron._ops.einsum_path(tuple(ops), eq, "greedy")[1].numpy()[0, 1]
    assert greedy >= want - 1e-9


def test_long_paths():
    # A chain of 24 matrices (greedy beyond the DP limit) and 12 (DP).
    for n in (12, 24):
        letters = string.ascii_letters[: n + 1]
        eq = ",".join(letters[i] + letters[i + 1] for i in range(n)) + "->" + letters[0] + letters[n]
        arrays = [R(3, 3) * 0.5 for _ in range(n)]
        check(eq, *arrays, rtol=1e-9, np_optimize="greedy")
        check(eq, *arrays, rtol=1e-9, np_optimize="greedy", optimize="greedy")
        check(eq, *arrays, rtol=1e-9, np_optimize="greedy", optimize="optimal")


def test_plan_cache_reuses_and_separates_shapes():
    a, b = heron.tensor(R(3, 4)), heron.tensor(R(4, 5))
    r1 = heron.einsum("ij,jk", a, b)
    r2 = heron.einsum("ij,jk", a, b)
    np.testing.assert_array_equal(N(r1), N(r2))
    c = heron.tensor(R(4, 2))
    np.testing.assert_allclose(N(heron.einsum("ij,jk", a, c)), N(a) @ N(c))


# ------------------------------------------------------------------ hypothesis: random equations
@st.composite
def equations(draw):
    letters = "abcdefgh"
    sizes = {c: draw(st.integers(0, 3)) if draw(st.integers(0, 9)) == 0 else draw(st.integers(1, 4)) for c in letters}
    n = draw(st.integers(1, 4))
    use_ell = draw(st.booleans())
    ell_shape = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)) if use_ell else []
    terms, shapes = [], []
    for _ in range(n):
        t = draw(st.lists(st.sampled_from(letters), min_size=0, max_size=4))
        shape = [sizes[c] for c in t]
        # Size-1 broadcasting of a label (not for repeated labels, which must match exactly).
        for i, c in enumerate(t):
            if t.count(c) == 1 and draw(st.integers(0, 7)) == 0:
                shape[i] = 1
        term = "".join(t)
        if use_ell and draw(st.booleans()):
            k = draw(st.integers(0, len(ell_shape)))
            es = ell_shape[len(ell_shape) - k:]
            es = [1 if draw(st.integers(0, 4)) == 0 else s for s in es]
            pos = draw(st.integers(0, len(t)))
            term = "".join(t[:pos]) + "..." + "".join(t[pos:])
            shape = shape[:pos] + es + shape[pos:]
        terms.append(term)
        shapes.append(tuple(shape))
    eq = ",".join(terms)
    if draw(st.booleans()):
        used = sorted(set("".join(t.replace(".", "") for t in terms)))
        out = draw(st.permutations(used)) if used else []
        out = "".join(out[: draw(st.integers(0, len(out)))])
        if any("..." in t for t in terms):
            p = draw(st.integers(0, len(out)))
            out = out[:p] + "..." + out[p:]
        eq += "->" + out
    opt = draw(st.sampled_from(["auto", "greedy", "optimal", False]))
    return eq, shapes, opt


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(equations())
def test_random_equations_against_numpy(case):
    eq, shapes, opt = case
    arrays = [rng.standard_normal(s) for s in shapes]
    try:
        want = np.einsum(eq, *arrays)
    except ValueError:
        with pytest.raises(ValueError):
            heron.einsum(eq, *[heron.tensor(a) for a in arrays], optimize=opt)
        return
    got = heron.einsum(eq, *[heron.tensor(a) for a in arrays], optimize=opt)
    assert tuple(got.shape) == np.shape(want), eq
    np.testing.assert_allclose(N(got), want, rtol=1e-9, atol=1e-9, err_msg=f"{eq} {shapes} {opt}")


# ------------------------------------------------------------------ gradients
GRADS = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->ji", [(2, 2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij,k->ijk", [(2, 3), (2,)]),
    ("ijk,jil->kl", [(3, 2, 2), (2, 3, 2)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 2)]),
    ("ij,ij->ij", [(1, 3), (4, 3)]),
    ("abc,cd,de->abe", [(2, 2, 3), (3, 2), (2, 2)]),
    ("ea,fb,abcd,gc,hd->efgh", [(2, 2), (2, 2), (2, 2, 2, 2), (2, 2), (2, 2)]),
    ("ij,jk,ki->", [(2, 3), (3, 2), (2, 2)]),
    (",i->i", [(), (3,)]),
    ("ii,ij->j", [(3, 3), (3, 2)]),
]


@pytest.mark.parametrize("eq,shapes", GRADS, ids=[g[0] for g in GRADS])
def test_gradcheck(eq, shapes):
    xs = [heron.tensor(R(*s)).requires_grad_() for s in shapes]
    assert heron.autograd.gradcheck(lambda *a: heron.einsum(eq, *a), xs)


def test_grad_only_where_needed_and_float32():
    a = heron.tensor(R(3, 4).astype(np.float32)).requires_grad_()
    b = heron.tensor(R(4, 5).astype(np.float32))
    heron.einsum("ij,jk->ik", a, b).sum().backward()
    np.testing.assert_allclose(N(a.grad), np.ones((3, 5)) @ N(b).T, rtol=1e-5)
    assert b.grad is None


# ------------------------------------------------------------------ traced graphs and the runtime
def test_traced_graph_and_session(tmp_path):
    def attention(q, k, v):
        s = heron.einsum("bhqd,bhkd->bhqk", q, k)
        return heron.einsum("bhqk,bhkd->bhqd", heron.softmax(s, -1), v)

    q, k, v = (heron.randn(2, 3, 4, 5) for _ in range(3))
    traced = heron.jit.trace(attention, (q, k, v), input_names=["q", "k", "v"], output_names=["out"])
    q2, k2, v2 = (heron.randn(3, 3, 4, 5) for _ in range(3))  # another batch size
    np.testing.assert_allclose(N(traced(q2, k2, v2)), N(attention(q2, k2, v2)), rtol=1e-5, atol=1e-6)
    path = tmp_path / "attn.heron"
    traced.save(str(path))
    sess = heron.inference.Session(str(path))
    got = sess.run({"q": q2.numpy(), "k": k2.numpy(), "v": v2.numpy()})["out"]
    np.testing.assert_allclose(got, N(attention(q2, k2, v2)), rtol=1e-5, atol=1e-6)


def test_training_step_through_einsum():
    heron.manual_seed(0)
    w = heron.randn(4, 3).requires_grad_()
    opt = heron.optim.SGD([w], lr=0.1)
    x, y = heron.randn(16, 4), heron.randn(16, 3)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((heron.einsum("bi,ij->bj", x, w) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcij.,->  A\x00é1")), max_size=20),
       st.lists(st.lists(st.integers(0, 3), max_size=4), min_size=0, max_size=4))
def test_arbitrary_text_never_crashes(eq, shapes):
    ops = [heron.zeros(*s) if s else heron.tensor(0.0) for s in shapes]
    try:
        heron.einsum(eq, *ops)
    except ValueError as e:
        if ops:  # every equation error carries the caret line
            assert str(e).endswith("^"), str(e)


def test_strided_and_expanded_operands():
    a = heron.tensor(R(6, 8))
    b = heron.tensor(R(8, 10))
    at = a.transpose(0, 1)                      # (8, 6), column-major
    bs = b[::2, 1::3]                           # (4, 3), strided
    np.testing.assert_allclose(N(heron.einsum("ji,jk->ik", at, b)), N(a) @ N(b), rtol=1e-12)
    np.testing.assert_allclose(N(heron.einsum("ij,jk->ik", a[:, ::2], bs)), N(a)[:, ::2] @ N(bs), rtol=1e-12)
    e = heron.tensor(R(1, 5)).expand(4, 5)      # stride 0
    np.testing.assert_allclose(N(heron.einsum("ij,ij->i", e, e)), np.einsum("ij,ij->i", N(e), N(e)), rtol=1e-12)
    m = heron.tensor(R(5, 5))
    np.testing.assert_array_equal(N(heron.einsum("ii->i", m[1:4, 1:4])), np.diagonal(N(m)[1:4, 1:4]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(equations(), st.sampled_from([F32, F16, BF16, heron.int32, heron.int8, heron.uint8, BOOL]))
def test_random_equations_every_dtype(case, dt):
    eq, shapes, opt = case
    lo = 0 if dt in (heron.uint8, BOOL) else -2
    hi = 2 if dt == BOOL else 3
    arrays = [rng.integers(lo, hi, s) for s in shapes]
    try:
        want = np.einsum(eq, *arrays)  # exact, in int64
    except ValueError:
        return
    got = heron.einsum(eq, *[H(a, dt) for a in arrays], optimize=opt)
    assert got.dtype == dt
    if dt == BOOL:
        np.testing.assert_array_equal(N(got), want != 0, err_msg=eq)
    elif dt in (heron.int32, heron.int8, heron.uint8):
        np.testing.assert_array_equal(N(got), np.asarray(want).astype(NP_INT[dt]), err_msg=eq)
    else:
        # 16-bit results are rounded once (accumulation is float32, exact for these small integers).
        ref = np.asarray(want, dtype=np.float64)
        rtol = {F32: 1e-6, F16: 1e-3, BF16: 8e-3}[dt]
        np.testing.assert_allclose(N(got).astype(np.float64), ref, rtol=rtol, atol=1e-6, err_msg=eq)


NP_INT = {heron.int32: np.int32, heron.int8: np.int8, heron.uint8: np.uint8}
