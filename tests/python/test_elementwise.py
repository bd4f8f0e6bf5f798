"""Elementwise ops against numpy as the oracle: every op, every dtype, broadcasting, strided
inputs, Python scalars, PyTorch's type promotion, and the errors.

The oracle computes in numpy at the result dtype Heron must produce (PyTorch's promotion rules,
which differ from numpy's in places: int + float scalar -> float32, int8 + uint8 -> int32 here,
true division of integers -> float32), so values are compared like for like.
"""
import math

import numpy as np
import pytest

import heron
from dtype_helpers import ALL, BF16, BOOL, F16, F32, F64, FLOATS, H, I8, I32, I64, INTS, N, NP, NUMERIC, U8, ids  # noqa: F401


RTOL = {F32: 2e-6, F64: 1e-13, F16: 2e-3, BF16: 1.6e-2}

rng = np.random.default_rng(1234)


# ------------------------------------------------------------------ helpers


def sample(dtype, shape, kind="any"):
    """Random data for dtype. kind: any | positive | small (ints in [-4, 4]) | nonzero."""
    n = int(np.prod(shape)) if shape else 1
    if dtype == BOOL:
        v = rng.integers(0, 2, n).astype(np.bool_)
    elif dtype in FLOATS:
        if kind == "positive":
            v = rng.uniform(0.1, 4.0, n)
        elif kind == "small":
            v = rng.integers(-4, 5, n).astype(np.float64)
        else:
            v = rng.normal(0, 2.0, n)
            if kind == "nonzero":
                v[np.abs(v) < 0.1] = 0.5
    else:
        info = np.iinfo(NP[dtype])
        lo, hi = max(info.min, -100), min(info.max, 100)
        if kind == "positive":
            lo = 1
        if kind == "small":
            lo, hi = max(lo, -4), 4
        v = rng.integers(lo, hi + 1, n)
        if kind == "nonzero":
            v[v == 0] = 3
    return H(v.reshape(shape), dtype)


def check(got, want, dtype=None):
    """got: Heron tensor; want: numpy array computed at the result dtype."""
    dtype = dtype or got.dtype
    assert got.dtype == dtype, (got.dtype, dtype)
    g = N(got)
    want = np.asarray(want)
    assert g.shape == want.shape, (g.shape, want.shape)
    if dtype in FLOATS:
        w = want.astype(np.float64)
        if dtype == BF16:  # round the oracle to bfloat16 too
            w = N(H(w, BF16)).astype(np.float64)
        else:
            with np.errstate(all="ignore"):
                w = w.astype(NP[dtype]).astype(np.float64)
        np.testing.assert_allclose(g.astype(np.float64), w, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3, equal_nan=True)
    else:
        np.testing.assert_array_equal(g, want.astype(NP[dtype]))


def raises(exc, fn, *args, **kw):
    with pytest.raises(exc):
        fn(*args, **kw)


def erf_np(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def erfc_np(x):
    return np.vectorize(math.erfc, otypes=[np.float64])(x)


def gelu_tanh_np(x):
    # 0.5 x (1 + tanh u) written as x * sigmoid(2u), which has no cancellation for x < 0
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
    return x / (1 + np.exp(-2 * u))


# ------------------------------------------------------------------ unary
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


UNARY_FLOAT = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "log2": np.log2,
    "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "tanh": np.tanh, "sigmoid": _sigmoid, "silu": lambda x: x * _sigmoid(x), "erf": erf_np,
    "reciprocal": lambda x: 1 / x, "gelu": lambda x: 0.5 * x * erfc_np(-x / math.sqrt(2)),
    "softplus": lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))),
}
DOMAIN = {"log": "positive", "log2": "positive", "sqrt": "positive", "rsqrt": "positive", "log1p": "positive",
          "reciprocal": "nonzero"}


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
@pytest.mark.parametrize("name", sorted(UNARY_FLOAT))
def test_unary_float(name, dtype):
    x = sample(dtype, (3, 17), DOMAIN.get(name, "any"))
    out_dtype = dtype if dtype in FLOATS else F32
    with np.errstate(all="ignore"):
        want = UNARY_FLOAT[name](N(x).astype(np.float64))
    check(getattr(heron, name)(x), want, out_dtype)


@pytest.mark.parametrize("name", ["log", "sqrt", "rsqrt", "log2", "log1p", "reciprocal"])
def test_unary_float_edge_values(name):
    x = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1e-30], np.float32)
    with np.errstate(all="ignore"):
        want = UNARY_FLOAT[name](x.astype(np.float64))
    check(getattr(heron, name)(H(x, F32)), want, F32)


def test_exp_family_special_values():
    x = np.array([0, 1, -1, 88.7, 89, 100, -87, -100, -104, -1e4, np.inf, -np.inf, np.nan], np.float32)
    for name in ["exp", "sigmoid", "tanh", "silu", "expm1"]:
        with np.errstate(all="ignore"):
            want = UNARY_FLOAT[name](x.astype(np.float64))
        g = N(getattr(heron, name)(H(x, F32))).astype(np.float64)
        with np.errstate(all="ignore"):
            w = want.astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(g, w, rtol=5e-7, atol=1e-38, equal_nan=True, err_msg=name)


def test_exp_float32_accuracy_sweep():
    x = np.linspace(-103, 88.7, 200001).astype(np.float32)
    g = N(heron.exp(H(x, F32))).astype(np.float64)
    want = np.exp(x.astype(np.float64))
    normal = want > np.finfo(np.float32).tiny
    ulp = np.spacing(want[normal].astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(g[normal] - want[normal]) / ulp) <= 2.0


def test_gelu_tanh_and_softplus_params():
    x = np.linspace(-6, 6, 41)
    for dt in FLOATS:
        xt = H(x, dt)
        with np.errstate(all="ignore"):
            check(heron.gelu(xt, approximate="tanh"), gelu_tanh_np(N(xt).astype(np.float64)))
    xv = x.astype(np.float32).astype(np.float64)
    beta, th = 2.0, 3.0
    want = np.where(xv * beta > th, xv, np.log1p(np.exp(xv * beta)) / beta)
    check(heron.softplus(H(x, F32), beta=beta, threshold=th), want)
    with pytest.raises(ValueError):
        heron.gelu(H(x, F32), approximate="fast")


SAME = {
    "neg": np.negative, "abs": np.abs, "sign": np.sign, "square": np.square, "relu": lambda x: np.maximum(x, 0),
}


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
@pytest.mark.parametrize("name", sorted(SAME))
def test_unary_same_dtype(name, dtype):
    x = sample(dtype, (4, 9))
    with np.errstate(all="ignore"):
        want = SAME[name](N(x))
    check(getattr(heron, name)(x), want, dtype)


def test_unary_bool_rules():
    b = H([True, False, True], BOOL)
    for name in ["neg", "abs", "relu", "floor", "ceil", "trunc", "round"]:
        raises(TypeError, getattr(heron, name), b)
    check(heron.sign(b), [True, False, True], BOOL)
    check(heron.square(b), [1, 0, 1], I64)  # like PyTorch
    check(heron.bitwise_not(b), [False, True, False], BOOL)
    check(heron.logical_not(b), [False, True, False], BOOL)


def test_unary_integer_wraparound():
    check(heron.neg(H([1, 0, 255], U8)), [255, 0, 1], U8)
    check(heron.abs(H([-128, -3], I8)), [-128, 3], I8)
    check(heron.square(H([16, -12], I8)), np.square(np.array([16, -12], np.int8)), I8)


def test_unary_nan_handling():
    x = H([np.nan, -0.0, -1.0, 2.0], F32)
    check(heron.sign(x), [np.nan, 0, -1, 1])
    check(heron.relu(x), [np.nan, 0, 0, 2])
    check(heron.abs(x), [np.nan, 0, 1, 2])


ROUND = {"floor": np.floor, "ceil": np.ceil, "trunc": np.trunc, "round": np.round}


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
@pytest.mark.parametrize("name", sorted(ROUND))
def test_rounding(name, dtype):
    if dtype in FLOATS:
        x = H(np.concatenate([rng.normal(0, 5, 30), [0.5, 1.5, 2.5, -0.5, -1.5, -2.5]]), dtype)
    else:
        x = sample(dtype, (30,))
    y = getattr(heron, name)(x)
    check(y, ROUND[name](N(x)), dtype)


@pytest.mark.parametrize("decimals", [-2, -1, 1, 2, 3])
@pytest.mark.parametrize("dtype", [F32, F64, I32, I64], ids=ids([F32, F64, I32, I64]))
def test_round_decimals(decimals, dtype):
    if dtype in FLOATS:
        x = H(rng.normal(0, 300, 50), dtype)
    else:
        x = H(np.concatenate([rng.integers(-1000, 1000, 40), [15, 25, -15, -25, 150, 250]]), dtype)
    check(heron.round(x, decimals=decimals), np.round(N(x), decimals), dtype)


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_predicates(dtype):
    if dtype in FLOATS:
        x = H([0.0, 1.5, -np.inf, np.inf, np.nan, -2.0], dtype)
    else:
        x = sample(dtype, (6,))
    xv = N(x)
    check(heron.isnan(x), np.isnan(xv) if dtype in FLOATS else np.zeros(6, bool), BOOL)
    check(heron.isinf(x), np.isinf(xv) if dtype in FLOATS else np.zeros(6, bool), BOOL)
    check(heron.isfinite(x), np.isfinite(xv) if dtype in FLOATS else np.ones(6, bool), BOOL)
    check(heron.logical_not(x), np.logical_not(xv), BOOL)


@pytest.mark.parametrize("dtype", INTS + [BOOL], ids=ids(INTS + [BOOL]))
def test_bitwise_not(dtype):
    x = sample(dtype, (10,))
    check(heron.bitwise_not(x), np.invert(N(x)), dtype)


def test_bitwise_not_float_is_type_error():
    raises(TypeError, heron.bitwise_not, H([1.0], F32))


# ------------------------------------------------------------------ binary
def result_dtype(a, b):
    """PyTorch's result_type for two tensors of dims >= 1."""
    return heron.promote_types(a, b)


ARITH = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum,
}


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
@pytest.mark.parametrize("name", sorted(ARITH))
def test_binary_same_dtype(name, dtype):
    if name == "sub" and dtype == BOOL:
        pytest.skip("sub on bool is a TypeError (tested separately)")
    a, b = sample(dtype, (5, 7)), sample(dtype, (5, 7))
    av, bv = N(a), N(b)
    if dtype == BOOL:
        want = {"add": av | bv, "mul": av & bv, "maximum": av | bv, "minimum": av & bv}[name]
    else:
        with np.errstate(all="ignore"):
            want = ARITH[name](av, bv)
    check(getattr(heron, name)(a, b), want, dtype)


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
def test_add_sub_alpha(dtype):
    a, b = sample(dtype, (20,)), sample(dtype, (20,))
    alpha = 0.5 if dtype in FLOATS else 3
    av, bv = N(a).astype(np.float64), N(b).astype(np.float64)
    if dtype in FLOATS:
        check(heron.add(a, b, alpha=alpha), av + alpha * bv, dtype)
        check(heron.sub(a, b, alpha=alpha), av - alpha * bv, dtype)
    else:
        npdt = NP[dtype]
        with np.errstate(all="ignore"):
            check(heron.add(a, b, alpha=alpha), (N(a) + N(b) * npdt(alpha)).astype(npdt), dtype)
            check(heron.sub(a, b, alpha=alpha), (N(a) - N(b) * npdt(alpha)).astype(npdt), dtype)
        raises(TypeError, heron.add, a, b, alpha=0.5)


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_true_div(dtype):
    a, b = sample(dtype, (6, 5)), sample(dtype, (6, 5), "nonzero")
    out = dtype if dtype in FLOATS else F32
    with np.errstate(all="ignore"):
        want = N(a).astype(np.float64) / N(b).astype(np.float64)
    check(heron.div(a, b), want, out)


def _trunc_div(a, b):
    return np.trunc(a.astype(np.float64) / b.astype(np.float64))


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
def test_rounding_division_and_remainder(dtype):
    a = sample(dtype, (40,))
    b = sample(dtype, (40,), "nonzero")
    av, bv = N(a), N(b)
    if dtype in FLOATS:  # compute like Heron: 16-bit floats in float32
        av, bv = av.astype(np.float64 if dtype == F64 else np.float32), bv.astype(np.float64 if dtype == F64 else np.float32)
    with np.errstate(all="ignore"):
        if dtype in FLOATS:
            fd, rem, td = np.floor_divide(av, bv), np.remainder(av, bv), np.trunc(av / bv)
        else:
            fd, rem, td = av // bv, av % bv, _trunc_div(av, bv)
    check(heron.div(a, b, rounding_mode="trunc"), td, dtype)
    check(heron.div(a, b, rounding_mode="floor"), fd, dtype)
    check(heron.floor_divide(a, b), fd, dtype)
    check(heron.remainder(a, b), rem, dtype)


def test_division_signs_like_python():
    a = [7, -7, 7, -7, 5, -5]
    b = [2, 2, -2, -2, 5, 5]
    for dt in [I8, I32, I64, F32, F64]:
        check(heron.floor_divide(H(a, dt), H(b, dt)), [x // y for x, y in zip(a, b)], dt)
        check(heron.remainder(H(a, dt), H(b, dt)), [x % y for x, y in zip(a, b)], dt)
    check(heron.remainder(H([5.5, -5.5, 1.0], F64), H([2.0, 2.0, 0.0], F64)), [1.5, 0.5, np.nan])


@pytest.mark.parametrize("fn", [
    lambda a, b: heron.div(a, b, rounding_mode="trunc"),
    lambda a, b: heron.div(a, b, rounding_mode="floor"),
    heron.floor_divide,
    heron.remainder,
])
def test_integer_division_by_zero_raises(fn):
    a = H([1, 2, 3], I32)
    b = H([1, 0, 1], I32)
    with pytest.raises(ValueError, match="division by zero"):
        fn(a, b)
    with pytest.raises(ValueError, match="division by zero"):
        fn(a, 0)
    # the inputs are untouched
    np.testing.assert_array_equal(N(a), [1, 2, 3])
    np.testing.assert_array_equal(N(b), [1, 0, 1])


def test_integer_division_by_zero_large():
    a = heron.tensor(np.full(300000, 7, np.int64))
    bv = np.full(300000, 2, np.int64)
    bv[250000] = 0
    b = heron.tensor(bv)
    with pytest.raises(ValueError, match="division by zero"):
        heron.remainder(a, b)
    assert int(N(b)[250000]) == 0 and int(N(a)[250000]) == 7


def test_int_min_divided_by_minus_one():
    check(heron.div(H([-128], I8), H([-1], I8), rounding_mode="trunc"), [-128], I8)
    m = heron.tensor(np.array([np.iinfo(np.int64).min], np.int64))
    check(heron.floor_divide(m, -1), np.array([np.iinfo(np.int64).min]), I64)
    check(heron.remainder(m, -1), [0], I64)


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
def test_pow(dtype):
    if dtype in FLOATS:
        a = sample(dtype, (30,), "positive")
        b = sample(dtype, (30,))
        with np.errstate(all="ignore"):
            want = np.power(N(a).astype(np.float64), N(b).astype(np.float64))
    else:
        a = sample(dtype, (30,), "small")
        b = H(rng.integers(0, 5, 30), dtype)
        with np.errstate(all="ignore"):
            want = np.power(N(a), N(b))
    check(heron.pow(a, b), want, dtype)


def test_pow_rules():
    check(heron.pow(H([2, -3, 0], I64), 3), [8, -27, 0], I64)
    raises(ValueError, heron.pow, H([2], I32), -1)
    raises(ValueError, heron.pow, H([2, 2], I32), H([1, -2], I32))
    check(heron.pow(H([4, 9], I32), 0.5), [2, 3], F32)
    check(heron.pow(H([-2.0, 2.0], F32), H([2.0, -1.0], F32)), [4, 0.5])
    check(heron.pow(H([True, False], BOOL), 2), [1, 0], I64)
    raises(TypeError, heron.pow, H([True], BOOL), H([True], BOOL))


def test_maximum_minimum_nan():
    a, b = H([1, np.nan, 3], F32), H([np.nan, 2, 1], F32)
    check(heron.maximum(a, b), [np.nan, np.nan, 3])
    check(heron.minimum(a, b), [np.nan, np.nan, 1])


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_atan2(dtype):
    a, b = sample(dtype, (12,)), sample(dtype, (12,))
    out = dtype if dtype in FLOATS else F32
    check(heron.atan2(a, b), np.arctan2(N(a).astype(np.float64), N(b).astype(np.float64)), out)


CMP = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
@pytest.mark.parametrize("name", sorted(CMP))
def test_comparisons(name, dtype):
    a, b = sample(dtype, (8, 6), "small"), sample(dtype, (8, 6), "small")
    check(getattr(heron, name)(a, b), CMP[name](N(a), N(b)), BOOL)
    # with nan
    if dtype in FLOATS:
        x, y = H([np.nan, 1.0, np.nan], dtype), H([np.nan, np.nan, 1.0], dtype)
        check(getattr(heron, name)(x, y), CMP[name](N(x), N(y)), BOOL)


LOGICAL = {"logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor}


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
@pytest.mark.parametrize("name", sorted(LOGICAL))
def test_logical(name, dtype):
    a, b = sample(dtype, (30,), "small"), sample(dtype, (30,), "small")
    check(getattr(heron, name)(a, b), LOGICAL[name](N(a), N(b)), BOOL)


def test_logical_mixed_dtypes_and_nan():
    check(heron.logical_and(H([np.nan, 0.5, 0.0], F32), H([1, 1, 1], I64)), [True, True, False], BOOL)
    check(heron.logical_or(H([0, 0], U8), H([False, True], BOOL)), [False, True], BOOL)


BITWISE = {"bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor}


@pytest.mark.parametrize("dtype", INTS + [BOOL], ids=ids(INTS + [BOOL]))
@pytest.mark.parametrize("name", sorted(BITWISE))
def test_bitwise(name, dtype):
    a, b = sample(dtype, (25,)), sample(dtype, (25,))
    check(getattr(heron, name)(a, b), BITWISE[name](N(a), N(b)), dtype)
    raises(TypeError, getattr(heron, name), H([1.0], F32), H([1], dtype))


@pytest.mark.parametrize("dtype", INTS, ids=ids(INTS))
def test_shifts(dtype):
    bits = np.dtype(NP[dtype]).itemsize * 8
    a = sample(dtype, (40,))
    s = H(rng.integers(0, bits + 3, 40), dtype)
    av, sv = N(a), N(s)
    ua = av.astype(np.uint64)
    want_l = np.where(sv >= bits, 0, (ua << np.minimum(sv, bits - 1).astype(np.uint64)).astype(NP[dtype]))
    if np.issubdtype(NP[dtype], np.signedinteger):
        want_r = np.where(sv >= bits, np.where(av < 0, -1, 0), av >> np.minimum(sv, bits - 1))
    else:
        want_r = np.where(sv >= bits, 0, av >> np.minimum(sv, bits - 1))
    check(heron.bitwise_left_shift(a, s), want_l, dtype)
    check(heron.bitwise_right_shift(a, s), want_r, dtype)
    raises(TypeError, heron.bitwise_left_shift, H([1.0], F32), H([1], dtype))


# ------------------------------------------------------------------ promotion
PAIRS = [(a, b) for a in ALL for b in ALL]


@pytest.mark.parametrize("da,db", PAIRS, ids=[f"{x}-{y}" for x, y in zip(ids([p[0] for p in PAIRS]), ids([p[1] for p in PAIRS]))])
def test_promotion_tensor_tensor(da, db):
    a, b = sample(da, (3, 4), "small"), sample(db, (3, 4), "small")
    rt = result_dtype(da, db)
    av, bv = N(a).astype(NP[rt]), N(b).astype(NP[rt])
    if rt == BOOL:
        check(heron.add(a, b), av | bv, BOOL)
        check(heron.mul(a, b), av & bv, BOOL)
    else:
        with np.errstate(all="ignore"):
            check(heron.add(a, b), av + bv, rt)
            check(heron.mul(a, b), av * bv, rt)
    check(heron.eq(a, b), av == bv, BOOL)
    check(heron.maximum(a, b), np.maximum(av, bv), rt)
    check(heron.where(heron.gt(a, b), a, b), np.where(av > bv, av, bv), rt)


# (tensor dtype, Python scalar, expected result dtype), PyTorch's rules.
SCALAR_CASES = [
    (F16, 2.5, F16), (BF16, 2.5, BF16), (F32, 2.5, F32), (F64, 2.5, F64),
    (I8, 2, I8), (U8, 2, U8), (I32, 2, I32), (I64, 2, I64),
    (I8, 2.5, F32), (I64, 2.5, F32), (U8, 0.5, F32),
    (BOOL, 2, I64), (BOOL, 2.5, F32), (BOOL, True, BOOL), (F16, 2, F16), (I32, True, I32),
]


@pytest.mark.parametrize("dtype,scalar,want", SCALAR_CASES, ids=[f"{str(a)[6:]}-{b!r}" for a, b, _ in SCALAR_CASES])
def test_promotion_with_python_scalars(dtype, scalar, want):
    x = sample(dtype, (7,), "small")
    xv = N(x).astype(NP[want])
    s = NP[want](scalar)
    if want == BOOL:
        check(heron.add(x, scalar), xv | s, want)
        check(heron.add(scalar, x), xv | s, want)
    else:
        with np.errstate(all="ignore"):
            check(heron.add(x, scalar), xv + s, want)
            check(heron.add(scalar, x), s + xv, want)
            check(heron.mul(x, scalar), xv * s, want)
            check(heron.maximum(x, scalar), np.maximum(xv, s), want)
    check(heron.lt(x, scalar), xv < s, BOOL)
    # operators go through the same ops
    if want != BOOL:
        with np.errstate(all="ignore"):
            check(x * scalar, xv * s, want)
            if dtype != BOOL and not isinstance(scalar, bool):  # sub with a bool operand is a TypeError
                check(scalar - x, s - xv, want)


def test_zero_dim_tensors_promote_by_category():
    v = heron.tensor(np.array([1.0, 2.0], np.float32))
    assert heron.add(v, heron.tensor(np.float64(1.0))).dtype == F32   # 0-d float64 does not upcast
    assert heron.add(H([1, 2], I32), heron.tensor(np.int64(1))).dtype == I32
    assert heron.add(H([1, 2], I32), heron.tensor(np.float64(1.5))).dtype == F64  # across categories it does
    z = heron.add(heron.tensor(np.float32(1)), heron.tensor(np.float32(2)))
    assert z.shape == () and float(N(z)) == 3.0


# ------------------------------------------------------------------ broadcasting and layouts
BROADCAST_SHAPES = [((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((5, 1, 3), (2, 1)), ((), (3, 2)), ((1,), (2, 2)), ((0, 3), (1, 3))]


@pytest.mark.parametrize("sa,sb", BROADCAST_SHAPES)
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "maximum", "lt", "logical_xor", "atan2", "remainder"])
def test_broadcasting(name, sa, sb):
    a = sample(F32, sa, "nonzero")
    b = sample(F32, sb, "nonzero")
    ops = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "maximum": np.maximum,
           "lt": np.less, "logical_xor": np.logical_xor, "atan2": np.arctan2, "remainder": np.remainder}
    y = getattr(heron, name)(a, b)
    want = ops[name](N(a), N(b))
    check(y, want)
    assert tuple(y.shape) == np.broadcast_shapes(sa, sb)


def test_broadcast_mismatch_names_the_op():
    with pytest.raises(ValueError, match="add"):
        heron.add(H([1, 2, 3], F32), H([1, 2], F32))


def _views(arr):
    """Non-contiguous numpy views of arr (2-d): transposed, column-strided, row-strided."""
    return {"T": arr.T, "cols": arr[:, ::2], "rows": arr[::3, :]}


@pytest.mark.parametrize("dtype", [F32, F64, F16, I32, BOOL], ids=ids([F32, F64, F16, I32, BOOL]))
def test_non_contiguous_inputs(dtype):
    base = N(sample(dtype, (12, 10), "nonzero"))
    other = N(sample(dtype, (12, 10), "nonzero"))
    for key, view in _views(base).items():
        x = heron.from_numpy(view) if dtype != BOOL else heron.from_numpy(view)
        oview = _views(other)[key]
        y = heron.from_numpy(oview)
        assert not x.is_contiguous()
        xv, yv = np.array(view), np.array(oview)
        if dtype in FLOATS:
            with np.errstate(all="ignore"):
                check(heron.exp(x), np.exp(xv.astype(np.float64)), dtype)
                check(heron.tanh(x), np.tanh(xv.astype(np.float64)), dtype)
                check(heron.sigmoid(x), _sigmoid(xv.astype(np.float64)), dtype)
            check(heron.add(x, y), xv + yv, dtype)
            check(heron.div(x, y), xv / yv, dtype)
        elif dtype == BOOL:
            check(heron.logical_and(x, y), xv & yv, BOOL)
            check(heron.add(x, y), xv | yv, BOOL)
        else:
            check(heron.add(x, y), xv + yv, dtype)
            check(heron.remainder(x, y), xv % yv, dtype)
        check(heron.eq(x, y), xv == yv, BOOL)
        check(heron.where(heron.gt(x, y), x, y), np.where(xv > yv, xv, yv), dtype)


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "silu", "neg", "sqrt"])
def test_large_tensors_parallel_path(name):
    x = rng.normal(0, 3, 500003).astype(np.float32)
    if name == "sqrt":
        x = np.abs(x)
    fn = {"exp": np.exp, "tanh": np.tanh, "sigmoid": _sigmoid, "silu": lambda v: v * _sigmoid(v), "neg": np.negative,
          "sqrt": np.sqrt}[name]
    with np.errstate(all="ignore"):
        want = fn(x.astype(np.float64))
    check(getattr(heron, name)(heron.tensor(x)), want, F32)
    # strided: same values as the contiguous result at those positions
    full = N(getattr(heron, name)(heron.tensor(x)))
    part = N(getattr(heron, name)(heron.from_numpy(x[1::3])))
    np.testing.assert_array_equal(part, full[1::3])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=ids([F32, F64]))
def test_large_binary_simd_paths(name, dtype):
    a = rng.normal(0, 3, 300001).astype(NP[dtype])
    b = (rng.normal(0, 3, 300001) + 10).astype(NP[dtype])
    ops = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
    ta, tb = heron.tensor(a), heron.tensor(b)
    np.testing.assert_array_equal(N(getattr(heron, name)(ta, tb)), ops[name](a, b))
    np.testing.assert_array_equal(N(getattr(heron, name)(ta, 1.5)), ops[name](a, NP[dtype](1.5)))
    np.testing.assert_array_equal(N(getattr(heron, name)(1.5, tb)), ops[name](NP[dtype](1.5), b))
    # broadcast along rows
    m = heron.tensor(a[:300000].reshape(600, 500))
    r = heron.tensor(b[:500])
    np.testing.assert_array_equal(N(getattr(heron, name)(m, r)), ops[name](a[:300000].reshape(600, 500), b[:500]))


# ------------------------------------------------------------------ where / clamp / masked_fill
@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_where(dtype):
    c = sample(BOOL, (4, 1))
    a = sample(dtype, (1, 5))
    b = sample(dtype, (4, 5))
    check(heron.where(c, a, b), np.where(N(c), N(a), N(b)), dtype)


def test_where_promotion_and_scalars():
    c = H([True, False, True], BOOL)
    check(heron.where(c, H([1, 2, 3], I64), H([-1, -2, -3], I8)), [1, -2, 3], I64)
    check(heron.where(c, H([1, 2, 3], I32), 0.5), [1, 0.5, 3], F32)
    check(heron.where(c, 1.0, 0.0), [1.0, 0.0, 1.0], F32)
    raises(TypeError, heron.where, H([1, 0, 1], I32), H([1.0], F32), H([2.0], F32))
    raises(ValueError, heron.where, c, H([1.0, 2.0], F32), H([2.0], F32))


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
def test_clamp(dtype):
    x = sample(dtype, (30,))
    xv = N(x)
    check(heron.clamp(x, min=-2, max=3), np.clip(xv, -2, 3).astype(NP[dtype]) if dtype != U8 else np.clip(xv, 0, 3), dtype)
    check(heron.clamp(x, min=1), np.maximum(xv, 1), dtype)
    check(heron.clamp(x, max=2), np.minimum(xv, 2), dtype)
    # a float bound on an integer tensor gives float32
    out = dtype if dtype in FLOATS else F32
    check(heron.clamp(x, max=0.5), np.minimum(xv.astype(np.float64), 0.5), out)


def test_clamp_rules():
    check(heron.clamp(H([1.0, np.nan, -3.0], F32), min=0.0), [1.0, np.nan, 0.0])
    check(heron.clamp(H([1.0], F32), min=float("nan")), [np.nan])
    check(heron.clamp(H([0.0, 3.0, 9.0], F32), min=5, max=1), [1.0, 1.0, 1.0])  # min > max -> max
    check(heron.clamp(H([0, 255], U8), min=-10, max=1000), [0, 255], U8)
    raises(ValueError, heron.clamp, H([1.0], F32))
    raises(TypeError, heron.clamp, H([True], BOOL), min=0)


@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
def test_masked_fill(dtype):
    x = sample(dtype, (3, 4))
    m = sample(BOOL, (4,))
    value = True if dtype == BOOL else (2.5 if dtype in FLOATS else 7)
    want = np.where(N(m), NP[dtype](value), N(x))
    check(heron.masked_fill(x, m, value), want, dtype)
    # a non-contiguous input
    xt = heron.transpose(x, 0, 1)
    mt = sample(BOOL, (4, 1))
    check(heron.masked_fill(xt, mt, value), np.where(N(mt), NP[dtype](value), N(x).T), dtype)


def test_masked_fill_errors():
    x = H([[1.0, 2.0]], F32)
    raises(TypeError, heron.masked_fill, x, H([1, 0], I32), 0.0)
    raises(ValueError, heron.masked_fill, H([1.0, 2.0], F32), H([[True, False], [False, True]], BOOL), 0.0)
    check(heron.masked_fill(x, H([True, False], BOOL), 0.0), [[0.0, 2.0]])
    np.testing.assert_array_equal(N(x), [[1.0, 2.0]])  # input untouched


# ------------------------------------------------------------------ errors
def test_bool_arithmetic_errors():
    b = H([True, False], BOOL)
    raises(TypeError, heron.sub, b, b)
    raises(TypeError, heron.sub, H([1.0, 2.0], F32), b)
    raises(TypeError, heron.neg, b)
    raises(TypeError, heron.floor_divide, b, b)
    raises(TypeError, heron.remainder, b, b)
    raises(TypeError, heron.div, b, b, rounding_mode="floor")
    raises(TypeError, heron.add, H([1.0], F32), H([1.0], F32), alpha=True)
    check(heron.div(b, b), [1.0, np.nan], F32)


def test_outputs_are_new_tensors():
    x = heron.tensor(np.array([1.0, 2.0, 3.0], np.float32))
    for y in [heron.exp(x), heron.neg(x), heron.add(x, 0.0), heron.clamp(x, min=0), heron.floor(x),
              heron.round(H([1, 2], I32))]:
        y_np = N(y)
        y_np_copy = y_np.copy()
        assert y.is_contiguous()
        # writing to the input does not change the output
        xv = x.numpy()
        xv[0] = 100.0
        np.testing.assert_array_equal(N(y), y_np_copy)
        xv[0] = 1.0
