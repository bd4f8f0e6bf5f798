"""Console entry points for the native tools shipped inside the package (heron/bin/)."""
import os
import sys


def heron_run():
    """`heron-run`: the deployment CLI (a C++ program over the C API); see docs/guide/deploy.md."""
    exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "heron-run")
    if not os.path.exists(exe):
        sys.exit(f"heron-run is not part of this installation ({exe} is missing)")
    os.execv(exe, [exe, *sys.argv[1:]])
