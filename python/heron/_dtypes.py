"""Heron dtypes (the objects live in the native extension)."""
from ._C import dtype, float32, float64, float16, bfloat16, int8, uint8, int32, int64  # noqa: F401
from ._C import bool  # noqa: F401  (heron.bool, like torch.bool)
from ._C import promote_types  # noqa: F401

# Aliases PyTorch users expect.
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001

ALL = (float32, float64, float16, bfloat16, int8, uint8, int32, int64, bool)
