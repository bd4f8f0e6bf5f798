"""Tracing through the C ABI: any language can capture a graph by running ops between
heron_tracer_begin and heron_tracer_finish; the model runs in a session with the same results."""
import threading

import numpy as np


def _names(capi, *names):
    keep = [capi.ffi.new("char[]", n.encode()) for n in names]
    return capi.ffi.new("const char*[]", keep), keep


def test_trace_run_and_text(capi):
    lib, ffi = capi.lib, capi.ffi
    x = capi.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
    w = capi.from_numpy(np.full((3,), 0.5, dtype=np.float32))
    tr = ffi.new("heron_tracer**")
    capi.check(lib.heron_tracer_begin(tr))
    capi.check(lib.heron_tracer_add_input(tr[0], x, b"x"))
    capi.check(lib.heron_tracer_name_constant(tr[0], w, b"w"))
    (y,) = capi.call_ok("mul", [x, w])
    (z,) = capi.call_ok("exp", [y])
    names, _keep = _names(capi, "z")
    model = ffi.new("heron_model**")
    capi.check(lib.heron_tracer_finish(tr[0], ffi.new("heron_tensor*[]", [z]), names, 1, 1, model))
    lib.heron_tracer_release(tr[0])
    text = ffi.new("char**")
    capi.check(lib.heron_model_text(model[0], text))
    s = ffi.string(text[0]).decode()
    lib.heron_free_string(text[0])
    assert "mul(%x, %w)" in s and "float32[N, 3]" in s, s
    # run on a new batch size
    sess = ffi.new("heron_session**")
    capi.check(lib.heron_session_create(model[0], ffi.NULL, sess))
    xn = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    xt = capi.from_numpy(xn)
    in_names, _k1 = _names(capi, "x")
    out = ffi.new("heron_tensor*[]", 1)
    capi.check(lib.heron_session_run(sess[0], in_names, ffi.new("heron_tensor*[]", [xt]), 1, ffi.NULL, 1, out))
    capi.track(out[0])
    np.testing.assert_allclose(capi.to_numpy(out[0]), np.exp(xn * 0.5), rtol=1e-6)
    lib.heron_session_release(sess[0])
    lib.heron_model_release(model[0])


def test_trace_errors(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    capi.expect(lib.heron_tracer_begin(ffi.NULL), C.HERON_ERR_NULL_HANDLE, "out")
    capi.expect(lib.heron_tracer_add_input(ffi.NULL, ffi.NULL, b"x"), C.HERON_ERR_NULL_HANDLE, "tracer")
    x = capi.from_numpy(np.ones(3, dtype=np.float32))
    c = capi.from_numpy(np.ones(3, dtype=np.float32))
    tr = ffi.new("heron_tracer**")
    capi.check(lib.heron_tracer_begin(tr))
    capi.check(lib.heron_tracer_add_input(tr[0], x, b"x"))
    names, _keep = _names(capi, "c")
    model = ffi.new("heron_model**")
    st = lib.heron_tracer_finish(tr[0], ffi.new("heron_tensor*[]", [c]), names, 1, 0, model)
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "not computed from the traced inputs")
    # a tracer belongs to its thread
    seen = []

    def other():
        seen.append(lib.heron_tracer_name_constant(tr[0], c, b"c"))
    th = threading.Thread(target=other)
    th.start()
    th.join()
    assert seen == [C.HERON_ERR_INVALID_ARGUMENT]
    lib.heron_tracer_release(tr[0])
    lib.heron_tracer_release(ffi.NULL)
    capi.expect(lib.heron_model_text(ffi.NULL, ffi.new("char**")), C.HERON_ERR_NULL_HANDLE, "model")
