"""Micro-batching in the session (docs/design/runtime.md): with a batch > 1, the start of the graph
where per-sample values are large (>= 512 KiB) runs one batch row at a time. The oracle is the same
session code with micro-batching off (HERON_MICROBATCH=0) and each row run alone, and numpy for a
graph written by hand: results must not change, while the profile shows the per-row executions
and the planned memory shrinks."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import heron
import heron.models


def session(traced, micro, **kw):
    """A session with micro-batching on or off (the switch is read when the session is created)."""
    old = os.environ.get("HERON_MICROBATCH")
    os.environ["HERON_MICROBATCH"] = "1" if micro else "0"
    try:
        return heron.inference.Session(traced, **kw)
    finally:
        if old is None:
            del os.environ["HERON_MICROBATCH"]
        else:
            os.environ["HERON_MICROBATCH"] = old


def sampled(run):
    """The profile entries of a run that executed one batch row."""
    return [n for n in run["nodes"] if "sample" in n]


@pytest.fixture(scope="module", params=["resnet18", "mobilenet_v2"])
def traced(request):
    heron.manual_seed(0)
    model = getattr(heron.models, request.param)(num_classes=10).eval()
    return heron.jit.trace(model, heron.randn(2, 3, 224, 224), check=False)


def test_models_give_the_same_results_by_row(traced):
    on = session(traced, True, profile=True)
    off = session(traced, False)
    x = np.random.default_rng(0).standard_normal((3, 3, 224, 224)).astype(np.float32)
    want = off.run({"input": x})["output"]
    for _ in range(2):  # the planning run, then a run in the planned arena
        got = on.run({"input": x})["output"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    # Each row alone through the unchanged path (batch 1 never micro-batches).
    alone = np.concatenate([off.run({"input": x[i:i + 1]})["output"] for i in range(3)])
    np.testing.assert_allclose(got, alone, rtol=1e-4, atol=1e-5 * np.abs(alone).max())
    run = on.profile()["runs"][-1]
    rows = sampled(run)
    assert rows, "nothing ran by row"
    assert sorted({n["sample"] for n in rows}) == [0, 1, 2]
    per_row = len(rows) // 3
    assert len(rows) == 3 * per_row
    assert all(n["input_shapes"][0][0] == 1 for n in rows)
    # Each row ran the same prefix nodes in order (rows run in lanes at once with 2+ threads, so
    # the profile, in start order, may interleave them), then the rest of the graph ran on the batch.
    by_row = [[n["name"] for n in rows if n["sample"] == i] for i in range(3)]
    assert by_row[0] == by_row[1] == by_row[2]
    assert all("sample" in n for n in run["nodes"][:len(rows)])
    rest = run["nodes"][len(rows):]
    assert rest and all("sample" not in n and n["input_shapes"][0][0] == 3 for n in rest)


@pytest.mark.parametrize("threads", [1, 2])
def test_rows_need_less_memory(traced, threads):
    # The prefix's intermediates are one row big per lane (threads lanes at once): at batch 8 a
    # planned run needs less memory than the whole batch's intermediates at once.
    old = heron.get_num_threads()
    heron.set_num_threads(threads)
    try:
        on = session(traced, True)
        off = session(traced, False)
        x = np.random.default_rng(0).standard_normal((8, 3, 224, 224)).astype(np.float32)
        for _ in range(2):
            np.testing.assert_allclose(on.run({"input": x})["output"], off.run({"input": x})["output"], rtol=1e-5, atol=1e-6)
        assert 0 < on.arena_bytes < 0.75 * off.arena_bytes, (on.arena_bytes, off.arena_bytes)
    finally:
        heron.set_num_threads(old)


def test_batch_one_and_changing_batches(traced):
    on = session(traced, True, profile=True)
    off = session(traced, False)
    for batch in (1, 2, 1, 4, 2):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
        np.testing.assert_allclose(on.run({"input": x})["output"], off.run({"input": x})["output"], rtol=1e-5, atol=1e-6)
        rows = sampled(on.profile()["runs"][-1])
        assert (len(rows) > 0) == (batch > 1)


def test_eight_threads_micro_batched(traced):
    sess = session(traced, True)
    ref = session(traced, False)
    xs = [np.random.default_rng(i).standard_normal((2 + i % 2, 3, 224, 224)).astype(np.float32) for i in range(8)]
    want = [sess.run({"input": x})["output"] for x in xs]
    for x, w in zip(xs, want):
        np.testing.assert_allclose(w, ref.run({"input": x})["output"], rtol=1e-5, atol=1e-6)
    got = [[] for _ in range(8)]
    errors = []

    def work(i):
        try:
            for _ in range(2):
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
        for g in got[i]:
            np.testing.assert_array_equal(g, want[i])


# A graph written by hand, with the cases the prefix must handle: a value read inside the prefix
# and after it, a prefix value that is also a model output, a model input read in the prefix and
# after it, broadcasting constants ([1, C, 1, 1] and [C, 1, 1]), a residual add of two prefix values,
# max_pool2d's second output left unused, and a constant with a batch dim of its own, which ends
# the prefix (it does not broadcast along rows).
C, H = 8, 128  # one row of an 8 x 128 x 128 float32 value is 512 KiB


def hand_graph(batch_const_rows):
    rng = np.random.default_rng(7)
    w1 = rng.standard_normal((C, 3, 3, 3)).astype(np.float32) * 0.2
    b1 = rng.standard_normal(C).astype(np.float32)
    w2 = rng.standard_normal((C, C, 3, 3)).astype(np.float32) * 0.1
    c4 = rng.standard_normal((1, C, 1, 1)).astype(np.float32)
    c3 = rng.standard_normal((C, 1, 1)).astype(np.float32)
    cb = rng.standard_normal((batch_const_rows, C, H, H)).astype(np.float32)
    t = {k: heron.from_numpy(v) for k, v in dict(w1=w1, b1=b1, w2=w2, c4=c4, c3=c3, cb=cb).items()}

    def fn(x):
        y = heron.relu(heron.conv2d(x, t["w1"], t["b1"], padding=(1, 1)))  # read in and after the prefix
        z = heron.mul(heron.add(y, t["c4"]), t["c3"])
        r = heron.add(heron.conv2d(z, t["w2"], None, padding=(1, 1)), y)  # residual of two prefix values
        p = heron.max_pool2d(r, (2, 2))
        p = p[0] if isinstance(p, (tuple, list)) else p
        q = heron.add(r, t["cb"])  # batch-shaped constant: not by row
        s = heron.add(heron.mean(x, [1, 2, 3]), heron.mean(y, [1, 2, 3]))  # the model input after the prefix
        return y, heron.mean(p, [1, 2, 3]), heron.mean(q, [1, 2, 3]), s

    def oracle(x):
        def conv(a, w, b, pad):
            n, ci, hh, ww = a.shape
            k = w.shape[2]
            ap = np.pad(a.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
            out = np.zeros((n, w.shape[0], hh, ww))
            for i in range(k):
                for j in range(k):
                    out += np.einsum("nchw,oc->nohw", ap[:, :, i:i + hh, j:j + ww], w[:, :, i, j])
            return out + (0 if b is None else b.reshape(1, -1, 1, 1))
        y = np.maximum(conv(x, w1, b1, 1), 0)
        z = (y + c4) * c3
        r = conv(z, w2, None, 1) + y
        n = r.shape[0]
        p = r.reshape(n, C, H // 2, 2, H // 2, 2).max(axis=(3, 5))
        q = r + cb
        s = x.mean(axis=(1, 2, 3)) + y.mean(axis=(1, 2, 3))
        return y, p.mean(axis=(1, 2, 3)), q.mean(axis=(1, 2, 3)), s
    return fn, oracle


@pytest.mark.parametrize("optimize", [True, False], ids=["optimised", "as-traced"])
def test_hand_graph_against_numpy(optimize):
    batch = 3
    fn, oracle = hand_graph(batch)
    x = np.random.default_rng(1).standard_normal((batch, 3, H, H)).astype(np.float32)
    traced = heron.jit.trace(fn, heron.from_numpy(x), check=False, dynamic_batch=False)  # the constant fixes the batch
    sess = session(traced, True, profile=True, optimize=optimize)
    want = oracle(x)
    for _ in range(2):
        got = sess.run({sess.input_names[0]: x})
        for name, w in zip(sess.output_names, want):
            np.testing.assert_allclose(got[name], w, rtol=1e-4, atol=1e-4)
    run = sess.profile()["runs"][-1]
    rows = sampled(run)
    # Everything up to max_pool2d ran by row (conv + relu and conv + residual fused when optimised);
    # the add of the batch-shaped constant and what follows ran on the whole batch.
    per_row = ["conv2d_fused", "add", "mul", "conv2d_fused", "max_pool2d"] if optimize else \
              ["conv2d", "relu", "add", "mul", "conv2d", "add", "max_pool2d"]
    assert [[n["op"] for n in rows if n["sample"] == i] for i in range(batch)] == [per_row] * batch
    assert all(n["input_shapes"][0][0] == 1 for n in rows)
    rest = run["nodes"][len(rows):]
    assert rest[0]["op"] == "add" and rest[0]["input_shapes"] == [[batch, C, H, H], [batch, C, H, H]]


def test_unbatched_convolution_is_not_split():
    # A (C, H, W) input: its first dim is channels, not rows.
    w = heron.from_numpy(np.random.default_rng(0).standard_normal((C, 3, 3, 3)).astype(np.float32))
    x = np.random.default_rng(2).standard_normal((3, H, H)).astype(np.float32)
    traced = heron.jit.trace(lambda a: heron.relu(heron.conv2d(a, w, None, padding=(1, 1))), heron.from_numpy(x),
                             check=False, dynamic_batch=False)
    sess = session(traced, True, profile=True)
    off = session(traced, False)
    name = sess.input_names[0]
    out = sess.run({name: x})
    np.testing.assert_array_equal(list(out.values())[0], list(off.run({name: x}).values())[0])
    assert not sampled(sess.profile()["runs"][-1])


def test_option_turns_it_off(traced):
    x = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    counts = []
    for micro in (False, True):
        sess = heron.inference.Session(traced, profile=True, microbatch=micro)
        sess.run({"input": x})
        counts.append(len(sampled(sess.profile()["runs"][-1])))
    assert counts[0] == 0 and counts[1] > 0, counts


def test_environment_variable_turns_it_off(tmp_path):
    heron.manual_seed(0)
    traced = heron.jit.trace(heron.models.mobilenet_v2(num_classes=10).eval(), heron.randn(2, 3, 224, 224), check=False)
    path = tmp_path / "m.heron"
    heron.jit.save(traced, path)
    code = ("import sys, numpy as np, heron; s = heron.inference.Session(sys.argv[1], profile=True);"
            "x = np.ones((2, 3, 224, 224), np.float32); s.run({'input': x});"
            "print(sum('sample' in n for n in s.profile()['runs'][-1]['nodes']))")
    counts = {}
    for value in ("0", "1"):
        env = dict(os.environ, HERON_MICROBATCH=value)
        r = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True, check=True)
        counts[value] = int(r.stdout.strip())
    assert counts["0"] == 0 and counts["1"] > 0, counts
