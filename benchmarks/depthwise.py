"""MobileNetV2's depthwise 3x3 layers one by one: Heron's conv2d_fused (groups = C, bias, ReLU6; the
op a session runs after BatchNorm folding) next to PyTorch's conv2d + clamp, eager, same process,
interleaved blocks, medians.

    python benchmarks/depthwise.py [--threads 1] [--batch 1] [--reps 15]

Set HERON_BENCH_EXTRA_PATH to a site-packages folder holding torch to compare. HERON_CONV_DEPTHWISE=0
runs Heron's generic (OpenBLAS / scalar) path instead of the AVX-512 depthwise kernels.
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
except Exception:  # pragma: no cover - optional peer
    torch = None

# (C, H = W, stride, layers of this shape in MobileNetV2)
LAYERS = [(32, 112, 1, 1), (96, 112, 2, 1), (144, 56, 1, 1), (144, 56, 2, 1), (192, 28, 1, 2), (192, 28, 2, 1),
          (384, 14, 1, 4), (576, 14, 1, 2), (576, 14, 2, 1), (960, 7, 1, 3)]


def block_us(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1e6 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()
    heron.set_num_threads(a.threads)
    if torch is not None:
        torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    print(f"threads {a.threads}, batch {a.batch}; us per layer, medians of {a.reps} interleaved blocks")
    print(f"{'C':>5} {'H':>4} {'s':>2} {'x':>2} {'heron':>9} {'torch':>9} {'heron/torch':>12}")
    tot = {"heron": 0.0, "torch": 0.0}
    for C, H, s, count in LAYERS:
        x = rng.standard_normal((a.batch, C, H, H)).astype(np.float32)
        w = rng.standard_normal((C, 1, 3, 3)).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        hx, hw, hb = heron.from_numpy(x), heron.from_numpy(w), heron.from_numpy(b)
        fns = {"heron": lambda: heron.conv2d_fused(hx, hw, hb, stride=s, padding=1, groups=C, min=0.0, max=6.0)}
        if torch is not None:
            tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)

            def tfn():
                with torch.no_grad():
                    return torch.clamp(torch.nn.functional.conv2d(tx, tw, tb, s, 1, 1, C), 0.0, 6.0)
            fns["torch"] = tfn
        n = max(1, int(2e4 // (a.batch * C * H * H / 1e3)))  # ~ a few ms per block
        for fn in fns.values():
            block_us(fn, n)
        samples = {k: [] for k in fns}
        for _ in range(a.reps):
            for k, fn in fns.items():
                samples[k].append(block_us(fn, n))
        med = {k: statistics.median(v) for k, v in samples.items()}
        for k in med:
            tot[k] += med[k] * count
        tv = med.get("torch", float("nan"))
        print(f"{C:>5} {H:>4} {s:>2} {count:>2} {med['heron']:>9.1f} {tv:>9.1f} {med['heron'] / tv:>11.2f}x")
    tv = tot["torch"] if torch is not None else float("nan")
    print(f"total (x count): heron {tot['heron']:.0f} us, torch {tv:.0f} us")


if __name__ == "__main__":
    main()
