"""The thread-local last error, and out-parameters left untouched on failure."""
import threading


def test_no_error_after_clear(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    lib.heron_clear_error()
    assert lib.heron_last_error_code() == C.HERON_OK
    assert ffi.string(lib.heron_last_error_message()) == b""
    assert ffi.string(lib.heron_last_error_op()) == b""


def test_failure_sets_code_and_message_then_clear(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*", -77)
    st = lib.heron_dtype_from_name(b"float128", out)
    capi.expect(st, C.HERON_ERR_NOT_FOUND, "float128")
    assert out[0] == -77, "out-param written on failure"
    assert ffi.string(lib.heron_last_error_op()) == b""  # not in an op
    lib.heron_clear_error()
    assert capi.last_error() == (C.HERON_OK, "", "")


def test_success_does_not_clear_last_error(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*")
    assert lib.heron_dtype_from_name(b"nope", out) == C.HERON_ERR_NOT_FOUND
    assert lib.heron_dtype_from_name(b"int64", out) == C.HERON_OK
    # The header: "the status of the last failed call ... since heron_clear_error()".
    assert lib.heron_last_error_code() == C.HERON_ERR_NOT_FOUND


def test_later_failure_replaces_earlier(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*")
    lib.heron_dtype_from_name(b"nope", out)
    assert lib.heron_promote_types(99, 0, out) == C.HERON_ERR_TYPE
    code, msg, _ = capi.last_error()
    assert code == C.HERON_ERR_TYPE and "99" in msg and "nope" not in msg


def test_op_error_records_op_name(capi):
    lib, C = capi.lib, capi.C
    x = capi.from_numpy([[1.0, 2.0]])
    st, outs, _ = capi.call("transpose", [x], ("int", 0), ("int", 7))
    assert st == C.HERON_ERR_INDEX and outs == []
    code, msg, op = capi.last_error()
    assert code == C.HERON_ERR_INDEX and op == "transpose" and msg.startswith("transpose")


def test_last_error_is_thread_local(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*")
    lib.heron_dtype_from_name(b"main-thread-error", out)
    seen = {}

    def worker():
        seen["before"] = capi.last_error()
        o = ffi.new("int32_t*")
        lib.heron_promote_types(-5, 0, o)
        seen["after"] = capi.last_error()

    th = threading.Thread(target=worker)
    th.start()
    th.join()
    assert seen["before"] == (C.HERON_OK, "", "")
    assert seen["after"][0] == C.HERON_ERR_TYPE
    code, msg, _ = capi.last_error()
    assert code == C.HERON_ERR_NOT_FOUND and "main-thread-error" in msg


def test_message_pointer_valid_until_next_failure(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*")
    lib.heron_dtype_from_name(b"first", out)
    p = lib.heron_last_error_message()
    lib.heron_dtype_from_name(b"int8", out)  # a success leaves it alone
    assert b"first" in ffi.string(p)


def test_out_params_untouched_on_failure(capi):
    """Every getter leaves its out-parameters as they were when it fails."""
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    NULL = ffi.NULL
    i32 = ffi.new("int32_t*", -1234)
    i64 = ffi.new("int64_t*", -1234)
    dbl = ffi.new("double*", -12.5)
    vp = ffi.new("void**", ffi.cast("void*", 0x1230))
    cp = ffi.new("const char**", ffi.cast("const char*", 0x4560))
    tp = ffi.new("heron_tensor**", ffi.cast("heron_tensor*", 0x7890))
    opp = ffi.new("const heron_op**", ffi.cast("const heron_op*", 0xABC0))
    arr = ffi.new("int64_t[4]", [-1, -2, -3, -4])
    x = capi.from_numpy([[1, 2, 3]])  # 2-d, 3 elements
    shape1 = ffi.new("int64_t[]", [2])

    calls = [
        lambda: lib.heron_tensor_ndim(NULL, i32),
        lambda: lib.heron_tensor_offset(NULL, i64),
        lambda: lib.heron_tensor_numel(NULL, i64),
        lambda: lib.heron_tensor_dtype(NULL, i32),
        lambda: lib.heron_tensor_is_contiguous(NULL, i32),
        lambda: lib.heron_tensor_shares_storage(x, NULL, i32),
        lambda: lib.heron_tensor_data_ptr(NULL, vp),
        lambda: lib.heron_tensor_device(NULL, cp, i32),
        lambda: lib.heron_tensor_item_double(x, dbl),
        lambda: lib.heron_tensor_item_int64(x, i64),
        lambda: lib.heron_tensor_shape(x, arr, 1),
        lambda: lib.heron_tensor_strides(x, arr, 1),
        lambda: lib.heron_dtype_from_name(b"complex64", i32),
        lambda: lib.heron_promote_types(0, 42, i32),
        lambda: lib.heron_device_type_name(-1, cp),
        lambda: lib.heron_device_count(b"tpu", i32),
        lambda: lib.heron_op_find(b"no_such_op", opp),
        lambda: lib.heron_op_at(-1, opp),
        lambda: lib.heron_tensor_from_host(NULL, 8, C.HERON_FLOAT32, shape1, 1, NULL, tp),
        lambda: lib.heron_tensor_from_external(NULL, 8, C.HERON_FLOAT32, shape1, NULL, 1, NULL, NULL, tp),
        lambda: lib.heron_tensor_from_scalar(NULL, -1, tp),
        lambda: lib.heron_tensor_from_dlpack(NULL, ffi.cast("heron_tensor**", tp)),
    ]
    for k, call in enumerate(calls):
        st = call()
        assert st != C.HERON_OK, f"call #{k} unexpectedly succeeded"
        assert lib.heron_last_error_code() == st, f"call #{k}"
        assert capi.message(), f"call #{k} left no message"
        assert i32[0] == -1234 and i64[0] == -1234 and dbl[0] == -12.5, f"call #{k} wrote an out-param"
        assert vp[0] == ffi.cast("void*", 0x1230) and cp[0] == ffi.cast("const char*", 0x4560), f"call #{k}"
        assert tp[0] == ffi.cast("heron_tensor*", 0x7890) and opp[0] == ffi.cast("const heron_op*", 0xABC0), f"call #{k}"
        assert list(arr) == [-1, -2, -3, -4], f"call #{k} wrote into the shape/strides buffer"


def test_no_exception_crosses_for_null_out(capi):
    """NULL out-pointers are reported, not dereferenced."""
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    NULL = ffi.NULL
    x = capi.from_numpy([1.0])
    for st in [
        lib.heron_tensor_ndim(x, NULL),
        lib.heron_tensor_offset(x, NULL),
        lib.heron_tensor_numel(x, NULL),
        lib.heron_tensor_dtype(x, NULL),
        lib.heron_tensor_is_contiguous(x, NULL),
        lib.heron_tensor_shares_storage(x, x, NULL),
        lib.heron_tensor_data_ptr(x, NULL),
        lib.heron_tensor_item_double(x, NULL),
        lib.heron_tensor_item_int64(x, NULL),
        lib.heron_tensor_shape(x, NULL, 1),
        lib.heron_tensor_strides(x, NULL, 1),
        lib.heron_dtype_from_name(b"int8", NULL),
        lib.heron_dtype_from_name(NULL, ffi.new("int32_t*")),
        lib.heron_promote_types(0, 0, NULL),
        lib.heron_device_type_name(0, NULL),
        lib.heron_device_count(b"cpu", NULL),
        lib.heron_device_count(NULL, ffi.new("int32_t*")),
        lib.heron_device_synchronize(NULL),
        lib.heron_op_find(b"add", NULL),
        lib.heron_op_find(NULL, ffi.new("const heron_op**")),
        lib.heron_op_at(0, NULL),
        lib.heron_tensor_from_host(NULL, 0, C.HERON_FLOAT32, NULL, 0, NULL, NULL),
        lib.heron_tensor_from_external(NULL, 0, C.HERON_FLOAT32, NULL, NULL, 0, NULL, NULL, NULL),
        lib.heron_tensor_from_scalar(capi.attrs(("int", 1))[0], -1, NULL),
        lib.heron_tensor_to_dlpack(x, NULL),
        lib.heron_tensor_to_dlpack_legacy(x, NULL),
    ]:
        assert st == C.HERON_ERR_NULL_HANDLE, capi.last_error()
