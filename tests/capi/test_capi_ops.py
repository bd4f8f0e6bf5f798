"""Op introspection and heron_op_call: argument checking, attributes, outputs, and a few ops
against numpy (add, transpose, reshape, split, chunk, select, cast, copy_ and the view ops)."""
import json

import numpy as np
import pytest


# ------------------------------------------------------------------ introspection


def _schema(capi):
    return json.loads(capi.ffi.string(capi.lib.heron_ops_schema_json()).decode())


def test_ops_schema_json(capi):
    doc = _schema(capi)
    assert isinstance(doc["version"], int)
    assert len(doc["ops"]) == capi.lib.heron_op_count()
    names = [op["name"] for op in doc["ops"]]
    assert len(names) == len(set(names))
    for needed in ("add", "transpose", "reshape", "split", "chunk", "select", "cast", "copy_", "gelu"):
        assert needed in names


def test_op_at_find_name_and_schema(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    doc = _schema(capi)
    n = lib.heron_op_count()
    assert n > 50
    at = ffi.new("const heron_op**")
    found = ffi.new("const heron_op**")
    name = ffi.new("const char**")
    js = ffi.new("const char**")
    for i in range(n):
        capi.check(lib.heron_op_at(i, at))
        capi.check(lib.heron_op_name(at[0], name))
        s = ffi.string(name[0])
        capi.check(lib.heron_op_find(s, found))
        assert found[0] == at[0], s
        capi.check(lib.heron_op_schema_json(at[0], js))
        entry = json.loads(ffi.string(js[0]).decode())
        assert entry == doc["ops"][i], s
        assert entry["name"] == s.decode()


def test_op_schema_json_is_static(capi):
    lib, ffi = capi.lib, capi.ffi
    js1, js2 = ffi.new("const char**"), ffi.new("const char**")
    op = capi.op("gelu")
    capi.check(lib.heron_op_schema_json(op, js1))
    capi.check(lib.heron_op_schema_json(op, js2))
    assert js1[0] == js2[0]
    entry = json.loads(ffi.string(js1[0]).decode())
    attrs = {a["name"]: a for a in entry["attrs"]}
    assert attrs["approximate"]["enum"] == ["none", "tanh"]


@pytest.mark.parametrize("i", [-1, 100000, 2**31 - 1])
def test_op_at_out_of_range(capi, i):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("const heron_op**", ffi.cast("const heron_op*", 0x40))
    capi.expect(lib.heron_op_at(i, out), C.HERON_ERR_INDEX, str(i))
    capi.expect(lib.heron_op_at(lib.heron_op_count(), out), C.HERON_ERR_INDEX)
    assert out[0] == ffi.cast("const heron_op*", 0x40)


@pytest.mark.parametrize("name", [b"no_such_op", b"", b"Add", b"add ", b"heron_add"])
def test_op_find_unknown(capi, name):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    out = ffi.new("const heron_op**", ffi.cast("const heron_op*", 0x40))
    capi.expect(lib.heron_op_find(name, out), C.HERON_ERR_NOT_FOUND, name.decode())
    assert out[0] == ffi.cast("const heron_op*", 0x40)


def test_op_name_and_schema_null_out(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    op = capi.op("add")
    capi.expect(lib.heron_op_name(op, ffi.NULL), C.HERON_ERR_NULL_HANDLE)
    capi.expect(lib.heron_op_schema_json(op, ffi.NULL), C.HERON_ERR_NULL_HANDLE)


# ------------------------------------------------------------------ op_call: argument checks


def _raw_call(capi, name, inputs, attrs=None, n_attrs=0, outputs=None, capacity=4, n_inputs=None):
    ffi = capi.ffi
    ins = ffi.new("heron_tensor*[]", list(inputs) or [ffi.NULL]) if inputs is not None else ffi.NULL
    outs = ffi.new("heron_tensor*[]", max(capacity, 1)) if outputs is None else outputs
    n_out = ffi.new("size_t*", 777)
    st = capi.lib.heron_op_call(capi.op(name) if isinstance(name, str) else name, ins,
                                len(inputs or []) if n_inputs is None else n_inputs,
                                attrs if attrs is not None else ffi.NULL, n_attrs, outs, capacity, n_out)
    return st, outs, n_out[0]


def test_op_call_null_op(capi):
    ffi, C = capi.ffi, capi.C
    x = capi.from_numpy(np.zeros(2))
    st, _, n = _raw_call(capi, ffi.NULL, [x])
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "op")
    assert n == 777


def test_op_call_null_inputs(capi):
    C = capi.C
    st, _, _ = _raw_call(capi, "neg", None, n_inputs=1)
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "neg", "inputs")
    assert capi.last_error()[2] == "neg"


def test_op_call_null_attrs_and_outputs(capi):
    ffi, C = capi.ffi, capi.C
    x = capi.from_numpy(np.zeros((2, 2)))
    st, _, _ = _raw_call(capi, "transpose", [x], attrs=ffi.NULL, n_attrs=2)
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "attrs")
    attrs, n, keep = capi.attrs(("int", 0), ("int", 1))
    st, _, _ = _raw_call(capi, "transpose", [x], attrs=attrs, n_attrs=n, outputs=ffi.NULL, capacity=1)
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "outputs")


@pytest.mark.parametrize("name,n_in,expected", [("transpose", 2, "expected 1 input, got 2"), ("add", 1, "expected 2 inputs, got 1"),
                                                ("add", 3, "got 3"), ("neg", 0, "got 0")])
def test_op_call_wrong_input_count(capi, name, n_in, expected):
    x = capi.from_numpy(np.zeros((2, 2), dtype=np.float32))
    st, outs, _ = capi.call(name, [x] * n_in, ("int", 0), ("int", 1))
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, name, expected)
    assert capi.last_error()[2] == name


def test_op_call_empty_variadic(capi):
    """A variadic input may be empty as far as the ABI goes; concat itself needs one tensor."""
    st, outs, _ = capi.call("concat", [], ("int", 0))
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "concat", "non-empty")
    assert outs == []


def test_op_call_null_required_input(capi):
    ffi, C = capi.ffi, capi.C
    x = capi.from_numpy(np.zeros(3, dtype=np.float32))
    st, _, _ = capi.call("add", [x, ffi.NULL])
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "add", "input 1")
    st, _, _ = capi.call("concat", [x, ffi.NULL])  # variadic, not optional
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "concat", "input 1")


def test_op_call_too_many_attrs(capi):
    x = capi.from_numpy(np.zeros((2, 3)))
    st, _, _ = capi.call("transpose", [x], ("int", 0), ("int", 1), ("int", 0))
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "transpose", "3 attributes", "2")
    st, _, _ = capi.call("neg", [x], ("int", 0))
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "neg", "1 attributes")


@pytest.mark.parametrize("op,specs,attr", [
    ("transpose", [("str", "0"), ("int", 1)], "dim0"),
    ("transpose", [("int", 0), ("floats", [1.0])], "dim1"),
    ("transpose", [("int", 0), ("float", 0.5)], "dim1"),
    ("select", [("ints", [1, 2]), ("int", 0)], "dim"),
    ("gelu", [("int", 1)], "approximate"),
    ("cast", [("str", "float32")], "dtype"),
    ("reshape", [("str", "2,3")], "shape"),
    ("transpose", [("int", 0), (99, 0)], "dim1"),
])
def test_op_call_wrong_attr_kind(capi, op, specs, attr):
    x = capi.from_numpy(np.zeros((2, 3), dtype=np.float32))
    st, outs, _ = capi.call(op, [x], *specs)
    capi.expect(st, capi.C.HERON_ERR_TYPE, op, f"'{attr}'")
    assert capi.last_error()[2] == op
    assert outs == []


def test_op_call_none_for_required_attr(capi):
    x = capi.from_numpy(np.zeros((2, 3)))
    st, _, _ = capi.call("transpose", [x], ("none", None), ("int", 1))
    capi.expect(st, capi.C.HERON_ERR_TYPE, "transpose", "'dim0'", "none")


@pytest.mark.parametrize("specs,missing", [((), "dim0"), ((("int", 0),), "dim1"), ((None, ("int", 1)), "dim0")])
def test_op_call_missing_required_attr(capi, specs, missing):
    """Omitted trailing attributes and HERON_ATTR_DEFAULT are refused for attributes without a default."""
    x = capi.from_numpy(np.zeros((2, 3)))
    st, _, _ = capi.call("transpose", [x], *specs)
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "transpose", f"missing required attribute '{missing}'")


def test_op_call_enum_violation(capi):
    x = capi.from_numpy(np.zeros(3, dtype=np.float32))
    st, _, _ = capi.call("gelu", [x], ("str", "bogus"))
    msg = capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "gelu", "approximate", "bogus", "'none'", "'tanh'")
    assert capi.last_error()[2] == "gelu"


def test_op_call_string_with_explicit_length(capi):
    """A STRING attribute's length in field i is honoured (the bytes after it are not read)."""
    ffi, C = capi.ffi, capi.C
    x = capi.from_numpy(np.zeros(3, dtype=np.float32))
    attrs, n, keep = capi.attrs(("str", "bogusXYZ"))
    attrs[0].i = 5
    st, _, _ = _raw_call(capi, "gelu", [x], attrs=attrs, n_attrs=n)
    msg = capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "'bogus'")
    assert "XYZ" not in msg


def test_op_call_list_attr_with_null_pointer(capi):
    ffi, C = capi.ffi, capi.C
    x = capi.from_numpy(np.zeros(6))
    attrs, n, keep = capi.attrs(("ints", [2, 3]))
    attrs[0].p = ffi.NULL
    st, _, _ = _raw_call(capi, "reshape", [x], attrs=attrs, n_attrs=n)
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "reshape", "'shape'")
    attrs[0].i = -1
    st, _, _ = _raw_call(capi, "reshape", [x], attrs=attrs, n_attrs=n)
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "reshape", "'shape'")


def test_op_call_defaults(capi):
    """HERON_ATTR_DEFAULT and omitted trailing attributes take the schema's defaults."""
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    x = capi.from_numpy(a)
    # flatten: start_dim = 0, end_dim = -1
    for specs in [(), (None,), (None, None), (("int", 0),), (None, ("int", -1))]:
        out = capi.call_ok("flatten", [x], *specs)[0]
        np.testing.assert_array_equal(capi.to_numpy(out), a.reshape(-1))
    out = capi.call_ok("flatten", [x], ("int", 1))[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a.reshape(2, 12))
    out = capi.call_ok("flatten", [x], None, ("int", 1))[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a.reshape(6, 4))
    # slice: dim = 0, start/end = none, step = 1
    out = capi.call_ok("slice", [x], None, ("int", 1))[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a[1:])
    out = capi.call_ok("slice", [x], ("int", 2), ("none", None), ("int", 3), None)[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a[:, :, :3])
    # split: dim = 0 by default
    outs = capi.call_ok("split", [capi.from_numpy(np.arange(5))], ("int", 2))
    assert [capi.to_numpy(o).tolist() for o in outs] == [[0, 1], [2, 3], [4]]
    outs = capi.call_ok("split", [capi.from_numpy(np.arange(5))], ("int", 2), None, None)
    assert len(outs) == 3


@pytest.mark.parametrize("op,attrs,needed", [
    ("split", [("int", 2)], 3),
    ("split", [("none", None), ("ints", [1, 1, 1, 3])], 4),
    ("chunk", [("int", 3)], 3),
    ("chunk", [("int", 6)], 6),
])
def test_op_call_capacity_too_small(capi, op, attrs, needed):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    x = capi.from_numpy(np.arange(6, dtype=np.float32))
    start = lib.heron_live_handles()
    for capacity in (0, needed - 1):
        sentinel = ffi.cast("heron_tensor*", 0x5A5A50)
        outs = ffi.new("heron_tensor*[]", [sentinel] * max(capacity, 1))
        attr_arr, n, keep = capi.attrs(*attrs)
        st, _, n_out = _raw_call(capi, op, [x], attrs=attr_arr, n_attrs=n, outputs=outs, capacity=capacity)
        capi.expect(st, C.HERON_ERR_BUFFER_TOO_SMALL, op, str(needed))
        assert n_out == needed
        assert all(outs[i] == sentinel for i in range(max(capacity, 1))), "a handle was written"
        assert lib.heron_live_handles() == start, "outputs leaked"
    # capacity 0 with a NULL outputs array: the way to ask for the count
    attr_arr, n, keep = capi.attrs(*attrs)
    st, _, n_out = _raw_call(capi, op, [x], attrs=attr_arr, n_attrs=n, outputs=ffi.NULL, capacity=0)
    assert st == C.HERON_ERR_BUFFER_TOO_SMALL and n_out == needed
    st, outs, n_out = capi.call(op, [x], *attrs, capacity=needed)
    capi.check(st)
    assert n_out == needed == len(outs)


def test_op_call_capacity_larger_than_needed(capi):
    x = capi.from_numpy(np.arange(6))
    st, outs, n = capi.call("chunk", [x], ("int", 2), capacity=16)
    capi.check(st)
    assert n == 2


def test_op_call_shape_mismatch(capi):
    """add of [2, 3] and [4]: INVALID_ARGUMENT naming both shapes (needs `add`)."""
    x = capi.from_numpy(np.zeros((2, 3), dtype=np.float32))
    y = capi.from_numpy(np.zeros(4, dtype=np.float32))
    st, outs, _ = capi.call("add", [x, y])
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "add", "[2, 3]", "[4]")
    assert capi.last_error()[2] == "add"
    assert outs == []


@pytest.mark.parametrize("op,specs", [
    ("select", [("int", 5), ("int", 0)]),
    ("select", [("int", -4), ("int", 0)]),
    ("select", [("int", 1), ("int", 3)]),      # index out of range
    ("select", [("int", 1), ("int", -4)]),
    ("transpose", [("int", 0), ("int", 2)]),
    ("transpose", [("int", -3), ("int", 0)]),
    ("unsqueeze", [("int", 4)]),
    ("flatten", [("int", 0), ("int", 2)]),
    ("split", [("int", 1), None, ("int", 2)]),
    ("chunk", [("int", 2), ("int", -3)]),
    ("permute", [("ints", [0, 2])]),
])
def test_op_call_axis_out_of_range(capi, op, specs):
    x = capi.from_numpy(np.zeros((2, 3), dtype=np.float32))
    st, outs, _ = capi.call(op, [x], *specs)
    capi.expect(st, capi.C.HERON_ERR_INDEX, op)
    assert capi.last_error()[2] == op
    assert outs == []


def test_op_call_invalid_values(capi):
    C = capi.C
    x = capi.from_numpy(np.arange(6, dtype=np.float32))
    for op, specs, frag in [
        ("reshape", [("ints", [4, 2])], "[4, 2]"),
        ("reshape", [("ints", [-1, -1])], "-1"),
        ("split", [("none", None), ("ints", [2, 2])], "6"),
        ("chunk", [("int", 0)], "0"),
        ("slice", [("int", 0), ("none", None), ("none", None), ("int", 0)], "step"),
        ("expand", [("ints", [2, 5])], "5"),
        ("as_strided", [("ints", [3, 3]), ("ints", [3, 1])], ""),
    ]:
        st, outs, _ = capi.call(op, [x], *specs)
        capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, op, frag)
        assert outs == []


@pytest.mark.parametrize("size,stride,offset", [
    ([5], [2**62], 0),
    ([2, 2, 5], [2**62] * 3, 0),
    ([5, 2], [-(2**62), 1], 3),
    ([2**40, 2**40], [0, 0], 0),
    ([3], [1], 2**62),
])
def test_as_strided_huge_values_do_not_wrap_around(capi, size, stride, offset):
    """Bounds are checked without int64 overflow (the view is never read here, so a bad accept cannot crash)."""
    x = capi.from_numpy(np.zeros(4, dtype=np.float32))
    st, outs, _ = capi.call("as_strided", [x], ("ints", size), ("ints", stride), ("int", offset))
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "as_strided")


def test_op_call_variadic_optional_inputs(capi):
    """`index` takes NULL for a full slice in its variadic optional inputs (needs `index`)."""
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = capi.from_numpy(a)
    idx = capi.from_numpy(np.array([3, 0], dtype=np.int64))
    out = capi.call_ok("index", [x, capi.ffi.NULL, idx])[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a[:, [3, 0]])


def test_op_call_released_input(capi):
    """Best effort, as in test_capi_handles.py: a released input is reported, not used."""
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    keep = capi.from_numpy(np.zeros(2))
    a = np.zeros(2)
    out = ffi.new("heron_tensor**")
    capi.check(lib.heron_tensor_from_host(ffi.from_buffer(a), 16, C.HERON_FLOAT64, ffi.new("int64_t[]", [2]), 1, ffi.NULL, out))
    stale = out[0]
    lib.heron_tensor_release(stale)
    st, _, _ = capi.call("neg", [stale])
    capi.expect(st, C.HERON_ERR_NULL_HANDLE, "neg")


# ------------------------------------------------------------------ ops against numpy


def test_add(capi):
    C = capi.C
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([10, 20, 30], dtype=np.float32)
    x, y = capi.from_numpy(a), capi.from_numpy(b)
    out = capi.call_ok("add", [x, y])[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a + b)
    out = capi.call_ok("add", [x, y], ("int", 2))[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a + 2 * b)
    out = capi.call_ok("add", [x, y], ("float", -0.5))[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a - 0.5 * b)
    out = capi.call_ok("add", [x, y], None)[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a + b)
    # promotion: int32 + float64 -> float64, int8 + uint8 -> int32
    i = capi.from_numpy(np.array([1, 2, 3], dtype=np.int32))
    d = capi.from_numpy(np.array([0.5, 0.25, 0.125]))
    out = capi.call_ok("add", [i, d])[0]
    assert capi.dtype_name(out) == "float64"
    np.testing.assert_array_equal(capi.to_numpy(out), [1.5, 2.25, 3.125])
    s8 = capi.from_numpy(np.array([-100, 100], dtype=np.int8))
    u8 = capi.from_numpy(np.array([200, 200], dtype=np.uint8))
    out = capi.call_ok("add", [s8, u8])[0]
    assert capi.dtype_name(out) == "int32"
    np.testing.assert_array_equal(capi.to_numpy(out), [100, 300])
    # non-contiguous operands
    t = capi.call_ok("transpose", [capi.from_numpy(a.T.copy())], ("int", 0), ("int", 1))[0]
    out = capi.call_ok("add", [x, t])[0]
    np.testing.assert_array_equal(capi.to_numpy(out), a + a)


def test_transpose(capi):
    a = np.arange(24, dtype=np.int16 if False else np.int32).reshape(2, 3, 4)
    x = capi.from_numpy(a)
    for d0, d1 in [(0, 1), (0, 2), (1, 2), (-1, 0), (2, 2)]:
        out = capi.call_ok("transpose", [x], ("int", d0), ("int", d1))[0]
        np.testing.assert_array_equal(capi.to_numpy(out), np.swapaxes(a, d0, d1))
        assert capi.shares(out, x)


def test_reshape_view_or_copy(capi):
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    x = capi.from_numpy(a)
    v = capi.call_ok("reshape", [x], ("ints", [2, -1, 3]))[0]
    assert capi.shape(v) == (2, 2, 3)
    assert capi.shares(v, x)
    np.testing.assert_array_equal(capi.to_numpy(v), a.reshape(2, -1, 3))
    t = capi.call_ok("transpose", [x], ("int", 0), ("int", 1))[0]
    c = capi.call_ok("reshape", [t], ("ints", [12]))[0]
    np.testing.assert_array_equal(capi.to_numpy(c), a.T.reshape(12))
    assert not capi.shares(c, x)  # needed a copy
    st, _, _ = capi.call("view", [t], ("ints", [12]))
    assert st != capi.C.HERON_OK  # a view cannot express it
    s = capi.call_ok("reshape", [capi.from_numpy(np.array([5.0]))], ("ints", []))[0]
    assert capi.shape(s) == ()


@pytest.mark.parametrize("n,size,dim", [(10, 3, 0), (10, 5, 0), (10, 10, 0), (10, 20, 0), (6, 2, 1)])
def test_split_size(capi, n, size, dim):
    a = np.arange(n * 2, dtype=np.float32).reshape((n, 2) if dim == 0 else (2, n))
    x = capi.from_numpy(a)
    outs = capi.call_ok("split", [x], ("int", size), ("none", None), ("int", dim), capacity=32)
    expected = np.array_split(a, range(size, n, size), axis=dim)
    assert len(outs) == len(expected)
    for o, e in zip(outs, expected):
        np.testing.assert_array_equal(capi.to_numpy(o), e)
        assert capi.shares(o, x)


def test_split_sizes(capi):
    a = np.arange(14, dtype=np.int64).reshape(7, 2)
    x = capi.from_numpy(a)
    outs = capi.call_ok("split", [x], ("none", None), ("ints", [1, 0, 4, 2]))
    expected = np.split(a, [1, 1, 5])
    assert len(outs) == 4
    for o, e in zip(outs, expected):
        np.testing.assert_array_equal(capi.to_numpy(o), e)


@pytest.mark.parametrize("n,chunks,expected_sizes", [(6, 3, [2, 2, 2]), (5, 3, [2, 2, 1]), (6, 4, [2, 2, 2]), (3, 5, [1, 1, 1]),
                                                     (7, 1, [7])])
def test_chunk(capi, n, chunks, expected_sizes):
    """torch.chunk semantics: pieces of ceil(n / chunks), fewer when the size runs out."""
    a = np.arange(n, dtype=np.float32)
    x = capi.from_numpy(a)
    outs = capi.call_ok("chunk", [x], ("int", chunks), capacity=16)
    assert [capi.shape(o)[0] for o in outs] == expected_sizes
    np.testing.assert_array_equal(np.concatenate([capi.to_numpy(o) for o in outs]), a)


def test_chunk_dim(capi):
    a = np.arange(12, dtype=np.float32).reshape(2, 6)
    outs = capi.call_ok("chunk", [capi.from_numpy(a)], ("int", 3), ("int", -1))
    for o, e in zip(outs, np.split(a, 3, axis=1)):
        np.testing.assert_array_equal(capi.to_numpy(o), e)


def test_select(capi):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = capi.from_numpy(a)
    for dim in range(-3, 3):
        for index in (-1, 0, 1):
            out = capi.call_ok("select", [x], ("int", dim), ("int", index))[0]
            np.testing.assert_array_equal(capi.to_numpy(out), np.take(a, index, axis=dim))
            assert capi.shares(out, x)


@pytest.mark.parametrize("src,dst", [("float32", "int32"), ("float64", "int8"), ("int64", "float32"), ("float32", "bool"),
                                     ("bool", "float64"), ("int32", "uint8"), ("float32", "float16"), ("float64", "float32")])
def test_cast(capi, src, dst):
    a = np.array([-2.7, -1.0, 0.0, 0.5, 1.9, 3.0, 100.25])
    if src in ("int32", "int64"):
        a = np.array([-3, 0, 1, 5, 100, 127, 42])
    if src == "bool":
        a = np.array([True, False, True])
    a = a.astype(src)
    if dst == "uint8":
        a = np.abs(a)
    x = capi.from_numpy(a)
    out = capi.call_ok("cast", [x], ("dtype", capi.dtype_codes[dst]))[0]
    assert capi.dtype_name(out) == dst
    np.testing.assert_array_equal(capi.to_numpy(out), a.astype(dst))  # numpy truncates toward zero too
    assert not capi.shares(out, x)


def test_cast_bad_dtype(capi):
    x = capi.from_numpy(np.zeros(2))
    st, _, _ = capi.call("cast", [x], ("dtype", 42))
    capi.expect(st, capi.C.HERON_ERR_TYPE, "cast")


def test_copy_(capi):
    lib = capi.lib
    a = np.zeros((2, 3), dtype=np.float32)
    x = capi.from_numpy(a)
    src = capi.from_numpy(np.array([1.9, -2.5, 3.0]))  # float64, broadcast over rows
    out = capi.call_ok("copy_", [x, src])[0]
    assert capi.shares(out, x) and capi.data_ptr(out) == capi.data_ptr(x)
    assert capi.dtype_name(out) == "float32"
    np.testing.assert_array_equal(capi.to_numpy(x), np.broadcast_to(np.float32([1.9, -2.5, 3.0]), (2, 3)))
    capi.release(out)  # the new handle is a reference of its own
    np.testing.assert_array_equal(capi.to_numpy(x)[0], np.float32([1.9, -2.5, 3.0]))
    # into a non-contiguous view
    t = capi.call_ok("transpose", [x], ("int", 0), ("int", 1))[0]
    capi.call_ok("copy_", [t, capi.from_numpy(np.arange(6, dtype=np.int64).reshape(3, 2))])
    np.testing.assert_array_equal(capi.to_numpy(x), np.arange(6).reshape(3, 2).T)
    st, _, _ = capi.call("copy_", [x, capi.from_numpy(np.zeros(4))])
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "copy_")


def test_contiguous_and_clone(capi):
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    x = capi.from_numpy(a)
    t = capi.call_ok("transpose", [x], ("int", 0), ("int", 1))[0]
    c = capi.call_ok("contiguous", [t])[0]
    assert capi.is_contiguous(c) and not capi.shares(c, x)
    np.testing.assert_array_equal(capi.to_numpy(c), a.T)
    same = capi.call_ok("contiguous", [x])[0]
    assert capi.shares(same, x)
    k = capi.call_ok("clone", [x])[0]
    assert not capi.shares(k, x) and capi.is_contiguous(k)
    np.testing.assert_array_equal(capi.to_numpy(k), a)


def test_view_ops(capi):
    a = np.arange(24, dtype=np.float32).reshape(2, 1, 3, 4)
    x = capi.from_numpy(a)
    cases = [
        ("permute", [("ints", [3, 0, 2, 1])], a.transpose(3, 0, 2, 1)),
        ("view", [("ints", [6, 4])], a.reshape(6, 4)),
        ("squeeze", [], a.squeeze()),
        ("squeeze", [("ints", [1])], a.squeeze(1)),
        ("squeeze", [("ints", [0])], a),
        ("unsqueeze", [("int", -1)], a[..., None]),
        ("unsqueeze", [("int", 0)], a[None]),
        ("expand", [("ints", [5, 2, 3, 3, 4])], np.broadcast_to(a, (5, 2, 3, 3, 4))),
        ("expand", [("ints", [-1, 2, -1, -1])], np.broadcast_to(a, (2, 2, 3, 4))),
        ("flatten", [("int", 1), ("int", 2)], a.reshape(2, 3, 4)),
        ("slice", [("int", 3), ("int", 1), ("int", 100), ("int", 2)], a[:, :, :, 1:100:2]),
        ("slice", [("int", 2), ("int", -1), ("none", None), ("int", -1)], a[:, :, ::-1]),
        ("as_strided", [("ints", [3, 2]), ("ints", [1, 4]), ("int", 5)], np.lib.stride_tricks.as_strided(
            a.reshape(-1)[5:], (3, 2), (4, 16))),
    ]
    for op, specs, expected in cases:
        out = capi.call_ok(op, [x], *specs)[0]
        assert capi.shape(out) == expected.shape, op
        np.testing.assert_array_equal(capi.to_numpy(out), expected, err_msg=op)
        assert capi.shares(out, x), op
