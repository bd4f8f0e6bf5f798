"""heron_ops.h from C: a small program built with the system compiler (-std=c99 -Wall -Wextra -Werror)
against c_api/include and libheron, calling the typed wrappers (heron_transpose, heron_reshape,
heron_split with its variadic outputs, heron_add with heron_attr_int)."""
import os
import shlex
import shutil
import subprocess

import pytest

from conftest import skip_unless_ci

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "c", "ops_h_program.c")
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]


def _compiler():
    cc = os.environ.get("CC")
    if cc:
        return shlex.split(cc)
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


@pytest.fixture(scope="module")
def program(capi, tmp_path_factory):
    cc = _compiler()
    if cc is None:
        skip_unless_ci("no C compiler found (looked for $CC, cc, gcc, clang): heron_ops.h is not compiled in this run")
    lib = os.path.realpath(str(capi.lib_path))
    exe = str(tmp_path_factory.mktemp("ops_h") / "ops_h_program")
    cmd = cc + FLAGS + ["-I", str(capi.include_dir), SOURCE, "-o", exe, lib,
                        "-Wl,-rpath," + os.path.dirname(lib)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"compiling against heron.h/heron_ops.h failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}"
    return exe


def test_headers_compile_as_c99_and_pedantic(capi, tmp_path):
    """Both headers alone, in a translation unit of their own, with -Wpedantic too."""
    cc = _compiler()
    if cc is None:
        skip_unless_ci("no C compiler found (looked for $CC, cc, gcc, clang)")
    src = tmp_path / "tu.c"
    src.write_text('#include "heron_ops.h"\n#include "heron.h"\nint main(void) { return heron_abi_version() == 0; }\n')
    r = subprocess.run(cc + FLAGS + ["-Wpedantic", "-I", str(capi.include_dir), "-c", str(src), "-o", str(tmp_path / "tu.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("section", ["views", "add"])
def test_typed_wrappers(program, section):
    r = subprocess.run([program, section], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"section {section!r} failed (rc {r.returncode}):\n{r.stdout}{r.stderr}"
    assert r.stdout.strip() == f"ok {section}"
