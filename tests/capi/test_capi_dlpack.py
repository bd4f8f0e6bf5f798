"""DLPack export and import, versioned (v1) and legacy: zero copy, ownership and deleters."""
import numpy as np
import pytest

KDLCPU = 1
DL_CODES = {  # heron dtype name -> (DLPack type code, bits)
    "float32": (2, 32), "float64": (2, 64), "float16": (2, 16), "bfloat16": (4, 16),
    "int8": (0, 8), "uint8": (1, 8), "int32": (0, 32), "int64": (0, 64), "bool": (6, 8),
}
KINDS = [
    ("heron_DLManagedTensorVersioned", "heron_tensor_to_dlpack", "heron_tensor_from_dlpack"),
    ("heron_DLManagedTensor", "heron_tensor_to_dlpack_legacy", "heron_tensor_from_dlpack_legacy"),
]


def _export(capi, t, kind):
    struct, to_fn, _ = kind
    out = capi.ffi.new(struct + "**")
    capi.check(getattr(capi.lib, to_fn)(t, out))
    return out[0]


def _import(capi, m, kind):
    _, _, from_fn = kind
    out = capi.ffi.new("heron_tensor**", capi.ffi.NULL)
    st = getattr(capi.lib, from_fn)(m, out)
    return st, out[0]


@pytest.mark.parametrize("kind", KINDS, ids=["versioned", "legacy"])
def test_export_fields(capi, kind):
    ffi = capi.ffi
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = capi.from_numpy(a)
    v = capi.call_ok("select", [capi.call_ok("transpose", [t], ("int", 0), ("int", 2))[0]], ("int", 1), ("int", 1))[0]
    # v = a.transpose(2, 1, 0)[:, 1, :] -> shape (4, 2), strides (1, 12), offset 4
    m = _export(capi, v, kind)
    try:
        if kind[0] == "heron_DLManagedTensorVersioned":
            assert (m.version.major, m.version.minor) == (1, 0)
            assert m.flags & capi.C.HERON_DLPACK_FLAG_IS_COPIED == 0
        dl = m.dl_tensor
        assert dl.device.device_type == KDLCPU and dl.device.device_id == 0
        assert dl.ndim == 2
        assert (dl.dtype.code, dl.dtype.bits, dl.dtype.lanes) == (2, 32, 1)
        assert [dl.shape[i] for i in range(2)] == [4, 2]
        assert [dl.strides[i] for i in range(2)] == [1, 12]
        assert int(ffi.cast("uintptr_t", dl.data)) + dl.byte_offset == capi.data_ptr(v)
        assert dl.byte_offset == 4 * 4
        assert m.deleter != ffi.NULL
    finally:
        m.deleter(m)


@pytest.mark.parametrize("kind", KINDS, ids=["versioned", "legacy"])
@pytest.mark.parametrize("name", list(DL_CODES))
def test_export_dtypes(capi, kind, name):
    code = capi.dtype_codes[name]
    t = capi.from_numpy(np.zeros(3, dtype=np.uint16 if name == "bfloat16" else name), dtype=code)
    m = _export(capi, t, kind)
    assert (m.dl_tensor.dtype.code, m.dl_tensor.dtype.bits, m.dl_tensor.dtype.lanes) == (*DL_CODES[name], 1)
    st, back = _import(capi, m, kind)
    capi.check(st)
    capi.track(back)
    assert capi.dtype(back) == code


@pytest.mark.parametrize("kind", KINDS, ids=["versioned", "legacy"])
def test_exported_deleter_frees(capi, kind):
    lib = capi.lib
    start = lib.heron_live_handles()
    a = np.arange(5, dtype=np.int64)
    t = capi.from_numpy(a)
    m = _export(capi, t, kind)
    capi.release(t)
    # The export keeps the data alive after the handle is gone.
    assert lib.heron_live_handles() == start + 1
    dl = m.dl_tensor
    view = np.frombuffer(capi.ffi.buffer(dl.data, 5 * 8), dtype=np.int64)
    np.testing.assert_array_equal(view, a)
    m.deleter(m)
    assert lib.heron_live_handles() == start


@pytest.mark.parametrize("kind", KINDS, ids=["versioned", "legacy"])
@pytest.mark.parametrize("view", ["contiguous", "transpose", "reversed", "select", "scalar", "empty"])
def test_round_trip_shares_memory(capi, kind, view):
    lib = capi.lib
    start = lib.heron_live_handles()
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    base = capi.from_numpy(a)
    if view == "contiguous":
        t, expected = base, a
    elif view == "transpose":
        t, expected = capi.call_ok("transpose", [base], ("int", 0), ("int", 1))[0], a.T
    elif view == "reversed":  # negative stride
        t, expected = capi.call_ok("slice", [base], ("int", 1), ("none", None), ("none", None), ("int", -1))[0], a[:, ::-1]
    elif view == "select":
        t, expected = capi.call_ok("select", [base], ("int", 0), ("int", 2))[0], a[2]
    elif view == "scalar":
        t = capi.call_ok("select", [capi.call_ok("select", [base], ("int", 0), ("int", 1))[0]], ("int", 0), ("int", 3))[0]
        expected = a[1, 3]
    else:
        t, expected = capi.call_ok("slice", [base], ("int", 0), ("int", 2), ("int", 2))[0], a[2:2]
    m = _export(capi, t, kind)
    st, back = _import(capi, m, kind)
    capi.check(st)
    capi.track(back)
    assert capi.shape(back) == expected.shape
    assert capi.strides(back) == capi.strides(t)
    if expected.size:
        assert capi.data_ptr(back) == capi.data_ptr(t)
    np.testing.assert_array_equal(capi.to_numpy(back), expected)
    # Writes through the import land in the original storage.
    if expected.size:
        src = capi.from_numpy(np.full(expected.shape, -1.0))
        capi.call_ok("copy_", [back, src])
        np.testing.assert_array_equal(capi.to_numpy(t), np.full(expected.shape, -1.0))
    # The imported tensor's death runs the exporter's deleter: everything is freed.
    capi._release_tracked()
    assert lib.heron_live_handles() == start


@pytest.mark.parametrize("kind", KINDS, ids=["versioned", "legacy"])
def test_import_outlives_original(capi, kind):
    lib = capi.lib
    start = lib.heron_live_handles()
    t = capi.from_numpy(np.arange(4, dtype=np.int32))
    m = _export(capi, t, kind)
    capi.release(t)
    st, back = _import(capi, m, kind)
    capi.check(st)
    np.testing.assert_array_equal(capi.to_numpy(back), np.arange(4))
    lib.heron_tensor_release(back)
    assert lib.heron_live_handles() == start


class Producer:
    """A DLPack producer written in Python: wraps a numpy array, counts deleter calls."""

    def __init__(self, capi, arr, versioned=True):
        ffi = capi.ffi
        self.arr = arr
        self.calls = 0
        struct = "heron_DLManagedTensorVersioned" if versioned else "heron_DLManagedTensor"
        self.m = ffi.new(struct + "*")
        self.shape = ffi.new("int64_t[]", list(arr.shape) or [0])
        self.strides = ffi.new("int64_t[]", [s // arr.itemsize for s in arr.strides] or [0])

        def deleter(p):
            self.calls += 1

        self.cb = ffi.callback(f"void({struct}*)", deleter)
        m = self.m
        if versioned:
            m.version.major, m.version.minor = 1, 0
        m.deleter = self.cb
        dl = m.dl_tensor
        dl.data = ffi.cast("void*", arr.ctypes.data)
        dl.device.device_type, dl.device.device_id = KDLCPU, 0
        dl.ndim = arr.ndim
        code, bits = DL_CODES["bool" if arr.dtype == np.bool_ else arr.dtype.name]
        dl.dtype.code, dl.dtype.bits, dl.dtype.lanes = code, bits, 1
        dl.shape = self.shape
        dl.strides = self.strides
        dl.byte_offset = 0


@pytest.mark.parametrize("versioned", [True, False])
def test_import_foreign_memory_zero_copy(capi, versioned):
    a = np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2]  # strided numpy view
    p = Producer(capi, a, versioned)
    st, t = _import(capi, p.m, KINDS[0 if versioned else 1])
    capi.check(st)
    assert capi.data_ptr(t) == a.ctypes.data
    np.testing.assert_array_equal(capi.to_numpy(t), a)
    a[1, 1] = 99
    assert capi.to_numpy(t)[1, 1] == 99
    v = capi.call_ok("transpose", [t], ("int", 0), ("int", 1))[0]
    capi.lib.heron_tensor_release(t)
    assert p.calls == 0
    capi.release(v)
    assert p.calls == 1


def test_import_null_strides_means_contiguous(capi):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = Producer(capi, a)
    p.m.dl_tensor.strides = capi.ffi.NULL
    st, t = _import(capi, p.m, KINDS[0])
    capi.check(st)
    assert capi.strides(t) == (3, 1)
    capi.lib.heron_tensor_release(t)
    assert p.calls == 1


def test_major_version_2_refused_caller_keeps_ownership(capi):
    lib, C = capi.lib, capi.C
    a = np.arange(4, dtype=np.float32)
    p = Producer(capi, a)
    p.m.version.major = 2
    st, t = _import(capi, p.m, KINDS[0])
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "2")
    assert t == capi.ffi.NULL
    assert p.calls == 0, "heron ran the deleter of a tensor it refused"
    # The caller still owns it: fixing the version and retrying works, and the deleter runs once.
    p.m.version.major = 1
    p.m.version.minor = 7  # a later minor of major 1 is fine
    st, t = _import(capi, p.m, KINDS[0])
    capi.check(st)
    lib.heron_tensor_release(t)
    assert p.calls == 1


def test_major_version_2_of_a_heron_export(capi):
    lib, C = capi.lib, capi.C
    start = lib.heron_live_handles()
    t = capi.from_numpy(np.arange(3, dtype=np.int8))
    m = _export(capi, t, KINDS[0])
    capi.release(t)
    m.version.major = 2
    st, _ = _import(capi, m, KINDS[0])
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT)
    assert lib.heron_live_handles() == start + 1  # still held by the export
    m.deleter(m)  # the caller's to free
    assert lib.heron_live_handles() == start


@pytest.mark.parametrize("versioned", [True, False])
@pytest.mark.parametrize("breakage,code", [
    ("complex", "HERON_ERR_TYPE"), ("lanes", "HERON_ERR_TYPE"), ("bits", "HERON_ERR_TYPE"),
    ("cuda", "HERON_ERR_INVALID_ARGUMENT"), ("ndim", "HERON_ERR_INVALID_ARGUMENT"),
    ("null_shape", "HERON_ERR_NULL_HANDLE"), ("byte_offset", "HERON_ERR_INVALID_ARGUMENT"),
    ("negative_dim", "HERON_ERR_INVALID_ARGUMENT"),
])
def test_import_errors_leave_ownership(capi, versioned, breakage, code):
    a = np.arange(4, dtype=np.float32)
    p = Producer(capi, a, versioned)
    dl = p.m.dl_tensor
    if breakage == "complex":
        dl.dtype.code = 5
    elif breakage == "lanes":
        dl.dtype.lanes = 4
    elif breakage == "bits":
        dl.dtype.bits = 24
    elif breakage == "cuda":
        dl.device.device_type = 2 if "cuda" not in _device_names(capi) else 12345
    elif breakage == "ndim":
        dl.ndim = -1
    elif breakage == "null_shape":
        dl.shape = capi.ffi.NULL
    elif breakage == "byte_offset":
        dl.byte_offset = 2
    elif breakage == "negative_dim":
        p.shape[0] = -4
    st, t = _import(capi, p.m, KINDS[0 if versioned else 1])
    capi.expect(st, getattr(capi.C, code))
    assert t == capi.ffi.NULL
    assert p.calls == 0
    # Failures outside an op name no op.
    assert capi.ffi.string(capi.lib.heron_last_error_op()) == b""


def _device_names(capi):
    out = capi.ffi.new("const char**")
    names = []
    for i in range(capi.lib.heron_device_type_count()):
        capi.check(capi.lib.heron_device_type_name(i, out))
        names.append(capi.ffi.string(out[0]).decode())
    return names


def test_null_arguments(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    t = capi.from_numpy(np.zeros(2))
    capi.expect(lib.heron_tensor_to_dlpack(t, ffi.NULL), C.HERON_ERR_NULL_HANDLE)
    capi.expect(lib.heron_tensor_to_dlpack_legacy(t, ffi.NULL), C.HERON_ERR_NULL_HANDLE)
    capi.expect(lib.heron_tensor_to_dlpack(ffi.NULL, ffi.new("heron_DLManagedTensorVersioned**")), C.HERON_ERR_NULL_HANDLE)
    capi.expect(lib.heron_tensor_to_dlpack_legacy(ffi.NULL, ffi.new("heron_DLManagedTensor**")), C.HERON_ERR_NULL_HANDLE)
    capi.expect(lib.heron_tensor_from_dlpack(ffi.NULL, ffi.new("heron_tensor**")), C.HERON_ERR_NULL_HANDLE)
    capi.expect(lib.heron_tensor_from_dlpack_legacy(ffi.NULL, ffi.new("heron_tensor**")), C.HERON_ERR_NULL_HANDLE)
    p = Producer(capi, np.zeros(2, dtype=np.float32))
    capi.expect(lib.heron_tensor_from_dlpack(p.m, ffi.NULL), C.HERON_ERR_NULL_HANDLE)
    q = Producer(capi, np.zeros(2, dtype=np.float32), versioned=False)
    capi.expect(lib.heron_tensor_from_dlpack_legacy(q.m, ffi.NULL), C.HERON_ERR_NULL_HANDLE)
    assert p.calls == 0 and q.calls == 0


def test_deleter_may_be_null(capi):
    """A producer with a NULL deleter (it keeps the memory alive itself) is accepted."""
    a = np.arange(3, dtype=np.int64)
    p = Producer(capi, a)
    p.m.deleter = capi.ffi.NULL
    st, t = _import(capi, p.m, KINDS[0])
    capi.check(st)
    np.testing.assert_array_equal(capi.to_numpy(t), a)
    capi.lib.heron_tensor_release(t)


def test_to_dlpack_refuses_more_than_64_dims(capi):
    """A view with 65 dims (unsqueeze) is refused cleanly instead of overflowing the export's arrays."""
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    x = capi.from_numpy(np.zeros(1, dtype=np.float32))
    t = x
    for _ in range(65):
        t = capi.call_ok("unsqueeze", [t], ("int", 0))[0]
    out = ffi.new("heron_DLManagedTensorVersioned**")
    capi.expect(lib.heron_tensor_to_dlpack(t, out), C.HERON_ERR_INVALID_ARGUMENT, "", "64 dims")
    assert out[0] == ffi.NULL
