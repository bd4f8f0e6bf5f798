#!/usr/bin/env python3
"""All-reduce bus bandwidth, Heron (CommNet, C ABI) next to Open MPI's MPI_Allreduce, same run.

    python benchmarks/commnet/allreduce.py [--rounds R] [--np 2] [--ring] [--bind core|none]

Builds allreduce_heron.c against libheron (python/heron/lib) and allreduce_mpi.c with mpicc, then
runs both R times, alternating which goes first; prints the median time per size, the bus
bandwidth (2(n-1)/n * bytes / time) and the ratio MPI time / Heron time (> 1: Heron is faster).
Needs `apt-get install openmpi-bin libopenmpi-dev`.

mpirun binds each rank to a core by default (`mpirun --report-bindings`: rank r on core r), so by
default Heron's ranks are bound the same way (rank r to the r-th CPU this process may use);
`--bind none` leaves them to the scheduler, which on a 2-vCPU machine sometimes runs both ranks on
one vCPU after a wake-up and makes small all-reduces 2x slower.
"""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
OUT = ROOT / "build-commnet-bench"
LIB = ROOT / "python" / "heron" / "lib"


def build():
    OUT.mkdir(exist_ok=True)
    heron_bin, mpi_bin = OUT / "allreduce_heron", OUT / "allreduce_mpi"
    subprocess.run(["cc", "-O2", "-std=c99", "-D_POSIX_C_SOURCE=199309L", str(HERE / "allreduce_heron.c"), "-o", str(heron_bin),
                    f"-I{ROOT / 'c_api' / 'include'}", f"-L{LIB}", "-lheron", f"-Wl,-rpath,{LIB}"], check=True)
    if not shutil.which("mpicc"):
        sys.exit("mpicc not found: apt-get install openmpi-bin libopenmpi-dev")
    subprocess.run(["mpicc", "-O2", str(HERE / "allreduce_mpi.c"), "-o", str(mpi_bin)], check=True)
    return heron_bin, mpi_bin


def parse(out):
    res = {}
    for line in out.strip().splitlines():
        b, us = line.split()
        res[int(b)] = float(us)
    return res


def run_heron(binary, np_, env=None, bind=True):
    path = f"/tmp/heron_allreduce_{uuid.uuid4().hex}"
    cpus = sorted(os.sched_getaffinity(0))

    def pin(r):
        return (lambda: os.sched_setaffinity(0, {cpus[r % len(cpus)]})) if bind else None
    procs = [subprocess.Popen([str(binary), f"file://{path}", str(r), str(np_)], stdout=subprocess.PIPE, text=True,
                              env=env, preexec_fn=pin(r))
             for r in range(np_)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    if os.path.exists(path):
        os.remove(path)
    if any(p.returncode for p in procs):
        sys.exit("the Heron run failed")
    return parse(outs[0])


def run_mpi(binary, np_):
    r = subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(np_), str(binary)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        sys.exit("the MPI run failed:\n" + r.stderr)
    return parse(r.stdout)


def human(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--ring", action="store_true",
                    help="also run Heron with HERON_DIST_ARENA=0 (the ring instead of the same-host arena)")
    ap.add_argument("--bind", choices=["core", "none"], default="core",
                    help="bind Heron's rank r to one CPU, as mpirun does by default (default: core)")
    a = ap.parse_args()
    heron_bin, mpi_bin = build()
    hs, ms, rs = [], [], []
    ring_env = dict(os.environ, HERON_DIST_ARENA="0")
    for r in range(a.rounds):
        runs = [lambda: hs.append(run_heron(heron_bin, a.np, bind=a.bind == "core")), lambda: ms.append(run_mpi(mpi_bin, a.np))]
        if a.ring:
            runs.append(lambda: rs.append(run_heron(heron_bin, a.np, ring_env, bind=a.bind == "core")))
        k = r % len(runs)  # rotate which goes first
        for run in runs[k:] + runs[:k]:
            run()
    factor = 2 * (a.np - 1) / a.np
    print(f"all-reduce float32 sum, {a.np} ranks, one host; medians of {a.rounds} alternating rounds\n")
    print(f"{'size':>8} {'Heron us':>10} {'MPI us':>10} {'Heron GB/s':>11} {'MPI GB/s':>9} {'MPI/Heron':>10}"
          + (f" {'ring us':>10}" if rs else ""))
    for size in sorted(hs[0]):
        h = statistics.median(x[size] for x in hs)
        m = statistics.median(x[size] for x in ms)
        line = f"{human(size):>8} {h:10.1f} {m:10.1f} {factor * size / h / 1e3:11.3f} {factor * size / m / 1e3:9.3f} {m / h:9.2f}x"
        if rs:
            line += f" {statistics.median(x[size] for x in rs):10.1f}"
        print(line)


if __name__ == "__main__":
    main()
