"""Property tests (hypothesis) with numpy as the oracle: broadcasting, type promotion, indexing, reductions."""
import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import heron

# HERON_HYPOTHESIS_EXAMPLES raises the example count for a longer soak.
settings.register_profile("heron", max_examples=int(os.environ.get("HERON_HYPOTHESIS_EXAMPLES", "60")), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("heron")

DTYPES = [heron.float32, heron.float64, heron.float16, heron.bfloat16, heron.int8, heron.uint8, heron.int32,
          heron.int64, heron.bool]
NP_OF = {heron.float32: np.float32, heron.float64: np.float64, heron.float16: np.float16, heron.int8: np.int8,
         heron.uint8: np.uint8, heron.int32: np.int32, heron.int64: np.int64, heron.bool: np.bool_}
FLOATS = (heron.float32, heron.float64, heron.float16, heron.bfloat16)
INTS = (heron.int8, heron.uint8, heron.int32, heron.int64)
# Parametrize and strategies use dtype names: with hypothesis active, heron objects held by pytest
# parameters outlive the extension at exit and nanobind reports them as leaks.
DTYPE_NAMES = [d.name for d in DTYPES]


def np_of(t):
    if t.dtype == heron.bfloat16:
        t = t.float()
    return np.array(t.tolist(), dtype=NP_OF[t.dtype]).reshape(t.shape)


# ------------------------------------------------------------------ strategies
def float_arrays(shape, dtype=np.float64):
    return hnp.arrays(dtype, shape, elements=st.floats(-1e3, 1e3, allow_nan=False, width=64).map(
        lambda v: float(np.asarray(v, dtype=dtype))))


def int_arrays(shape, dtype=np.int64):
    return hnp.arrays(dtype, shape, elements=st.integers(-1000, 1000))


small_shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)


# ------------------------------------------------------------------ broadcasting
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=4),
       data=st.data())
def test_broadcasting_add_mul_float64(shapes, data):
    sa, sb = shapes.input_shapes
    a = data.draw(float_arrays(sa))
    b = data.draw(float_arrays(sb))
    ta, tb = heron.tensor(a), heron.tensor(b)
    for got, want in [(ta + tb, a + b), (ta * tb, a * b), (heron.add(ta, tb), a + b), (heron.mul(ta, tb), a * b),
                      (ta - tb, a - b), (tb + ta, b + a)]:
        assert got.shape == shapes.result_shape == want.shape
        assert got.dtype == heron.float64
        np.testing.assert_array_equal(np_of(got), want)


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=4),
       dtype=st.sampled_from([np.int8, np.int32, np.int64, np.float32, np.float16]), data=st.data())
def test_broadcasting_same_dtype(shapes, dtype, data):
    sa, sb = shapes.input_shapes
    if np.issubdtype(dtype, np.integer):
        elems = st.integers(-10, 10)
        a = data.draw(hnp.arrays(dtype, sa, elements=elems))
        b = data.draw(hnp.arrays(dtype, sb, elements=elems))
    else:
        a = data.draw(float_arrays(sa, dtype))
        b = data.draw(float_arrays(sb, dtype))
    got = heron.tensor(a) + heron.tensor(b)
    want = a + b
    assert got.dtype == heron.tensor(a).dtype
    np.testing.assert_array_equal(np_of(got), want)
    got = heron.tensor(a) * heron.tensor(b)
    with np.errstate(over="ignore"):  # float16 products may overflow to inf, in both
        np.testing.assert_array_equal(np_of(got), a * b)


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_broadcasting_of_views(shapes, data):
    """Broadcasting works the same on strided, transposed and expanded inputs."""
    sa, sb = shapes.input_shapes
    a = data.draw(float_arrays(tuple(reversed(sa))))
    b = data.draw(float_arrays(sb))
    ta = heron.tensor(a).permute(*range(a.ndim - 1, -1, -1))  # transposed view with shape sa
    tb = heron.from_numpy(b)
    want = a.T + b
    np.testing.assert_array_equal(np_of(ta + tb), want)
    np.testing.assert_array_equal(np_of(ta.expand(*shapes.result_shape) * 2.0),
                                  np.broadcast_to(a.T, shapes.result_shape) * 2)


def incompatible(sa, sb):
    try:
        np.broadcast_shapes(sa, sb)
        return False
    except ValueError:
        return True


@given(sa=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
       sb=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))
def test_incompatible_shapes_raise(sa, sb):
    assume(incompatible(sa, sb))
    ta = heron.tensor(np.zeros(sa))
    tb = heron.tensor(np.ones(sb))
    for fn in (lambda: ta + tb, lambda: ta * tb, lambda: heron.add(ta, tb), lambda: heron.mul(tb, ta)):
        with pytest.raises(heron.InvalidArgumentError, match="broadcast"):
            fn()
    before = ta.tolist()
    with pytest.raises(heron.InvalidArgumentError):
        ta += tb
    assert ta.tolist() == before


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), data=st.data())
def test_inplace_broadcasting(shapes, data):
    sa, sb = shapes.input_shapes
    a = data.draw(float_arrays(sa))
    b = data.draw(float_arrays(sb))
    ta = heron.tensor(a)
    if shapes.result_shape == a.shape:
        ta += heron.tensor(b)
        np.testing.assert_array_equal(np_of(ta), a + b)
    else:
        with pytest.raises(heron.InvalidArgumentError):
            ta += heron.tensor(b)
        np.testing.assert_array_equal(np_of(ta), a)  # unchanged


# ------------------------------------------------------------------ type promotion
def torch_promote(a, b):
    """torch.promote_types for Heron's dtypes, written independently of Heron: numpy's table for
    tensor pairs except that floats beat ints without widening (int64 + float16 -> float16),
    float16 with bfloat16 gives float32, and int8 with uint8 gives int32 (PyTorch: int16, which
    Heron lacks)."""
    if a == b:
        return a
    if a == heron.bool:
        return b
    if b == heron.bool:
        return a
    if {a, b} == {heron.int8, heron.uint8}:
        return heron.int32
    if a in INTS and b in INTS:
        return {np.dtype(v): k for k, v in NP_OF.items()}[np.promote_types(NP_OF[a], NP_OF[b])]
    if a in INTS:
        return b
    if b in INTS:
        return a
    if {a, b} == {heron.float16, heron.bfloat16}:
        return heron.float32
    order = [heron.float16, heron.bfloat16, heron.float32, heron.float64]
    return max(a, b, key=order.index)


def as_np(values, dtype):
    return np.array(values, dtype=np.float32 if dtype == heron.bfloat16 else NP_OF[dtype])


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPE_NAMES, DTYPE_NAMES)))
def test_promotion_of_tensor_pairs(a, b):
    a, b = getattr(heron, a), getattr(heron, b)
    want = torch_promote(a, b)
    assert heron.promote_types(a, b) == want
    assert heron.promote_types(b, a) == want
    va, vb = [[0, 1], [1, 1]], [1, 0]
    ta, tb = heron.tensor(va, dtype=a), heron.tensor(vb, dtype=b)
    for got in (ta + tb, heron.add(ta, tb), ta * tb, tb * ta, heron.mul(tb, ta)):
        assert got.dtype == want, (a, b, got.dtype, want)
    exp_add = as_np(va, a).astype(np.float64) + as_np(vb, b).astype(np.float64)
    if want == heron.bool:
        exp_add = exp_add != 0
    np.testing.assert_array_equal(np_of(ta + tb).astype(np.float64), exp_add.astype(np.float64))
    np.testing.assert_array_equal(np_of(ta * tb).astype(np.float64),
                                  as_np(va, a).astype(np.float64) * as_np(vb, b).astype(np.float64))
    assert heron.result_type(ta, tb) == want


def test_promotion_matches_numpy_where_torch_does():
    for a, b in itertools.product(DTYPES, DTYPES):
        if heron.bfloat16 in (a, b) or {a, b} == {heron.int8, heron.uint8}:
            continue
        na, nb = NP_OF[a], NP_OF[b]
        if (a in FLOATS) != (b in FLOATS) and heron.bool not in (a, b):
            continue  # int with float: numpy widens (int64 + float16 -> float64), PyTorch does not
        assert heron.promote_types(a, b) == {np.dtype(v): k for k, v in NP_OF.items()}[np.promote_types(na, nb)]


@pytest.mark.parametrize("dtype,scalar,want", [
    ("float16", 2.0, "float16"),
    ("float16", 2, "float16"),
    ("bfloat16", 2.5, "bfloat16"),
    ("float32", 2.5, "float32"),
    ("float64", 1, "float64"),
    ("int32", 2, "int32"),
    ("int8", 3, "int8"),
    ("uint8", 3, "uint8"),
    ("int64", 2, "int64"),
    ("int32", 2.5, "float32"),
    ("int64", 2.5, "float32"),
    ("uint8", 0.5, "float32"),
    ("bool", 1, "int64"),
    ("bool", 1.5, "float32"),
    ("bool", True, "bool"),
    ("int8", True, "int8"),
    ("float16", True, "float16"),
])
def test_python_scalars_do_not_upcast(dtype, scalar, want):
    dtype, want = getattr(heron, dtype), getattr(heron, want)
    t = heron.tensor([1, 0, 1], dtype=dtype)
    for got in (t + scalar, scalar + t, t * scalar, scalar * t, heron.add(t, scalar), heron.mul(t, scalar)):
        assert got.dtype == want, (dtype, scalar, got.dtype)
    expected = as_np([1, 0, 1], dtype).astype(np.float64) + float(scalar)
    if want == heron.bool:
        expected = expected != 0
    np.testing.assert_allclose(np_of(t + scalar).astype(np.float64), expected.astype(np.float64))


@pytest.mark.parametrize("dim_dtype,zero_dtype,want", [
    ("int32", "int64", "int32"),  # same category: the dimensioned tensor wins
    ("float16", "float64", "float16"),
    ("uint8", "int64", "uint8"),
    ("int32", "float64", "float64"),  # higher category: promote
    ("int32", "float16", "float16"),
    ("bool", "int64", "int64"),
    ("bool", "float64", "float64"),
    ("float32", "int64", "float32"),
])
def test_zero_dim_tensors_promote_like_torch(dim_dtype, zero_dtype, want):
    dim_dtype, zero_dtype, want = (getattr(heron, n) for n in (dim_dtype, zero_dtype, want))
    t = heron.tensor([1, 1], dtype=dim_dtype)
    z = heron.tensor(1, dtype=zero_dtype)
    assert (t + z).dtype == want
    assert (z + t).dtype == want
    assert (z + z).dtype == zero_dtype  # two 0-d tensors: ordinary promotion
    assert (heron.tensor(1, dtype=dim_dtype) + z).dtype == torch_promote(dim_dtype, zero_dtype)


dtypes_st = st.sampled_from(DTYPE_NAMES).map(lambda name: getattr(heron, name))


@given(a=dtypes_st, b=dtypes_st,
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=3), data=st.data())
def test_promotion_with_broadcasting_values(a, b, shapes, data):
    sa, sb = shapes.input_shapes
    va = data.draw(hnp.arrays(np.int64, sa, elements=st.integers(0, 4)))
    vb = data.draw(hnp.arrays(np.int64, sb, elements=st.integers(0, 4)))
    if a == heron.bool:
        va = va % 2
    if b == heron.bool:
        vb = vb % 2
    ta, tb = heron.tensor(va, dtype=a), heron.tensor(vb, dtype=b)
    want = torch_promote(a, b)
    got = ta + tb
    assert got.dtype == want and got.shape == shapes.result_shape
    exp = (va + vb) if want != heron.bool else ((va + vb) != 0)
    np.testing.assert_array_equal(np_of(got).astype(np.int64), exp.astype(np.int64))


# ------------------------------------------------------------------ indexing
@st.composite
def array_and_basic_index(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    a = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    key = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return a, key


@given(case=array_and_basic_index())
def test_basic_indexing_matches_numpy(case):
    a, key = case
    t = heron.tensor(a)
    got = t[key]
    want = a[key]
    assert got.shape == want.shape
    np.testing.assert_array_equal(np_of(got), want)
    assert got._shares_storage(t)
    if want.size:
        assert tuple(s * 8 for s, n in zip(got.stride(), got.shape) if n != 1) == \
            tuple(s for s, n in zip(want.strides, want.shape) if n != 1)


@given(case=array_and_basic_index(), value=st.integers(-100, -1))
def test_basic_index_assignment_matches_numpy(case, value):
    a, key = case
    t = heron.tensor(a)
    t[key] = value
    want = a.copy()
    want[key] = value
    np.testing.assert_array_equal(np_of(t), want)


@st.composite
def shapes_broadcasting_to(draw, target):
    """Shapes that broadcast to `target` (leading dims dropped, others kept or set to 1)."""
    drop = draw(st.integers(0, len(target)))
    return tuple(1 if draw(st.booleans()) else n for n in target[drop:])


@given(case=array_and_basic_index(), data=st.data())
def test_basic_index_assignment_of_arrays(case, data):
    a, key = case
    target = a[key].shape
    vshape = data.draw(shapes_broadcasting_to(target))
    v = -data.draw(hnp.arrays(np.int64, vshape, elements=st.integers(1, 100)))
    t = heron.tensor(a)
    t[key] = heron.tensor(v)
    want = a.copy()
    want[key] = v
    np.testing.assert_array_equal(np_of(t), want)


@given(case=array_and_basic_index())
def test_chained_basic_indexing_of_views(case):
    a, key = case
    base = np.array(a.T, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    t = heron.tensor(base).permute(*reversed(range(a.ndim)))  # a transposed view equal to a
    n = base.T
    assert np_of(t[key]).tolist() == n[key].tolist()
    v = t[key]
    v.fill_(-1)
    n[key] = -1
    np.testing.assert_array_equal(np_of(t), n)


@st.composite
def array_and_integer_index(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    a = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    key = draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=0, max_dims=2,
                                                                                max_side=3)))
    return a, key


@given(case=array_and_integer_index())
def test_integer_array_indexing_matches_numpy(case):
    a, key = case
    t = heron.tensor(a)
    want = a[key]
    np.testing.assert_array_equal(np_of(t[key]), want)
    np.testing.assert_array_equal(np_of(t[tuple(heron.tensor(k) for k in key)]), want)


@given(case=array_and_integer_index())
def test_integer_array_assignment_matches_numpy(case):
    a, key = case
    t = heron.tensor(a)
    t[key] = -1
    want = a.copy()
    want[key] = -1
    np.testing.assert_array_equal(np_of(t), want)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4), data=st.data())
def test_boolean_mask_indexing_matches_numpy(shape, data):
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    k = data.draw(st.integers(1, len(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape[:k]))
    t = heron.tensor(a)
    np.testing.assert_array_equal(np_of(t[mask]), a[mask])
    np.testing.assert_array_equal(np_of(t[heron.tensor(mask)]), a[mask])
    t[mask] = -1.0
    want = a.copy()
    want[mask] = -1.0
    np.testing.assert_array_equal(np_of(t), want)


# ------------------------------------------------------------------ reductions
@st.composite
def array_and_dims(draw, min_side=0, dtype=np.float64):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=min_side, max_side=5))
    if np.issubdtype(dtype, np.integer):
        a = draw(int_arrays(shape, dtype))
    else:
        a = draw(float_arrays(shape, dtype))
    nd = len(shape)
    if nd == 0:
        dims = draw(st.sampled_from([None, (0,), (-1,)]))
    else:
        picked = draw(st.lists(st.integers(0, nd - 1), unique=True, min_size=1, max_size=nd))
        dims = tuple(d - nd if draw(st.booleans()) else d for d in picked)  # some negative
        dims = draw(st.sampled_from([None, dims]))
    keepdim = draw(st.booleans())
    return a, dims, keepdim


def np_axis(a, dims):
    if dims is None:
        return None
    if a.ndim == 0:
        return None  # a 0-d tensor reduces over dim 0 / -1 like over nothing
    return tuple(dims)


def heron_reduce(fn, t, dims, keepdim):
    if dims is None:
        return fn(t, keepdim=keepdim) if keepdim else fn(t)
    return fn(t, dims, keepdim)


@given(case=array_and_dims())
def test_sum_matches_numpy(case):
    a, dims, keepdim = case
    got = heron_reduce(heron.sum, heron.tensor(a), dims, keepdim)
    want = np.sum(a, axis=np_axis(a, dims), keepdims=keepdim)
    assert got.dtype == heron.float64
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(np_of(got), want, rtol=1e-12, atol=1e-9)


@given(case=array_and_dims(dtype=np.int64))
def test_sum_int_is_exact(case):
    a, dims, keepdim = case
    got = heron_reduce(heron.sum, heron.tensor(a), dims, keepdim)
    want = np.sum(a, axis=np_axis(a, dims), keepdims=keepdim)
    assert got.dtype == heron.int64
    np.testing.assert_array_equal(np_of(got), want)


@given(case=array_and_dims(dtype=np.int32))
def test_sum_of_small_ints_accumulates_in_int64(case):
    a, dims, keepdim = case
    got = heron_reduce(heron.sum, heron.tensor(a), dims, keepdim)
    assert got.dtype == heron.int64
    want = np.sum(a.astype(np.int64), axis=np_axis(a, dims), keepdims=keepdim)
    np.testing.assert_array_equal(np_of(got), want)


@given(case=array_and_dims(min_side=1))
def test_mean_matches_numpy(case):
    a, dims, keepdim = case
    got = heron_reduce(heron.mean, heron.tensor(a), dims, keepdim)
    want = np.mean(a, axis=np_axis(a, dims), keepdims=keepdim)
    assert got.dtype == heron.float64
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(np_of(got), want, rtol=1e-12, atol=1e-9)


@given(case=array_and_dims(min_side=1))
def test_amax_matches_numpy(case):
    a, dims, keepdim = case
    got = heron_reduce(heron.amax, heron.tensor(a), dims, keepdim)
    want = np.amax(a, axis=np_axis(a, dims), keepdims=keepdim)
    assert got.shape == np.shape(want)
    np.testing.assert_array_equal(np_of(got), want)


@given(case=array_and_dims(min_side=1))
def test_reductions_of_transposed_views(case):
    a, dims, keepdim = case
    assume(a.ndim >= 2)
    t = heron.tensor(a).transpose(0, 1)
    n = a.swapaxes(0, 1)
    ax = np_axis(n, dims)
    np.testing.assert_allclose(np_of(heron_reduce(heron.sum, t, dims, keepdim)),
                               np.sum(n, axis=ax, keepdims=keepdim), rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(np_of(heron_reduce(heron.amax, t, dims, keepdim)),
                                  np.amax(n, axis=ax, keepdims=keepdim))


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
def test_empty_reductions(shape):
    assume(0 in shape)
    a = np.zeros(shape)
    t = heron.tensor(a)
    assert heron.sum(t).item() == 0.0
    zero_dim = shape.index(0)
    np.testing.assert_array_equal(np_of(heron.sum(t, zero_dim)), np.sum(a, axis=zero_dim))
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        heron.amax(t)
