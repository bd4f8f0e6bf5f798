"""Writes tests/data/reference.safetensors with the reference `safetensors` package (Hugging Face),
to prove that Heron reads files it did not write, byte for byte. Run once with a Python that has
`safetensors` and `numpy` (not a test dependency):  python tests/data/make_safetensors_reference.py
The expected values are re-derived from the same seeds in tests/python/test_safetensors.py.
"""
import pathlib

import numpy as np


def reference_tensors():
    """name -> (safetensors dtype, shape, numpy array holding the values; bf16 as its uint16 bits)."""
    r = np.random.default_rng(2024)
    out = {
        "f32": ("F32", [2, 3], r.standard_normal((2, 3)).astype(np.float32)),
        "f64": ("F64", [3], r.standard_normal(3)),
        "f16": ("F16", [2, 2], r.standard_normal((2, 2)).astype(np.float16)),
        "i8": ("I8", [5], r.integers(-128, 128, 5).astype(np.int8)),
        "u8": ("U8", [3], r.integers(0, 256, 3).astype(np.uint8)),
        "i32": ("I32", [2, 2], r.integers(-2**31, 2**31, (2, 2)).astype(np.int32)),
        "i64": ("I64", [2], r.integers(-2**62, 2**62, 2).astype(np.int64)),
        "flag": ("BOOL", [3], np.array([True, False, True])),
        "scalar": ("F32", [], np.array(1.5, dtype=np.float32)),
        "empty": ("F32", [0, 4], np.zeros((0, 4), np.float32)),
        "layer.0.weight": ("F32", [1, 2], np.array([[0.25, -2.0]], np.float32)),
    }
    bf = (r.standard_normal(4).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    out["bf16"] = ("BF16", [4], bf)
    return out


if __name__ == "__main__":
    from safetensors import TensorSpec, serialize

    names = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16", "I8": "int8", "U8": "uint8",
             "I32": "int32", "I64": "int64", "BOOL": "bool"}
    tensors = reference_tensors()
    arrays = {k: np.ascontiguousarray(arr) for k, (_, _, arr) in tensors.items()}  # kept alive while serializing
    data = {k: TensorSpec(dtype=names[dt], shape=shape, data_ptr=arrays[k].ctypes.data, data_len=arrays[k].nbytes)
            for k, (dt, shape, _) in tensors.items()}
    raw = serialize(data, metadata={"format": "pt"})
    path = pathlib.Path(__file__).with_name("reference.safetensors")
    path.write_bytes(raw)
    print(path, len(raw), "bytes")
