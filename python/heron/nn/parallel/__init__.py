"""heron.nn.parallel: data-parallel training (PyTorch's torch.nn.parallel names)."""
from .distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DistributedDataParallel"]
