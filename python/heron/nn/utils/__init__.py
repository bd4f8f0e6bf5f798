"""heron.nn.utils: gradient clipping and packed sequences (heron.nn.utils.rnn)."""
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_  # noqa: F401
from . import rnn  # noqa: F401

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "rnn"]
