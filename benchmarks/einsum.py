"""heron.einsum next to numpy.einsum(optimize=True) and torch.einsum: same process, same float32
inputs, interleaved, medians over blocks, ratios (heron / best of the peers; < 1 is faster).

    python benchmarks/einsum.py [--quick] [--only EQUATION]

numpy's optimize=True re-plans the path on every call; Heron caches the plan by equation and
shapes (that is part of what is measured). Set HERON_BENCH_EXTRA_PATH to a site-packages folder
holding torch when it lives outside this environment.

Heron runs in its default BLAS mode unless the caller sets HERON_BLAS_POOL=1 (the documented
mode for processes where another spinning BLAS, like numpy's, competes for the cores; see
docs/design/decisions.md, "CPU matmul threading"). The mode is printed in the header.
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
except Exception:  # pragma: no cover
    torch = None

# (equation, operand shapes) from issue 6; '10 per index' for the tensor network.
CASES = [
    ("ij,jk->ik", [(512, 512), (512, 512)]),
    ("bij,bjk->bik", [(32, 128, 64), (32, 64, 128)]),
    ("bhqd,bhkd->bhqk", [(8, 12, 128, 64), (8, 12, 128, 64)]),
    ("ii->i", [(2048, 2048)]),
    ("i,j->ij", [(2048,), (2048,)]),
    ("abc,cd,de->abe", [(64, 64, 64), (64, 64), (64, 64)]),
    ("ea,fb,abcd,gc,hd->efgh", [(10, 10), (10, 10), (10, 10, 10, 10), (10, 10), (10, 10)]),
    ("bn,anm,bm->ba", [(64, 32), (16, 32, 32), (64, 32)]),
]


def block_ms(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1e3 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    threads = heron.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"threads: {threads}; numpy {np.__version__}; torch: {torch.__version__ if torch else 'absent'}; float32; "
          f"HERON_BLAS_POOL={os.environ.get('HERON_BLAS_POOL', '0')}")
    print(f"{'equation':26s} {'heron ms':>9s} {'numpy ms':>9s} {'torch ms':>9s} {'heron/numpy':>11s} {'heron/torch':>11s} "
          f"{'heron/best':>10s}")
    reps = 5 if args.quick else 11
    rng = np.random.default_rng(0)
    for eq, shapes in CASES:
        if args.only and eq != args.only:
            continue
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        hs = [heron.from_numpy(a) for a in arrays]
        want = np.einsum(eq, *arrays, optimize=True)
        got = heron.einsum(eq, *hs).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * max(1.0, float(np.abs(want).max())))
        contenders = {"heron": lambda: heron.einsum(eq, *hs),
                      "numpy": lambda: np.einsum(eq, *arrays, optimize=True)}
        if torch is not None:
            ts = [torch.from_numpy(a) for a in arrays]
            contenders["torch"] = lambda: torch.einsum(eq, *ts)
        # Calls per block: about 20 ms of work for the slowest contender.
        for fn in contenders.values():
            fn()
        slowest = max(block_ms(fn, 3) for fn in contenders.values())
        n = max(3, min(2000, int(20.0 / max(slowest, 1e-3))))
        samples = {k: [] for k in contenders}
        for _ in range(reps):
            for k, fn in contenders.items():
                samples[k].append(block_ms(fn, n))
        med = {k: statistics.median(v) for k, v in samples.items()}
        h, nmp, t = med["heron"], med["numpy"], med.get("torch")
        best = min(nmp, t) if t else nmp
        print(f"{eq:26s} {h:9.4f} {nmp:9.4f} {t if t else float('nan'):9.4f} {h / nmp:10.2f}x "
              f"{(h / t) if t else float('nan'):10.2f}x {h / best:9.2f}x")


if __name__ == "__main__":
    main()
