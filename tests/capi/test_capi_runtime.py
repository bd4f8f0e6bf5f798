"""Models and sessions through the C ABI: options, model load/save/query, session create/run (names,
dtypes, shapes, outputs subsets), concurrent runs, peak memory, the profile and the Chrome trace,
NULL arguments and released handles, the graph-optimisation and arena switches. The models are
written by build/heron_make_test_models (hand-built graphs); when that tool is not built those tests
are skipped (a failure under CI=true)."""
import json
import os
import pathlib
import subprocess
import threading

import numpy as np
import pytest

from conftest import skip_unless_ci

ROOT = pathlib.Path(__file__).resolve().parents[2]


def build_dir():
    return pathlib.Path(os.environ.get("HERON_BUILD_DIR") or ROOT / "build")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    exe = build_dir() / "heron_make_test_models"
    if not exe.exists():
        skip_unless_ci(f"{exe} is not built")
    d = tmp_path_factory.mktemp("models")
    r = subprocess.run([str(exe), str(d)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d


def formula(shape, seed):
    n = int(np.prod(shape))
    return (np.sin(0.37 * np.arange(n) + seed) / 2).astype(np.float32).reshape(shape)


def mlp_reference(x):
    w1, b1, w2 = formula((16, 8), 1.0), formula((16,), 2.0), formula((4, 16), 3.0)
    h = np.maximum(x.astype(np.float64) @ w1.T.astype(np.float64) + b1, 0)
    return h @ w2.T.astype(np.float64), h


def load(capi, path):
    out = capi.ffi.new("heron_model**")
    capi.check(capi.lib.heron_model_load_file(str(path).encode(), out))
    return out[0]


def options(capi, device=None, threads=None, profiling=None, arena=None):
    out = capi.ffi.new("heron_session_options**")
    capi.check(capi.lib.heron_session_options_create(out))
    o = out[0]
    if device is not None:
        capi.check(capi.lib.heron_session_options_set_device(o, device.encode()))
    if threads is not None:
        capi.check(capi.lib.heron_session_options_set_threads(o, threads))
    if profiling is not None:
        capi.check(capi.lib.heron_session_options_set_profiling(o, profiling))
    if arena is not None:
        capi.check(capi.lib.heron_session_options_set_arena(o, arena))
    return o


def session(capi, model, opts=None):
    out = capi.ffi.new("heron_session**")
    capi.check(capi.lib.heron_session_create(model, opts if opts is not None else capi.ffi.NULL, out))
    return out[0]


def run(capi, s, feeds, output_names=None, n_outputs=None):
    """Runs and returns (status, [numpy arrays])."""
    ffi, lib = capi.ffi, capi.lib
    keep = [ffi.new("char[]", k.encode()) for k in feeds]
    names = ffi.new("const char*[]", keep or [ffi.NULL])
    ts = ffi.new("heron_tensor*[]", [capi.from_numpy(v) for v in feeds.values()] or [ffi.NULL])
    if output_names is None:
        onames, n = ffi.NULL, n_outputs
    else:
        okeep = [ffi.new("char[]", k.encode()) for k in output_names]
        keep += okeep
        onames, n = ffi.new("const char*[]", okeep or [ffi.NULL]), len(output_names)
    outs = ffi.new("heron_tensor*[]", max(n, 1))
    st = lib.heron_session_run(s, names, ts, len(feeds), onames, n, outs)
    if st != capi.C.HERON_OK:
        return st, []
    res = []
    for i in range(n):
        capi.track(outs[i])
        res.append(capi.to_numpy(outs[i]))
    return st, res


def info(capi, model, i, output=False):
    ffi = capi.ffi
    name, dt, nd, shape = ffi.new("const char**"), ffi.new("int32_t*"), ffi.new("int32_t*"), ffi.new("const int64_t**")
    fn = capi.lib.heron_model_output_info if output else capi.lib.heron_model_input_info
    capi.check(fn(model, i, name, dt, nd, shape))
    return ffi.string(name[0]).decode(), capi.code_to_name[dt[0]], tuple(shape[0][k] for k in range(nd[0]))


def take_string(capi, fn, s):
    out = capi.ffi.new("char**")
    capi.check(fn(s, out))
    text = capi.ffi.string(out[0]).decode()
    capi.lib.heron_free_string(out[0])
    return text


# ------------------------------------------------------------------ without a model file


def test_options_setters_and_errors(capi):
    C, lib, ffi = capi.C, capi.lib, capi.ffi
    o = options(capi, device="cpu", threads=1, profiling=1)
    capi.expect(lib.heron_session_options_set_threads(o, -2), C.HERON_ERR_INVALID_ARGUMENT, "threads", "-2")
    capi.expect(lib.heron_session_options_set_device(o, ffi.NULL), C.HERON_ERR_NULL_HANDLE, "device")
    capi.expect(lib.heron_session_options_set_profiling(ffi.NULL, 1), C.HERON_ERR_NULL_HANDLE, "options")
    # Micro-batching (its behaviour is tested through this call by tests/python/test_microbatch.py,
    # whose Session(microbatch=...) sets it).
    capi.check(lib.heron_session_options_set_microbatch(o, 0))
    capi.check(lib.heron_session_options_set_microbatch(o, 1))
    capi.expect(lib.heron_session_options_set_microbatch(ffi.NULL, 0), C.HERON_ERR_NULL_HANDLE, "options")
    capi.expect(lib.heron_session_options_create(ffi.NULL), C.HERON_ERR_NULL_HANDLE, "out")
    lib.heron_session_options_release(o)
    lib.heron_session_options_release(ffi.NULL)


def test_null_and_missing_arguments(capi, tmp_path):
    C, lib, ffi = capi.C, capi.lib, capi.ffi
    out = ffi.new("heron_model**")
    capi.expect(lib.heron_model_load_file(ffi.NULL, out), C.HERON_ERR_NULL_HANDLE, "path")
    capi.expect(lib.heron_model_load_buffer(ffi.NULL, 0, out), C.HERON_ERR_NULL_HANDLE, "data")
    st = lib.heron_model_load_file(str(tmp_path / "missing.heron").encode(), out)
    assert st != C.HERON_OK and out[0] == ffi.NULL
    st = lib.heron_model_load_buffer(b"not a model at all", 18, out)
    assert st != C.HERON_OK and out[0] == ffi.NULL
    assert capi.message()
    n = ffi.new("size_t*")
    capi.expect(lib.heron_model_num_inputs(ffi.NULL, n), C.HERON_ERR_NULL_HANDLE, "model")
    capi.expect(lib.heron_model_num_outputs(ffi.NULL, n), C.HERON_ERR_NULL_HANDLE, "model")
    capi.expect(lib.heron_model_save_file(ffi.NULL, b"x.heron"), C.HERON_ERR_NULL_HANDLE, "model")
    s = ffi.new("heron_session**")
    capi.expect(lib.heron_session_create(ffi.NULL, ffi.NULL, s), C.HERON_ERR_NULL_HANDLE, "model")
    capi.expect(lib.heron_session_run(ffi.NULL, ffi.NULL, ffi.NULL, 0, ffi.NULL, 0, ffi.NULL), C.HERON_ERR_NULL_HANDLE, "session")
    i64 = ffi.new("int64_t*")
    capi.expect(lib.heron_session_peak_memory(ffi.NULL, i64, i64), C.HERON_ERR_NULL_HANDLE, "session")
    sp = ffi.new("char**")
    capi.expect(lib.heron_session_profile_json(ffi.NULL, sp), C.HERON_ERR_NULL_HANDLE, "session")
    capi.expect(lib.heron_session_chrome_trace(ffi.NULL, sp), C.HERON_ERR_NULL_HANDLE, "session")
    capi.expect(lib.heron_session_clear_profile(ffi.NULL), C.HERON_ERR_NULL_HANDLE, "session")
    lib.heron_model_release(ffi.NULL)
    lib.heron_session_release(ffi.NULL)
    lib.heron_free_string(ffi.NULL)


# ------------------------------------------------------------------ with model files


def test_model_queries(capi, model_dir):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    m = load(capi, model_dir / "mlp.heron")
    n = ffi.new("size_t*")
    capi.check(lib.heron_model_num_inputs(m, n))
    assert n[0] == 1
    capi.check(lib.heron_model_num_outputs(m, n))
    assert n[0] == 2
    assert info(capi, m, 0) == ("x", "float32", (-1, 8))
    assert info(capi, m, 0, output=True) == ("y", "float32", (-1, 4))
    assert info(capi, m, 1, output=True) == ("h", "float32", (-1, 16))
    capi.check(lib.heron_model_input_info(m, 0, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL))  # all outs optional
    capi.expect(lib.heron_model_input_info(m, 1, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL), C.HERON_ERR_INDEX, "index 1", "1 inputs")
    capi.expect(lib.heron_model_output_info(m, 2, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL), C.HERON_ERR_INDEX, "index 2")
    lib.heron_model_release(m)


def test_save_and_load_buffer_round_trip(capi, model_dir, tmp_path):
    lib, ffi = capi.lib, capi.ffi
    m = load(capi, model_dir / "mlp.heron")
    path = tmp_path / "copy.heron"
    capi.check(lib.heron_model_save_file(m, str(path).encode()))
    data = path.read_bytes()
    out = ffi.new("heron_model**")
    capi.check(lib.heron_model_load_buffer(data, len(data), out))
    m2 = out[0]
    s = session(capi, m2)
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(3, 8)
    st, (y, h) = run(capi, s, {"x": x}, n_outputs=2)
    capi.check(st)
    ry, rh = mlp_reference(x)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, rh, rtol=1e-5, atol=1e-5)
    lib.heron_session_release(s)
    lib.heron_model_release(m2)
    lib.heron_model_release(m)


def test_run_matches_numpy_and_selects_outputs(capi, model_dir):
    lib = capi.lib
    m = load(capi, model_dir / "mlp.heron")
    s = session(capi, m, None)
    lib.heron_model_release(m)  # the session keeps what it needs
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 8)).astype(np.float32)
        st, (y, h) = run(capi, s, {"x": x}, n_outputs=2)
        capi.check(st)
        ry, rh = mlp_reference(x)
        np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(h, rh, rtol=1e-5, atol=1e-5)
        st, (h2,) = run(capi, s, {"x": x}, output_names=["h"])
        capi.check(st)
        np.testing.assert_array_equal(h2, h)
    lib.heron_session_release(s)


def test_run_errors_list_what_the_model_expects(capi, model_dir):
    C, lib = capi.C, capi.lib
    m = load(capi, model_dir / "mlp.heron")
    s = session(capi, m)
    x = np.zeros((2, 8), np.float32)
    st, _ = run(capi, s, {"input": x}, n_outputs=2)
    capi.expect(st, C.HERON_ERR_NOT_FOUND, "no input named 'input'", "'x': float32[?, 8]")
    st, _ = run(capi, s, {"x": x.astype(np.float64)}, n_outputs=2)
    capi.expect(st, C.HERON_ERR_TYPE, "float32[?, 8]", "float64[2, 8]")
    st, _ = run(capi, s, {"x": np.zeros((2, 7), np.float32)}, n_outputs=2)
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "[?, 8]", "[2, 7]")
    st, _ = run(capi, s, {}, n_outputs=2)
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "missing input 'x'")
    st, _ = run(capi, s, {"x": x}, n_outputs=1)
    capi.expect(st, C.HERON_ERR_INVALID_ARGUMENT, "output count 2")
    st, _ = run(capi, s, {"x": x}, output_names=["nope"])
    capi.expect(st, C.HERON_ERR_NOT_FOUND, "no output named 'nope'", "'y', 'h'")
    lib.heron_session_release(s)
    lib.heron_model_release(m)


def test_bad_device_and_threads(capi, model_dir):
    C, lib, ffi = capi.C, capi.lib, capi.ffi
    m = load(capi, model_dir / "mlp.heron")
    o = options(capi, device="nodevice")
    out = ffi.new("heron_session**")
    capi.expect(lib.heron_session_create(m, o, out), C.HERON_ERR_NOT_FOUND, "nodevice")
    assert out[0] == ffi.NULL
    lib.heron_session_options_release(o)
    before = lib.heron_get_num_threads()
    o = options(capi, threads=1)
    s = session(capi, m, o)
    assert lib.heron_get_num_threads() == 1
    capi.check(lib.heron_set_num_threads(before))
    lib.heron_session_release(s)
    lib.heron_session_options_release(o)
    lib.heron_model_release(m)


def test_eight_threads_share_one_session(capi, model_dir):
    lib = capi.lib
    m = load(capi, model_dir / "two_inputs.heron")
    s = session(capi, m)
    rng = np.random.default_rng(0)
    feeds = [{"a": rng.standard_normal((2, 3)), "b": rng.standard_normal((2, 3))} for _ in range(8)]
    errors = []

    def work(k):
        for r in range(20):
            f = feeds[(k + r) % 8]
            st, res = run(capi, s, f, n_outputs=1)
            if st != capi.C.HERON_OK or not np.array_equal(res[0], f["a"] + 2 * f["b"]):
                errors.append((k, r, st))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lib.heron_session_release(s)
    lib.heron_model_release(m)


def test_peak_memory_and_profile(capi, model_dir):
    lib, ffi = capi.lib, capi.ffi
    m = load(capi, model_dir / "mlp.heron")
    o = options(capi, profiling=1)
    s = session(capi, m, o)
    x = np.ones((3, 8), np.float32)
    last, mx, arena = ffi.new("int64_t*"), ffi.new("int64_t*"), ffi.new("int64_t*")
    for i in range(2):
        capi.check(run(capi, s, {"x": x}, n_outputs=2)[0])
        capi.check(lib.heron_session_peak_memory(s, last, mx))
        capi.check(lib.heron_session_arena_bytes(s, arena))
        if i == 0:  # the run that plans the arena of this shape: l1 and h alive together
            assert last[0] == mx[0] == 2 * 3 * 16 * 4 and arena[0] == 0
    # With the arena: l1 (the only intermediate that is not an output) is in it; the arena counts
    # whole, next to the outputs h and y.
    assert arena[0] == 3 * 16 * 4
    assert last[0] == mx[0] == arena[0] + 3 * 16 * 4 + 3 * 4 * 4
    capi.check(lib.heron_session_peak_memory(s, ffi.NULL, ffi.NULL))
    capi.expect(lib.heron_session_arena_bytes(s, ffi.NULL), capi.C.HERON_ERR_NULL_HANDLE, "out")
    prof = json.loads(take_string(capi, lib.heron_session_profile_json, s))
    assert prof["format"] == "heron-profile" and prof["version"] == 1
    assert prof["session"]["peak_bytes"] == mx[0]
    assert prof["session"]["arena_bytes"] == arena[0] == prof["runs"][1]["arena_bytes"]
    assert prof["runs"][0]["arena_bytes"] == 0
    assert len(prof["runs"]) == 2
    nodes = prof["runs"][0]["nodes"]
    assert [n["name"] for n in nodes] == ["linear_0", "relu_1", "linear_2"]
    assert [n["op"] for n in nodes] == ["linear", "relu", "linear"]
    assert nodes[0]["flops"] == 2 * 3 * 8 * 16 + 3 * 16
    assert nodes[2]["output_shapes"] == [[3, 4]]
    trace = json.loads(take_string(capi, lib.heron_session_chrome_trace, s))
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {e["name"] for e in xs} >= {"linear_0", "relu_1", "linear_2"}
    capi.check(lib.heron_session_clear_profile(s))
    assert json.loads(take_string(capi, lib.heron_session_profile_json, s))["runs"] == []
    lib.heron_session_release(s)
    lib.heron_session_options_release(o)
    # With the arena off, every run frees intermediates after their last use.
    o = options(capi, profiling=1, arena=0)
    s = session(capi, m, o)
    for _ in range(2):
        capi.check(run(capi, s, {"x": x}, n_outputs=2)[0])
    capi.check(lib.heron_session_peak_memory(s, last, mx))
    capi.check(lib.heron_session_arena_bytes(s, arena))
    assert last[0] == mx[0] == 2 * 3 * 16 * 4 and arena[0] == 0
    assert json.loads(take_string(capi, lib.heron_session_profile_json, s))["session"]["arena"]["enabled"] is False
    lib.heron_session_release(s)
    lib.heron_session_options_release(o)
    lib.heron_model_release(m)



# ------------------------------------------------------------------ graph optimisation (ABI 1.3)


def test_optimization_switch_and_session_graph_text(capi):
    """The committed MNIST ConvNet (conv2d -> relu three times): optimised, the session runs
    conv2d_fused nodes and gives the unoptimised session's logits up to float rounding; level 0
    runs the graph as saved. Bad levels and NULL handles fail with messages."""
    C, lib, ffi = capi.C, capi.lib, capi.ffi
    m = load(capi, ROOT / "tests" / "data" / "mnist_convnet.heron")
    x = formula((5, 1, 28, 28), 0.5) + 0.5
    texts, logits = {}, {}
    for level in (0, 1):
        o = options(capi)
        capi.check(lib.heron_session_options_set_optimization(o, level))
        s = session(capi, m, o)
        lib.heron_session_options_release(o)
        texts[level] = take_string(capi, lib.heron_session_graph_text, s)
        st, (y,) = run(capi, s, {"image": x}, n_outputs=1)
        assert st == C.HERON_OK
        logits[level] = y
        lib.heron_session_release(s)
    assert "conv2d_fused" not in texts[0] and texts[0].count("relu(") == 4
    assert texts[1].count("conv2d_fused(") == 3 and texts[1].count("relu(") == 1  # the classifier's relu stays
    np.testing.assert_allclose(logits[1], logits[0], rtol=1e-4, atol=1e-4)
    o = options(capi)
    capi.expect(lib.heron_session_options_set_optimization(o, 2), C.HERON_ERR_INVALID_ARGUMENT, "level", "2")
    capi.expect(lib.heron_session_options_set_optimization(ffi.NULL, 1), C.HERON_ERR_NULL_HANDLE, "options")
    out = ffi.new("char**")
    capi.expect(lib.heron_session_graph_text(ffi.NULL, out), C.HERON_ERR_NULL_HANDLE, "session")
    lib.heron_session_options_release(o)
    lib.heron_model_release(m)
