"""heron.utils: data loading (heron.utils.data)."""
from . import data  # noqa: F401
