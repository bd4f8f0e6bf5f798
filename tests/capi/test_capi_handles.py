"""retain/release, the live-handle count, and NULL or released handles everywhere."""
import numpy as np
import pytest


def test_live_handle_count_follows_creation_and_release(capi):
    lib = capi.lib
    start = lib.heron_live_handles()
    a = capi.from_numpy(np.zeros(3))
    assert lib.heron_live_handles() == start + 1
    v = capi.call_ok("reshape", [a], ("ints", [3, 1]))[0]
    assert lib.heron_live_handles() == start + 2
    capi.release(a)
    assert lib.heron_live_handles() == start + 1  # the view keeps the storage, not the handle
    capi.release(v)
    assert lib.heron_live_handles() == start


def test_retain_release(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    start = lib.heron_live_handles()
    t = capi.from_numpy(np.arange(4, dtype=np.int32))
    for _ in range(3):
        assert lib.heron_tensor_retain(t) == C.HERON_OK
    for _ in range(3):
        lib.heron_tensor_release(t)
        assert lib.heron_live_handles() == start + 1
        np.testing.assert_array_equal(capi.to_numpy(t), np.arange(4))
    capi.release(t)
    assert lib.heron_live_handles() == start


def test_release_null_is_fine(capi):
    capi.lib.heron_tensor_release(capi.ffi.NULL)
    assert capi.lib.heron_last_error_code() == capi.C.HERON_OK


def test_null_handle_everywhere(capi):
    """Every entry point taking a tensor reports a NULL one as HERON_ERR_NULL_HANDLE."""
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    NULL = ffi.NULL
    x = capi.from_numpy(np.zeros(2, dtype=np.float32))
    i32, i64, dbl = ffi.new("int32_t*"), ffi.new("int64_t*"), ffi.new("double*")
    buf = ffi.new("int64_t[4]")
    dst = ffi.new("char[8]")
    calls = {
        "retain": lambda: lib.heron_tensor_retain(NULL),
        "ndim": lambda: lib.heron_tensor_ndim(NULL, i32),
        "shape": lambda: lib.heron_tensor_shape(NULL, buf, 4),
        "strides": lambda: lib.heron_tensor_strides(NULL, buf, 4),
        "offset": lambda: lib.heron_tensor_offset(NULL, i64),
        "numel": lambda: lib.heron_tensor_numel(NULL, i64),
        "dtype": lambda: lib.heron_tensor_dtype(NULL, i32),
        "device": lambda: lib.heron_tensor_device(NULL, ffi.new("const char**"), i32),
        "is_contiguous": lambda: lib.heron_tensor_is_contiguous(NULL, i32),
        "shares_storage a": lambda: lib.heron_tensor_shares_storage(NULL, x, i32),
        "shares_storage b": lambda: lib.heron_tensor_shares_storage(x, NULL, i32),
        "data_ptr": lambda: lib.heron_tensor_data_ptr(NULL, ffi.new("void**")),
        "to_host": lambda: lib.heron_tensor_to_host(NULL, dst, 8),
        "item_double": lambda: lib.heron_tensor_item_double(NULL, dbl),
        "item_int64": lambda: lib.heron_tensor_item_int64(NULL, i64),
        "to_dlpack": lambda: lib.heron_tensor_to_dlpack(NULL, ffi.new("heron_DLManagedTensorVersioned**")),
        "to_dlpack_legacy": lambda: lib.heron_tensor_to_dlpack_legacy(NULL, ffi.new("heron_DLManagedTensor**")),
        "from_dlpack": lambda: lib.heron_tensor_from_dlpack(NULL, ffi.new("heron_tensor**")),
        "from_dlpack_legacy": lambda: lib.heron_tensor_from_dlpack_legacy(NULL, ffi.new("heron_tensor**")),
        "op_name": lambda: lib.heron_op_name(NULL, ffi.new("const char**")),
        "op_schema_json": lambda: lib.heron_op_schema_json(NULL, ffi.new("const char**")),
        "op_call": lambda: lib.heron_op_call(NULL, NULL, 0, NULL, 0, NULL, 0, ffi.new("size_t*")),
    }
    for name, call in calls.items():
        lib.heron_clear_error()
        st = call()
        assert st == C.HERON_ERR_NULL_HANDLE, f"{name}: status {st}"
        assert lib.heron_last_error_code() == C.HERON_ERR_NULL_HANDLE, name
        assert "NULL" in capi.message(), f"{name}: {capi.message()!r}"
    assert lib.heron_live_handles() >= 1  # x is still alive


def test_released_handle_is_not_live(capi):
    """Best effort: a released handle whose memory is still mapped (and not yet reused) is reported
    as not live (HERON_ERR_NULL_HANDLE) rather than used. The allocator could in principle hand the
    block to another object in between; a second live tensor is kept so the freed block is less
    likely to be reused at once, and nothing is allocated between the release and the check."""
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    keep = capi.from_numpy(np.zeros(4, dtype=np.float32))
    a = np.arange(4, dtype=np.float32)
    out = ffi.new("heron_tensor**")
    shape = ffi.new("int64_t[]", [4])
    i32 = ffi.new("int32_t*", -5)
    capi.check(lib.heron_tensor_from_host(ffi.from_buffer(a), 16, C.HERON_FLOAT32, shape, 1, ffi.NULL, out))
    stale = out[0]
    lib.heron_tensor_release(stale)
    st = lib.heron_tensor_ndim(stale, i32)
    assert st == C.HERON_ERR_NULL_HANDLE, "a released handle was accepted as live"
    assert "released" in capi.message()
    assert i32[0] == -5
    # A second release of the dead handle is ignored (not a double free).
    before = lib.heron_live_handles()
    lib.heron_tensor_release(stale)
    assert lib.heron_live_handles() == before
    np.testing.assert_array_equal(capi.to_numpy(keep), np.zeros(4))


def test_op_call_returns_new_handles_even_for_identity(capi):
    """`contiguous` on a contiguous tensor and `cast` to the same dtype return the input itself, as a new reference."""
    lib, C = capi.lib, capi.C
    start = lib.heron_live_handles()
    t = capi.from_numpy(np.arange(3, dtype=np.int64))
    c = capi.call_ok("contiguous", [t])[0]
    k = capi.call_ok("cast", [t], ("dtype", C.HERON_INT64))[0]
    assert capi.shares(c, t) and capi.shares(k, t)
    capi.release(t)
    capi.release(c)
    np.testing.assert_array_equal(capi.to_numpy(k), [0, 1, 2])
    capi.release(k)
    assert lib.heron_live_handles() == start
