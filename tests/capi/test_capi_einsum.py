"""einsum through the raw C ABI (heron_op_call): a variadic input list, the equation as a string
attribute, the caret error in the thread-local message, einsum_path's two outputs."""
import numpy as np


def test_einsum_op_call(capi):
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    b = np.arange(12, dtype=np.float64).reshape(3, 4)
    ta, tb = capi.from_numpy(a), capi.from_numpy(b)
    (out,) = capi.call_ok("einsum", [ta, tb], ("str", "ij,jk->ik"), ("str", "optimal"), ("none", None), ("none", None))
    np.testing.assert_allclose(capi.to_numpy(out), a @ b)
    # Defaults for optimize / memory_limit / path.
    (out2,) = capi.call_ok("einsum", [ta], ("str", "ij->ji"))
    np.testing.assert_allclose(capi.to_numpy(out2), a.T)
    # An explicit path: one step of two operands at positions 0 and 1.
    (out3,) = capi.call_ok("einsum", [ta, tb], ("str", "ij,jk"), None, None, ("ints", [2, 0, 1]))
    np.testing.assert_allclose(capi.to_numpy(out3), a @ b)


def test_einsum_error_has_caret(capi):
    ta = capi.from_numpy(np.zeros((2, 3)))
    tb = capi.from_numpy(np.zeros((4, 5)))
    st, outs, _ = capi.call("einsum", [ta, tb], ("str", "ij,jk->ik"))
    msg = capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "label 'j' has size 4 in operand 1")
    assert msg.endswith("    ij,jk->ik\n       ^")
    assert capi.last_error()[2] == "einsum"
    st, _, _ = capi.call("einsum", [ta], ("str", "i#"))
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "invalid character '#'", "    i#\n     ^")
    st, _, _ = capi.call("einsum", [], ("str", "ij"))
    capi.expect(st, capi.C.HERON_ERR_INVALID_ARGUMENT, "at least one operand")


def test_einsum_path_op(capi):
    ts = [capi.from_numpy(np.zeros(s)) for s in [(10, 100), (100, 5), (5, 50)]]
    path, stats, terms = capi.call_ok("einsum_path", ts, ("str", "ij,jk,kl->il"))
    assert capi.to_numpy(path).tolist() == [[0, 1], [0, 1]]
    st = capi.to_numpy(stats)
    assert st.shape == (3, 4) and st[0, 1] == 10 * 100 * 5 + 10 * 5 * 50 and st[0, 3] == 4
    i, j, k, l = 26 + 8, 26 + 9, 26 + 10, 26 + 11
    assert capi.to_numpy(terms).tolist() == [[i, j], [j, k], [k, l], [i, k], [i, l], [i, l]]
