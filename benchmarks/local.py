"""local / local_share (issue 8): GFLOP/s of the naive reference kernels and the optimized ones for
forward, backward-data and backward-filter, next to the machine's measured SGEMM peak (numpy
float32 matmul), its measured memory bandwidth (numpy copy) and each shape's roofline
min(peak, bandwidth x arithmetic intensity); plus conv2d on the SG=(1,1) shape.

    python benchmarks/local.py [--quick] [--reps 5] [--shapes "local 32x32"] [--passes bwd-data]

The peak and bandwidth are measured at the start and again next to every shape (the roofline of a
shape uses the latter, since the machine may be shared). Every kernel runs on Heron's pool (heron.get_num_threads() threads), the naive one too. Times are
the best of --reps runs (the naive kernels: one run); the machine may be shared, so the best run is
the least disturbed one. Arithmetic intensity counts the minimal traffic: every operand read once
and the result written once (float32).
"""
import argparse
import os
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

import heron  # noqa: E402
from heron import _ops  # noqa: E402


def best(fn, reps, warm=True):
    if warm:
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def sgemm_peak(reps):
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    return 2 * n ** 3 / best(lambda: a @ b, reps) / 1e9


def bandwidth(reps):
    a = np.ones(64 * 1024 * 1024 // 4 * 4, np.float32)  # 256 MiB
    b = np.empty_like(a)
    return 2 * a.nbytes / best(lambda: np.copyto(b, a), reps) / 1e9


# (name, kind, N, IC, OC, H, W, k, pad, SG)
SHAPES = [
    ("local_share 32x32 SG2x2", "share", 32, 64, 64, 32, 32, 3, 1, (2, 2)),
    ("local_share 32x32 SG4x4", "share", 32, 64, 64, 32, 32, 3, 1, (4, 4)),
    ("local_share 32x32 SG1x1", "share", 32, 64, 64, 32, 32, 3, 1, (1, 1)),
    ("local 16x16", "local", 32, 64, 64, 16, 16, 3, 1, None),
    ("local 32x32", "local", 32, 64, 64, 32, 32, 3, 1, None),
]
QUICK = [SHAPES[0], SHAPES[3]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-naive", action="store_true")
    ap.add_argument("--shapes", help="comma-separated shape names (or name prefixes) to run, e.g. 'local 32x32'")
    ap.add_argument("--passes", help="comma-separated passes to run: fwd, bwd-data, bwd-filt")
    args = ap.parse_args()
    shapes = QUICK if args.quick else SHAPES
    if args.shapes:
        want = [w.strip() for w in args.shapes.split(",")]
        shapes = [s for s in shapes if any(s[0].startswith(w) for w in want)]
        if not shapes:
            ap.error(f"no shape matches {args.shapes!r}; shapes: {', '.join(s[0] for s in SHAPES)}")
    passes_wanted = None
    if args.passes:
        passes_wanted = {p.strip() for p in args.passes.split(",")}
        if not passes_wanted <= {"fwd", "bwd-data", "bwd-filt"}:
            ap.error("--passes takes fwd, bwd-data, bwd-filt")
    reps = 2 if args.quick else args.reps
    peak, bw = sgemm_peak(reps), bandwidth(reps)
    print(f"threads={heron.get_num_threads()}  SGEMM peak (numpy 2048^3) {peak:.1f} GFLOP/s  "
          f"bandwidth (numpy copy 256 MiB) {bw:.1f} GB/s")
    hdr = (f"{'shape':<26}{'pass':<8}{'GFLOP':>7}{'AI':>7}{'roofline':>10}{'naive':>9}{'optimized':>11}"
           f"{'%roof':>7}{'x naive':>9}")
    print(hdr)
    print("-" * len(hdr))
    rng = np.random.default_rng(0)
    peaks, summary = [peak], []
    for (name, kind, N, IC, OC, H, W, k, pad, sg) in shapes:
        OH, OW = H + 2 * pad - k + 1, W + 2 * pad - k + 1
        sg = (OH, OW) if kind == "local" else sg
        x = heron.from_numpy(rng.uniform(-1, 1, (N, IC, H, W)).astype(np.float32))
        w_np = (rng.uniform(-1, 1, sg + (IC, k, k, OC)) / np.sqrt(IC * k * k)).astype(np.float32)
        w = heron.from_numpy(w_np)
        gy = heron.from_numpy(rng.uniform(-1, 1, (N, OC, OH, OW)).astype(np.float32))
        flops = 2.0 * N * OC * OH * OW * IC * k * k
        xb, wb, yb = 4.0 * N * IC * H * W, 4.0 * w_np.size, 4.0 * N * OC * OH * OW
        if kind == "local":
            def fwd(algo):
                return _ops.local_conv2d(x, w, None, stride=(1, 1), padding=(pad, pad), algo=algo)

            def bwd(algo, mask):
                return _ops.local_conv2d_backward(gy, x, w, stride=(1, 1), padding=(pad, pad), algo=algo,
                                                  output_mask=mask)
        else:
            def fwd(algo):
                return _ops.local_share_conv2d(x, w, None, padding=(pad, pad), spatial_groups=sg, algo=algo)

            def bwd(algo, mask):
                return _ops.local_share_conv2d_backward(gy, x, w, padding=(pad, pad), spatial_groups=sg, algo=algo,
                                                        output_mask=mask)
        # The machine may be shared: measure the peak and the bandwidth again next to every shape
        # and take the roofline from those.
        peak_s, bw_s = sgemm_peak(3), bandwidth(3)
        peaks.append(peak_s)
        print(f"{'  (measured now: SGEMM ' + format(peak_s, '.1f') + ' GFLOP/s, ' + format(bw_s, '.1f') + ' GB/s)'}")
        passes = [("fwd", lambda a: fwd(a), xb + wb + yb),
                  ("bwd-data", lambda a: bwd(a, (1, 0)), yb + wb + xb),
                  ("bwd-filt", lambda a: bwd(a, (0, 1)), xb + yb + wb)]
        for pname, fn, nbytes in passes:
            if passes_wanted is not None and pname not in passes_wanted:
                continue
            ai = flops / nbytes
            roof = min(peak_s, bw_s * ai)
            t_opt = best(lambda: fn("auto"), reps)
            g_opt = flops / t_opt / 1e9
            if args.no_naive:
                naive_s, ratio = "-", "-"
            else:
                t_naive = best(lambda: fn("naive"), 1, warm=False)
                naive_s, ratio = f"{flops / t_naive / 1e9:.2f}", f"{t_naive / t_opt:.0f}x"
            summary.append((name, pname, ai, g_opt))
            print(f"{name:<26}{pname:<8}{flops / 1e9:7.2f}{ai:7.1f}{roof:10.1f}{naive_s:>9}{g_opt:11.1f}"
                  f"{100 * g_opt / roof:6.0f}%{ratio:>9}")
        if sg == (1, 1) and passes_wanted is None:
            wc = heron.from_numpy(np.ascontiguousarray(w_np[0, 0].transpose(3, 0, 1, 2)))
            t_conv = best(lambda: heron.conv2d(x, wc, None, padding=pad), reps)
            print(f"{'  conv2d (same shape)':<26}{'fwd':<8}{flops / 1e9:7.2f}{'':>7}{'':>10}{'':>9}"
                  f"{flops / t_conv / 1e9:11.1f}")
            xr = heron.from_numpy(rng.uniform(-1, 1, (N, IC, H, W)).astype(np.float32)).requires_grad_(True)
            wr = heron.from_numpy(np.ascontiguousarray(w_np[0, 0].transpose(3, 0, 1, 2))).requires_grad_(True)

            def conv_bwd():
                heron.conv2d(xr, wr, None, padding=pad).backward(gy)
            t_cb = best(conv_bwd, reps) - t_conv
            print(f"{'  conv2d (same shape)':<26}{'bwd d+f':<8}{2 * flops / 1e9:7.2f}{'':>7}{'':>10}{'':>9}"
                  f"{2 * flops / t_cb / 1e9:11.1f}")

    # The load of a shared machine changes within seconds: the same passes against the highest
    # SGEMM rate and bandwidth seen anywhere in this run (the strictest roofline).
    top_peak = max(peaks)
    print(f"\nagainst the best SGEMM of the run ({top_peak:.1f} GFLOP/s) and bandwidth {bw:.1f} GB/s:")
    for name, pname, ai, g_opt in summary:
        roof = min(top_peak, bw * ai)
        print(f"  {name:<26}{pname:<9}{g_opt:8.1f} GFLOP/s  {100 * g_opt / roof:4.0f}% of {roof:.1f}")


if __name__ == "__main__":
    main()
