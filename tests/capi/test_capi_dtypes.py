"""dtype names, sizes, lookup by name and promotion."""
import itertools

import numpy as np
import pytest

NAMES = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64", "bool"]
SIZES = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1, "int32": 4, "int64": 8, "bool": 1}
NUMPY = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "int8": np.int8, "uint8": np.uint8,
         "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def test_names_and_sizes(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    assert C.HERON_NUM_DTYPES == len(NAMES)
    for name in NAMES:
        code = getattr(C, "HERON_" + name.upper())
        assert ffi.string(lib.heron_dtype_name(code)).decode() == name
        assert lib.heron_dtype_size(code) == SIZES[name]


@pytest.mark.parametrize("code", [-1, 9, 100, -(2**31), 2**31 - 1])
def test_bad_codes(capi, code):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    assert lib.heron_dtype_name(code) == ffi.NULL
    assert lib.heron_dtype_size(code) == 0
    out = ffi.new("int32_t*", 55)
    capi.expect(lib.heron_promote_types(code, C.HERON_FLOAT32, out), C.HERON_ERR_TYPE, str(code))
    capi.expect(lib.heron_promote_types(C.HERON_FLOAT32, code, out), C.HERON_ERR_TYPE, str(code))
    assert out[0] == 55


def test_from_name(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*")
    for name in NAMES:
        assert lib.heron_dtype_from_name(name.encode(), out) == C.HERON_OK
        assert out[0] == getattr(C, "HERON_" + name.upper())


@pytest.mark.parametrize("name", [b"", b"Float32", b"float", b"complex64", b"float32 ", b"int"])
def test_from_name_unknown(capi, name):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("int32_t*", 77)
    capi.expect(lib.heron_dtype_from_name(name, out), C.HERON_ERR_NOT_FOUND)
    assert out[0] == 77


def _promote(capi, a, b):
    out = capi.ffi.new("int32_t*")
    capi.check(capi.lib.heron_promote_types(capi.dtype_codes[a], capi.dtype_codes[b], out))
    return capi.code_to_name[out[0]]


def test_promote_matches_numpy_where_they_agree(capi):
    compared = 0
    for a, b in itertools.product(NUMPY, NUMPY):
        expected = np.promote_types(NUMPY[a], NUMPY[b])
        # Heron (as PyTorch) differs from numpy for int64 x uint64 (no uint64 here) and for
        # uint8 x int8 (numpy: int16, Heron: int32 -- there is no int16).
        if {a, b} == {"int8", "uint8"}:
            continue
        # numpy promotes float16 with int32/int64 to float64 and float32 with int32/int64 to
        # float64; PyTorch and Heron keep the float type.
        if (a in ("float16", "float32") and b in ("int32", "int64")) or (b in ("float16", "float32") and a in ("int32", "int64")):
            continue
        got = _promote(capi, a, b)
        assert got == np.dtype(expected).name, (a, b, got, expected)
        compared += 1
    assert compared >= 40


def test_promote_where_heron_differs_from_numpy(capi):
    assert _promote(capi, "int8", "uint8") == "int32"
    assert _promote(capi, "uint8", "int8") == "int32"
    assert _promote(capi, "float16", "int64") == "float16"
    assert _promote(capi, "float32", "int64") == "float32"
    assert _promote(capi, "float16", "int8") == "float16"
    assert _promote(capi, "float16", "uint8") == "float16"


def test_promote_bfloat16(capi):
    assert _promote(capi, "bfloat16", "bfloat16") == "bfloat16"
    assert _promote(capi, "bfloat16", "float16") == "float32"
    assert _promote(capi, "bfloat16", "float32") == "float32"
    assert _promote(capi, "bfloat16", "float64") == "float64"
    for i in ("bool", "int8", "uint8", "int32", "int64"):
        assert _promote(capi, "bfloat16", i) == "bfloat16"
        assert _promote(capi, i, "bfloat16") == "bfloat16"


def test_promote_is_symmetric(capi):
    for a, b in itertools.product(NAMES, NAMES):
        assert _promote(capi, a, b) == _promote(capi, b, a), (a, b)
