"""Every error class reaches Python as the right exception, with a message naming the op and the
problem; failing in-place ops leave their tensor unchanged."""
import gc
import operator
import re

import numpy as np
import pytest

import heron


def T(a, dtype=None):
    return heron.tensor(np.asarray(a), dtype=dtype)


@pytest.fixture
def x():
    return T(np.arange(6.0).reshape(2, 3))


@pytest.fixture
def xi():
    return T(np.arange(6).reshape(2, 3))


def raises(exc, *words):
    """pytest.raises that also checks that every word appears in the message (case-insensitive)."""
    pattern = "".join(f"(?=[\\s\\S]*{re.escape(w)})" for w in words)
    return pytest.raises(exc, match=re.compile(pattern, re.IGNORECASE))


# ------------------------------------------------------------------ the exception hierarchy
def test_invalid_argument_error_is_value_and_runtime_error():
    assert issubclass(heron.InvalidArgumentError, ValueError)
    assert issubclass(heron.InvalidArgumentError, RuntimeError)
    assert heron.InvalidArgumentError.__module__ == "heron" or "heron" in repr(heron.InvalidArgumentError)
    with pytest.raises(ValueError):
        T([1.0, 2.0]).view(3)
    with pytest.raises(RuntimeError):
        T([1.0, 2.0]).view(3)


# ------------------------------------------------------------------ shape problems: InvalidArgumentError
@pytest.mark.parametrize("name,fn,words", [
    ("add", lambda x: x + T(np.ones((3, 2))), ["add", "broadcast", "[2, 3]", "[3, 2]"]),
    ("add_fn", lambda x: heron.add(x, T(np.ones(4))), ["add", "broadcast"]),
    ("mul", lambda x: heron.mul(x, T(np.ones(4))), ["mul", "broadcast"]),
    ("sub", lambda x: x - T(np.ones((4, 1, 2))), ["sub", "broadcast"]),
    ("eq", lambda x: x == T(np.ones(4)), ["eq", "broadcast"]),
    ("where", lambda x: heron.where(x > 1, x, T(np.ones(4))), ["where", "broadcast"]),
    ("matmul", lambda x: x @ T(np.ones((2, 2))), ["matmul", "[2, 3]", "[2, 2]"]),
    ("view", lambda x: x.view(4), ["view", "[4]", "6"]),
    ("view_neg", lambda x: x.view(-2, 3), ["view", "-2"]),
    ("reshape", lambda x: x.reshape(5), ["reshape", "[5]", "6"]),
    ("expand", lambda x: x.expand(3, 3), ["expand", "[3, 3]"]),
    ("broadcast_to", lambda x: x.broadcast_to((3, 3)), ["broadcast_to", "[3, 3]"]),
    ("cat", lambda x: heron.cat([x, T(np.ones((2, 2)))]), ["concat", "[2, 3]", "[2, 2]"]),
    ("stack", lambda x: heron.stack([x, T(np.ones((3, 2)))]), ["stack", "[2, 3]", "[3, 2]"]),
    ("split", lambda x: x.split([1, 1], 1), ["split", "[1, 1]"]),
    ("as_strided", lambda x: x.as_strided((10,), (1,)), ["as_strided", "storage"]),
    ("copy_", lambda x: x.copy_(T([1.0, 2.0])), ["copy", "[2]", "[2, 3]"]),
    ("permute_len", lambda x: x.permute(0), ["permute"]),
    ("permute_dup", lambda x: x.permute(0, 0), ["permute", "0"]),
    ("flip_dup", lambda x: x.flip(0, 0), ["flip", "0"]),
    ("item", lambda x: x.item(), ["6"]),
    ("bool", lambda x: bool(x), ["ambiguous"]),
    ("tril_1d", lambda x: heron.tril(T([1.0, 2.0])), ["tril", "[2]"]),
    ("matmul_0d", lambda x: T(1.0) @ T(2.0), ["matmul"]),
    ("amax_empty", lambda x: heron.amax(T(np.zeros((0, 3)))), ["amax", "0"]),
])
def test_shape_errors(x, name, fn, words):
    with raises(heron.InvalidArgumentError, *words):
        fn(x)


@pytest.mark.parametrize("name,fn,words", [
    ("arange_step", lambda: heron.arange(0, 5, 0), ["arange", "step"]),
    ("linspace_steps", lambda: heron.linspace(0, 1, -1), ["linspace", "steps"]),
    ("zeros_neg", lambda: heron.zeros(2, -1), ["zeros", "-1"]),
    ("full_neg", lambda: heron.full((-3,), 1.0), ["full", "-3"]),
    ("eye_neg", lambda: heron.eye(-1), ["eye"]),
    ("randint_range", lambda: heron.randint(5, 2, (3,)), ["randint", "5", "2"]),
    ("chunk_0", lambda: heron.chunk(T([1.0]), 0), ["chunk", "0"]),
    ("topk_k", lambda: heron.topk(T([1.0, 2.0]), 5), ["topk", "5"]),
    ("clamp_none", lambda: heron.clamp(T([1.0])), ["clamp"]),
    ("div_mode", lambda: heron.div(T([1.0]), T([1.0]), rounding_mode="bad"), ["div", "rounding_mode", "bad"]),
    ("gelu_mode", lambda: heron.gelu(T([1.0]), approximate="bad"), ["gelu", "approximate", "bad"]),
    ("pad_len", lambda: heron.pad(T([[1.0]]), (1,)), ["pad"]),
    ("roll_len", lambda: heron.roll(T([[1.0]]), (1, 2), (0,)), ["roll"]),
    ("pow_neg_int", lambda: T([2, 3]) ** -1, ["pow", "negative"]),
    ("int_div_zero", lambda: T([2, 3]) // 0, ["floor_divide", "zero"]),
    ("int_rem_zero", lambda: T([2, 3]) % 0, ["remainder", "zero"]),
])
def test_value_errors(name, fn, words):
    with raises(heron.InvalidArgumentError, *words):
        fn()


# ------------------------------------------------------------------ dtype problems: TypeError
@pytest.mark.parametrize("name,fn,words", [
    ("mean_int", lambda x, xi: xi.mean(), ["mean", "int64"]),
    ("bitwise_float", lambda x, xi: x & x, ["bitwise_and", "float64"]),
    ("bitwise_not_float", lambda x, xi: ~x, ["bitwise_not", "float64"]),
    ("shift_float", lambda x, xi: x << 1, ["bitwise_left_shift", "float64"]),
    ("sub_bool", lambda x, xi: T([True]) - T([False]), ["sub", "bool"]),
    ("neg_bool", lambda x, xi: -T([True]), ["neg", "bool"]),
    ("where_cond", lambda x, xi: heron.where(x, x, x), ["where", "bool", "float64"]),
    ("masked_fill_mask", lambda x, xi: heron.masked_fill(x, x, 1.0), ["masked_fill", "bool", "float64"]),
    ("gather_index", lambda x, xi: heron.gather(x, T([[0.0, 1.0]]), 1), ["gather", "index", "float64"]),
    ("index_select_index", lambda x, xi: heron.index_select(x, T([0.0]), 1), ["index_select", "float64"]),
    ("rand_int", lambda x, xi: heron.rand(2, dtype=heron.int64), ["rand", "int64"]),
    ("iadd_float_into_int", lambda x, xi: xi.__iadd__(2.5), ["add", "float32", "int64"]),
    ("idiv_int", lambda x, xi: xi.__itruediv__(2), ["div", "int64"]),
    ("iadd_into_bool", lambda x, xi: T([True]).__iadd__(1), ["add", "bool"]),
    ("imul_float_tensor", lambda x, xi: xi.__imul__(x), ["mul", "float64", "int64"]),
])
def test_dtype_errors(x, xi, name, fn, words):
    with raises(TypeError, *words):
        fn(x, xi)


def test_unsupported_dtypes_from_python():
    with raises(TypeError, "complex"):
        heron.tensor(np.zeros(2, dtype=np.complex64))
    with raises(TypeError, "bfloat16"):
        heron.tensor([1.0], dtype=heron.bfloat16).numpy()
    with pytest.raises(TypeError):
        heron.tensor([1 + 1j])


# ------------------------------------------------------------------ dims out of range: IndexError
@pytest.mark.parametrize("name,fn,words", [
    ("transpose", lambda x: x.transpose(0, 5), ["transpose", "5", "range"]),
    ("transpose_neg", lambda x: x.transpose(-3, 0), ["transpose", "-3"]),
    ("sum", lambda x: x.sum(3), ["sum", "3", "range"]),
    ("sum_neg", lambda x: heron.sum(x, -3), ["sum", "-3"]),
    ("mean", lambda x: x.mean(2), ["mean", "2"]),
    ("amax", lambda x: heron.amax(x, 2), ["amax", "2"]),
    ("argmax", lambda x: heron.argmax(x, 2), ["argmax", "2"]),
    ("cumsum", lambda x: x.cumsum(2), ["cumsum", "2"]),
    ("softmax", lambda x: heron.softmax(x, 2), ["softmax", "2"]),
    ("var", lambda x: x.var(5), ["var", "5"]),
    ("sort", lambda x: heron.sort(x, 3), ["sort", "3"]),
    ("squeeze", lambda x: x.squeeze(4), ["squeeze", "4"]),
    ("unsqueeze", lambda x: x.unsqueeze(4), ["unsqueeze", "4"]),
    ("permute", lambda x: x.permute(0, 2), ["permute", "2"]),
    ("flatten", lambda x: x.flatten(0, 3), ["flatten", "3"]),
    ("cat", lambda x: heron.cat([x, x], 5), ["concat", "5"]),
    ("stack", lambda x: heron.stack([x, x], 4), ["stack", "4"]),
    ("select_dim", lambda x: x.select(2, 0), ["select", "2"]),
    ("select_index", lambda x: x.select(1, 5), ["select", "5"]),
    ("slice_dim", lambda x: heron.slice(x, 5), ["slice", "5"]),
    ("size", lambda x: x.size(2), []),
    ("stride", lambda x: x.stride(-3), []),
    ("getitem", lambda x: x[2], ["2", "dimension 0", "size 2"]),
    ("getitem_neg", lambda x: x[0, -4], ["-4", "dimension 1", "size 3"]),
    ("too_many", lambda x: x[0, 0, 0], ["too many indices"]),
    ("index_array", lambda x: x[[0, 2]], ["2"]),
    ("gather", lambda x: heron.gather(x, T([[0, 7]]), 1), ["gather", "7"]),
    ("scatter", lambda x: heron.scatter(x, T([[0, 9]]), x, 1), ["scatter", "9"]),
    ("index_select", lambda x: heron.index_select(x, T([0, 9]), 1), ["index_select", "9"]),
    ("index_put_", lambda x: heron.index_put_(x, T(1.0), [T([0, 5])]), ["index_put_", "5"]),
])
def test_index_errors(x, name, fn, words):
    with raises(IndexError, *words):
        fn(x)


# ------------------------------------------------------------------ wrong attribute types: TypeError
@pytest.mark.parametrize("name,fn,words", [
    ("sum_dim_str", lambda x: heron.sum(x, "a"), ["sum", "dim", "string"]),
    ("transpose_float", lambda x: x.transpose(0, 1.5), ["transpose", "dim1", "float"]),
    ("cast_str", lambda x: heron._ops.cast(x, "float32"), ["cast", "dtype", "string"]),
    ("softmax_none", lambda x: heron.softmax(x, None), ["softmax", "dim", "none"]),
    ("full_str", lambda x: heron.full((2,), "a"), ["full", "fill_value", "string"]),
    ("zeros_str", lambda x: heron.zeros(2, "a"), ["zeros", "str"]),
    ("view_float", lambda x: x.view(2.0, 3), ["view"]),
    ("permute_obj", lambda x: x.permute(object()), ["permute"]),
    ("to_int", lambda x: x.to(5), ["to", "int"]),
    ("add_list", lambda x: heron.add(x, [1, 2]), ["add", "list"]),
    ("add_str", lambda x: x + "a", ["str"]),
    ("mul_none", lambda x: heron.mul(x, None), ["mul", "1"]),
    ("permute_list_obj", lambda x: x.permute([0, object()]), ["permute"]),
])
def test_attribute_type_errors(x, name, fn, words):
    with raises(TypeError, *words):
        fn(x)


# ------------------------------------------------------------------ devices
@pytest.mark.parametrize("name,fn", [
    ("device", lambda: heron.device("gpu")),
    ("device_index", lambda: heron.device("gpu:0")),
    ("zeros", lambda: heron.zeros(2, device="gpu")),
    ("tensor", lambda: heron.tensor([1.0], device="gpu")),
    ("to", lambda: T([1.0]).to("gpu")),
    ("arange", lambda: heron.arange(3, device="gpu")),
    ("device_count", lambda: heron.device_count("gpu")),
])
def test_unknown_device(name, fn):
    with raises(ValueError, "unknown device", "gpu"):
        fn()


def test_bad_device_strings():
    with pytest.raises(ValueError):
        heron.device("cuda:x")
    assert heron.device("cpu") == "cpu"
    assert "cpu" in heron.device_types()


def test_cpu_only_build_rejects_cuda():
    if "cuda" in heron.device_types() and heron.device_count("cuda") > 0:
        pytest.skip("this build has CUDA")
    with pytest.raises((ValueError, RuntimeError)):
        T([1.0]).to("cuda")


# ------------------------------------------------------------------ not implemented
def test_not_implemented():
    with pytest.raises(NotImplementedError, match="view"):
        T([1.0]).view(heron.int32)


def test_dlpack_copy_not_supported():
    with pytest.raises(BufferError):
        T([1.0]).__dlpack__(copy=True)


# ------------------------------------------------------------------ failing in-place ops change nothing
def snapshot(t):
    return np.array(t.tolist())


@pytest.mark.parametrize("name,fn,exc", [
    ("iadd_shape", lambda t: t.__iadd__(T(np.ones((3, 2)))), heron.InvalidArgumentError),
    ("iadd_grow", lambda t: t.__iadd__(T(np.ones((4, 2, 3)))), heron.InvalidArgumentError),
    ("imul_grow", lambda t: t[:, :1].__imul__(T(np.ones((2, 3)))), heron.InvalidArgumentError),
    ("isub_str", lambda t: operator.isub(t, "x"), TypeError),
    ("iand_float", lambda t: t.__iand__(T([1.0])), TypeError),
    ("copy_shape", lambda t: t.copy_(T([1.0, 2.0])), heron.InvalidArgumentError),
    ("fill_tensor", lambda t: t.fill_(T([1.0, 2.0])), heron.InvalidArgumentError),
    ("setitem_shape", lambda t: t.__setitem__(0, T([1.0, 2.0])), heron.InvalidArgumentError),
    ("setitem_oob", lambda t: t.__setitem__(5, 1.0), IndexError),
    ("setitem_adv_oob_late", lambda t: t.__setitem__([0, 1, 7], 9.0), IndexError),
    ("setitem_adv_oob_col", lambda t: t.__setitem__((slice(None), [0, 3]), 9.0), IndexError),
    ("setitem_adv_shape", lambda t: t.__setitem__([0, 1], T(np.ones((3, 3)))), heron.InvalidArgumentError),
    ("setitem_mask_count", lambda t: t.__setitem__(T(np.array([[True, False, True], [False, False, True]])),
                                                   T([1.0, 2.0])), heron.InvalidArgumentError),
    ("setitem_mask_shape", lambda t: t.__setitem__(T([True, False, True]), 1.0), IndexError),
    ("index_put_oob", lambda t: heron.index_put_(t, T(1.0), [T([0, 1]), T([0, 3])]), IndexError),
    ("index_put_acc_oob", lambda t: heron.index_put_(t, T(1.0), [T([1, -3])], True), IndexError),
])
def test_failing_inplace_ops_leave_tensor_unchanged(name, fn, exc):
    t = T(np.arange(6.0).reshape(2, 3) + 1)
    before = snapshot(t)
    with pytest.raises(exc):
        fn(t)
    np.testing.assert_array_equal(snapshot(t), before)


def test_failing_inplace_on_int_tensor_leaves_it_unchanged():
    t = T(np.arange(6).reshape(2, 3))
    before = snapshot(t)
    for fn in (lambda: t.__iadd__(0.5), lambda: t.__itruediv__(2), lambda: t.__imul__(T([1.5, 2.5, 3.5])),
               lambda: t.__ifloordiv__(0), lambda: t.__imod__(0)):
        with pytest.raises((TypeError, heron.InvalidArgumentError)):
            fn()
        np.testing.assert_array_equal(snapshot(t), before)


def test_failing_inplace_through_numpy_view_leaves_memory_unchanged():
    a = np.arange(12.0).reshape(3, 4)
    t = heron.from_numpy(a)
    with pytest.raises(IndexError):
        t[[0, 1, 2], [0, 1, 4]] = -1.0
    with pytest.raises(heron.InvalidArgumentError):
        t[:, ::2] = T(np.ones((3, 3)))
    np.testing.assert_array_equal(a, np.arange(12.0).reshape(3, 4))


def test_successful_inplace_ops_still_work():
    t = T(np.arange(6).reshape(2, 3))
    t += 1
    t *= T([1, 2, 3], dtype=heron.int32)
    t //= 2
    assert t.dtype == heron.int64
    assert t.tolist() == ((np.arange(6).reshape(2, 3) + 1) * [1, 2, 3] // 2).tolist()
    f = T([1.0, 2.0], dtype=heron.float16)
    f += T([1.0, 1.0], dtype=heron.float64)  # float64 -> float16 is allowed
    assert f.dtype == heron.float16 and f.tolist() == [2.0, 3.0]
    b = T([True, False])
    b |= T([False, True])
    assert b.tolist() == [True, True]


def test_errors_do_not_leak_handles(x):
    gc.collect()
    base = heron.live_handles()
    for _ in range(20):
        for fn in (lambda: x + T(np.ones(4)), lambda: x.transpose(0, 9), lambda: x.view(7),
                   lambda: heron.sum(x, "a"), lambda: x.__setitem__([0, 9], 1.0), lambda: x.mean(9)):
            with pytest.raises((RuntimeError, ValueError, TypeError, IndexError)):
                fn()
    gc.collect()
    assert heron.live_handles() == base
