"""Shared helpers of heron.models: loading `weights` (a safetensors path or a state dict)."""
import collections.abc
import os

__all__ = ["load_weights"]


def load_weights(model, weights, name):
    """Loads `weights` into `model` strictly: a path (str or os.PathLike) to a .safetensors file read
    with heron.load, or a mapping name -> Tensor / numpy array (a state dict). Returns the model."""
    if weights is None:
        return model
    if isinstance(weights, (str, os.PathLike)):
        from .. import load
        state = load(os.fspath(weights))
    elif isinstance(weights, collections.abc.Mapping):
        state = weights
    else:
        raise TypeError(f"{name}: weights must be None, a path to a .safetensors file or a state dict, "
                        f"not {type(weights).__name__}")
    model.load_state_dict(state, strict=True)
    return model
