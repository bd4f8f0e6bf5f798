"""Build flags for C and C++ programs that link against this Heron installation.

    cc app.c $(python -m heron.config --cflags --libs)
"""
import argparse
import os
import sys

PKG = os.path.dirname(os.path.abspath(__file__))


def include_dir():
    return os.path.join(PKG, "include")


def lib_dir():
    return os.path.join(PKG, "lib")


def pkgconfig_dir():
    return os.path.join(PKG, "lib", "pkgconfig")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m heron.config", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cflags", action="store_true", help="compiler flags (-I...)")
    ap.add_argument("--libs", action="store_true", help="linker flags (-L... -lheron -Wl,-rpath,...)")
    ap.add_argument("--includedir", action="store_true", help="the folder holding heron.h")
    ap.add_argument("--libdir", action="store_true", help="the folder holding libheron")
    ap.add_argument("--pkgconfigdir", action="store_true", help="the folder holding heron.pc (for PKG_CONFIG_PATH)")
    args = ap.parse_args(argv)
    out = []
    if args.cflags:
        out.append(f"-I{include_dir()}")
    if args.libs:
        out.append(f"-L{lib_dir()} -lheron -Wl,-rpath,{lib_dir()}")
    if args.includedir:
        out.append(include_dir())
    if args.libdir:
        out.append(lib_dir())
    if args.pkgconfigdir:
        out.append(pkgconfig_dir())
    if not out:
        ap.print_help()
        return 1
    print(" ".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
