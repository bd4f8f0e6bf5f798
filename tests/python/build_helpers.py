"""Helpers for the Python tests that drive built executables (heron-run, the C examples, fuzzers)."""
import os

import pytest


def skip_unless_ci(reason):
    """Skips on a developer machine where the executable was not built; under CI=true it fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)
