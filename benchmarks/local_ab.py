"""local / local_share (issue 8): before/after comparison of two Heron builds on one pass, for a
machine shared with other jobs.

    python benchmarks/local_ab.py --a /path/to/old/python --b python [--shape "local 32x32"]
                                  [--pass bwd-data] [--threads 2] [--rounds 6] [--calls 9]

Each round runs build A, then build B, each in its own process (PYTHONPATH set to the given
directory, which must hold the `heron` package with its library), with numpy's SGEMM (2048^3,
float32, best of 3) measured right before and right after every run as a load indicator: a round
whose SGEMM reads near the machine's idle rate both times ran on an idle machine. Every run prints
the median and best wall-clock GFLOP/s of its calls and the median GFLOP per CPU-second of the
process (process_time: it does not count the time spent waiting for a core, so it compares builds
under load; on an idle machine with T threads it is about wall-clock / T).
"""
import argparse
import os
import subprocess
import sys
import time

# (N, IC, OC, H, W, k, pad, SG or None for local): the shapes of benchmarks/local.py
SHAPES = {
    "local_share 32x32 SG2x2": (32, 64, 64, 32, 32, 3, 1, (2, 2)),
    "local_share 32x32 SG4x4": (32, 64, 64, 32, 32, 3, 1, (4, 4)),
    "local_share 32x32 SG1x1": (32, 64, 64, 32, 32, 3, 1, (1, 1)),
    "local 16x16": (32, 64, 64, 16, 16, 3, 1, None),
    "local 32x32": (32, 64, 64, 32, 32, 3, 1, None),
}


def worker(shape, pname, threads, calls):
    import numpy as np

    import heron
    from heron import _ops
    heron.set_num_threads(threads)
    N, IC, OC, H, W, k, pad, sg = SHAPES[shape]
    OH, OW = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    rng = np.random.default_rng(0)
    x = heron.from_numpy(rng.uniform(-1, 1, (N, IC, H, W)).astype(np.float32))
    w = heron.from_numpy((rng.uniform(-1, 1, (sg or (OH, OW)) + (IC, k, k, OC)) / 24).astype(np.float32))
    gy = heron.from_numpy(rng.uniform(-1, 1, (N, OC, OH, OW)).astype(np.float32))
    p = dict(padding=(pad, pad))
    if sg is None:
        fwd = lambda: _ops.local_conv2d(x, w, None, **p)  # noqa: E731
        bwd = lambda m: _ops.local_conv2d_backward(gy, x, w, output_mask=m, **p)  # noqa: E731
    else:
        fwd = lambda: _ops.local_share_conv2d(x, w, None, spatial_groups=sg, **p)  # noqa: E731
        bwd = lambda m: _ops.local_share_conv2d_backward(gy, x, w, spatial_groups=sg, output_mask=m, **p)  # noqa: E731
    fn = {"fwd": fwd, "bwd-data": lambda: bwd((1, 0)), "bwd-filt": lambda: bwd((0, 1))}[pname]
    flops = 2.0 * N * OC * OH * OW * IC * k * k
    fn()
    fn()
    ts, cs = [], []
    for _ in range(calls):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    ts.sort()
    cs.sort()
    print(f"wall median {flops / ts[calls // 2] / 1e9:6.1f} best {flops / ts[0] / 1e9:6.1f} GFLOP/s; "
          f"per CPU-second {flops / cs[calls // 2] / 1e9:6.1f}")


def sgemm():
    import numpy as np
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        a @ a
        ts.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(ts) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", help="PYTHONPATH of build A (the 'before')")
    ap.add_argument("--b", help="PYTHONPATH of build B (the 'after')")
    ap.add_argument("--shape", default="local 32x32", choices=sorted(SHAPES))
    ap.add_argument("--pass", dest="pname", default="bwd-data", choices=["fwd", "bwd-data", "bwd-filt"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--calls", type=int, default=9)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.shape, args.pname, args.threads, args.calls)
    if not args.a or not args.b:
        ap.error("--a and --b are required")
    print(f"{args.shape} {args.pname}, {args.threads} threads, {args.calls} calls per run")
    for r in range(args.rounds):
        for tag, path in (("A", args.a), ("B", args.b)):
            g0 = sgemm()
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", "--shape", args.shape, "--pass",
                                  args.pname, "--threads", str(args.threads), "--calls", str(args.calls)],
                                 env=dict(os.environ, PYTHONPATH=os.path.abspath(path)), capture_output=True, text=True)
            res = out.stdout.strip() or ("failed: " + out.stderr.strip()[-300:])
            print(f"round {r} {tag}: SGEMM before {g0:5.0f} after {sgemm():5.0f} GFLOP/s | {res}", flush=True)


if __name__ == "__main__":
    main()
