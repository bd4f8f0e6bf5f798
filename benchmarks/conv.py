"""conv2d forward GFLOP/s and forward+backward time, Heron next to PyTorch in one process.

    python benchmarks/conv.py [--quick] [--dtype float32]

Shapes: the ResNet-50 stage-1 3x3 conv (N=32, C=K=64, 56x56, padding 1) and the three convs of
the MNIST ConvNet (batch 64: 1->16 on 28x28, 16->32 on 14x14, 32->32 on 7x7, 3x3, padding 1).
Forward+backward is conv2d then both the input and the weight gradients (Heron: conv2d_backward
with output_mask [1, 1, 0]; PyTorch: autograd on input and weight). Contenders are interleaved;
medians of the repeats are reported with the ratio Heron / PyTorch. Set HERON_BENCH_EXTRA_PATH to
a site-packages folder holding torch (e.g. /tmp/torchenv/lib/python3.11/site-packages) to compare.
HERON_CONV_BLAS=1 / HERON_CONV_TILE_KB=n switch Heron's conv strategy (see conv_kernels.cpp).
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

if os.environ.get("HERON_BENCH_EXTRA_PATH"):
    sys.path.append(os.environ["HERON_BENCH_EXTRA_PATH"])

import heron  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except Exception:  # pragma: no cover - optional peer
    torch = None

SHAPES = [
    # name, (N, C, H, W), (K, kH, kW), padding
    ("resnet 64->64 3x3 56x56 N=32", (32, 64, 56, 56), (64, 3, 3), 1),
    ("mnist 1->16 3x3 28x28 N=64", (64, 1, 28, 28), (16, 3, 3), 1),
    ("mnist 16->32 3x3 14x14 N=64", (64, 16, 14, 14), (32, 3, 3), 1),
    ("mnist 32->32 3x3 7x7 N=64", (64, 32, 7, 7), (32, 3, 3), 1),
]


def timed(fn, n):
    """(wall, process CPU) seconds per call."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def interleaved(contenders, n, reps):
    """{name: (median wall, median CPU) per call}, contenders run round-robin `reps` times."""
    samples = {k: [] for k in contenders}
    for fn in contenders.values():
        timed(fn, max(1, n // 2))  # warm up
    for _ in range(reps):
        for k, fn in contenders.items():
            samples[k].append(timed(fn, n))
    return {k: (statistics.median(s[0] for s in v), statistics.median(s[1] for s in v)) for k, v in samples.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    threads = heron.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    hdt = getattr(heron, args.dtype)
    print(f"threads={threads} dtype={args.dtype} torch={'yes ' + torch.__version__ if torch else 'no'} "
          f"load={os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(0)
    rows = []
    for name, xs, ws, pad in SHAPES:
        n_, c, h, w = xs
        k, kh, kw = ws
        x = rng.standard_normal(xs).astype(args.dtype)
        wt = (rng.standard_normal((k, c, kh, kw)) * 0.1).astype(args.dtype)
        oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
        gy = rng.standard_normal((n_, k, oh, ow)).astype(args.dtype)
        flops = 2.0 * n_ * k * c * kh * kw * oh * ow
        hx, hw, hgy = heron.tensor(x), heron.tensor(wt), heron.tensor(gy)
        assert hx.dtype == hdt

        def h_fwd():
            heron.conv2d(hx, hw, None, 1, pad)

        def h_fb():
            heron.conv2d(hx, hw, None, 1, pad)
            heron.conv2d_backward(hgy, hx, hw, 1, pad, output_mask=[1, 1, 0])

        fwd = {"heron": h_fwd}
        fb = {"heron": h_fb}
        if torch is not None:
            tx = torch.from_numpy(x.copy()).requires_grad_(True)
            tw = torch.from_numpy(wt.copy()).requires_grad_(True)
            tgy = torch.from_numpy(gy.copy())

            def t_fwd():
                with torch.no_grad():
                    F.conv2d(tx, tw, None, 1, pad)

            def t_fb():
                tx.grad = None
                tw.grad = None
                F.conv2d(tx, tw, None, 1, pad).backward(tgy)

            fwd["torch"] = t_fwd
            fb["torch"] = t_fb
            # correctness next to the peer
            ref = F.conv2d(tx, tw, None, 1, pad).detach().numpy()
            got = heron.conv2d(hx, hw, None, 1, pad).numpy()
            assert np.allclose(got, ref, rtol=1e-3, atol=1e-3 * np.sqrt(c * kh * kw)), name
        big = flops > 1e9
        n, reps = (1, 3 if args.quick else 7) if big else (5 if args.quick else 20, 3 if args.quick else 7)
        rf = interleaved(fwd, n, reps)
        rb = interleaved(fb, n, reps)
        for who in fwd:
            def ratio(r, i):
                return f"{r['heron'][i] / r['torch'][i]:.2f}x" if "torch" in r and who == "heron" else ""
            rows.append((name, who, f"{rf[who][0] * 1e3:8.2f} ms", f"{flops / rf[who][0] / 1e9:7.1f} GFLOP/s", ratio(rf, 0),
                         f"{rb[who][0] * 1e3:8.2f} ms", ratio(rb, 0), f"{rf[who][1] * 1e3:8.2f} ms", ratio(rf, 1),
                         f"{rb[who][1] * 1e3:8.2f} ms", ratio(rb, 1)))
    # The CPU columns (process time, all threads) are the work done: on a machine shared with
    # other jobs the wall times mostly measure the scheduler's share.
    hdr = ("shape", "who", "forward", "fwd rate", "vs torch", "fwd+bwd", "vs torch", "fwd CPU", "vs torch",
           "fwd+bwd CPU", "vs torch")
    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    for r in [hdr] + rows:
        print("  ".join(str(v).ljust(wd) for v, wd in zip(r, widths)))


if __name__ == "__main__":
    main()
