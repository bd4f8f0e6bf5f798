"""The header itself (as cffi sees it), ABI versions and the version string."""
import re

import pytest

from conftest import skip_unless_ci



def test_every_header_function_is_exported(capi):
    assert len(capi.functions) >= 40
    missing = []
    for name in capi.functions:
        try:
            getattr(capi.lib, name)
        except (AttributeError, NotImplementedError):
            missing.append(name)
    assert not missing, f"declared in heron.h but not exported by libheron: {missing}"


def test_header_constants_are_python_constants(capi):
    C = capi.C
    assert C.HERON_OK == 0
    assert C.HERON_ABI_VERSION == (C.HERON_ABI_VERSION_MAJOR << 16) | C.HERON_ABI_VERSION_MINOR
    codes = [v for k, v in capi.consts.items() if k.startswith("HERON_ERR_")]
    assert len(codes) == len(set(codes)), "error codes must be distinct"
    assert 0 not in codes
    dtypes = [getattr(C, "HERON_" + n.upper()) for n in capi.dtype_codes]
    assert sorted(dtypes) == list(range(C.HERON_NUM_DTYPES))


def test_struct_layouts(capi):
    ffi = capi.ffi
    # heron_attr is documented as 32 bytes with no unions.
    assert ffi.sizeof("heron_attr") == 32
    assert ffi.offsetof("heron_attr", "i") == 8
    assert ffi.offsetof("heron_attr", "f") == 16
    assert ffi.offsetof("heron_attr", "p") == 24
    # DLPack layouts (DLTensor is 48 bytes on LP64, DLManagedTensorVersioned 80).
    assert ffi.sizeof("heron_DLDataType") == 4
    assert ffi.sizeof("heron_DLTensor") == 48
    assert ffi.sizeof("heron_DLManagedTensor") == 64
    assert ffi.sizeof("heron_DLManagedTensorVersioned") == 80
    assert ffi.offsetof("heron_DLManagedTensorVersioned", "dl_tensor") == 32


def test_preprocessor_handles_conditionals_and_expressions(capi):
    preprocess, eval_int_expr = capi.preprocess, capi.eval_int_expr
    src = """
    /* comment with #define HIDDEN 1 */
    #define A 3
    #define B ((A << 4) | 1u)  // trailing
    #ifdef __cplusplus
    extern "C" {
    #endif
    #if defined(_WIN32)
    #  define DECO __declspec(dllexport)
    #elif 0
    #  define DECO nope
    #else
    #  define DECO __attribute__((visibility("default")))
    #endif
    DECO int f(int x);
    #ifdef __cplusplus
    }
    #endif
    """
    code, consts, deco = preprocess(src)
    assert consts == {"A": 3, "B": 49}
    assert "DECO" in deco
    assert "HIDDEN" not in code and "extern" not in code and "}" not in code
    assert re.search(r"^\s*int f\(int x\);", code, re.M)
    assert eval_int_expr("(1 << 16) | 0", {}) == 65536
    with pytest.raises(ValueError):
        eval_int_expr("sizeof(int)", {})


def test_abi_version(capi):
    lib, C = capi.lib, capi.C
    v = lib.heron_abi_version()
    assert v >> 16 == C.HERON_ABI_VERSION_MAJOR
    assert v & 0xFFFF >= C.HERON_ABI_VERSION_MINOR


def test_version_string(capi):
    s = capi.ffi.string(capi.lib.heron_version_string()).decode()
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-].*)?", s), s


def test_abi_check_ok(capi):
    lib, C = capi.lib, capi.C
    assert lib.heron_abi_check(C.HERON_ABI_VERSION) == C.HERON_OK
    assert lib.heron_abi_check(lib.heron_abi_version()) == C.HERON_OK
    assert lib.heron_last_error_code() == C.HERON_OK
    # An older minor of the same major is served.
    lib_minor = lib.heron_abi_version() & 0xFFFF
    if lib_minor > 0:
        assert lib.heron_abi_check((C.HERON_ABI_VERSION_MAJOR << 16) | (lib_minor - 1)) == C.HERON_OK


@pytest.mark.parametrize("major_delta", [1, -1])
def test_abi_check_other_major(capi, major_delta):
    lib, C = capi.lib, capi.C
    major = C.HERON_ABI_VERSION_MAJOR + major_delta
    st = lib.heron_abi_check((major << 16) | C.HERON_ABI_VERSION_MINOR)
    msg = capi.expect(st, C.HERON_ERR_ABI_MISMATCH, f"{major}.{C.HERON_ABI_VERSION_MINOR}")
    assert "major" in msg.lower()
    assert f"{C.HERON_ABI_VERSION_MAJOR}." in msg


def test_abi_check_newer_minor(capi):
    lib, C = capi.lib, capi.C
    lib_minor = lib.heron_abi_version() & 0xFFFF
    hv = (C.HERON_ABI_VERSION_MAJOR << 16) | (lib_minor + 1)
    st = lib.heron_abi_check(hv)
    msg = capi.expect(st, C.HERON_ERR_ABI_MISMATCH, f"{C.HERON_ABI_VERSION_MAJOR}.{lib_minor + 1}",
                      f"{C.HERON_ABI_VERSION_MAJOR}.{lib_minor}")
    assert "newer" in msg.lower() or "only provides" in msg.lower()


def test_only_heron_symbols_are_exported(capi):
    """libheron exports the C ABI and nothing else (no C++ symbols, no third-party symbols)."""
    import os
    import shutil
    import subprocess
    if not shutil.which("nm"):
        skip_unless_ci("nm (binutils) is not installed")
    lib = os.environ.get("HERON_LIB") or os.path.join(os.path.dirname(__file__), "..", "..", "python", "heron", "lib",
                                                       "libheron.so")
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    foreign = [n for n in names if not n.startswith("heron_") and not n.startswith("HERON_")]
    assert foreign == [], f"non-ABI symbols exported: {foreign[:10]}"
    assert "heron_op_call" in names
