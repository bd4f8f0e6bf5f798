"""Heron benchmarks, side by side with numpy (and PyTorch when it is installed), in one process.

    python benchmarks/run.py [--quick] [--only overhead,matmul,elementwise]

Contenders are interleaved and each measurement is repeated; the table reports medians and the
ratio to the peer. Idle BLAS/OpenMP threads are told not to spin (see below), so that one library's
idle threads do not steal the cores of the next contender. Set HERON_BENCH_EXTRA_PATH to a site-packages folder holding torch to compare
with a PyTorch that lives outside this environment.
"""
import argparse
import os
import statistics
import sys
import time

# numpy (its own OpenBLAS), PyTorch (OpenMP) and Heron share this process and its cores. Idle BLAS
# and OpenMP threads spin-wait by default, so whichever library ran last steals the cores of the
# next contender and the interleaved comparison would measure that interference, not the kernels.
# Make every library's idle threads yield quickly (the user can override both).
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


def per_call_ns(fn, n):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


def interleaved(contenders, n, reps):
    """{name: median ns per call}, contenders run round-robin `reps` times."""
    samples = {k: [] for k in contenders}
    for fn in contenders.values():  # warm up
        per_call_ns(fn, max(1, n // 10))
    for _ in range(reps):
        for k, fn in contenders.items():
            samples[k].append(per_call_ns(fn, n))
    return {k: statistics.median(v) for k, v in samples.items()}


def threads():
    n = heron.get_num_threads()
    if torch is not None:
        torch.set_num_threads(n)
    return n


def bench_overhead(quick):
    rows = []
    n, reps = (20000, 5) if quick else (100000, 9)
    a, b = heron.tensor([1.0]), heron.tensor([2.0])
    na, nb = np.array([1.0], np.float32), np.array([2.0], np.float32)
    c = {"heron a+b": lambda: a + b, "heron.add": lambda: heron.add(a, b), "numpy": lambda: na + nb}
    if torch is not None:
        ta, tb = torch.tensor([1.0]), torch.tensor([2.0])
        c["torch"] = lambda: ta + tb
    r = interleaved(c, n, reps)
    peer = r.get("torch")
    for k, v in r.items():
        rows.append(("overhead: 1-element add", k, f"{v / 1000:.3f} us", f"{v / r['numpy']:.2f}x numpy" +
                     (f", {v / peer:.2f}x torch" if peer else "")))
    ma, mb = heron.tensor([[1.0]]), heron.tensor([[2.0]])
    nma, nmb = np.array([[1.0]], np.float32), np.array([[2.0]], np.float32)
    c = {"heron a@b": lambda: ma @ mb, "numpy": lambda: nma @ nmb}
    if torch is not None:
        tma, tmb = torch.tensor([[1.0]]), torch.tensor([[2.0]])
        c["torch"] = lambda: tma @ tmb
    r = interleaved(c, n // 2, reps)
    peer = r.get("torch")
    for k, v in r.items():
        rows.append(("overhead: 1x1 matmul", k, f"{v / 1000:.3f} us", f"{v / r['numpy']:.2f}x numpy" +
                     (f", {v / peer:.2f}x torch" if peer else "")))
    return rows


def bench_matmul(quick):
    rows = []
    sizes = [256, 512, 1024] if quick else [256, 512, 1024, 2048]
    rng = np.random.default_rng(0)
    for s in sizes:
        x = rng.standard_normal((s, s), dtype=np.float32)
        y = rng.standard_normal((s, s), dtype=np.float32)
        hx, hy = heron.tensor(x), heron.tensor(y)
        reps = 5 if s >= 1024 else 9
        n = max(1, int(2e9 / (2 * s ** 3)))
        c = {"heron": lambda: hx @ hy, "numpy": lambda: x @ y}
        if torch is not None:
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            c["torch"] = lambda: tx @ ty
        r = interleaved(c, n, reps)
        for k, v in r.items():
            gflops = 2 * s ** 3 / v
            rows.append((f"matmul float32 {s}x{s}", k, f"{gflops:.1f} GFLOP/s",
                         f"{r['numpy'] / v:.2f}x numpy speed"))
    return rows


def bench_elementwise(quick):
    rows = []
    n = 1 << 24
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    hx, hy = heron.tensor(x), heron.tensor(y)
    reps = 5 if quick else 9
    for name, hf, nf, tf, nbytes in [
        ("add 16M float32", lambda: hx + hy, lambda: x + y, "add", 3 * 4 * n),
        ("exp 16M float32", lambda: heron.exp(hx), lambda: np.exp(x), "exp", 2 * 4 * n),
    ]:
        c = {"heron": hf, "numpy": nf}
        if torch is not None:
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            c["torch"] = (lambda: tx + ty) if tf == "add" else (lambda: torch.exp(tx))
        r = interleaved(c, 3, reps)
        for k, v in r.items():
            rows.append((name, k, f"{nbytes / v:.1f} GB/s", f"{r['numpy'] / v:.2f}x numpy speed"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and sizes")
    ap.add_argument("--only", default="overhead,matmul,elementwise")
    args = ap.parse_args()
    nt = threads()
    print(f"heron {heron.__version__}, numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}, "
          f"{nt} threads")
    rows = []
    for part in args.only.split(","):
        rows += {"overhead": bench_overhead, "matmul": bench_matmul, "elementwise": bench_elementwise}[part](args.quick)
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("benchmark", "contender", "median", "ratio")
    w = [max(w[i], len(header[i])) for i in range(4)]
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(header)))
    print("  ".join("-" * w[i] for i in range(4)))
    for r in rows:
        print("  ".join(r[i].ljust(w[i]) for i in range(4)))


if __name__ == "__main__":
    main()
