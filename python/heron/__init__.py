"""Heron: one deep-learning engine for Python, C, JavaScript, Ruby and Swift.

The Python package is the reference frontend over the C ABI (heron.h). Its API follows PyTorch's
names and semantics: heron.tensor, heron.zeros, heron.float32, Tensor operators and methods, ...
"""
from . import _C
from ._C import Tensor, InvalidArgumentError, from_dlpack  # noqa: F401
from ._C import set_num_threads, get_num_threads, manual_seed, live_handles  # noqa: F401
from ._dtypes import (dtype, float32, float64, float16, bfloat16, int8, uint8, int32, int64,  # noqa: F401
                      bool, float, double, half, long, int, promote_types)
from ._device import device, device_types, device_count, synchronize  # noqa: F401
from ._ops import *  # noqa: F401,F403
from . import _ops
from ._einsum import einsum, einsum_path  # noqa: F401,E402  (numpy's calling conventions over the ops)
from ._creation import (tensor, as_tensor, from_numpy, zeros, ones, empty, full, arange, linspace, eye,  # noqa: F401
                        rand, randn, randint, randperm, zeros_like, ones_like, empty_like, full_like,
                        rand_like, randn_like)
from . import _tensor
from . import autograd
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled  # noqa: F401

_tensor.install()

# Weights on disk: safetensors, read and written by the core.
from . import safetensors  # noqa: E402
from .safetensors import _save_state_dict as save, _load_state_dict as load  # noqa: E402,F401

__version__ = _C.version()

# PyTorch spellings.
cat = concatenate = _ops.concat
clip = _ops.clamp
max = _tensor._max  # noqa: A001
min = _tensor._min  # noqa: A001
true_divide = _ops.div
absolute = _ops.abs


def is_tensor(obj):
    return isinstance(obj, Tensor)


def result_type(a, b):
    """The dtype of `a + b` under Heron's (PyTorch's) promotion rules."""
    return _ops.add(a if isinstance(a, Tensor) else tensor(a), b if isinstance(b, Tensor) else b).dtype

from . import nn  # noqa: E402,F401  (after everything nn builds on)
# Training utilities (pure Python over the ops): heron.optim, heron.utils.data, heron.datasets.
from ._generator import Generator  # noqa: E402,F401
from . import optim, utils, datasets  # noqa: E402,F401
from . import inference, jit  # noqa: E402,F401  (deployment: traced graphs, .heron files, sessions)
