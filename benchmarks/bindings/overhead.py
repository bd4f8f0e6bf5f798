"""Per-op call overhead from each language next to C (issue 5's bar: <= 3x C).

    python benchmarks/bindings/overhead.py [--rounds 5]

Builds benchmarks/bindings/overhead_c.c against this build's libheron, then runs the C program and
each language's script (a 1-element float32 add, median ns/call over repeats) in interleaved
rounds and prints the medians and the ratios to C. Languages whose toolchain or binding is missing
are listed as skipped.

Each repeat is a block of --calls calls (default 200,000): long enough that every block of a
garbage-collected language includes several collections of the results it dropped (Node.js
scavenges every ~60,000 such calls), so the median block pays its share of them. With blocks of
20,000 (the scripts' own default) a Node.js block held a scavenge only every third time or so, and
the median of the blocks left the collector's cost out.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "benchmarks", "bindings")
LIB = os.path.join(ROOT, "python", "heron", "lib")


def build_c(tmp):
    exe = os.path.join(tmp, "overhead_c")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "heron"], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PKG_CONFIG_PATH=os.path.join(LIB, "pkgconfig"))).stdout.split()
    subprocess.run(["cc", "-O2", os.path.join(HERE, "overhead_c.c"), "-o", exe, *flags, f"-Wl,-rpath,{LIB}"], check=True)
    return [exe]


def contenders(tmp):
    out = {"C": build_c(tmp)}
    if shutil.which("node") and os.path.exists(os.path.join(ROOT, "javascript", "build", "Release", "heron_node.node")):
        out["Node.js"] = ["node", os.path.join(HERE, "overhead_node.js")]
    else:
        print("skipped Node.js: node or the addon (make test-node) is missing")
    ruby = os.path.join(HERE, "ruby_overhead.rb")
    if shutil.which("ruby") and shutil.which("rake") and os.path.exists(ruby):
        # the binding's C extension (ruby/ext/heron_native), built into ruby/lib/heron/ when stale
        r = subprocess.run(["rake", "compile"], cwd=os.path.join(ROOT, "ruby"), capture_output=True, text=True)
        if r.returncode == 0:
            out["Ruby"] = ["ruby", "-I", os.path.join(ROOT, "ruby", "lib"), ruby]
        else:
            print("skipped Ruby: building its C extension (rake compile in ruby/) failed:\n" + (r.stdout + r.stderr)[-2000:])
    else:
        print("skipped Ruby: ruby, rake or benchmarks/bindings/ruby_overhead.rb is missing")
    pkg = os.path.join(HERE, "swift_overhead")
    if shutil.which("swift"):
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(LIB, "pkgconfig"))
        r = subprocess.run(["swift", "build", "-c", "release", "-j", "2"], cwd=pkg, env=env, capture_output=True, text=True)
        if r.returncode == 0:
            out["Swift"] = [os.path.join(pkg, ".build", "release", "swift-overhead")]
        else:
            print("skipped Swift: building benchmarks/bindings/swift_overhead failed:\n" + r.stdout[-2000:])
    else:
        print("skipped Swift: swift is missing")
    return out


def headline(lang, stdout):
    """The ns/call figure of one run: the first word of the first line, or Swift's `Heron.add` figure."""
    if lang == "Swift":
        m = re.search(r"Swift Heron.add ([0-9.]+) ns/call", stdout)
        return float(m.group(1))
    return float(stdout.strip().splitlines()[0].split()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200000, help="calls per timed block")
    ap.add_argument("--blocks", type=int, default=9, help="timed blocks per run (the run's median)")
    args = ap.parse_args()
    env = dict(os.environ, HERON_LIBRARY=os.path.join(LIB, "libheron.so"), LD_LIBRARY_PATH=LIB)
    with tempfile.TemporaryDirectory() as tmp:
        cs = contenders(tmp)
        res = {k: [] for k in cs}
        for _ in range(args.rounds):  # interleaved
            for k, cmd in cs.items():
                r = subprocess.run(cmd + [str(args.calls), str(args.blocks)], capture_output=True, text=True, env=env,
                                   timeout=600)
                if r.returncode != 0:
                    sys.exit(f"{k} failed:\n{r.stderr}")
                res[k].append(headline(k, r.stdout))
    c = statistics.median(res["C"])
    print(f"{'language':10} {'ns/call':>9} {'x C':>6}")
    for k, v in res.items():
        m = statistics.median(v)
        print(f"{k:10} {m:9.1f} {m / c:6.2f}")


if __name__ == "__main__":
    main()
