"""heron-run, the deployment CLI (C API only): argument errors, the .npy reader (untrusted input) and
writer (round trip through --dump-outputs), --random-input, latency summary, profile and Chrome trace
files. Models come from build/heron_make_test_models (hand-built graphs); when that tool is not
built the parts that need a model are skipped (a failure under CI=true)."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from build_helpers import skip_unless_ci

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("HERON_BUILD_DIR") or ROOT / "build")


def heron_run_path():
    for p in (ROOT / "python" / "heron" / "bin" / "heron-run", BUILD / "heron-run"):
        if p.exists():
            return p
    skip_unless_ci("heron-run is not built")


def heron_run(*args):
    return subprocess.run([str(heron_run_path()), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    exe = BUILD / "heron_make_test_models"
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
    h = np.maximum(x.astype(np.float64) @ w1.T + b1, 0)
    return h @ w2.T.astype(np.float64), h


# ------------------------------------------------------------------ arguments


@pytest.mark.parametrize("args, fragment", [
    ((), "no model given"),
    (("m.heron", "--bogus"), "unknown option '--bogus'"),
    (("m.heron", "--iter", "0"), "--iter needs an integer >= 1"),
    (("m.heron", "--iter", "x"), "--iter needs an integer"),
    (("m.heron", "--warmup", "-1"), "--warmup needs an integer >= 0"),
    (("m.heron", "--threads", "0"), "--threads needs an integer >= 1"),
    (("m.heron", "--input", "x"), "--input needs NAME=FILE.npy"),
    (("m.heron", "--input", "=f.npy"), "--input needs NAME=FILE.npy"),
    (("m.heron", "--profile"), "--profile needs a value"),
    (("a.heron", "b.heron"), "more than one model"),
])
def test_argument_errors(args, fragment):
    r = heron_run(*args)
    assert r.returncode == 2, r
    assert fragment in r.stderr
    assert "usage: heron-run MODEL" in r.stderr


def test_help():
    r = heron_run("--help")
    assert r.returncode == 0 and "--dump-outputs DIR" in r.stdout


def test_missing_model_file(tmp_path):
    r = heron_run(tmp_path / "none.heron")
    assert r.returncode == 1
    assert "heron-run: error: loading" in r.stderr


# ------------------------------------------------------------------ with a model


def test_npy_round_trip_and_summary(models, tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    out.mkdir()
    r = heron_run(models / "mlp.heron", "--input", f"x={tmp_path / 'x.npy'}", "--iter", "4", "--warmup", "1",
                  "--dump-outputs", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("iter ") == 4
    summary = [l for l in r.stdout.splitlines() if l.startswith("latency")]
    assert len(summary) == 1
    for key in ("mean", "stdev", "min", "p50", "p90", "p99", "max"):
        assert f" {key} " in summary[0]
    # After the warm-up run planned it, the arena holds l1 (3 x 16 float32) and counts whole in the
    # peak, next to the outputs h (3 x 16) and y (3 x 4).
    assert "peak memory" in r.stdout and f"({3 * 16 * 4 + 3 * 16 * 4 + 3 * 4 * 4} bytes); arena:" in r.stdout
    assert f"arena: 0.000 MiB ({3 * 16 * 4} bytes)" in r.stdout
    y, h = np.load(out / "y.npy"), np.load(out / "h.npy")
    assert y.dtype == np.float32 and y.shape == (3, 4)
    ry, rh = mlp_reference(x)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, rh, rtol=1e-5, atol=1e-5)


def test_random_input_profile_and_trace(models, tmp_path):
    prof, trace = tmp_path / "p.json", tmp_path / "t.json"
    r = heron_run(models / "mlp.heron", "--random-input", "--iter", "3", "--warmup", "2", "--threads", "1",
                  "--profile", prof, "--chrome-trace", trace)
    assert r.returncode == 0, r.stderr
    p = json.loads(prof.read_text())
    assert p["format"] == "heron-profile" and p["version"] == 1
    assert len(p["runs"]) == 3  # the warm-up runs are not in the profile
    assert [n["op"] for n in p["runs"][0]["nodes"]] == ["linear", "relu", "linear"]
    assert p["runs"][0]["nodes"][0]["input_shapes"][0] == [1, 8]  # symbolic batch -> 1
    t = json.loads(trace.read_text())
    assert all(e["ph"] == "X" for e in t["traceEvents"])
    assert len(t["traceEvents"]) == 3 * 4


def test_missing_input_lists_what_the_model_expects(models):
    r = heron_run(models / "mlp.heron")
    assert r.returncode == 2
    assert "x (float32[?, 8])" in r.stderr and "--random-input" in r.stderr


def test_wrong_input_shape_or_name(models, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    r = heron_run(models / "mlp.heron", "--input", f"x={tmp_path / 'bad.npy'}")
    assert r.returncode == 1 and "[?, 8]" in r.stderr and "[2, 5]" in r.stderr
    r = heron_run(models / "mlp.heron", "--input", f"z={tmp_path / 'bad.npy'}", "--random-input")
    assert r.returncode == 1 and "no input named 'z'" in r.stderr


def npy_bytes(header: str, data: bytes = b"", version=1) -> bytes:
    h = header.encode()
    if version == 1:
        return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + data
    return b"\x93NUMPY" + bytes([version, 0]) + len(h).to_bytes(4, "little") + h + data


@pytest.mark.parametrize("content, fragment", [
    (b"", "bad magic"),
    (b"PK\x03\x04not npy", "bad magic"),
    (b"\x93NUMPY\x01\x00\xff\xff{", "truncated .npy header"),
    (b"\x93NUMPY\x09\x00\x10\x00" + b" " * 16, "unsupported .npy version 9"),
    (npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 8), }"), "unsupported .npy dtype '>f4'"),
    (npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 8), }"), "unsupported .npy dtype"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 8), }", bytes(64)), "Fortran-ordered"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 8), }", bytes(63)), "needs 64"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 8), }", bytes(65)), "needs 64"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }"), "too large"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -8), }"), "bad .npy shape"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, }"), "no 'shape' key"),
    (npy_bytes("{'fortran_order': False, 'shape': (2, 8), }"), "no 'descr' key"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 8), }", bytes(64), version=2), None),
])
def test_malformed_npy_is_rejected(models, tmp_path, content, fragment):
    f = tmp_path / "in.npy"
    f.write_bytes(content)
    r = heron_run(models / "mlp.heron", "--input", f"x={f}", "--iter", "1")
    if fragment is None:  # a valid version-2 file
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 1, r
    assert fragment in r.stderr, r.stderr


def test_float64_model_and_dump_names(models, tmp_path):
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    b = np.full((2, 3), 0.25)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    r = heron_run(models / "two_inputs.heron", "--input", f"a={tmp_path / 'a.npy'}", "--input", f"b={tmp_path / 'b.npy'}",
                  "--iter", "1", "--dump-outputs", tmp_path)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "sum.npy"), a + 2 * b)


def test_c_example_runs_a_model(models):
    exe = BUILD / "heron_c_run_model"
    if not exe.exists():
        skip_unless_ci("examples/c/run_model.c is not built")
    r = subprocess.run([str(exe), str(models / "mlp.heron")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ry, rh = mlp_reference(np.full((1, 8), 0.5, np.float32))
    assert "output y: ndim 2, 4 elements, first value" in r.stdout
    first = float(r.stdout.split("output y: ndim 2, 4 elements, first value ")[1].split()[0])
    assert abs(first - ry[0, 0]) < 1e-4
    assert '"format":"heron-profile"' in r.stdout


def test_no_microbatch_flag(tmp_path):
    # A convolution with 512 KiB per row runs row by row at batch 3 unless --no-microbatch; the
    # outputs are the same.
    import heron
    heron.manual_seed(0)
    conv = heron.nn.Sequential(heron.nn.Conv2d(3, 8, 3, padding=1), heron.nn.ReLU()).eval()
    traced = heron.jit.trace(conv, heron.randn(2, 3, 128, 128))
    heron.jit.save(traced, tmp_path / "conv.heron")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((3, 3, 128, 128)).astype(np.float32))
    outs = []
    for flag in ([], ["--no-microbatch"]):
        d = tmp_path / ("off" if flag else "on")
        r = heron_run(tmp_path / "conv.heron", "--input", f"input={tmp_path / 'x.npy'}", "--iter", 2, "--profile",
                      tmp_path / "p.json", "--dump-outputs", d, *flag)
        assert r.returncode == 0, r.stderr
        rows = sum("sample" in n for n in json.loads((tmp_path / "p.json").read_text())["runs"][-1]["nodes"])
        assert (rows == 0) == bool(flag), rows
        outs.append(np.load(d / "output.npy"))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-6)
