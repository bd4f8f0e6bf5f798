"""Fixtures for the C ABI suite: heron.h loaded through cffi in ABI mode.

The cdef is not written by hand: it is made from c_api/include/heron.h by a small preprocessor
(comments removed, #if/#ifdef evaluated as a C compiler would with __cplusplus and _WIN32 not
defined, #include dropped, HERON_API and `extern "C"` stripped), and every `#define HERON_X <int
expression>` becomes an attribute of `capi.C`. The tests therefore cannot drift from the header.

Run with:  HERON_LIB=$PWD/python/heron/lib/libheron.so .venv/bin/python -m pytest tests/capi -q
"""
from __future__ import annotations

import ast
import gc
import os
import pathlib
import re
import types

import numpy as np
import pytest

import cffi  # noqa: E402  (a dev dependency: requirements-dev.txt)

ROOT = pathlib.Path(__file__).resolve().parents[2]
INCLUDE_DIR = ROOT / "c_api" / "include"
HEADER = INCLUDE_DIR / "heron.h"
DEFAULT_LIB = ROOT / "python" / "heron" / "lib" / "libheron.so"


def lib_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("HERON_LIB") or DEFAULT_LIB)


# ---------------------------------------------------------------------------------------------
# A small C preprocessor, enough for heron.h


_TOKEN_RE = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|/\*.*?\*/|//[^\n]*', re.S)


def strip_comments(text: str) -> str:
    """Removes /* */ and // comments, leaving string and char literals alone."""

    def repl(m):
        s = m.group(0)
        if s.startswith("/*"):
            return " " + "\n" * s.count("\n")  # keep line numbers
        if s.startswith("//"):
            return ""
        return s

    return _TOKEN_RE.sub(repl, text)


_INT_LITERAL = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b")


def _c_int_expr_to_python(expr: str) -> str:
    expr = _INT_LITERAL.sub(lambda m: str(int(m.group(1), 0)), expr)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    return expr


def eval_int_expr(expr: str, consts: dict) -> int:
    """Evaluates a C integer constant expression over known macros; raises ValueError if it is not one."""
    py = _c_int_expr_to_python(expr)
    tree = ast.parse(py.strip(), mode="eval")
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Constant, ast.Name, ast.Load,
               ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ValueError(f"not an integer constant expression: {expr!r}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int):
            raise ValueError(f"not an integer constant expression: {expr!r}")
        if isinstance(node, ast.Name) and node.id not in consts:
            raise ValueError(f"unknown name {node.id!r} in {expr!r}")
    value = eval(compile(tree, "<heron.h>", "eval"), {"__builtins__": {}}, dict(consts))
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"not an integer: {expr!r}")
    return value


def _eval_condition(expr: str, macros: dict, consts: dict) -> bool:
    expr = re.sub(r"\bdefined\s*\(\s*(\w+)\s*\)", lambda m: "1" if m.group(1) in macros else "0", expr)
    expr = re.sub(r"\bdefined\s+(\w+)", lambda m: "1" if m.group(1) in macros else "0", expr)
    # As in C, identifiers that are not macros evaluate to 0.
    names = dict(consts)
    for ident in re.findall(r"\b[A-Za-z_]\w*\b", _c_int_expr_to_python(expr)):
        if ident not in ("and", "or", "not"):
            names.setdefault(ident, 0)
    return bool(eval_int_expr(expr, names))


def preprocess(text: str, predefined=()):
    """Returns (declarations for ffi.cdef, {macro: int value}, [names of macros without an int value])."""
    text = strip_comments(text)
    text = re.sub(r"\\\n", " ", text)  # line continuations
    macros: dict[str, str] = {name: "1" for name in predefined}
    consts: dict[str, int] = {}
    stack: list[list[bool]] = []  # [parent_active, some_branch_taken, active]
    out: list[str] = []

    def active() -> bool:
        return stack[-1][2] if stack else True

    for line in text.split("\n"):
        s = line.strip()
        if not s.startswith("#"):
            if active():
                out.append(line)
            continue
        m = re.match(r"#\s*(\w+)\s*(.*)$", s)
        if not m:
            continue  # a lone '#'
        d, rest = m.group(1), m.group(2).strip()
        if d in ("if", "ifdef", "ifndef"):
            parent = active()
            if d == "ifdef":
                cond = rest.split()[0] in macros
            elif d == "ifndef":
                cond = rest.split()[0] not in macros
            else:
                cond = parent and _eval_condition(rest, macros, consts)
            stack.append([parent, cond, parent and cond])
        elif d == "elif":
            parent, taken, _ = stack[-1]
            cond = (not taken) and parent and _eval_condition(rest, macros, consts)
            stack[-1] = [parent, taken or cond, parent and cond]
        elif d == "else":
            parent, taken, _ = stack[-1]
            stack[-1] = [parent, True, parent and not taken]
        elif d == "endif":
            stack.pop()
        elif not active():
            continue
        elif d == "define":
            dm = re.match(r"(\w+)(\([^)]*\))?\s*(.*)$", rest)
            name, params, value = dm.group(1), dm.group(2), dm.group(3).strip()
            macros[name] = value
            if params is None and value:
                try:
                    consts[name] = eval_int_expr(value, consts)
                except (ValueError, SyntaxError):
                    pass
        elif d == "undef":
            macros.pop(rest.split()[0], None)
            consts.pop(rest.split()[0], None)
        elif d == "error":
            raise RuntimeError(f"#error in header: {rest}")
        # include, pragma, line: nothing to do for cffi
    if stack:
        raise RuntimeError("unbalanced #if/#endif in header")

    code = "\n".join(out)
    code = re.sub(r'extern\s+"C"\s*\{', "", code)
    # Macros used as declaration decorations (HERON_API and the like) are dropped.
    attribute_macros = [n for n, v in macros.items() if n not in consts and n not in predefined]
    for name in attribute_macros:
        code = re.sub(r"\b%s\b" % re.escape(name), "", code)
    code = re.sub(r"\n\s*\n+", "\n", code).strip() + "\n"
    return code, consts, attribute_macros


def function_names(cdef: str) -> list[str]:
    """Names of the functions declared in the preprocessed header."""
    return sorted(set(re.findall(r"\b(heron_\w+)\s*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*;", cdef)))


# ---------------------------------------------------------------------------------------------
# numpy <-> Heron dtypes

HERON_TO_NUMPY = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "bfloat16": None,  # no numpy dtype; bytes are read as uint16
    "int8": np.int8,
    "uint8": np.uint8,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}


class Heron:
    """The loaded library plus small helpers that keep the tests short.

    Handles made by the helpers are tracked and released after the test (before the live-handle
    check); raw lib calls are never tracked.
    """

    def __init__(self, ffi, lib, consts, cdef, functions):
        self.ffi = ffi
        self.lib = lib
        self.C = types.SimpleNamespace(**consts)
        self.consts = consts
        self.cdef = cdef
        self.functions = functions
        self._tracked: list = []
        self.dtype_codes = {name: consts["HERON_" + name.upper()] for name in HERON_TO_NUMPY}
        self.code_to_name = {v: k for k, v in self.dtype_codes.items()}
        # The header tooling, for tests of it (test files do not import conftest).
        self.preprocess = preprocess
        self.eval_int_expr = eval_int_expr
        self.root = ROOT
        self.include_dir = INCLUDE_DIR
        self.lib_path = lib_path()

    # -- status and errors
    def last_error(self):
        lib, ffi = self.lib, self.ffi
        return (lib.heron_last_error_code(), ffi.string(lib.heron_last_error_message()).decode(),
                ffi.string(lib.heron_last_error_op()).decode())

    def message(self) -> str:
        return self.ffi.string(self.lib.heron_last_error_message()).decode()

    def check(self, status):
        if status != self.C.HERON_OK:
            code, msg, op = self.last_error()
            raise AssertionError(f"heron call failed: status {status} (last error {code}: {msg!r}, op {op!r})")
        return status

    def expect(self, status, code, *fragments):
        """Asserts a failure with `code` whose last-error message contains every fragment; returns the message."""
        ecode, msg, _ = self.last_error()
        assert status == code, f"expected status {code}, got {status} (message {msg!r})"
        assert ecode == code, f"last_error_code {ecode} != {code}"
        for f in fragments:
            assert f in msg, f"{f!r} not in error message {msg!r}"
        return msg

    # -- handle tracking
    def track(self, t):
        self._tracked.append(t)
        return t

    def release(self, t):
        """Releases a tracked handle now."""
        for i, x in enumerate(self._tracked):
            if x == t:
                del self._tracked[i]
                break
        self.lib.heron_tensor_release(t)

    def _release_tracked(self):
        while self._tracked:
            self.lib.heron_tensor_release(self._tracked.pop())

    # -- tensors
    def np_dtype_code(self, dtype) -> int:
        dtype = np.dtype(dtype)
        name = "bool" if dtype == np.bool_ else dtype.name
        return self.dtype_codes[name]

    def from_numpy(self, arr, dtype=None):
        """A new (tracked) tensor holding a copy of `arr`."""
        arr = np.asarray(arr)
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into 1-d)
            arr = arr.copy(order="C")
        code = self.np_dtype_code(arr.dtype) if dtype is None else dtype
        shape = self.ffi.new("int64_t[]", list(arr.shape) or [0])
        out = self.ffi.new("heron_tensor**")
        self.check(self.lib.heron_tensor_from_host(self.ffi.from_buffer(arr) if arr.nbytes else self.ffi.NULL,
                                                   arr.nbytes, code, shape, arr.ndim, self.ffi.NULL, out))
        return self.track(out[0])

    def ndim(self, t) -> int:
        out = self.ffi.new("int32_t*")
        self.check(self.lib.heron_tensor_ndim(t, out))
        return out[0]

    def shape(self, t) -> tuple:
        n = self.ndim(t)
        out = self.ffi.new("int64_t[]", max(n, 1))
        self.check(self.lib.heron_tensor_shape(t, out, n))
        return tuple(out[i] for i in range(n))

    def strides(self, t) -> tuple:
        n = self.ndim(t)
        out = self.ffi.new("int64_t[]", max(n, 1))
        self.check(self.lib.heron_tensor_strides(t, out, n))
        return tuple(out[i] for i in range(n))

    def offset(self, t) -> int:
        out = self.ffi.new("int64_t*")
        self.check(self.lib.heron_tensor_offset(t, out))
        return out[0]

    def dtype(self, t) -> int:
        out = self.ffi.new("int32_t*")
        self.check(self.lib.heron_tensor_dtype(t, out))
        return out[0]

    def dtype_name(self, t) -> str:
        return self.code_to_name[self.dtype(t)]

    def shares(self, a, b) -> bool:
        out = self.ffi.new("int32_t*")
        self.check(self.lib.heron_tensor_shares_storage(a, b, out))
        return bool(out[0])

    def is_contiguous(self, t) -> bool:
        out = self.ffi.new("int32_t*")
        self.check(self.lib.heron_tensor_is_contiguous(t, out))
        return bool(out[0])

    def data_ptr(self, t) -> int:
        out = self.ffi.new("void**")
        self.check(self.lib.heron_tensor_data_ptr(t, out))
        return int(self.ffi.cast("uintptr_t", out[0]))

    def to_numpy(self, t):
        """The tensor's values (row-major copy) as a numpy array; bfloat16 comes back as float32."""
        name = self.dtype_name(t)
        npdt = HERON_TO_NUMPY[name] or np.uint16
        arr = np.empty(self.shape(t), dtype=npdt)
        self.check(self.lib.heron_tensor_to_host(t, self.ffi.from_buffer(arr) if arr.nbytes else self.ffi.NULL, arr.nbytes))
        if name == "bfloat16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr

    # -- attributes
    def attrs(self, *specs):
        """Builds a heron_attr[] from (kind, value) pairs or None (= HERON_ATTR_DEFAULT).

        kind is one of 'int', 'float', 'bool', 'str', 'ints', 'floats', 'dtype', 'none', 'default',
        or a raw HERON_ATTR_* code with value an int. Buffers stay alive with the returned array.
        """
        C, ffi = self.C, self.ffi
        arr = ffi.new("heron_attr[]", max(len(specs), 1))
        keep = []
        for i, spec in enumerate(specs):
            a = arr[i]
            kind, value = spec if spec is not None else ("default", None)
            if kind == "int":
                a.kind, a.i = C.HERON_ATTR_INT, value
            elif kind == "float":
                a.kind, a.f = C.HERON_ATTR_FLOAT, value
            elif kind == "bool":
                a.kind, a.i = C.HERON_ATTR_BOOL, int(bool(value))
            elif kind == "str":
                buf = ffi.new("char[]", value.encode())
                keep.append(buf)
                a.kind, a.i, a.p = C.HERON_ATTR_STRING, -1, buf
            elif kind == "ints":
                buf = ffi.new("int64_t[]", list(value) or [0])
                keep.append(buf)
                a.kind, a.i, a.p = C.HERON_ATTR_INTS, len(value), buf
            elif kind == "floats":
                buf = ffi.new("double[]", list(value) or [0.0])
                keep.append(buf)
                a.kind, a.i, a.p = C.HERON_ATTR_FLOATS, len(value), buf
            elif kind == "dtype":
                a.kind, a.i = C.HERON_ATTR_DTYPE, value
            elif kind == "none":
                a.kind = C.HERON_ATTR_NONE
            elif kind == "default":
                a.kind = C.HERON_ATTR_DEFAULT
            else:
                a.kind, a.i = kind, value
        return arr, len(specs), keep

    # -- ops
    def op(self, name: str):
        out = self.ffi.new("const heron_op**")
        self.check(self.lib.heron_op_find(name.encode(), out))
        return out[0]

    def call(self, name, inputs, *attr_specs, capacity=8):
        """Runs op `name`; returns (status, [tracked output handles], n_outputs)."""
        ffi = self.ffi
        ins = ffi.new("heron_tensor*[]", list(inputs) or [ffi.NULL])
        attrs, n_attrs, keep = self.attrs(*attr_specs)
        outs = ffi.new("heron_tensor*[]", max(capacity, 1))
        n_out = ffi.new("size_t*", 12345)
        status = self.lib.heron_op_call(self.op(name), ins, len(inputs), attrs, n_attrs, outs, capacity, n_out)
        del keep
        if status != self.C.HERON_OK:
            return status, [], n_out[0]
        return status, [self.track(outs[i]) for i in range(n_out[0])], n_out[0]

    def call_ok(self, name, inputs, *attr_specs, capacity=8):
        status, outs, _ = self.call(name, inputs, *attr_specs, capacity=capacity)
        self.check(status)
        return outs


# ---------------------------------------------------------------------------------------------
# fixtures


def load_header():
    text = HEADER.read_text()
    return preprocess(text)


@pytest.fixture(scope="session")
def capi():
    path = lib_path()
    if not path.exists():
        pytest.fail(f"libheron not found at {path}: build it with `make build` or set HERON_LIB")
    cdef, consts, _ = load_header()
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    lib = ffi.dlopen(str(path))
    return Heron(ffi, lib, consts, cdef, function_names(cdef))


@pytest.fixture(autouse=True)
def _live_handles_balance(capi):
    """Every test leaves heron_live_handles() where it found it (tracked helper handles are released first)."""
    h = capi
    gc.collect()
    start = h.lib.heron_live_handles()
    h.lib.heron_clear_error()
    yield
    h._release_tracked()
    gc.collect()
    end = h.lib.heron_live_handles()
    assert end == start, f"live handles leaked: {start} before the test, {end} after"


def skip_unless_ci(reason):
    """Skips on a developer machine that lacks a toolchain; under CI=true a missing toolchain fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)
