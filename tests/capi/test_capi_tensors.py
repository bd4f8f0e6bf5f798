"""Tensor creation (from_host, from_external, from_scalar), properties, to_host and item."""
import numpy as np
import pytest

ALL_NP = [np.float32, np.float64, np.float16, np.int8, np.uint8, np.int32, np.int64, np.bool_]


def _new_out(capi):
    return capi.ffi.new("heron_tensor**", capi.ffi.NULL)


def _shape(capi, dims):
    return capi.ffi.new("int64_t[]", list(dims) or [0])


# ------------------------------------------------------------------ from_host


@pytest.mark.parametrize("npdt", ALL_NP)
def test_from_host_round_trip(capi, npdt):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4)) * 10).astype(npdt)
    t = capi.from_numpy(a)
    assert capi.shape(t) == (3, 4)
    assert capi.strides(t) == (4, 1)
    assert capi.offset(t) == 0
    assert capi.dtype(t) == capi.np_dtype_code(npdt)
    assert capi.is_contiguous(t)
    np.testing.assert_array_equal(capi.to_numpy(t), a)


def test_from_host_bfloat16_bits(capi):
    bits = np.array([0x3F80, 0xC000, 0x0000, 0x7F80], dtype=np.uint16)  # 1, -2, 0, inf
    t = capi.from_numpy(bits, dtype=capi.C.HERON_BFLOAT16)
    assert capi.dtype_name(t) == "bfloat16"
    np.testing.assert_array_equal(capi.to_numpy(t), np.array([1.0, -2.0, 0.0, np.inf], dtype=np.float32))
    out = capi.ffi.new("double*")
    capi.check(capi.lib.heron_tensor_item_double(capi.call_ok("select", [t], ("int", 0), ("int", 1))[0], out))
    assert out[0] == -2.0


def test_from_host_copies(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    a = np.arange(6, dtype=np.int32)
    t = capi.from_numpy(a)
    assert capi.data_ptr(t) != a.ctypes.data
    a[:] = -1
    np.testing.assert_array_equal(capi.to_numpy(t), np.arange(6))


def test_from_host_0d_and_empty(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    v = np.array(3.5, dtype=np.float64)
    out = _new_out(capi)
    capi.check(lib.heron_tensor_from_host(ffi.from_buffer(v), 8, C.HERON_FLOAT64, ffi.NULL, 0, ffi.NULL, out))
    t = capi.track(out[0])
    assert capi.ndim(t) == 0 and capi.shape(t) == ()
    n = ffi.new("int64_t*")
    capi.check(lib.heron_tensor_numel(t, n))
    assert n[0] == 1
    # ndim 0: shape and strides need no buffer.
    assert lib.heron_tensor_shape(t, ffi.NULL, 0) == C.HERON_OK
    assert lib.heron_tensor_strides(t, ffi.NULL, 0) == C.HERON_OK
    # An empty tensor needs no data.
    capi.check(lib.heron_tensor_from_host(ffi.NULL, 0, C.HERON_FLOAT32, _shape(capi, [0, 3]), 2, ffi.NULL, out))
    e = capi.track(out[0])
    assert capi.shape(e) == (0, 3)
    capi.check(lib.heron_tensor_numel(e, n))
    assert n[0] == 0
    assert capi.to_numpy(e).shape == (0, 3)


@pytest.mark.parametrize("device", [b"cpu", b"cpu:0"])
def test_from_host_device_strings(capi, device):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    a = np.ones(2, dtype=np.float32)
    out = _new_out(capi)
    capi.check(lib.heron_tensor_from_host(ffi.from_buffer(a), 8, C.HERON_FLOAT32, _shape(capi, [2]), 1, device, out))
    t = capi.track(out[0])
    name = ffi.new("const char**")
    idx = ffi.new("int32_t*", -1)
    capi.check(lib.heron_tensor_device(t, name, idx))
    assert ffi.string(name[0]) == b"cpu" and idx[0] == 0


def test_from_host_errors(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    a = np.zeros(6, dtype=np.float32)
    buf = ffi.from_buffer(a)
    s23 = _shape(capi, [2, 3])
    F32 = C.HERON_FLOAT32
    out = ffi.new("heron_tensor**", ffi.cast("heron_tensor*", 0x10))
    sentinel = out[0]
    cases = [
        # nbytes mismatch: message names the shape and the needed size
        (lambda: lib.heron_tensor_from_host(buf, 20, F32, s23, 2, ffi.NULL, out), C.HERON_ERR_INVALID_ARGUMENT, ["20", "24", "[2, 3]"]),
        (lambda: lib.heron_tensor_from_host(buf, 28, F32, s23, 2, ffi.NULL, out), C.HERON_ERR_INVALID_ARGUMENT, ["28", "24"]),
        (lambda: lib.heron_tensor_from_host(ffi.NULL, 24, F32, s23, 2, ffi.NULL, out), C.HERON_ERR_NULL_HANDLE, ["data"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, _shape(capi, [2, -3]), 2, ffi.NULL, out), C.HERON_ERR_INVALID_ARGUMENT, ["-3"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, 42, s23, 2, ffi.NULL, out), C.HERON_ERR_TYPE, ["42"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, -1, s23, 2, ffi.NULL, out), C.HERON_ERR_TYPE, ["-1"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, s23, -1, ffi.NULL, out), C.HERON_ERR_INVALID_ARGUMENT, ["ndim"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, s23, 65, ffi.NULL, out), C.HERON_ERR_INVALID_ARGUMENT, ["ndim", "65"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, ffi.NULL, 2, ffi.NULL, out), C.HERON_ERR_NULL_HANDLE, ["shape"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, s23, 2, b"gpu", out), C.HERON_ERR_NOT_FOUND, ["gpu", "cpu"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, s23, 2, b"", out), C.HERON_ERR_NOT_FOUND, []),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, s23, 2, b"cpu:1", out), C.HERON_ERR_INVALID_ARGUMENT, ["cpu:1"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, s23, 2, b"cpu:x", out), C.HERON_ERR_INVALID_ARGUMENT, ["cpu:x"]),
        (lambda: lib.heron_tensor_from_host(buf, 24, F32, _shape(capi, [2**40, 2**40]), 2, ffi.NULL, out),
         C.HERON_ERR_INVALID_ARGUMENT, []),
    ]
    for k, (call, code, frags) in enumerate(cases):
        capi.expect(call(), code, *frags)
        assert out[0] == sentinel, f"case {k} wrote *out"


def test_from_host_64_dims_is_the_limit(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    a = np.zeros(1, dtype=np.int8)
    out = _new_out(capi)
    capi.check(lib.heron_tensor_from_host(ffi.from_buffer(a), 1, C.HERON_INT8, _shape(capi, [1] * 64), 64, ffi.NULL, out))
    t = capi.track(out[0])
    assert capi.shape(t) == (1,) * 64


# ------------------------------------------------------------------ from_external


class Deleter:
    """An ffi.callback deleter that records its calls."""

    def __init__(self, capi):
        self.calls = []
        self.cb = capi.ffi.callback("void(void*)", lambda ctx: self.calls.append(int(capi.ffi.cast("uintptr_t", ctx))))


def _external(capi, arr, dims=None, strides=None, dtype=None, deleter=None, ctx=0, nbytes=None, ptr=None):
    lib, ffi = capi.lib, capi.ffi
    dims = arr.shape if dims is None else dims
    out = _new_out(capi)
    st = lib.heron_tensor_from_external(
        ffi.from_buffer(arr) if ptr is None else ptr,
        arr.nbytes if nbytes is None else nbytes,
        capi.np_dtype_code(arr.dtype) if dtype is None else dtype,
        _shape(capi, dims),
        ffi.new("int64_t[]", list(strides)) if strides is not None else ffi.NULL,
        len(dims),
        deleter.cb if deleter else ffi.NULL,
        ffi.cast("void*", ctx),
        out,
    )
    return st, out[0]


def test_from_external_is_zero_copy(capi):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    st, t = _external(capi, a)
    capi.check(st)
    capi.track(t)
    assert capi.data_ptr(t) == a.ctypes.data
    a[1, 2] = 100.0
    assert capi.to_numpy(t)[1, 2] == 100.0
    # ... and writes through heron (copy_) land in the numpy buffer.
    src = capi.from_numpy(np.full((2, 3), 7.0, dtype=np.float32))
    capi.call_ok("copy_", [t, src])
    np.testing.assert_array_equal(a, np.full((2, 3), 7.0))


def test_from_external_strides(capi):
    base = np.arange(12, dtype=np.int64)
    # A transposed [4, 3] view of a row-major [3, 4] buffer.
    st, t = _external(capi, base, dims=[4, 3], strides=[1, 4])
    capi.check(st)
    capi.track(t)
    assert capi.strides(t) == (1, 4)
    assert not capi.is_contiguous(t)
    np.testing.assert_array_equal(capi.to_numpy(t), base.reshape(3, 4).T)
    # Zero strides: a row broadcast over 5 rows, from 3 elements.
    row = np.array([1, 2, 3], dtype=np.int32)
    st, b = _external(capi, row, dims=[5, 3], strides=[0, 1])
    capi.check(st)
    capi.track(b)
    assert capi.strides(b) == (0, 1)
    np.testing.assert_array_equal(capi.to_numpy(b), np.broadcast_to(row, (5, 3)))
    # Every other element.
    st, e = _external(capi, base, dims=[6], strides=[2])
    capi.check(st)
    capi.track(e)
    np.testing.assert_array_equal(capi.to_numpy(e), base[::2])


def test_from_external_negative_stride_below_data_is_refused(capi):
    """Elements reached must lie in [data, data + nbytes): a negative stride from the base reaches below it."""
    base = np.arange(4, dtype=np.float64)
    st, t = _external(capi, base, dims=[4], strides=[-1])
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "outside")


@pytest.mark.parametrize("dims,strides", [([5], [2**62]), ([3], [2**62]), ([2, 2, 5], [2**62, 2**62, 2**62]),
                                          ([5, 2], [-(2**62), 1]), ([2**31, 2**31], [2**32, 2**32])])
def test_from_external_huge_strides_do_not_wrap_around(capi, dims, strides):
    """(size - 1) * stride overflowing int64 must not wrap into the buffer's range."""
    a = np.zeros(4, dtype=np.float32)
    d = Deleter(capi)
    st, t = _external(capi, a, dims=dims, strides=strides, deleter=d)
    if st == capi.C.HERON_OK:
        capi.lib.heron_tensor_release(t)
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT)
    assert d.calls == []


def test_from_external_deleter_called_once_when_last_view_dies(capi):
    lib, C = capi.lib, capi.C
    a = np.arange(6, dtype=np.float32)
    d = Deleter(capi)
    st, t = _external(capi, a, deleter=d, ctx=0xC0FFEE)
    capi.check(st)
    v = capi.call_ok("reshape", [t], ("ints", [2, 3]))[0]
    w = capi.call_ok("select", [v], ("int", 0), ("int", 1))[0]
    assert capi.shares(t, w)
    lib.heron_tensor_release(t)
    assert d.calls == []
    capi.check(lib.heron_tensor_retain(v))
    capi.release(v)
    assert d.calls == []
    lib.heron_tensor_release(v)  # the extra reference
    assert d.calls == []
    np.testing.assert_array_equal(capi.to_numpy(w), [3, 4, 5])
    capi.release(w)
    assert d.calls == [0xC0FFEE]


def test_from_external_null_deleter(capi):
    a = np.arange(3, dtype=np.int8)
    st, t = _external(capi, a)
    capi.check(st)
    capi.lib.heron_tensor_release(t)


def test_from_external_errors_do_not_call_deleter(capi):
    C, ffi = capi.C, capi.ffi
    d = Deleter(capi)
    raw = np.zeros(64, dtype=np.uint8)
    addr = raw.ctypes.data
    aligned = (addr + 15) // 16 * 16
    # misaligned float32 pointer
    st, _ = _external(capi, raw[:16], dims=[3], dtype=C.HERON_FLOAT32, deleter=d, nbytes=12,
                      ptr=ffi.cast("void*", aligned + 1))
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "aligned")
    # too small: 6 float32 need 24 bytes
    a = np.zeros(6, dtype=np.float32)
    st, _ = _external(capi, a, deleter=d, nbytes=20)
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "20")
    # strides reaching past the end
    st, _ = _external(capi, a, dims=[3, 3], strides=[3, 1], deleter=d)
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "outside")
    # NULL data for a non-empty tensor
    st, _ = _external(capi, a, deleter=d, ptr=ffi.NULL)
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "data")
    # bad dtype, bad ndim via negative dim
    st, _ = _external(capi, a, dtype=99, deleter=d)
    capi.expect(st, C.HERON_ERR_TYPE)
    st, _ = _external(capi, a, dims=[-6], deleter=d)
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT)
    assert d.calls == []


def test_from_external_empty_with_null_data(capi):
    ffi = capi.ffi
    d = Deleter(capi)
    st, t = _external(capi, np.zeros(0, dtype=np.float32), dims=[0, 4], ptr=ffi.NULL, nbytes=0, deleter=d, ctx=5)
    capi.check(st)
    assert capi.shape(t) == (0, 4)
    capi.lib.heron_tensor_release(t)
    assert d.calls == [5]


# ------------------------------------------------------------------ from_scalar


def _scalar(capi, spec, dtype=-1):
    out = _new_out(capi)
    attrs, _, keep = capi.attrs(spec)
    st = capi.lib.heron_tensor_from_scalar(attrs, dtype, out)
    return st, (capi.track(out[0]) if st == capi.C.HERON_OK else None)


def test_from_scalar_wrapped_dtypes(capi):
    for spec, name, value in [(("int", -7), "int64", -7), (("float", 2.5), "float64", 2.5), (("bool", True), "bool", True)]:
        st, t = _scalar(capi, spec)
        capi.check(st)
        assert capi.ndim(t) == 0
        assert capi.dtype_name(t) == name
        assert capi.to_numpy(t)[()] == value


def test_from_scalar_explicit_dtype(capi):
    C = capi.C
    cases = [
        (("int", 3), C.HERON_FLOAT32, 3.0),
        (("float", 2.7), C.HERON_INT32, 2),
        (("float", -2.7), C.HERON_INT64, -2),
        (("float", 1.5), C.HERON_FLOAT16, 1.5),
        (("bool", True), C.HERON_FLOAT64, 1.0),
        (("int", 0), C.HERON_BOOL, False),
        (("int", 200), C.HERON_UINT8, 200),
        (("float", 3.0), C.HERON_BFLOAT16, 3.0),
    ]
    for spec, dtype, expected in cases:
        st, t = _scalar(capi, spec, dtype)
        capi.check(st)
        assert capi.dtype(t) == dtype
        assert capi.to_numpy(t)[()] == expected, (spec, dtype)


def test_from_scalar_errors(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    st, _ = _scalar(capi, ("str", "1"))
    capi.expect(st, C.HERON_ERR_TYPE, "kind")
    st, _ = _scalar(capi, ("ints", [1]))
    capi.expect(st, C.HERON_ERR_TYPE)
    st, _ = _scalar(capi, ("int", 1), 42)
    capi.expect(st, C.HERON_ERR_TYPE, "42")
    st, _ = _scalar(capi, ("int", 1), -2)
    capi.expect(st, C.HERON_ERR_TYPE)
    capi.expect(lib.heron_tensor_from_scalar(ffi.NULL, -1, _new_out(capi)), C.HERON_ERR_NULL_HANDLE)


def test_wrapped_number_promotes_as_python_scalar(capi):
    """int tensor + 2.5 -> float32; float16 tensor + 2.0 -> float16; int32 tensor + 3 -> int32 (needs `add`)."""
    i32 = capi.from_numpy(np.array([1, 2], dtype=np.int32))
    f16 = capi.from_numpy(np.array([1, 2], dtype=np.float16))
    _, w_f = _scalar(capi, ("float", 2.5))
    _, w_i = _scalar(capi, ("int", 3))
    r = capi.call_ok("add", [i32, w_f])[0]
    assert capi.dtype_name(r) == "float32"
    np.testing.assert_array_equal(capi.to_numpy(r), [3.5, 4.5])
    r = capi.call_ok("add", [f16, w_f])[0]
    assert capi.dtype_name(r) == "float16"
    r = capi.call_ok("add", [i32, w_i])[0]
    assert capi.dtype_name(r) == "int32"
    np.testing.assert_array_equal(capi.to_numpy(r), [4, 5])


def test_explicit_dtype_scalar_is_a_0d_tensor_not_a_wrapped_number(capi):
    """A 0-d float64 tensor (explicit dtype) lifts an int32 tensor to float64, a wrapped float only to float32."""
    C = capi.C
    i32 = capi.from_numpy(np.array([1, 2], dtype=np.int32))
    _, t = _scalar(capi, ("float", 2.5), C.HERON_FLOAT64)
    r = capi.call_ok("add", [i32, t])[0]
    assert capi.dtype_name(r) == "float64"
    _, w = _scalar(capi, ("float", 2.5))
    r = capi.call_ok("add", [i32, w])[0]
    assert capi.dtype_name(r) == "float32"


# ------------------------------------------------------------------ properties


def test_properties_of_views(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    t = capi.from_numpy(a)
    v = capi.call_ok("transpose", [t], ("int", 0), ("int", 2))[0]
    assert capi.shape(v) == (4, 3, 2)
    assert capi.strides(v) == (1, 4, 12)
    assert not capi.is_contiguous(v)
    assert capi.shares(t, v) and capi.shares(v, t)
    assert capi.data_ptr(v) == capi.data_ptr(t)
    s = capi.call_ok("select", [t], ("int", 1), ("int", 2))[0]
    assert capi.shape(s) == (2, 4)
    assert capi.offset(s) == 8
    assert capi.data_ptr(s) == capi.data_ptr(t) + 8 * 8
    n = ffi.new("int64_t*")
    capi.check(lib.heron_tensor_numel(s, n))
    assert n[0] == 8
    other = capi.from_numpy(a)
    assert not capi.shares(t, other)
    assert capi.shares(t, t)


def test_shape_capacity(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    t = capi.from_numpy(np.zeros((2, 3, 4), dtype=np.int8))
    buf = ffi.new("int64_t[8]", [-9] * 8)
    capi.expect(lib.heron_tensor_shape(t, buf, 2), C.HERON_ERR_BUFFER_TOO_SMALL, "3")
    capi.expect(lib.heron_tensor_strides(t, buf, 0), C.HERON_ERR_BUFFER_TOO_SMALL)
    assert list(buf) == [-9] * 8
    capi.check(lib.heron_tensor_shape(t, buf, 8))
    assert list(buf)[:4] == [2, 3, 4, -9]
    capi.check(lib.heron_tensor_strides(t, buf, 8))
    assert list(buf)[:4] == [12, 4, 1, -9]


def test_device_optional_out_params(capi):
    lib, ffi = capi.lib, capi.ffi
    t = capi.from_numpy(np.zeros(1, dtype=np.int8))
    capi.check(lib.heron_tensor_device(t, ffi.NULL, ffi.NULL))
    name = ffi.new("const char**")
    capi.check(lib.heron_tensor_device(t, name, ffi.NULL))
    assert ffi.string(name[0]) == b"cpu"


# ------------------------------------------------------------------ to_host and item


def test_to_host_wrong_nbytes(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    t = capi.from_numpy(np.arange(6, dtype=np.float32))
    dst = np.full(8, -1.0, dtype=np.float32)
    for n in (0, 20, 28, 32):
        capi.expect(lib.heron_tensor_to_host(t, ffi.from_buffer(dst), n), C.HERON_ERR_INVALID_ARGUMENT, str(n), "24")
    assert (dst == -1.0).all()
    capi.expect(lib.heron_tensor_to_host(t, ffi.NULL, 24), C.HERON_ERR_NULL_HANDLE)
    # An empty tensor may be read into NULL.
    e = capi.from_numpy(np.zeros((0,), dtype=np.float32))
    assert lib.heron_tensor_to_host(e, ffi.NULL, 0) == C.HERON_OK


def test_to_host_non_contiguous_views_row_major(capi):
    a = np.arange(60, dtype=np.int32).reshape(3, 4, 5)
    t = capi.from_numpy(a)
    cases = [
        (capi.call_ok("transpose", [t], ("int", 0), ("int", 2))[0], a.transpose(2, 1, 0)),
        (capi.call_ok("permute", [t], ("ints", [1, 2, 0]))[0], a.transpose(1, 2, 0)),
        (capi.call_ok("slice", [t], ("int", 2), ("int", 4), ("int", 0), ("int", -2))[0], a[:, :, 4:0:-2]),
        (capi.call_ok("select", [t], ("int", 1), ("int", -1))[0], a[:, -1, :]),
        (capi.call_ok("expand", [capi.call_ok("select", [t], ("int", 0), ("int", 1))[0]], ("ints", [2, 4, 5]))[0],
         np.broadcast_to(a[1], (2, 4, 5))),
    ]
    for v, expected in cases:
        got = capi.to_numpy(v)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("npdt,value", [(np.float32, -2.75), (np.float64, 1e300), (np.int64, -(2**62)), (np.int8, -128),
                                        (np.uint8, 255), (np.bool_, True), (np.float16, 0.5), (np.int32, 7)])
def test_item(capi, npdt, value):
    lib, ffi = capi.lib, capi.ffi
    t = capi.from_numpy(np.array([[value]], dtype=npdt))
    d = ffi.new("double*")
    i = ffi.new("int64_t*")
    capi.check(lib.heron_tensor_item_double(t, d))
    assert d[0] == float(np.array(value, dtype=npdt))
    capi.check(lib.heron_tensor_item_int64(t, i))
    if npdt in (np.float32, np.float16):
        assert i[0] == int(value)  # truncation toward zero
    elif npdt is not np.float64:
        assert i[0] == int(value)


def test_item_truncates_toward_zero(capi):
    lib, ffi = capi.lib, capi.ffi
    i = ffi.new("int64_t*")
    for v, expected in [(-2.7, -2), (2.7, 2), (-0.5, 0)]:
        t = capi.from_numpy(np.array(v))
        capi.check(lib.heron_tensor_item_int64(t, i))
        assert i[0] == expected


def test_item_needs_one_element(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    d = ffi.new("double*", 9.0)
    i = ffi.new("int64_t*", 9)
    for arr in (np.zeros(2), np.zeros((2, 2)), np.zeros(0)):
        t = capi.from_numpy(arr)
        capi.expect(lib.heron_tensor_item_double(t, d), C.HERON_ERR_INVALID_ARGUMENT, str(arr.size))
        capi.expect(lib.heron_tensor_item_int64(t, i), C.HERON_ERR_INVALID_ARGUMENT, str(arr.size))
    assert d[0] == 9.0 and i[0] == 9
