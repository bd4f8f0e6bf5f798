"""Tensor basics with numpy as the oracle: creation, dtypes, numpy/DLPack interop, properties,
scalars, repr, views, copies and handle lifetimes."""
import gc
import math

import numpy as np
import pytest

import heron

DTYPES = [heron.float32, heron.float64, heron.float16, heron.bfloat16, heron.int8, heron.uint8, heron.int32,
          heron.int64, heron.bool]
NP_OF = {heron.float32: np.float32, heron.float64: np.float64, heron.float16: np.float16, heron.int8: np.int8,
         heron.uint8: np.uint8, heron.int32: np.int32, heron.int64: np.int64, heron.bool: np.bool_}
NP_DTYPES = list(NP_OF.values())
FLOATS = [heron.float32, heron.float64, heron.float16, heron.bfloat16]


def np_of(t):
    """A numpy copy of a heron tensor (bfloat16 read as float32)."""
    if t.dtype == heron.bfloat16:
        t = t.float()
    return np.array(t.tolist(), dtype=NP_OF[t.dtype]).reshape(t.shape)


def assert_same(t, a, dtype=None):
    """t (heron) equals a (numpy): shape, dtype and values (nan == nan)."""
    assert isinstance(t, heron.Tensor)
    a = np.asarray(a)
    assert t.shape == a.shape, (t.shape, a.shape)
    if dtype is not None:
        assert t.dtype == dtype, (t.dtype, dtype)
    else:
        assert NP_OF.get(t.dtype) == a.dtype.type, (t.dtype, a.dtype)
    np.testing.assert_array_equal(np_of(t), a)


def sample(np_dtype, shape=(2, 3)):
    n = int(np.prod(shape))
    if np_dtype == np.bool_:
        return (np.arange(n) % 3 == 0).reshape(shape)
    vals = np.arange(n) - (n // 2 if np.issubdtype(np_dtype, np.signedinteger) or
                           np.issubdtype(np_dtype, np.floating) else 0)
    a = vals.astype(np_dtype).reshape(shape)
    if np.issubdtype(np_dtype, np.floating):
        a = np.asarray(a * 0.5, dtype=np_dtype)
    return a


# ------------------------------------------------------------------ creation from Python data
@pytest.mark.parametrize("data,dtype,shape", [
    ([1, 2, 3], heron.int64, (3,)),
    ([[1, 2], [3, 4]], heron.int64, (2, 2)),
    ([1.0, 2.5], heron.float32, (2,)),
    ([1, 2.5], heron.float32, (2,)),
    ([True, False], heron.bool, (2,)),
    ([True, 2], heron.int64, (2,)),
    ([True, 2.0], heron.float32, (2,)),
    ((1, 2), heron.int64, (2,)),
    ([(1, 2), (3, 4)], heron.int64, (2, 2)),
    (3, heron.int64, ()),
    (2.5, heron.float32, ()),
    (True, heron.bool, ()),
    ([], heron.float32, (0,)),
    ([[]], heron.float32, (1, 0)),
    ([[], []], heron.float32, (2, 0)),
    ([[[1]], [[2]]], heron.int64, (2, 1, 1)),
    ([np.float64(1.5)], heron.float32, (1,)),
    ([np.int32(3)], heron.int64, (1,)),
    ([np.bool_(True)], heron.bool, (1,)),
])
def test_tensor_infers_dtype_like_torch(data, dtype, shape):
    t = heron.tensor(data)
    assert t.dtype == dtype
    assert t.shape == shape
    expected = np.array(data, dtype=NP_OF[dtype]).reshape(shape)
    assert_same(t, expected, dtype)


def test_tensor_values_are_exact():
    big = [2 ** 62, -(2 ** 62), 2 ** 63 - 1, -(2 ** 63)]
    assert heron.tensor(big).tolist() == big
    assert heron.tensor([0.1]).tolist() == [float(np.float32(0.1))]
    assert heron.tensor([0.1], dtype=heron.float64).tolist() == [0.1]


def test_tensor_from_tensors_and_arrays():
    t = heron.tensor([heron.tensor(1), heron.tensor(2)])
    assert t.dtype == heron.int64 and t.tolist() == [1, 2]
    t = heron.tensor([heron.tensor([1.0, 2.0]), heron.tensor([3.0, 4.0])])
    assert t.dtype == heron.float32 and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    t = heron.tensor([np.array([1, 2], dtype=np.int32), np.array([3, 4], dtype=np.int32)])
    assert t.dtype == heron.int32 and t.tolist() == [[1, 2], [3, 4]]


def test_tensor_copies_a_tensor():
    a = heron.tensor([1.0, 2.0])
    b = heron.tensor(a)
    assert not b._shares_storage(a)
    b[0] = 5.0
    assert a.tolist() == [1.0, 2.0]
    c = heron.tensor(a, dtype=heron.float64)
    assert c.dtype == heron.float64 and c.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("bad", [[1, [2]], [[1, 2], [3]], [[1], 2]])
def test_tensor_ragged_lists_raise(bad):
    with pytest.raises(ValueError):
        heron.tensor(bad)


@pytest.mark.parametrize("bad", [["a"], [1 + 2j], [object()], "abc", {1: 2}, None])
def test_tensor_bad_elements_raise_type_error(bad):
    with pytest.raises(TypeError):
        heron.tensor(bad)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_tensor_from_list_with_dtype(dtype):
    data = [[0, 1, 2], [3, 1, 0]]
    t = heron.tensor(data, dtype=dtype)
    assert t.dtype == dtype and t.shape == (2, 3)
    expected = np.array(data).astype(np.float32 if dtype == heron.bfloat16 else NP_OF[dtype])
    np.testing.assert_array_equal(np_of(t), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_tensor_scalar_with_dtype(dtype):
    t = heron.tensor(1, dtype=dtype)
    assert t.shape == () and t.dtype == dtype
    assert t.item() == 1


def test_tensor_float_list_to_int_dtype_truncates():
    assert heron.tensor([1.7, -1.7, 2.0], dtype=heron.int64).tolist() == [1, -1, 2]


# ------------------------------------------------------------------ creation from numpy
@pytest.mark.parametrize("np_dtype", NP_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3), (2, 0, 3), (2, 3, 4)])
def test_tensor_from_numpy_every_dtype(np_dtype, shape):
    a = sample(np_dtype, shape)
    t = heron.tensor(a)
    assert_same(t, a)
    assert t.is_contiguous()
    # a copy: later changes to the array do not reach the tensor
    before = t.tolist()
    a[...] = ~a if np_dtype == np.bool_ else a + 1
    assert t.tolist() == before


@pytest.mark.parametrize("np_dtype,heron_dtype", [(np.int16, heron.int32), (np.uint16, heron.int32),
                                                  (np.uint32, heron.int64)])
def test_tensor_from_numpy_widens_unsupported_ints(np_dtype, heron_dtype):
    info = np.iinfo(np_dtype)
    a = np.array([info.min, 0, 7, info.max], dtype=np_dtype)
    t = heron.tensor(a)
    assert t.dtype == heron_dtype
    assert t.tolist() == a.tolist()


@pytest.mark.parametrize("np_dtype", [np.complex64, np.complex128, np.uint64, np.object_, np.str_, np.datetime64])
def test_tensor_from_numpy_unsupported_dtype(np_dtype):
    a = np.zeros(3, dtype=np_dtype)
    with pytest.raises(TypeError):
        heron.tensor(a)


def test_tensor_from_numpy_non_contiguous_and_scalars():
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    for view in [a[:, ::2], a[::-1], a.transpose(2, 0, 1), a[..., ::-3], a[1]]:
        t = heron.tensor(view)
        assert_same(t, view)
        assert t.is_contiguous()
    assert_same(heron.tensor(np.float16(1.5)), np.array(1.5, dtype=np.float16))
    assert_same(heron.tensor(np.array(7, dtype=np.int8)), np.array(7, dtype=np.int8))
    be = np.arange(4, dtype=">i4")
    assert_same(heron.tensor(be), np.arange(4, dtype=np.int32))


@pytest.mark.parametrize("np_dtype", NP_DTYPES, ids=lambda d: np.dtype(d).name)
def test_tensor_from_numpy_with_dtype(np_dtype):
    a = sample(np_dtype) if np_dtype == np.bool_ else np.abs(sample(np_dtype)).astype(np_dtype)
    for dtype in DTYPES:
        t = heron.tensor(a, dtype=dtype)
        assert t.dtype == dtype
        expected = a.astype(np.float32 if dtype == heron.bfloat16 else NP_OF[dtype])
        np.testing.assert_array_equal(np_of(t), expected)


def test_as_tensor_shares_when_it_can():
    a = np.arange(4.0)
    t = heron.as_tensor(a)
    t[0] = 9.0
    assert a[0] == 9.0
    h = heron.tensor([1, 2])
    assert heron.as_tensor(h) is h
    c = heron.as_tensor(a, dtype=heron.float32)
    assert c.dtype == heron.float32 and not np.shares_memory(np.asarray(c), a)


# ------------------------------------------------------------------ casts
@pytest.mark.parametrize("src", DTYPES, ids=str)
@pytest.mark.parametrize("dst", DTYPES, ids=str)
def test_cast_round_trip(src, dst):
    data = [[0, 1, 2], [3, 1, 0]]  # exact in every dtype
    t = heron.tensor(data, dtype=src)
    c = t.to(dst)
    assert c.dtype == dst and c.shape == t.shape
    expected = np.array(data).astype(np.bool_ if src == heron.bool else np.int64)
    np.testing.assert_array_equal(np_of(c), expected.astype(NP_OF.get(dst, np.float32)))
    back = c.to(src)
    assert back.dtype == src
    if dst != heron.bool or src == heron.bool:
        assert back.tolist() == t.tolist()


def test_cast_float_to_int_truncates_toward_zero():
    t = heron.tensor([-2.7, -0.5, 0.5, 2.7])
    assert t.to(heron.int64).tolist() == [-2, 0, 0, 2]
    assert t.to(heron.int32).tolist() == [-2, 0, 0, 2]
    assert t.to(heron.int8).tolist() == [-2, 0, 0, 2]


def test_cast_to_bool_is_nonzero():
    t = heron.tensor([0.0, -0.0, 0.25, -3.0, float("nan")])
    assert t.to(heron.bool).tolist() == [False, False, True, True, True]
    assert heron.tensor([0, 5, -1]).bool().tolist() == [False, True, True]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_float16_cast_rounds_to_nearest():
    vals = np.array([0.1, 1 / 3, 65504.0, 1e-7, -2.5, 70000.0], dtype=np.float64)
    t = heron.tensor(vals, dtype=heron.float64).half()
    np.testing.assert_array_equal(t.numpy(), vals.astype(np.float16))
    np.testing.assert_array_equal(heron.tensor(vals.astype(np.float32)).half().numpy(),
                                  vals.astype(np.float32).astype(np.float16))
    assert t.float().dtype == heron.float32


def test_bfloat16_round_trip_via_float():
    vals = [1.0, -2.0, 0.5, 3.0, 256.0, -0.0]
    t = heron.tensor(vals, dtype=heron.bfloat16)
    assert t.dtype == heron.bfloat16 and t.element_size() == 2
    assert t.float().tolist() == vals
    assert t.tolist() == vals
    assert t.double().dtype == heron.float64
    # round to nearest even on the 8-bit significand
    r = heron.tensor([1.00390625, 1.01171875, 1.0 + 2 ** -7, 3.14159265], dtype=heron.bfloat16).float().tolist()
    assert r == [1.0, 1.015625, 1.0078125, 3.140625]
    with pytest.raises(TypeError):
        t.numpy()
    np.testing.assert_array_equal(np.asarray(t), np.array(vals, dtype=np.float32))


def test_cast_methods():
    t = heron.tensor([1.5, -2.0])
    for name, dtype in [("float", heron.float32), ("double", heron.float64), ("half", heron.float16),
                        ("bfloat16", heron.bfloat16), ("int", heron.int32), ("long", heron.int64),
                        ("bool", heron.bool), ("char", heron.int8)]:
        assert getattr(t, name)().dtype == dtype
    assert heron.tensor([1, 2]).byte().dtype == heron.uint8
    assert t.type_as(heron.tensor([1])).dtype == heron.int64


def test_to_variants():
    t = heron.tensor([1.0, 2.0])
    assert t.to(heron.float32) is t
    assert t.to("cpu") is t
    assert t.to(heron.device("cpu")) is t
    c = t.to(heron.float32, copy=True)
    assert c is not t and not c._shares_storage(t) and c.tolist() == t.tolist()
    assert t.to(dtype=heron.float64).dtype == heron.float64
    assert t.to("cpu", heron.int64).dtype == heron.int64
    assert t.to(heron.tensor([1], dtype=heron.int8)).dtype == heron.int8
    with pytest.raises(TypeError):
        t.to(5)


# ------------------------------------------------------------------ zero-copy numpy
@pytest.mark.parametrize("np_dtype", NP_DTYPES, ids=lambda d: np.dtype(d).name)
def test_from_numpy_every_dtype_shares_memory(np_dtype):
    a = sample(np_dtype, (3, 4))
    t = heron.from_numpy(a)
    assert_same(t, a)
    assert t.data_ptr() == a.ctypes.data
    a[0, 0] = a[1, 1]
    assert t[0, 0].item() == a[1, 1]
    t[2, 3] = a[0, 1]
    assert a[2, 3] == a[0, 1]


def test_from_numpy_mutations_visible_both_ways():
    a = np.zeros((2, 3), dtype=np.float32)
    t = heron.from_numpy(a)
    a[1, 2] = 5.0
    assert t.tolist() == [[0, 0, 0], [0, 0, 5]]
    t[0] = 7.0
    np.testing.assert_array_equal(a, [[7, 7, 7], [0, 0, 5]])
    t.zero_()
    assert not a.any()


@pytest.mark.parametrize("make", [
    lambda a: a[:, ::2],
    lambda a: a[::-1],
    lambda a: a[::-1, ::-2],
    lambda a: a.T,
    lambda a: a[1:, 1:3],
    lambda a: a[:, 1],
    lambda a: np.broadcast_to(a[0], (3, 4)),
], ids=["step", "neg", "neg2", "T", "offset", "column", "bcast"])
def test_from_numpy_non_contiguous(make):
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    view = make(base)
    t = heron.from_numpy(view)
    assert_same(t, view)
    assert t.stride() == tuple(s // view.itemsize for s in view.strides)
    assert t.data_ptr() == view.ctypes.data
    assert t.is_contiguous() == view.flags.c_contiguous
    if view.flags.writeable:
        t.fill_(-1.0)
        assert (view == -1.0).all()
        assert (base == -1.0).sum() == view.size


def test_from_numpy_zero_d_and_errors():
    a = np.array(3.5)
    t = heron.from_numpy(a)
    assert t.shape == () and t.item() == 3.5
    a[()] = 4.5
    assert t.item() == 4.5
    with pytest.raises(TypeError):
        heron.from_numpy([1, 2])
    with pytest.raises(TypeError):
        heron.from_numpy(np.zeros(2, dtype=np.complex64))
    with pytest.raises(TypeError):
        heron.from_numpy(np.zeros(2, dtype=np.int16))


def test_from_numpy_keeps_array_alive():
    t = heron.from_numpy(np.arange(1000, dtype=np.int64) * 3)
    gc.collect()
    assert t[999].item() == 2997
    assert heron.tensor(t).sum().item() == 3 * 999 * 1000 // 2


@pytest.mark.parametrize("np_dtype", NP_DTYPES, ids=lambda d: np.dtype(d).name)
def test_numpy_is_zero_copy(np_dtype):
    t = heron.tensor(sample(np_dtype, (2, 3)))
    n = t.numpy()
    assert n.dtype == np_dtype and n.shape == (2, 3)
    assert n.ctypes.data == t.data_ptr()
    n[1, 1] = n[0, 0]
    assert t[1, 1].item() == n[0, 0]
    t[0, 2] = n[1, 0]
    assert n[0, 2] == n[1, 0]


def test_numpy_of_views_keeps_strides():
    t = heron.tensor(np.arange(12, dtype=np.int32).reshape(3, 4))
    for v, ref in [(t.T, np.arange(12).reshape(3, 4).T), (t[:, 1::2], np.arange(12).reshape(3, 4)[:, 1::2]),
                   (t[1], np.arange(12).reshape(3, 4)[1])]:
        n = v.numpy()
        np.testing.assert_array_equal(n, ref)
        assert n.strides == tuple(s * 4 for s in v.stride())
        assert np.shares_memory(n, t.numpy())


def test_numpy_array_protocol():
    t = heron.tensor([[1, 2], [3, 4]], dtype=heron.int32)
    a = np.asarray(t)
    assert a.dtype == np.int32 and a.tolist() == [[1, 2], [3, 4]]
    assert np.array(t, dtype=np.float64).dtype == np.float64
    assert np.asarray(heron.tensor(2.5)).shape == ()


# ------------------------------------------------------------------ DLPack
@pytest.mark.parametrize("np_dtype", NP_DTYPES, ids=lambda d: np.dtype(d).name)
def test_from_dlpack_numpy(np_dtype):
    a = sample(np_dtype, (2, 3))
    t = heron.from_dlpack(a)
    assert_same(t, a)
    assert t.data_ptr() == a.ctypes.data
    # explicit capsules, versioned and legacy
    t2 = heron.from_dlpack(a.__dlpack__())
    assert t2.data_ptr() == a.ctypes.data
    try:
        versioned = a.__dlpack__(max_version=(1, 0))
    except TypeError:  # numpy < 2.1 exports only the legacy capsule
        return
    assert_same(heron.from_dlpack(versioned), a)


def test_from_dlpack_strided_numpy():
    base = np.arange(20.0).reshape(4, 5)
    v = base[::2, 1::2]
    t = heron.from_dlpack(v)
    assert_same(t, v)
    t[0, 0] = -5
    assert base[0, 1] == -5


def test_from_dlpack_capsule_used_once():
    cap = np.arange(3.0).__dlpack__()
    heron.from_dlpack(cap)
    with pytest.raises(ValueError):
        heron.from_dlpack(cap)


def test_from_dlpack_rejects_other_objects():
    with pytest.raises(TypeError):
        heron.from_dlpack([1, 2, 3])


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != heron.bfloat16], ids=str)
def test_numpy_from_dlpack_heron(dtype):
    t = heron.tensor([[0, 1, 2], [3, 1, 0]], dtype=dtype)
    a = np.from_dlpack(t)
    assert a.dtype == NP_OF[dtype]
    np.testing.assert_array_equal(a, np_of(t))
    assert a.ctypes.data == t.data_ptr()
    assert t.__dlpack_device__() == (1, 0)


def test_numpy_from_dlpack_view_and_lifetime():
    t = heron.tensor(np.arange(12.0).reshape(3, 4))
    v = t.T[1:]
    a = np.from_dlpack(v)
    np.testing.assert_array_equal(a, np.arange(12.0).reshape(3, 4).T[1:])
    del t, v
    gc.collect()
    assert a.sum() == sum(range(12)) - (0 + 4 + 8)


def test_dlpack_round_trip():
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.from_dlpack(heron.from_dlpack(a))
    assert np.shares_memory(a, b)
    assert heron.from_dlpack(heron.tensor([1])).tolist() == [1]


# ------------------------------------------------------------------ properties
def test_properties():
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    t = heron.tensor(a)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.ndim == 3 and t.dim() == 3
    assert t.dtype == heron.float64
    assert t.device == heron.device("cpu") and str(t.device) == "cpu" and t.device.type == "cpu"
    assert t.device == "cpu"
    assert not t.is_cuda
    assert t.numel() == 24 and t.nelement() == 24
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.stride() == (12, 4, 1) and t.stride(0) == 12 and t.stride(-1) == 1
    assert t.is_contiguous()
    assert t.storage_offset() == 0
    assert t.element_size() == 8 and t.itemsize == 8 and t.nbytes == 192
    assert t.is_floating_point()
    assert not heron.tensor([1]).is_floating_point()
    v = t[1, 1:, ::2]
    assert v.shape == (2, 2) and v.stride() == (4, 2) and v.storage_offset() == 16
    assert not v.is_contiguous()
    s = heron.tensor(5)
    assert s.shape == () and s.ndim == 0 and s.numel() == 1 and s.stride() == ()
    e = heron.tensor(np.zeros((0, 3)))
    assert e.numel() == 0 and e.shape == (0, 3)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dtype_objects(dtype):
    assert dtype == dtype and hash(dtype) == hash(dtype)
    assert repr(dtype) == "heron." + dtype.name and str(dtype) == repr(dtype)
    assert getattr(heron, dtype.name) is dtype
    assert dtype.itemsize == (np.dtype(NP_OF[dtype]).itemsize if dtype in NP_OF else 2)
    assert dtype.is_floating_point == (dtype in FLOATS)


def test_dtype_aliases():
    assert heron.float is heron.float32 and heron.double is heron.float64 and heron.half is heron.float16
    assert heron.long is heron.int64 and heron.int is heron.int32
    assert heron.float32 != heron.float64


# ------------------------------------------------------------------ scalars and Python conversions
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_item(dtype):
    t = heron.tensor([[1]], dtype=dtype)
    v = t.item()
    if dtype in FLOATS:
        assert type(v) is float and v == 1.0
    elif dtype == heron.bool:
        assert type(v) is bool and v is True
    else:
        assert type(v) is int and v == 1
    assert heron.tensor(-3.25, dtype=heron.float64).item() == -3.25
    assert heron.tensor(2 ** 62).item() == 2 ** 62


def test_item_needs_one_element():
    with pytest.raises((RuntimeError, ValueError)):
        heron.tensor([1, 2]).item()
    with pytest.raises((RuntimeError, ValueError)):
        heron.tensor([]).item()


@pytest.mark.parametrize("np_dtype", NP_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 1, 2)])
def test_tolist(np_dtype, shape):
    a = sample(np_dtype, shape)
    out = heron.tensor(a).tolist()
    ref = a.tolist()
    assert out == ref

    def leaves(x):
        return [y for e in x for y in leaves(e)] if isinstance(x, list) else [x]
    assert [type(v) for v in leaves(out)] == [type(v) for v in leaves(ref)]  # Python int/float/bool


def test_tolist_of_views():
    a = np.arange(12).reshape(3, 4)
    t = heron.tensor(a)
    assert t.T.tolist() == a.T.tolist()
    assert t[:, ::2].tolist() == a[:, ::2].tolist()
    assert t.expand(2, 3, 4).tolist() == np.broadcast_to(a, (2, 3, 4)).tolist()


def test_python_number_conversions():
    assert float(heron.tensor(2.5)) == 2.5
    assert float(heron.tensor([3])) == 3.0
    assert int(heron.tensor(7)) == 7
    assert int(heron.tensor([-2.7])) == -2
    assert bool(heron.tensor(0.0)) is False
    assert bool(heron.tensor([3])) is True
    assert bool(heron.tensor(True)) is True
    assert [10, 11, 12][heron.tensor(1)] == 11
    assert list(range(5))[heron.tensor(1):heron.tensor(3)] == [1, 2]
    assert math.isnan(float(heron.tensor(float("nan"))))
    with pytest.raises(TypeError):
        [1, 2][heron.tensor(0.0)]


@pytest.mark.parametrize("make", [lambda: heron.tensor([1, 2]), lambda: heron.tensor([]),
                                  lambda: heron.tensor([[1.0, 2.0]])], ids=["two", "empty", "row"])
def test_ambiguous_conversions_raise(make):
    t = make()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    with pytest.raises((RuntimeError, ValueError)):
        float(t)
    with pytest.raises((RuntimeError, ValueError)):
        int(t)
    with pytest.raises((RuntimeError, ValueError)):
        if t:
            pass


def test_len_and_iter():
    a = np.arange(6).reshape(3, 2)
    t = heron.tensor(a)
    assert len(t) == 3
    rows = list(t)
    assert len(rows) == 3
    for r, ref in zip(rows, a):
        assert_same(r, ref)
    assert rows[1]._shares_storage(t)
    assert [x.item() for x in heron.tensor([4, 5, 6])] == [4, 5, 6]
    assert list(heron.tensor(np.zeros((0, 2)))) == []
    s = heron.tensor(1.0)
    with pytest.raises(TypeError):
        len(s)
    with pytest.raises(TypeError):
        iter(s)


# ------------------------------------------------------------------ repr
@pytest.mark.parametrize("t,expected", [
    (lambda: heron.tensor([1.0, 2.0]), "tensor([1., 2.])"),
    (lambda: heron.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
    (lambda: heron.tensor([True, False]), "tensor([ True, False])"),
    (lambda: heron.tensor(5.0), "tensor(5.)"),
    (lambda: heron.tensor(3), "tensor(3)"),
    (lambda: heron.tensor(True), "tensor(True)"),
    (lambda: heron.tensor([1.5, 2.25]), "tensor([1.5000, 2.2500])"),
    (lambda: heron.tensor([1.0, 10.0, -3.0]), "tensor([ 1., 10., -3.])"),
    (lambda: heron.tensor([1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
    (lambda: heron.tensor([float("nan"), 1.0]), "tensor([nan, 1.])"),
    (lambda: heron.tensor([float("inf"), -1.5]), "tensor([    inf, -1.5000])"),
    (lambda: heron.tensor([1.0, 2.0], dtype=heron.float64), "tensor([1., 2.], dtype=heron.float64)"),
    (lambda: heron.tensor([1.0, 2.0], dtype=heron.float16), "tensor([1., 2.], dtype=heron.float16)"),
    (lambda: heron.tensor([1.0, 2.0], dtype=heron.bfloat16), "tensor([1., 2.], dtype=heron.bfloat16)"),
    (lambda: heron.tensor([1, 2], dtype=heron.int32), "tensor([1, 2], dtype=heron.int32)"),
    (lambda: heron.tensor([1, 2], dtype=heron.uint8), "tensor([1, 2], dtype=heron.uint8)"),
    (lambda: heron.tensor([-1, 2], dtype=heron.int8), "tensor([-1,  2], dtype=heron.int8)"),
    (lambda: heron.tensor([[1, 2], [3, 4]]), "tensor([[1, 2],\n        [3, 4]])"),
    (lambda: heron.tensor([[1.0], [2.0]]), "tensor([[1.],\n        [2.]])"),
    (lambda: heron.tensor([]), "tensor([])"),
    (lambda: heron.tensor([], dtype=heron.int64), "tensor([], dtype=heron.int64)"),
    (lambda: heron.tensor([], dtype=heron.float16), "tensor([], dtype=heron.float16)"),
    (lambda: heron.tensor(np.zeros((0, 3), dtype=np.float32)), "tensor([], size=(0, 3))"),
    (lambda: heron.tensor(np.zeros((2, 0), dtype=np.int32)), "tensor([], size=(2, 0), dtype=heron.int32)"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_repr(t, expected):
    t = t()
    assert repr(t) == expected
    assert str(t) == expected


def test_repr_of_views_and_large():
    a = np.arange(12).reshape(3, 4)
    t = heron.tensor(a)
    assert repr(t.T) == "tensor([[ 0,  4,  8],\n        [ 1,  5,  9],\n        [ 2,  6, 10],\n        [ 3,  7, 11]])"
    big = repr(heron.tensor(np.arange(5000)))
    assert big.startswith("tensor([   0,    1,    2,") and "..." in big and big.endswith("4998, 4999])")
    assert len(big) < 200


# ------------------------------------------------------------------ views share memory
def _base():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    return a, heron.tensor(a)


@pytest.mark.parametrize("name,hfn,nfn", [
    ("view", lambda t: t.view(6, 4), lambda a: a.reshape(6, 4)),
    ("view-1", lambda t: t.view(-1), lambda a: a.reshape(-1)),
    ("view_tuple", lambda t: t.view((4, -1)), lambda a: a.reshape(4, -1)),
    ("reshape", lambda t: t.reshape(3, 8), lambda a: a.reshape(3, 8)),
    ("reshape_tuple", lambda t: t.reshape((2, -1, 2)), lambda a: a.reshape(2, -1, 2)),
    ("permute", lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    ("permute_tuple", lambda t: t.permute((1, 2, 0)), lambda a: a.transpose(1, 2, 0)),
    ("permute_neg", lambda t: t.permute(-1, -3, -2), lambda a: a.transpose(2, 0, 1)),
    ("transpose", lambda t: t.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    ("transpose_neg", lambda t: t.transpose(-1, -2), lambda a: a.swapaxes(-1, -2)),
    ("T", lambda t: t.T, lambda a: a.T),
    ("mT", lambda t: t.mT, lambda a: a.swapaxes(-1, -2)),
    ("expand", lambda t: t[:, :1].expand(2, 5, 4), lambda a: np.broadcast_to(a[:, :1], (2, 5, 4))),
    ("expand_new", lambda t: t.expand(3, 2, 3, 4), lambda a: np.broadcast_to(a, (3, 2, 3, 4))),
    ("expand_minus1", lambda t: t[:, :1].expand(-1, 3, -1), lambda a: np.broadcast_to(a[:, :1], (2, 3, 4))),
    ("broadcast_to", lambda t: t[:, :1].broadcast_to((2, 3, 4)), lambda a: np.broadcast_to(a[:, :1], (2, 3, 4))),
    ("squeeze", lambda t: t[:, :1, None].squeeze(), lambda a: a[:, :1, None].squeeze()),
    ("squeeze_dim", lambda t: t[:, :1].squeeze(1), lambda a: a[:, :1].squeeze(1)),
    ("squeeze_noop", lambda t: t.squeeze(0), lambda a: a),
    ("unsqueeze", lambda t: t.unsqueeze(1), lambda a: a[:, None]),
    ("unsqueeze_neg", lambda t: t.unsqueeze(-1), lambda a: a[..., None]),
    ("flatten", lambda t: t.flatten(), lambda a: a.reshape(-1)),
    ("flatten_range", lambda t: t.flatten(1), lambda a: a.reshape(2, 12)),
    ("flatten_mid", lambda t: t.flatten(0, 1), lambda a: a.reshape(6, 4)),
    ("as_strided", lambda t: t.as_strided((3, 2), (1, 4)),
     lambda a: np.lib.stride_tricks.as_strided(a, (3, 2), (4, 16))),
    ("as_strided_off", lambda t: t.as_strided((2, 2), (6, 1), 3),
     lambda a: np.lib.stride_tricks.as_strided(a.reshape(-1)[3:], (2, 2), (24, 4))),
    ("select", lambda t: t.select(1, 2), lambda a: a[:, 2]),
    ("select_neg", lambda t: t.select(-1, -1), lambda a: a[..., -1]),
    ("slice", lambda t: heron.slice(t, 2, 1, 4, 2), lambda a: a[:, :, 1:4:2]),
    ("slice_default", lambda t: heron.slice(t, 1, 1), lambda a: a[:, 1:]),
    ("slice_big", lambda t: heron.slice(t, 0, -10, 10), lambda a: a[-10:10]),
    ("getitem", lambda t: t[1, ::2, 1:3], lambda a: a[1, ::2, 1:3]),
    ("chain", lambda t: t.permute(1, 0, 2)[::2].transpose(0, 1).unsqueeze(0),
     lambda a: a.transpose(1, 0, 2)[::2].swapaxes(0, 1)[None]),
])
def test_views_share_memory(name, hfn, nfn):
    a, t = _base()
    v = hfn(t)
    ref = nfn(a)
    assert_same(v, ref)
    assert v._shares_storage(t)
    n = t.numpy()
    assert np.shares_memory(v.numpy(), n)
    # writing through the base is visible through the view
    t.copy_(heron.tensor(-a))
    np.testing.assert_array_equal(v.numpy(), nfn(-a))
    if name.startswith(("expand", "broadcast")):
        return  # overlapping memory: no writes through the view
    # and writing through the view is visible in the base
    v.fill_(7.0)
    expected = -a
    view_of_expected = nfn(expected)
    assert np.shares_memory(view_of_expected, expected)
    view_of_expected[...] = 7.0
    np.testing.assert_array_equal(n, expected)


def test_view_strides_like_numpy():
    a = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    t = heron.tensor(a)
    for hv, nv in [(t.T, a.T), (t[:, ::2], a[:, ::2]), (t[1], a[1]), (t.unsqueeze(0), a[None]),
                   (t.permute(1, 0, 2), a.transpose(1, 0, 2))]:
        # strides of size-1 dims are free (numpy and PyTorch pick different ones)
        assert [s for s, n in zip(hv.stride(), hv.shape) if n != 1] == \
            [s // 8 for s, n in zip(nv.strides, nv.shape) if n != 1]
        assert hv.is_contiguous() == nv.flags.c_contiguous
    assert t.expand(5, 2, 3, 4).stride() == (0, 12, 4, 1)
    assert t.unsqueeze(0).stride() == (24, 12, 4, 1)  # PyTorch's choice for the new dim


def test_view_of_non_contiguous_fails_but_reshape_copies():
    t = heron.tensor(np.arange(12.0).reshape(3, 4))
    with pytest.raises(RuntimeError):
        t.T.view(12)
    r = t.T.reshape(12)
    assert r.tolist() == np.arange(12.0).reshape(3, 4).T.reshape(12).tolist()
    assert not r._shares_storage(t)
    assert t.reshape(2, 6)._shares_storage(t)
    with pytest.raises(RuntimeError):
        t.view(5, 3)
    with pytest.raises(RuntimeError):
        t.view(-1, -1)


def test_view_as_reshape_as_expand_as():
    t = heron.tensor(np.arange(6.0))
    other = heron.tensor(np.zeros((2, 3)))
    assert t.view_as(other).shape == (2, 3)
    assert t.reshape_as(other).shape == (2, 3)
    assert heron.tensor([1.0, 2.0, 3.0]).expand_as(other).tolist() == [[1, 2, 3], [1, 2, 3]]


# ------------------------------------------------------------------ copies
def test_contiguous_and_clone():
    a = np.arange(12.0).reshape(3, 4)
    t = heron.tensor(a)
    assert t.contiguous() is t
    c = t.T.contiguous()
    assert c.is_contiguous() and not c._shares_storage(t)
    assert_same(c, a.T)
    assert c.stride() == (3, 1)
    k = t.clone()
    assert not k._shares_storage(t) and k.tolist() == t.tolist()
    k[0, 0] = 100.0
    assert t[0, 0].item() == 0.0
    kv = t[:, 1::2].clone()
    assert_same(kv, a[:, 1::2])
    assert not kv._shares_storage(t)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_clone_and_contiguous_every_dtype(dtype):
    t = heron.tensor([[0, 1, 2], [3, 1, 0]], dtype=dtype)
    assert t.clone().tolist() == t.tolist() and t.clone().dtype == dtype
    assert t.T.contiguous().tolist() == np.array(t.tolist()).T.tolist()


def test_copy_fill_zero():
    t = heron.tensor(np.zeros((2, 3)))
    assert t.copy_(heron.tensor([1, 2, 3], dtype=heron.int32)) is t  # broadcasts, converts the dtype
    assert t.tolist() == [[1, 2, 3], [1, 2, 3]]
    t.copy_(heron.tensor(np.arange(6.0).reshape(2, 3)))
    assert t.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert t.fill_(2.5) is t
    assert t.tolist() == [[2.5] * 3] * 2
    t.fill_(heron.tensor(1.5))
    assert t.tolist() == [[1.5] * 3] * 2
    assert t.zero_() is t
    assert t.tolist() == [[0.0] * 3] * 2
    t[:, 1].fill_(9)
    assert t.tolist() == [[0, 9, 0], [0, 9, 0]]
    t.T[0].copy_(heron.tensor([4.0, 5.0]))
    assert t.tolist() == [[4, 9, 0], [5, 9, 0]]
    i = heron.tensor([1, 2, 3], dtype=heron.int32)
    i.fill_(7.9)
    assert i.tolist() == [7, 7, 7]
    b = heron.tensor([True, False])
    b.fill_(0)
    assert b.tolist() == [False, False]
    with pytest.raises(RuntimeError):
        t.copy_(heron.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError):
        t.fill_(heron.tensor([1.0, 2.0]))


@pytest.mark.parametrize("src", DTYPES, ids=str)
@pytest.mark.parametrize("dst", DTYPES, ids=str)
def test_copy_converts_dtype(src, dst):
    s = heron.tensor([[0, 1], [2, 1]], dtype=src)
    d = heron.tensor(np.zeros((2, 2))).to(dst)
    d.copy_(s)
    assert d.dtype == dst
    assert d.tolist() == s.to(dst).tolist()


def test_contains():
    t = heron.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert 5.0 in t and 3 in t and heron.tensor(2.0) in t
    assert 7.0 not in t
    with pytest.raises(RuntimeError):
        "a" in t


def test_max_min_return_named_pairs():
    a = np.array([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])
    t = heron.tensor(a)
    values, indices = t.max(1)
    assert values.tolist() == a.max(1).tolist() and indices.tolist() == a.argmax(1).tolist()
    r = heron.min(t, 0, keepdim=True)
    assert r.values.tolist() == a.min(0, keepdims=True).tolist()
    assert r.indices.tolist() == [[0, 1, 0]] and r.indices.dtype == heron.int64
    assert heron.max(t).item() == 5.0 and t.min().item() == 0.0
    assert heron.max(t, heron.tensor(2.5)).tolist() == np.maximum(a, 2.5).tolist()


# ------------------------------------------------------------------ handle lifetimes
def test_live_handles_return_to_baseline():
    gc.collect()
    base = heron.live_handles()
    a = np.arange(24.0).reshape(2, 3, 4)
    objs = []
    for _ in range(3):
        t = heron.tensor(a)
        objs += [t, t.T, t[0], t.view(-1), t.permute(2, 0, 1), t.expand(2, 2, 3, 4), t.clone(),
                 t.to(heron.float16), heron.from_numpy(a), heron.from_dlpack(a), t.numpy(), np.from_dlpack(t),
                 t.tolist(), repr(t), list(t), t.unsqueeze(0).squeeze(0), t.contiguous()]
        t.fill_(1.0)
        t[1] = 2.0
        del t
    assert heron.live_handles() > base
    del objs
    gc.collect()
    assert heron.live_handles() == base


def test_live_handles_after_errors():
    gc.collect()
    base = heron.live_handles()
    t = heron.tensor([1.0, 2.0])
    for _ in range(5):
        with pytest.raises(RuntimeError):
            t.view(3)
        with pytest.raises(IndexError):
            t[5]
        with pytest.raises((RuntimeError, ValueError)):
            t.item()
    del t
    gc.collect()
    assert heron.live_handles() == base
