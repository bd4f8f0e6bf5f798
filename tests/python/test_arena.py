"""The session's memory plan (arena) on ResNet-18 and MobileNetV2: the arena is smaller than the sum
of the intermediates (counted independently, from the shapes the profile records), results with the
arena are bitwise equal to results without it, also with 8 threads on one session, and
HERON_ARENA=0 / arena=False turn it off."""
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import heron
import heron.models

# Ops that return a view of their input (no new memory): left out of the sum of intermediates so
# that the comparison is with memory really allocated.
VIEW_OPS = {"reshape", "flatten", "view", "transpose", "permute", "squeeze", "unsqueeze", "expand", "slice", "select"}
ITEMSIZE = {"float32": 4, "float64": 8, "int64": 8, "int32": 4, "int8": 1, "uint8": 1, "bool": 1, "float16": 2}


@pytest.fixture(scope="module", params=["resnet18", "mobilenet_v2"])
def traced(request):
    heron.manual_seed(0)
    model = getattr(heron.models, request.param)(num_classes=10).eval()
    return heron.jit.trace(model, heron.randn(2, 3, 64, 64))


def output_dtypes(graph_text):
    """Per node, in order, the dtypes of its outputs, from the graph's text form."""
    nodes = []
    for line in graph_text.splitlines():
        line = line.strip()
        if not line.startswith("%") or "<initializer>" in line or " = " not in line:
            continue
        nodes.append(re.findall(r"(\w+)\[", line.rsplit(" : ", 1)[1]))
    return nodes


def intermediates(profile_run, graph_text, output_shapes):
    """Bytes of every node output but views and model outputs, from the profile's shapes and the
    graph's dtypes."""
    sizes = []
    outs = [list(s) for s in output_shapes]
    dtypes = output_dtypes(graph_text)
    assert len(dtypes) == len(profile_run["nodes"])
    for node, dts in zip(profile_run["nodes"], dtypes):
        if node["op"] in VIEW_OPS:
            continue
        for shape, dt in zip(node["output_shapes"], dts):
            if shape in outs:
                outs.remove(shape)  # a model output: returned to the caller, never in the arena
                continue
            sizes.append(int(np.prod(shape)) * ITEMSIZE[dt])
    return sizes


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("optimize", [False, True], ids=["as-traced", "optimised"])
def test_arena_is_smaller_than_the_sum_of_intermediates(traced, batch, optimize):
    sess = heron.inference.Session(traced, profile=True, optimize=optimize)
    x = np.random.default_rng(batch).random((batch, 3, 64, 64), dtype=np.float32)
    sess.run({"input": x})                     # plans the arena of this shape
    out = sess.run({"input": x})["output"]     # runs in it
    prof = sess.profile()
    run = prof["runs"][-1]
    sizes = intermediates(run, sess.graph_text(), [out.shape])  # of the graph the session runs
    arena = prof["session"]["arena_bytes"]
    assert arena == sess.arena_bytes == run["arena_bytes"]
    assert prof["session"]["arena"]["enabled"] is True
    assert arena >= max(sizes)                 # it holds the largest one
    # As traced (conv, batch_norm, relu, add as separate nodes) most intermediates die young: the
    # arena is a fraction of their sum. Optimised, the graph is nearly a chain of fused
    # convolutions (fewer, longer-lived buffers): still well under the sum.
    assert arena < sum(sizes) / (3 if not optimize else 1.5), (arena, sum(sizes))
    assert prof["session"]["arena"]["buffer_bytes"] <= sum(sizes)
    assert run["peak_bytes"] >= arena
    assert prof["runs"][0]["arena_bytes"] == 0  # the planning run


def test_optimised_sessions_need_a_smaller_arena(traced):
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    arenas = []
    for optimize in (False, True):
        sess = heron.inference.Session(traced, optimize=optimize)
        sess.run({"input": x})
        sess.run({"input": x})
        arenas.append(sess.arena_bytes)
    assert 0 < arenas[1] <= arenas[0], arenas


def test_results_with_the_arena_equal_results_without(traced):
    on = heron.inference.Session(traced)
    off = heron.inference.Session(traced, arena=False)
    for batch in (2, 1, 2, 4):
        x = np.random.default_rng(10 + batch).random((batch, 3, 64, 64), dtype=np.float32)
        want = off.run({"input": x})["output"]
        for _ in range(2):
            np.testing.assert_array_equal(on.run({"input": x})["output"], want)
    assert on.arena_bytes > 0
    assert off.arena_bytes == 0


def test_eight_threads_with_the_arena(traced):
    sess = heron.inference.Session(traced)
    ref = heron.inference.Session(traced, arena=False)
    xs = [np.random.default_rng(i).random((1 + i % 2, 3, 64, 64), dtype=np.float32) for i in range(8)]
    want = [ref.run({"input": x})["output"] for x in xs]
    got = [[] for _ in range(8)]
    errors = []

    def work(i):
        try:
            for _ in range(3):
                got[i].append(sess.run({"input": xs[i]})["output"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    ths = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors
    for i in range(8):
        assert len(got[i]) == 3
        for g in got[i]:
            np.testing.assert_array_equal(g, want[i])


def test_environment_variable_turns_the_arena_off(tmp_path):
    model = heron.nn.Sequential(heron.nn.Linear(8, 16), heron.nn.ReLU(), heron.nn.Linear(16, 4))
    traced = heron.jit.trace(model, heron.randn(2, 8))
    path = tmp_path / "mlp.heron"
    heron.jit.save(traced, path)
    code = ("import sys, numpy as np, heron; s = heron.inference.Session(sys.argv[1]); x = np.ones((2, 8), np.float32);"
            "s.run({'input': x}); s.run({'input': x}); print(s.arena_bytes)")
    env = dict(os.environ)
    for value, expect_zero in (("0", True), ("1", False)):
        env["HERON_ARENA"] = value
        r = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True, check=True)
        assert (int(r.stdout.strip()) == 0) == expect_zero, r.stdout
