"""safetensors files, read and written by Heron's core (so every language reads the same file).

Mirrors the `safetensors` package's API (``safetensors.numpy`` / ``safetensors.torch``):
``save_file(tensors, filename, metadata=None)``, ``load_file(filename, device="cpu")``,
``save(tensors, metadata=None) -> bytes`` and ``load(data) -> dict``. Dicts come back ordered by
name. ``load_file`` memory-maps the file: tensors share the mapping without copying where the data
is aligned (writes to them never reach the file). Files are verified on load; a malformed file
raises ``heron.InvalidArgumentError`` (a ValueError) naming the file and the tensor.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional

from . import _C
from ._C import Tensor

__all__ = ["save_file", "load_file", "save", "load", "load_metadata"]


def _items(tensors):
    if not isinstance(tensors, dict):
        raise TypeError(f"safetensors: expected a dict of str -> heron.Tensor, not {type(tensors).__name__}")
    items = []
    for k, v in tensors.items():
        if not isinstance(k, str):
            raise TypeError(f"safetensors: tensor names must be str, not {type(k).__name__}")
        if not isinstance(v, Tensor):
            raise TypeError(f"safetensors: the value of {k!r} must be a heron.Tensor, not {type(v).__name__}")
        items.append((k, v))
    return items


def _metadata_json(metadata):
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("safetensors: metadata must be a dict of str -> str")
    return json.dumps(metadata, ensure_ascii=False)


def _to_dict(unpacked, device):
    items, _ = unpacked
    out = {}
    for name, t in items:
        if device is not None and str(device) != "cpu":
            t = t.to(device)
        out[name] = t
    return out


def save_file(tensors: Dict[str, Tensor], filename, metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes ``tensors`` (name -> Tensor) to ``filename`` in the safetensors format."""
    _C._st_save_file(_items(tensors), os.fspath(filename), _metadata_json(metadata))


def load_file(filename, device="cpu") -> Dict[str, Tensor]:
    """Reads a safetensors file into a dict name -> Tensor (ordered by name)."""
    return _to_dict(_C._st_load_file(os.fspath(filename)), device)


def save(tensors: Dict[str, Tensor], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """The safetensors bytes of ``tensors``."""
    return _C._st_save_bytes(_items(tensors), _metadata_json(metadata))


def load(data: bytes) -> Dict[str, Tensor]:
    """Parses safetensors bytes into a dict name -> Tensor (copies; ordered by name)."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"safetensors.load: expected bytes, not {type(data).__name__}")
    return _to_dict(_C._st_load_bytes(data), None)


def load_metadata(source) -> Dict[str, str]:
    """The ``__metadata__`` of a safetensors file (a path) or of safetensors bytes ({} when none)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return json.loads(_C._st_load_bytes(bytes(source))[1])
    return json.loads(_C._st_load_file(os.fspath(source))[1])


# heron.save / heron.load (state dicts).
def _save_state_dict(state_dict, path, metadata=None):
    """Saves a state dict (name -> Tensor) as a safetensors file at ``path``."""
    save_file(dict(state_dict), path, metadata)


def _load_state_dict(path):
    """Loads a safetensors file as a state dict (name -> Tensor, ordered by name)."""
    return load_file(path)
