"""Per-layer times of MobileNetV2's convolutions, global pooling and classifier (and ResNet-18's
convolutions, the r_* layers) in a session, next to onnxruntime.

    python benchmarks/mobilenet_layers.py [--threads 1] [--batch 1] [--reps 15] [--iters 20]
                                          [--layers a,b] [--ab VAR] [--ab-values 0,1]

Each layer is traced alone (conv2d + bias with its residual add and clamp, which the session
fuses into one conv2d_fused node as in the model; the classifier as linear) and run by a session
with profiling on: the figure is the node's own time (end_ns - start_ns from the profile), median
over reps x iters runs, so input/output copies and Python are not counted. onnxruntime (when
importable, e.g. through HERON_BENCH_EXTRA_PATH) runs the same single layer as an ONNX graph
(Conv, Add, Clip / Gemm) with the same thread count, timed per run, interleaved with Heron's
blocks. `--ab VAR` times Heron once per value of `--ab-values` (default 0,1) per block, with VAR
set to it in the environment (for switches the kernels read per call), interleaved. `--batch N`
runs every layer at batch N.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

if os.environ.get("HERON_BENCH_EXTRA_PATH"):
    sys.path.append(os.environ["HERON_BENCH_EXTRA_PATH"])

import heron  # noqa: E402

try:
    import onnx  # noqa: E402
    import onnxruntime as ort  # noqa: E402
    from onnx import TensorProto, helper  # noqa: E402
except Exception:  # pragma: no cover - optional peer
    ort = None

# name: (kind, N, C, H, W, K, k, stride, pad, residual, clamp)
LAYERS = {
    "stem": ("conv", 1, 3, 224, 224, 32, 3, 2, 1, False, True),
    "pw32_16_112": ("conv", 1, 32, 112, 112, 16, 1, 1, 0, False, False),
    "pw16_96_112": ("conv", 1, 16, 112, 112, 96, 1, 1, 0, False, True),
    "dw96_112_s2": ("dw", 1, 96, 112, 112, 96, 3, 2, 1, False, True),
    "pw24_144_56": ("conv", 1, 24, 56, 56, 144, 1, 1, 0, False, True),
    "pw144_24_56": ("conv", 1, 144, 56, 56, 24, 1, 1, 0, True, False),
    "pw96_24_56": ("conv", 1, 96, 56, 56, 24, 1, 1, 0, False, False),
    "pw144_32_28": ("conv", 1, 144, 28, 28, 32, 1, 1, 0, False, False),
    "pw192_32_28": ("conv", 1, 192, 28, 28, 32, 1, 1, 0, True, False),
    "pw384_64_14": ("conv", 1, 384, 14, 14, 64, 1, 1, 0, True, False),
    "pw384_96_14": ("conv", 1, 384, 14, 14, 96, 1, 1, 0, False, False),
    "pw576_96_14": ("conv", 1, 576, 14, 14, 96, 1, 1, 0, True, False),
    "pw960_160_7": ("conv", 1, 960, 7, 7, 160, 1, 1, 0, True, False),
    "pw576_160_7": ("conv", 1, 576, 7, 7, 160, 1, 1, 0, False, False),
    "pw960_320_7": ("conv", 1, 960, 7, 7, 320, 1, 1, 0, False, False),
    "pw320_1280_7": ("conv", 1, 320, 7, 7, 1280, 1, 1, 0, False, True),
    "pw160_960_7": ("conv", 1, 160, 7, 7, 960, 1, 1, 0, False, True),
    "classifier": ("linear", 1, 1280, 1, 1, 1000, 0, 0, 0, False, False),
    # depthwise 3x3 (+bias, clamp); K == C
    "dw576_14_s2": ("dw", 1, 576, 14, 14, 576, 3, 2, 1, False, True),
    "dw576_14_s1": ("dw", 1, 576, 14, 14, 576, 3, 1, 1, False, True),
    "dw384_14_s1": ("dw", 1, 384, 14, 14, 384, 3, 1, 1, False, True),
    "dw960_7_s1": ("dw", 1, 960, 7, 7, 960, 3, 1, 1, False, True),
    "dw144_56_s1": ("dw", 1, 144, 56, 56, 144, 3, 1, 1, False, True),
    # global average pooling before the classifier (adaptive_avg_pool2d to 1x1 / GlobalAveragePool)
    "gap1280_7": ("gap", 1, 1280, 7, 7, 1280, 0, 0, 0, False, False),
    # ResNet-18's convolutions (clamped to [0, 6] instead of ReLU: the same cost)
    "r_stem": ("conv", 1, 3, 224, 224, 64, 7, 2, 3, False, True),
    "r_l1": ("conv", 1, 64, 56, 56, 64, 3, 1, 1, True, True),
    "r_l2_s2": ("conv", 1, 64, 56, 56, 128, 3, 2, 1, False, True),
    "r_l2": ("conv", 1, 128, 28, 28, 128, 3, 1, 1, True, True),
    "r_l3_s2": ("conv", 1, 128, 28, 28, 256, 3, 2, 1, False, True),
    "r_l3": ("conv", 1, 256, 14, 14, 256, 3, 1, 1, True, True),
    "r_l4_s2": ("conv", 1, 256, 14, 14, 512, 3, 2, 1, False, True),
    "r_l4": ("conv", 1, 512, 7, 7, 512, 3, 1, 1, True, True),
    "r_ds2": ("conv", 1, 64, 56, 56, 128, 1, 2, 0, False, False),
    "r_ds3": ("conv", 1, 128, 28, 28, 256, 1, 2, 0, False, False),
    "r_ds4": ("conv", 1, 256, 14, 14, 512, 1, 2, 0, False, False),
}


def make(name, rng, batch=None):
    kind, N, C, H, W, K, k, s, p, res, clamp = LAYERS[name]
    N = batch or N
    if kind == "linear":
        x = rng.standard_normal((N, C)).astype(np.float32)
        w = (rng.standard_normal((K, C)) / np.sqrt(C)).astype(np.float32)
        b = rng.standard_normal(K).astype(np.float32)
        return kind, x, w, b, None, clamp, s, p
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    if kind == "gap":
        return kind, x, np.zeros(1, np.float32), np.zeros(1, np.float32), None, clamp, s, p
    cg = 1 if kind == "dw" else C
    w = (rng.standard_normal((K, cg, k, k)) / np.sqrt(cg * k * k)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    OH = (H + 2 * p - k) // s + 1
    r = rng.standard_normal((N, K, OH, OH)).astype(np.float32) if res else None
    return kind, x, w, b, r, clamp, s, p


def heron_session(kind, x, w, b, r, clamp, s, p, threads):
    wt, bt = heron.from_numpy(w), heron.from_numpy(b)

    def fn(xx, rr=None):
        if kind == "linear":
            return heron.linear(xx, wt, bt)
        if kind == "gap":
            return heron.adaptive_avg_pool2d(xx, 1)
        y = heron.conv2d(xx, wt, bt, stride=s, padding=p, groups=x.shape[1] if kind == "dw" else 1)
        if rr is not None:
            y = y + rr  # a graph input, as the block input is in the model: fused as the residual
        return heron.clamp(y, 0.0, 6.0) if clamp else y

    ex = (heron.from_numpy(x), heron.from_numpy(r)) if r is not None else heron.from_numpy(x)
    traced = heron.jit.trace(fn, ex, input_names=["input", "residual"] if r is not None else ["input"])
    return heron.inference.Session(traced, threads=threads, profile=True)


def heron_block(sess, feeds, iters):
    before = len(sess.profile()["runs"])
    for _ in range(iters):
        sess.run(feeds)
    runs = sess.profile()["runs"][before:]
    # the layer's node: the one with flops (conv2d_fused / linear), or the pooling node
    out = []
    for run in runs:
        nodes = [n for n in run["nodes"] if n["flops"] > 0 or "pool" in n["op"]]
        out.append(sum(n["end_ns"] - n["start_ns"] for n in nodes) / 1e3)
    return out


def ort_session(kind, x, w, b, r, clamp, s, p, threads):
    inits = [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()), helper.make_tensor("b", TensorProto.FLOAT, b.shape, b.ravel())]
    if kind == "linear":
        nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
        out_shape = [x.shape[0], w.shape[0]]
    elif kind == "gap":
        inits = []
        nodes = [helper.make_node("GlobalAveragePool", ["x"], ["y"])]
        out_shape = [x.shape[0], x.shape[1], 1, 1]
    else:
        k = w.shape[2]
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                                  group=x.shape[1] if kind == "dw" else 1)]
        cur = "c"
        if r is not None:
            inits.append(helper.make_tensor("r", TensorProto.FLOAT, r.shape, r.ravel()))
            nodes.append(helper.make_node("Add", [cur, "r"], ["a"]))
            cur = "a"
        if clamp:
            inits += [helper.make_tensor("lo", TensorProto.FLOAT, [], [0.0]), helper.make_tensor("hi", TensorProto.FLOAT, [], [6.0])]
            nodes.append(helper.make_node("Clip", [cur, "lo", "hi"], ["k"]))
            cur = "k"
        nodes.append(helper.make_node("Identity", [cur], ["y"]))
        OH = (x.shape[2] + 2 * p - k) // s + 1
        out_shape = [x.shape[0], w.shape[0], OH, OH]
    g = helper.make_graph(nodes, "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.enable_profiling = False
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ort_block(sess, x, iters):
    out = []
    feeds = {"x": x}
    for _ in range(iters):
        t0 = time.perf_counter_ns()
        sess.run(None, feeds)
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--layers", default=",".join(LAYERS))
    ap.add_argument("--batch", type=int, default=None, help="batch size of every layer (default: 1)")
    ap.add_argument("--ab", default=None, help="environment switch to time at each of --ab-values, interleaved")
    ap.add_argument("--ab-values", default="0,1")
    a = ap.parse_args()
    heron.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    cols = ["heron"] if not a.ab else [f"{a.ab}={v}" for v in a.ab_values.split(",")]
    if ort is not None:
        cols.append("ort (whole run)")
    print(f"threads={a.threads}, batch={a.batch or 1}, medians over {a.reps} x {a.iters} runs, microseconds")
    print(f"{'layer':16s}" + "".join(f"{c:>18s}" for c in cols))
    for name in a.layers.split(","):
        spec = make(name, rng, a.batch)
        hs = heron_session(*spec, a.threads)
        os_ = ort_session(*spec, a.threads) if ort is not None else None
        x = spec[1]
        feeds = {"input": x, "residual": spec[4]} if spec[4] is not None else {"input": x}
        samples = {c: [] for c in cols}
        for rep in range(a.reps + 1):  # rep 0 warms up
            for c in cols:
                if c.startswith("ort"):
                    t = ort_block(os_, x, a.iters)
                else:
                    if a.ab:
                        os.environ[a.ab] = c.split("=")[1]
                    t = heron_block(hs, feeds, a.iters)
                if rep:
                    samples[c] += t
        if a.ab:
            os.environ.pop(a.ab, None)
        print(f"{name:16s}" + "".join(f"{statistics.median(samples[c]):18.1f}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
