"""Datasets shipped with Heron (nothing is downloaded at run time)."""
from .mnist import MNIST, IDXError, read_idx, read_mnist_arrays, BUNDLED_ROOT  # noqa: F401

__all__ = ["MNIST", "IDXError", "read_idx", "read_mnist_arrays"]
