"""Builds the Python wheel from a clean export of the tree and checks what it carries.

The wheel must hold the extension, libheron, heron.h, heron_ops.h and heron.pc; `python -m
heron.config --cflags --libs` must let a C program build and run against the installed copy.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    print("+", " ".join(cmd) if isinstance(cmd, list) else cmd, flush=True)
    subprocess.run(cmd, check=True, **kw)


def main():
    work = tempfile.mkdtemp(prefix="heron-wheel-")
    try:
        src = os.path.join(work, "src")
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.split("\n")
        for f in filter(None, files):
            if not os.path.exists(os.path.join(ROOT, f)):
                continue
            dst = os.path.join(src, f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), dst)
        dist = os.path.join(work, "dist")
        env = dict(os.environ)
        # Reuse one CMake build folder between runs (scikit-build-core's build-dir) to keep CI fast.
        cache = os.path.join(ROOT, "build", "wheel-cache")
        os.makedirs(cache, exist_ok=True)
        run([sys.executable, "-m", "pip", "wheel", src, "-w", dist, "--no-deps", "--no-build-isolation", "-q",
             "--config-settings=build-dir=" + cache])
        wheels = glob.glob(os.path.join(dist, "*.whl"))
        assert len(wheels) == 1, wheels
        names = zipfile.ZipFile(wheels[0]).namelist()
        for want in ["heron/__init__.py", "heron/_ops.py", "heron/config.py", "heron/include/heron.h",
                     "heron/include/heron_ops.h", "heron/lib/pkgconfig/heron.pc"]:
            assert want in names, f"{want} missing from the wheel"
        assert any(n.startswith("heron/_C") and n.endswith(".so") for n in names), "extension missing"
        assert any(n.startswith("heron/lib/libheron.so") for n in names), "libheron missing"
        print(f"wheel {os.path.basename(wheels[0])}: {len(names)} files")
        target = os.path.join(work, "site")
        run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheels[0]])
        env["PYTHONPATH"] = target
        code = ("import heron, os, sys; assert heron.__file__.startswith(%r), heron.__file__; "
                "t = heron.tensor([[1.0, 2.0], [3.0, 4.0]]); print('wheel import ok', t.T.contiguous().tolist())"
                % target)
        run([sys.executable, "-c", code], env=env)
        flags = subprocess.run([sys.executable, "-m", "heron.config", "--cflags", "--libs"], env=env, check=True,
                               capture_output=True, text=True).stdout.split()
        exe = os.path.join(work, "tour")
        run(["cc", "-std=c99", os.path.join(ROOT, "examples", "c", "tour.c"), "-o", exe] + flags)
        run([exe])
        pc = subprocess.run(["pkg-config", "--cflags", "--libs", "heron"], check=True, capture_output=True, text=True,
                            env=dict(env, PKG_CONFIG_PATH=os.path.join(target, "heron", "lib", "pkgconfig"))).stdout
        assert os.path.join(target, "heron", "include") in os.path.normpath(pc.split()[0][2:]) or "heron/include" in pc, pc
        print("wheel check: 1 passed, 0 failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
