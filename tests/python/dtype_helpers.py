"""Dtype tables and numpy<->Heron conversions shared by the op test suites (numpy is the oracle)."""
import numpy as np

import heron

F32, F64, F16, BF16 = heron.float32, heron.float64, heron.float16, heron.bfloat16
I8, U8, I32, I64, BOOL = heron.int8, heron.uint8, heron.int32, heron.int64, heron.bool
FLOATS = [F32, F64, F16, BF16]
INTS = [I8, U8, I32, I64]
ALL = FLOATS + INTS + [BOOL]
NUMERIC = FLOATS + INTS

# numpy storage type per dtype (bfloat16 has none: held as float32 on the numpy side)
NP = {F32: np.float32, F64: np.float64, F16: np.float16, BF16: np.float32, I8: np.int8, U8: np.uint8,
      I32: np.int32, I64: np.int64, BOOL: np.bool_}


def ids(dts):
    """pytest ids for a list of dtypes."""
    return [str(d).replace("heron.", "") for d in dts]


def H(arr, dtype):
    """A Heron tensor of `dtype` holding `arr` (bfloat16 via float32)."""
    arr = np.asarray(arr)
    if dtype == BF16:
        return heron.tensor(arr.astype(np.float32)).to(BF16)
    return heron.tensor(arr.astype(NP[dtype]))


def N(t):
    """A numpy copy of a Heron tensor (bfloat16 as float32)."""
    if t.dtype == BF16:
        t = t.to(F32)
    return np.array(t.numpy(), copy=True)
