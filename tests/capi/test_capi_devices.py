"""Device kinds, counts and synchronization."""
import pytest


def _names(capi):
    lib, ffi = capi.lib, capi.ffi
    out = ffi.new("const char**")
    names = []
    for i in range(lib.heron_device_type_count()):
        capi.check(lib.heron_device_type_name(i, out))
        names.append(ffi.string(out[0]).decode())
    return names


def test_device_types(capi):
    lib = capi.lib
    n = lib.heron_device_type_count()
    assert n >= 1
    names = _names(capi)
    assert "cpu" in names
    assert len(set(names)) == n


@pytest.mark.parametrize("i", [-1, 1000, 2**31 - 1, -(2**31)])
def test_device_type_name_out_of_range(capi, i):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("const char**", ffi.cast("const char*", 0x10))
    capi.expect(lib.heron_device_type_name(i, out), C.HERON_ERR_INDEX, str(i))
    assert out[0] == ffi.cast("const char*", 0x10)
    capi.expect(lib.heron_device_type_name(lib.heron_device_type_count(), out), C.HERON_ERR_INDEX)


def test_device_count(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*", -1)
    capi.check(lib.heron_device_count(b"cpu", out))
    assert out[0] == 1
    for name in _names(capi):
        capi.check(lib.heron_device_count(name.encode(), out))
        assert out[0] >= 0


@pytest.mark.parametrize("name", [b"gpu", b"", b"CPU", b"cpu:0", b"cuda0"])
def test_device_count_unknown(capi, name):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*", -1)
    capi.expect(lib.heron_device_count(name, out), C.HERON_ERR_NOT_FOUND)
    assert out[0] == -1


def test_synchronize(capi):
    lib, C = capi.lib, capi.C
    assert lib.heron_device_synchronize(b"cpu") == C.HERON_OK
    assert lib.heron_device_synchronize(b"cpu:0") == C.HERON_OK


@pytest.mark.parametrize("name,code", [(b"gpu", "HERON_ERR_NOT_FOUND"), (b"cpu:1", "HERON_ERR_INVALID_ARGUMENT"),
                                       (b"cpu:", "HERON_ERR_INVALID_ARGUMENT"), (b"cpu:-1", "HERON_ERR_INVALID_ARGUMENT"),
                                       (b"", "HERON_ERR_NOT_FOUND")])
def test_synchronize_bad_names(capi, name, code):
    lib, C = capi.lib, capi.C
    capi.expect(lib.heron_device_synchronize(name), getattr(C, code))
