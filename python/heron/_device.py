"""Heron devices."""
from ._C import device, device_types, device_count, synchronize  # noqa: F401
