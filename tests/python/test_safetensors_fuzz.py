"""Runs the safetensors fuzz target (tests/fuzz, standalone driver) briefly over the corpus and
random mutations: malformed input must give errors, never a crash. Skipped when the target was not
built (cmake -DHERON_BUILD_FUZZ=OFF); HERON_BUILD_DIR points at the build folder (default build/)."""
import os
import pathlib
import subprocess

import pytest
from build_helpers import skip_unless_ci

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_fuzz_safetensors_briefly():
    exe = pathlib.Path(os.environ.get("HERON_BUILD_DIR", ROOT / "build")) / "heron_fuzz_safetensors"
    if not exe.exists():
        skip_unless_ci(f"{exe} not built")
    r = subprocess.run([str(exe), "--iterations", "5000", "--seed", "3", str(ROOT / "tests/fuzz/corpus"),
                        str(ROOT / "tests/data/reference.safetensors")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no crash" in r.stdout
