"""The autograd entry points of the C ABI: requires_grad, backward, grad access, grad(), modes and
their errors, driven through raw calls (numpy is the oracle)."""
import threading

import numpy as np


def _leaf(capi, arr):
    t = capi.from_numpy(np.asarray(arr, dtype=np.float64))
    capi.check(capi.lib.heron_tensor_set_requires_grad(t, 1))
    return t


def _get_grad(capi, t):
    out = capi.ffi.new("heron_tensor**")
    capi.check(capi.lib.heron_tensor_grad(t, out))
    return None if out[0] == capi.ffi.NULL else capi.track(out[0])


def _flag(capi, fn, t):
    out = capi.ffi.new("int32_t*")
    capi.check(fn(t, out))
    return out[0]


def test_requires_grad_backward_and_grad(capi):
    lib, ffi = capi.lib, capi.ffi
    x = _leaf(capi, [1.0, 2.0, 3.0])
    assert _flag(capi, lib.heron_tensor_requires_grad, x) == 1
    leaf = ffi.new("int32_t*")
    capi.check(lib.heron_tensor_is_leaf(x, leaf))
    assert leaf[0] == 1
    assert _get_grad(capi, x) is None
    (y,) = capi.call_ok("mul", [x, x])
    (s,) = capi.call_ok("sum", [y])
    assert _flag(capi, lib.heron_tensor_is_leaf, s) == 0
    name = ffi.new("const char**")
    capi.check(lib.heron_tensor_grad_fn_name(s, name))
    assert ffi.string(name[0]) == b"SumBackward"
    capi.check(lib.heron_tensor_grad_fn_name(x, name))
    assert name[0] == ffi.NULL
    roots = ffi.new("heron_tensor*[]", [s])
    capi.check(lib.heron_backward(roots, ffi.NULL, 1, 0))
    np.testing.assert_allclose(capi.to_numpy(_get_grad(capi, x)), [2.0, 4.0, 6.0])
    # a second backward without retain_graph is a clear error
    st = lib.heron_backward(roots, ffi.NULL, 1, 0)
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "retain_graph")
    # zero_grad fills with zeros; set_grad(NULL) clears
    capi.check(lib.heron_tensor_zero_grad(x))
    np.testing.assert_array_equal(capi.to_numpy(_get_grad(capi, x)), [0.0, 0.0, 0.0])
    capi.check(lib.heron_tensor_set_grad(x, ffi.NULL))
    assert _get_grad(capi, x) is None


def test_explicit_gradient_set_grad_and_detach(capi):
    lib, ffi = capi.lib, capi.ffi
    x = _leaf(capi, [[1.0, 2.0], [3.0, 4.0]])
    (y,) = capi.call_ok("exp", [x])
    g = capi.from_numpy(np.array([[1.0, 0.0], [0.5, 2.0]]))
    capi.check(lib.heron_backward(ffi.new("heron_tensor*[]", [y]), ffi.new("heron_tensor*[]", [g]), 1, 1))
    xn = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(capi.to_numpy(_get_grad(capi, x)), np.exp(xn) * [[1, 0], [0.5, 2]])
    bad = capi.from_numpy(np.zeros(3))
    capi.expect(lib.heron_tensor_set_grad(x, bad), capi.C.HERON_ERR_INVALID_ARGUMENT, "shape")
    d = ffi.new("heron_tensor**")
    capi.check(lib.heron_tensor_detach(y, d))
    capi.track(d[0])
    assert _flag(capi, lib.heron_tensor_requires_grad, d[0]) == 0
    assert capi.shares(d[0], y)
    # retain_grad keeps an intermediate's gradient
    (h,) = capi.call_ok("mul", [x, x])
    capi.check(lib.heron_tensor_retain_grad(h))
    (s,) = capi.call_ok("sum", [h])
    capi.check(lib.heron_backward(ffi.new("heron_tensor*[]", [s]), ffi.NULL, 1, 0))
    np.testing.assert_allclose(capi.to_numpy(_get_grad(capi, h)), np.ones((2, 2)))


def test_autograd_grad(capi):
    lib, ffi = capi.lib, capi.ffi
    a = _leaf(capi, [1.0, 2.0])
    b = _leaf(capi, [3.0, 5.0])
    u = _leaf(capi, [0.0])
    (p,) = capi.call_ok("mul", [a, b])
    (s,) = capi.call_ok("sum", [p])
    out = ffi.new("heron_tensor*[]", 3)
    roots = ffi.new("heron_tensor*[]", [s])
    st = lib.heron_autograd_grad(roots, ffi.NULL, 1, ffi.new("heron_tensor*[]", [a, b, u]), 3, 1, 0, out)
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "allow_unused")
    capi.check(lib.heron_autograd_grad(roots, ffi.NULL, 1, ffi.new("heron_tensor*[]", [a, b, u]), 3, 0, 1, out))
    ga, gb = capi.track(out[0]), capi.track(out[1])
    assert out[2] == ffi.NULL
    np.testing.assert_allclose(capi.to_numpy(ga), [3.0, 5.0])
    np.testing.assert_allclose(capi.to_numpy(gb), [1.0, 2.0])
    assert _get_grad(capi, a) is None  # .grad untouched


def test_grad_mode_and_anomaly_mode_are_per_thread(capi):
    lib, ffi = capi.lib, capi.ffi
    assert lib.heron_is_grad_enabled() == 1
    prev = ffi.new("int32_t*")
    capi.check(lib.heron_set_grad_enabled(0, prev))
    assert prev[0] == 1 and lib.heron_is_grad_enabled() == 0
    x = _leaf(capi, [1.0])
    (y,) = capi.call_ok("mul", [x, x])
    assert _flag(capi, lib.heron_tensor_requires_grad, y) == 0
    seen = []
    th = threading.Thread(target=lambda: seen.append(lib.heron_is_grad_enabled()))
    th.start()
    th.join()
    assert seen == [1]
    capi.check(lib.heron_set_grad_enabled(1, ffi.NULL))
    assert lib.heron_is_anomaly_enabled() == 0
    capi.check(lib.heron_set_anomaly_enabled(1, prev))
    assert prev[0] == 0 and lib.heron_is_anomaly_enabled() == 1
    neg = _leaf(capi, [-1.0])
    st, _, _ = capi.call("log", [neg])
    capi.expect(st, capi.C.HERON_ERR_RUNTIME, "anomaly", "'log'")
    capi.check(lib.heron_set_anomaly_enabled(0, ffi.NULL))


def test_errors(capi):
    lib, ffi = capi.lib, capi.ffi
    C = capi.C
    capi.expect(lib.heron_tensor_set_requires_grad(ffi.NULL, 1), C.HERON_ERR_NULL_HANDLE, "NULL")
    i = capi.from_numpy(np.array([1, 2], dtype=np.int64))
    capi.expect(lib.heron_tensor_set_requires_grad(i, 1), C.HERON_ERR_TYPE, "floating-point")
    x = capi.from_numpy(np.array([1.0, 2.0]))
    capi.expect(lib.heron_backward(ffi.new("heron_tensor*[]", [x]), ffi.NULL, 1, 0), C.HERON_ERR_INVALID_ARGUMENT,
                "does not require grad")
    capi.expect(lib.heron_tensor_requires_grad(x, ffi.NULL), C.HERON_ERR_NULL_HANDLE, "out")
    capi.expect(lib.heron_tensor_retain_grad(x), C.HERON_ERR_INVALID_ARGUMENT, "does not require grad")
    capi.expect(lib.heron_backward(ffi.NULL, ffi.NULL, 1, 0), C.HERON_ERR_NULL_HANDLE, "tensors")
    leaf = _leaf(capi, [1.0, 2.0])
    (y,) = capi.call_ok("mul", [leaf, leaf])
    capi.expect(lib.heron_backward(ffi.new("heron_tensor*[]", [y]), ffi.NULL, 1, 0), C.HERON_ERR_INVALID_ARGUMENT,
                "scalar outputs")
    st, _, _ = capi.call("copy_", [leaf, x])
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "in-place")


def test_post_accumulate_grad_hooks(capi):
    """A hook sees the leaf's final gradient (numpy oracle), runs once per backward, can fail the
    backward with its message, and its user pointer is freed exactly once on removal."""
    lib, ffi = capi.lib, capi.ffi
    x = _leaf(capi, [1.0, -2.0, 3.0])
    seen, freed = [], []

    @ffi.callback("int32_t(void*, heron_tensor*, char*, size_t)")
    def hook(user, leaf, message, size):
        assert ffi.cast("intptr_t", user) == 7
        seen.append(capi.to_numpy(_get_grad(capi, leaf)).copy())
        return 0

    @ffi.callback("int32_t(void*, heron_tensor*, char*, size_t)")
    def failing(user, leaf, message, size):
        text = b"bucket 3 is gone"
        ffi.memmove(message, text + b"\0", len(text) + 1)
        return 1

    @ffi.callback("void(void*)")
    def free_user(user):
        freed.append(int(ffi.cast("intptr_t", user)))

    hid = ffi.new("int64_t*")
    capi.check(lib.heron_tensor_register_post_accumulate_grad_hook(x, hook, ffi.cast("void*", 7), free_user, hid))
    # x is used twice: one call, with the sum 2x + 1
    (y,) = capi.call_ok("mul", [x, x])
    (z,) = capi.call_ok("add", [y, x])
    (s,) = capi.call_ok("sum", [z])
    capi.check(lib.heron_backward(ffi.new("heron_tensor*[]", [s]), ffi.NULL, 1, 0))
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * np.array([1.0, -2.0, 3.0]) + 1)
    # errors: NULL fn, a non-leaf, a tensor that does not require grad
    capi.expect(lib.heron_tensor_register_post_accumulate_grad_hook(x, ffi.NULL, ffi.NULL, ffi.NULL, hid),
                capi.C.HERON_ERR_NULL_HANDLE, "fn")
    capi.expect(lib.heron_tensor_register_post_accumulate_grad_hook(s, hook, ffi.NULL, ffi.NULL, hid),
                capi.C.HERON_ERR_INVALID_ARGUMENT, "leaf")
    plain = capi.from_numpy(np.zeros(2))
    capi.expect(lib.heron_tensor_register_post_accumulate_grad_hook(plain, hook, ffi.NULL, ffi.NULL, hid),
                capi.C.HERON_ERR_INVALID_ARGUMENT, "leaf")
    # remove: freed once; removing again reports 0
    removed = ffi.new("int32_t*")
    first = hid[0]
    capi.check(lib.heron_tensor_register_post_accumulate_grad_hook(x, hook, ffi.cast("void*", 7), free_user, hid))
    capi.check(lib.heron_tensor_remove_post_accumulate_grad_hook(x, first, removed))
    assert removed[0] == 1 and freed == [7]
    capi.check(lib.heron_tensor_remove_post_accumulate_grad_hook(x, first, removed))
    assert removed[0] == 0 and freed == [7]
    capi.check(lib.heron_tensor_remove_post_accumulate_grad_hook(x, hid[0], ffi.NULL))
    assert freed == [7, 7]
    # a failing hook fails the backward with its message
    capi.check(lib.heron_tensor_register_post_accumulate_grad_hook(x, failing, ffi.NULL, ffi.NULL, hid))
    (s2,) = capi.call_ok("sum", [x])
    capi.expect(lib.heron_backward(ffi.new("heron_tensor*[]", [s2]), ffi.NULL, 1, 0), capi.C.HERON_ERR_RUNTIME,
                "post-accumulate-grad hook failed: bucket 3 is gone")
    assert len(seen) == 1
