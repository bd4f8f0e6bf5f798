#!/usr/bin/env python3
"""Writes tests/conformance/cases.json (format: README.md in this folder) with numpy as the oracle.

Every case's expected outputs come from a numpy reference below, and its expected input gradients
from central finite differences (float64) of sum(outputs * grad_outputs) over that same numpy
reference; heron is never the source of an expected value. Before writing, every case is also run
through heron's generic op call (heron._C._calln, the path the generated python/heron/_ops.py
takes) and the script fails loudly when heron disagrees, so a wrong case is never committed.

  make_cases.py            regenerate cases.json (and verify every case against heron)
  make_cases.py --check    regenerate in memory; fail when the committed file differs
  make_cases.py --no-heron skip the heron run (e.g. to inspect the oracle without a build)

Deterministic: every case draws its inputs from a generator seeded by the case id, and floats are
written with Python's shortest round-trip repr.

Case ids are "<op>/<dtype>/<variant>"; the dtype names the case's dtype class (float, int or
bool) for the coverage test in tests/python/test_conformance.py.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bindings"))
from generate import load_schema  # noqa: E402

OUT = os.path.join(HERE, "cases.json")

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INT_DTYPES = ("int8", "uint8", "int32", "int64")
NP_DT = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": np.float32,
         "int8": np.int8, "uint8": np.uint8, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def dtype_class(dt: str) -> str:
    return "float" if dt in FLOAT_DTYPES else "int" if dt in INT_DTYPES else "bool"


# Ops (or op/dtype-class pairs) with no case, each with its reason. The coverage test accepts an
# op's missing dtype class only when it is listed here ("op" = every class of the op).
EXCLUDED = {
    # Outputs that describe heron's own plan, not a numpy-checkable value.
    "einsum_path": "stats/terms describe heron's contraction planner: its path agrees with numpy.einsum_path, but its "
                   "FLOP counts use another convention (ij,jk,kl->il: naive 240 vs numpy's 360); einsum is covered",
    # Forward RNN ops are covered without gradients (their `reserve` output is empty then); with
    # gradients recorded `reserve` is an implementation-defined workspace, so no case has grads.
    "rnn_backward": "takes the implementation-defined `reserve` of a forward call as input",
}


# ----------------------------------------------------------------------------- tensors
def enc_tensor(a: np.ndarray, dtype: str) -> dict:
    a = np.asarray(a)
    flat = a.reshape(-1)
    if dtype == "bool":
        data = [bool(x) for x in flat]
    elif dtype in INT_DTYPES:
        data = [int(x) for x in flat]
    else:
        data = []
        for x in flat.astype(np.float64):
            x = float(x)
            data.append("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf") if math.isinf(x) else x)
    return {"dtype": dtype, "shape": [int(s) for s in a.shape], "data": data}


def round_to(a: np.ndarray, dtype: str) -> np.ndarray:
    """a (float64 or any) stored as `dtype` (bfloat16 rounded to nearest even, kept in float32)."""
    if dtype == "bfloat16":
        f = np.asarray(a, dtype=np.float32).copy()
        u = f.view(np.uint32)
        u += 0x7FFF + ((u >> 16) & 1)
        u &= 0xFFFF0000
        return f
    return np.asarray(a).astype(NP_DT[dtype])


# ----------------------------------------------------------------------------- attrs
def tag_attr(atype: str, v):
    if v is None:
        return {"none": True}
    if atype == "scalar":
        if isinstance(v, bool):
            return {"scalar_int": int(v)}
        return {"scalar_int": int(v)} if isinstance(v, (int, np.integer)) else {"scalar_float": float(v)}
    if atype == "int":
        return {"int": int(v)}
    if atype == "float":
        v = float(v)
        return {"float": v if math.isfinite(v) else ("nan" if math.isnan(v) else "inf" if v > 0 else "-inf")}
    if atype == "bool":
        return {"bool": bool(v)}
    if atype == "string":
        return {"string": str(v)}
    if atype == "ints":
        return {"ints": [int(x) for x in (v if isinstance(v, (list, tuple)) else [v])]}
    if atype == "floats":
        return {"floats": [float(x) for x in v]}
    if atype == "dtype":
        return {"dtype": str(v)}
    if atype == "device":
        return {"device": str(v)}
    raise ValueError(atype)


# ----------------------------------------------------------------------------- input generators
class Gen:
    def __init__(self, case_id: str):
        self.rng = np.random.default_rng(zlib.crc32(case_id.encode()))

    def f(self, shape, dtype="float32", lo=-2.0, hi=2.0, step=0.25, avoid_zero=True):
        """Floats on a grid exact in every float dtype; off zero (kinks) unless avoid_zero=False."""
        n = int(np.prod(shape)) if shape else 1
        k = self.rng.integers(int(lo / step), int(hi / step), size=n).astype(np.float64)
        vals = (k + 0.5) * step if avoid_zero else k * step
        return round_to(vals.reshape(shape), dtype)

    def distinct(self, shape, dtype="float32", step=0.25):
        """Distinct floats (no ties for sort/max/argmax)."""
        n = int(np.prod(shape)) if shape else 1
        vals = (self.rng.permutation(n) - n / 2 + 0.25) * step
        return round_to(vals.reshape(shape), dtype)

    def pos(self, shape, dtype="float32", lo=0.25, hi=2.0):
        n = int(np.prod(shape)) if shape else 1
        k = self.rng.integers(int(lo / 0.125), int(hi / 0.125) + 1, size=n)
        return round_to((k * 0.125).reshape(shape), dtype)

    def i(self, shape, dtype="int32", lo=-5, hi=6):
        if dtype == "uint8":
            lo = max(lo, 0)
        return self.rng.integers(lo, hi, size=shape).astype(NP_DT[dtype])

    def b(self, shape):
        return self.rng.integers(0, 2, size=shape).astype(np.bool_)

    def of(self, shape, dtype, **kw):
        c = dtype_class(dtype)
        if c == "float":
            return self.f(shape, dtype, **{k: v for k, v in kw.items() if k in ("lo", "hi", "avoid_zero")})
        if c == "int":
            return self.i(shape, dtype, **{k: v for k, v in kw.items() if k in ("lo", "hi") and isinstance(v, int)})
        return self.b(shape)


# ----------------------------------------------------------------------------- numpy references
def f64(a):
    return np.asarray(a, dtype=np.float64)


def default_float(dt):
    """Result dtype of a float-valued op on `dt` (integer and bool inputs give float32)."""
    return dt if dtype_class(dt) == "float" else "float32"


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


UNARY = {
    "neg": lambda x: -x, "abs": np.abs, "sign": np.sign, "square": lambda x: x * x,
    "relu": lambda x: np.maximum(x, 0),
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "log2": np.log2, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x), "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "silu": lambda x: x / (1 + np.exp(-x)), "erf": erf,
    "reciprocal": lambda x: 1 / x,
    "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc,
}
UNARY_POSITIVE = {"log", "log1p", "log2", "sqrt", "rsqrt"}
UNARY_FLOAT_OUT = {"exp", "expm1", "log", "log1p", "log2", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid",
                   "silu", "erf", "reciprocal", "gelu", "softplus"}


def gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


def np_round(x, decimals=0):
    return np.round(x, decimals)


# ----------------------------------------------------------------------------- case building
class Case:
    def __init__(self, op, dtype, variant, inputs, attrs=None, ref=None, out_dtypes=None, grad=None,
                 rtol=None, atol=None, seed=None):
        self.op, self.dtype, self.variant = op, dtype, variant
        self.inputs, self.attrs = inputs, dict(attrs or {})
        self.ref, self.out_dtypes = ref, out_dtypes
        self.grad = grad  # list of input positions (top-level) to differentiate, or None
        self.rtol, self.atol, self.seed = rtol, atol, seed

    @property
    def id(self):
        return f"{self.op}/{self.dtype}/{self.variant}"


def numeric_float_tols(dt, grad):
    if grad:
        return 1e-5, 1e-6
    return {"float64": (1e-7, 1e-9), "float32": (1e-5, 1e-6), "float16": (2e-3, 1e-3), "bfloat16": (1e-2, 1e-2)}.get(dt, (0, 0))


CASES: list[Case] = []
SCHEMA_OPS: dict = {}


def add(op, dtype, variant, inputs, ref, out_dtypes, attrs=None, grad=None, **kw):
    c = Case(op, dtype, variant, inputs, attrs, ref, out_dtypes, grad, **kw)
    CASES.append(c)
    return c


def build_cases():
    G = Gen
    # ---- unary
    for op in ("neg", "abs", "sign", "square", "relu", "exp", "expm1", "log", "log1p", "log2", "sqrt", "rsqrt",
               "sin", "cos", "tan", "tanh", "sigmoid", "silu", "erf", "reciprocal", "floor", "ceil", "trunc"):
        dts = SCHEMA_OPS[op]["dtype_list"]
        for dt in ("float32", "float64", "int32", "bool"):
            if dt not in dts:
                continue
            g = G(f"{op}/{dt}")
            if dtype_class(dt) == "float":
                x = g.pos((2, 3), dt) if op in UNARY_POSITIVE else g.f((2, 3), dt)
            elif dt == "bool":
                x = g.b((2, 3))
            else:
                x = g.i((2, 3), dt, lo=1 if op in UNARY_POSITIVE else -5)
            grad = [0] if dt == "float64" and SCHEMA_OPS[op]["differentiable"] else None
            fn = UNARY[op]
            out = default_float(dt) if op in UNARY_FLOAT_OUT else dt
            add(op, dt, "basic", [x], (lambda fn: lambda x: [fn(f64(x))])(fn), [out], grad=grad)
    for dt in ("float32", "float64"):
        g = G(f"gelu/{dt}")
        x = g.f((2, 3), dt)
        for appr in ("none", "tanh"):
            add("gelu", dt, appr, [x], lambda x, approximate: [gelu(f64(x), approximate)], [dt],
                attrs={"approximate": appr}, grad=[0] if dt == "float64" else None)
        add("softplus", dt, "beta2", [g.f((2, 3), dt)], lambda x, beta, threshold: [softplus(f64(x), beta, threshold)],
            [dt], attrs={"beta": 2.0, "threshold": 3.0}, grad=[0] if dt == "float64" else None)
    for dt in ("int32", "bool"):
        g = G(f"ufloat/{dt}")
        x = g.of((2, 2), dt)
        add("gelu", dt, "basic", [x], lambda x, approximate: [gelu(f64(x), approximate)], ["float32"],
            attrs={"approximate": "none"})
        add("softplus", dt, "basic", [x], lambda x, beta, threshold: [softplus(f64(x), beta, threshold)], ["float32"],
            attrs={"beta": 1.0, "threshold": 20.0})
    for dt in ("float32", "float64", "int32"):
        g = G(f"round/{dt}")
        x = g.f((2, 3), dt, lo=-3, hi=3, step=0.25, avoid_zero=False) if dt != "int32" else g.i((2, 3), dt)
        add("round", dt, "basic", [x], lambda x, decimals: [np_round(f64(x), decimals)], [dt],
            attrs={"decimals": 0})
        if dt != "int32":
            add("round", dt, "decimals1", [g.f((2, 3), dt, step=0.125, avoid_zero=False) + round_to(np.float64(0.01), dt)],
                lambda x, decimals: [np_round(f64(x), decimals)], [dt], attrs={"decimals": 1},
                grad=[0] if dt == "float64" else None)
    special = np.array([0.0, -1.5, np.nan, np.inf, -np.inf, 2.0])
    for op, fn in (("isnan", np.isnan), ("isinf", np.isinf), ("isfinite", np.isfinite), ("logical_not", np.logical_not)):
        for dt in ("float32", "float64"):
            add(op, dt, "special", [special.astype(NP_DT[dt])], (lambda fn: lambda x: [fn(x)])(fn), ["bool"])
        for dt in ("int32", "bool"):
            x = G(f"{op}/{dt}").of((5,), dt, lo=-2, hi=3)
            add(op, dt, "basic", [x], (lambda fn: lambda x: [fn(x)])(fn), ["bool"])
    for dt in ("int8", "uint8", "int32", "int64", "bool"):
        x = G(f"bitwise_not/{dt}").of((4,), dt)
        add("bitwise_not", dt, "basic", [x], lambda x: [~x], [dt])

    # ---- binary (broadcasting)
    def bin_inputs(op, dt, g, pos_other=False):
        if dtype_class(dt) == "float":
            a = g.f((2, 3), dt)
            b = g.pos((3,), dt) if pos_other else g.f((3,), dt)
        elif dt == "bool":
            a, b = g.b((2, 3)), g.b((3,))
        else:
            a = g.i((2, 3), dt, lo=-6, hi=7)
            b = g.i((3,), dt, lo=1, hi=4) if pos_other else g.i((3,), dt, lo=-3, hi=4)
        return a, b

    def bin_ref(fn, float_out=False):
        def ref(a, b, **at):
            return [fn(f64(a) if a.dtype.kind == "f" or float_out else a, f64(b) if b.dtype.kind == "f" or float_out else b, **at)]
        return ref

    binops = {
        "add": (lambda a, b, alpha: a + alpha * b if a.dtype != np.bool_ else (a | (b & bool(alpha)))),
        "sub": (lambda a, b, alpha: a - alpha * b),
        "mul": (lambda a, b: a * b if a.dtype != np.bool_ else a & b),
        "maximum": (lambda a, b: np.maximum(a, b)),
        "minimum": (lambda a, b: np.minimum(a, b)),
    }
    for op, fn in binops.items():
        for dt in ("float32", "float64", "int32", "int64", "bool"):
            if dt not in SCHEMA_OPS[op]["dtype_list"]:
                continue
            g = G(f"{op}/{dt}")
            a, b = bin_inputs(op, dt, g)
            attrs = {}
            if op in ("add", "sub"):
                attrs = {"alpha": (2.0 if dtype_class(dt) == "float" else (1 if dt == "bool" else 2))}
            grad = [0, 1] if dt == "float64" else None
            if op in ("maximum", "minimum") and dt == "float64":
                b = b + 0.0625  # off the ties
            add(op, dt, "broadcast", [a, b], bin_ref(fn), [dt], attrs=attrs, grad=grad)
    for dt in ("float32", "float64", "int32", "bool"):
        g = G(f"div/{dt}")
        a, b = bin_inputs("div", dt, g, pos_other=True)
        out = default_float(dt)
        add("div", dt, "true", [a, b], lambda a, b, rounding_mode: [f64(a) / f64(b)], [out],
            attrs={"rounding_mode": None}, grad=[0, 1] if dt == "float64" else None)
        if dt != "bool":
            add("div", dt, "floor", [a, b], lambda a, b, rounding_mode: [np.floor(f64(a) / f64(b))], [dt],
                attrs={"rounding_mode": "floor"})
            add("div", dt, "trunc", [a, b], lambda a, b, rounding_mode: [np.trunc(f64(a) / f64(b))], [dt],
                attrs={"rounding_mode": "trunc"})
    for dt in ("float32", "float64", "int32", "int64"):
        g = G(f"floordiv/{dt}")
        a, b = bin_inputs("floor_divide", dt, g, pos_other=True)
        add("floor_divide", dt, "broadcast", [a, b], lambda a, b: [np.floor(f64(a) / f64(b))], [dt])
        add("remainder", dt, "broadcast", [a, b], lambda a, b: [np.mod(f64(a), f64(b))], [dt],
            grad=[0] if dt == "float64" else None)
    for dt in ("float32", "float64", "int32", "int64"):
        g = G(f"pow/{dt}")
        if dtype_class(dt) == "float":
            a, b = g.pos((2, 3), dt), g.f((3,), dt, lo=-2, hi=2)
        else:
            a, b = g.i((2, 3), dt, lo=-3, hi=4), g.i((3,), dt, lo=0, hi=4)
        add("pow", dt, "broadcast", [a, b], lambda a, b: [np.power(f64(a), f64(b))], [dt],
            grad=[0, 1] if dt == "float64" else None)
    for dt in ("float32", "float64", "int32", "bool"):
        g = G(f"atan2/{dt}")
        a, b = bin_inputs("atan2", dt, g, pos_other=True)
        add("atan2", dt, "broadcast", [a, b], lambda a, b: [np.arctan2(f64(a), f64(b))], [default_float(dt)],
            grad=[0, 1] if dt == "float64" else None)
    cmp = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
           "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
           "logical_xor": np.logical_xor}
    for op, fn in cmp.items():
        for dt in ("float32", "int32", "bool"):
            g = G(f"{op}/{dt}")
            if dtype_class(dt) == "float":
                a = g.f((2, 3), dt, lo=-1, hi=1, step=0.5, avoid_zero=False)
                b = g.f((3,), dt, lo=-1, hi=1, step=0.5, avoid_zero=False)
            else:
                a, b = g.of((2, 3), dt, lo=-1, hi=2), g.of((3,), dt, lo=-1, hi=2)
            add(op, dt, "broadcast", [a, b], (lambda fn: lambda a, b: [fn(a, b)])(fn), ["bool"])
    bw = {"bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor}
    for op, fn in bw.items():
        for dt in ("int8", "uint8", "int32", "int64", "bool"):
            g = G(f"{op}/{dt}")
            a, b = g.of((2, 3), dt, lo=-20, hi=20), g.of((3,), dt, lo=-20, hi=20)
            add(op, dt, "broadcast", [a, b], (lambda fn: lambda a, b: [fn(a, b)])(fn), [dt])
    for dt in ("int32", "int64", "uint8"):
        g = G(f"shift/{dt}")
        a, s = g.i((2, 3), dt, lo=0, hi=20), g.i((3,), dt, lo=0, hi=4)
        add("bitwise_left_shift", dt, "broadcast", [a, s], lambda a, b: [np.left_shift(a, b)], [dt])
        add("bitwise_right_shift", dt, "broadcast", [a, s], lambda a, b: [np.right_shift(a, b)], [dt])
    for dt in ("float32", "float64", "int32", "bool"):
        g = G(f"where/{dt}")
        c, a, b = g.b((2, 3)), g.of((2, 3), dt), g.of((3,), dt)
        add("where", dt, "broadcast", [c, a, b], lambda c, a, b: [np.where(c, a, b)], [dt],
            grad=[1, 2] if dt == "float64" else None)
    for dt in ("float32", "float64", "int32"):
        g = G(f"clamp/{dt}")
        x = g.f((2, 3), dt) if dtype_class(dt) == "float" else g.i((2, 3), dt)
        lo, hi = (-1.0, 1.0) if dtype_class(dt) == "float" else (-2, 3)
        add("clamp", dt, "both", [x], lambda x, min, max: [np.clip(x, min, max)], [dt],
            attrs={"min": lo, "max": hi}, grad=[0] if dt == "float64" else None)
        add("clamp", dt, "min_only", [x], lambda x, min, max: [np.maximum(x, min)], [dt],
            attrs={"min": lo, "max": None})



def red_axis(dim):
    return None if dim is None else tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)


def build_cases_2():
    G = Gen
    # ---- reductions
    def sum_out(dt):
        return "int64" if dtype_class(dt) != "float" else dt
    red = {
        "sum": (lambda x, dim, keepdim, dtype: [np.sum(f64(x), axis=red_axis(dim), keepdims=keepdim)], sum_out),
        "prod": (lambda x, dim, keepdim, dtype: [np.prod(f64(x), axis=red_axis(dim), keepdims=keepdim)], sum_out),
        "mean": (lambda x, dim, keepdim, dtype: [np.mean(f64(x), axis=red_axis(dim), keepdims=keepdim)], lambda d: d),
        "amax": (lambda x, dim, keepdim: [np.amax(x, axis=red_axis(dim), keepdims=keepdim)], lambda d: d),
        "amin": (lambda x, dim, keepdim: [np.amin(x, axis=red_axis(dim), keepdims=keepdim)], lambda d: d),
        "logsumexp": (lambda x, dim, keepdim: [np.log(np.sum(np.exp(f64(x)), axis=red_axis(dim), keepdims=keepdim))],
                      lambda d: d),
        "all": (lambda x, dim, keepdim: [np.all(x, axis=red_axis(dim), keepdims=keepdim)], lambda d: "bool"),
        "any": (lambda x, dim, keepdim: [np.any(x, axis=red_axis(dim), keepdims=keepdim)], lambda d: "bool"),
    }
    for op, (fn, outdt) in red.items():
        for dt in ("float32", "float64", "int32", "bool"):
            if dt not in SCHEMA_OPS[op]["dtype_list"]:
                continue
            g = G(f"{op}/{dt}")
            x = g.distinct((2, 3), dt) if dtype_class(dt) == "float" else g.of((2, 3), dt, lo=-3, hi=4)
            if op == "prod" and dtype_class(dt) == "float":
                x = g.f((2, 3), dt, lo=-1.5, hi=1.5)
            grad = [0] if dt == "float64" and SCHEMA_OPS[op]["differentiable"] else None
            variants = [("all", None, False), ("dim1_keepdim", [1], True), ("dim0", [0], False)]
            for name, dim, keep in variants:
                attrs = {"dim": dim, "keepdim": keep}
                add(op, dt, name, [x], fn, [outdt(dt)], attrs=attrs, grad=grad)
    for op, fn in (("argmax", np.argmax), ("argmin", np.argmin)):
        for dt in ("float32", "int32"):
            g = G(f"{op}/{dt}")
            x = g.distinct((2, 3), dt) if dt == "float32" else (g.rng.permutation(6) - 3).reshape(2, 3).astype(np.int32)
            add(op, dt, "flat", [x], (lambda fn: lambda x, dim, keepdim: [np.asarray(fn(x))])(fn), ["int64"],
                attrs={"dim": None})
            add(op, dt, "dim1_keepdim", [x], (lambda fn: lambda x, dim, keepdim: [np.expand_dims(fn(x, axis=dim), dim)])(fn),
                ["int64"], attrs={"dim": 1, "keepdim": True})
    for op, fn in (("var", np.var), ("std", np.std)):
        for dt in ("float32", "float64"):
            x = G(f"{op}/{dt}").f((2, 3), dt)
            for name, dim, corr in (("all", None, 1.0), ("dim1_c0", [1], 0.0)):
                add(op, dt, name, [x], (lambda fn: lambda x, dim, correction, keepdim:
                                        [fn(f64(x), axis=red_axis(dim), ddof=correction, keepdims=keepdim)])(fn),
                    [dt], attrs={"dim": dim, "correction": corr}, grad=[0] if dt == "float64" else None)
    for op, fn in (("cumsum", np.cumsum), ("cumprod", np.cumprod)):
        for dt in ("float32", "float64", "int32", "bool"):
            g = G(f"{op}/{dt}")
            x = g.f((2, 3), dt, lo=-1.5, hi=1.5) if dtype_class(dt) == "float" else g.of((2, 3), dt, lo=-2, hi=3)
            add(op, dt, "dim1", [x], (lambda fn: lambda x, dim, dtype: [fn(f64(x), axis=dim)])(fn),
                [dt if dtype_class(dt) == "float" else "int64"], attrs={"dim": 1},
                grad=[0] if dt == "float64" else None)
    # ---- linalg
    for dt in ("float32", "float64", "int32"):
        g = G(f"matmul/{dt}")
        a, b = g.of((2, 3), dt, lo=-3, hi=4), g.of((3, 2), dt, lo=-3, hi=4)
        add("matmul", dt, "2d", [a, b], lambda a, b: [f64(a) @ f64(b)], [dt], grad=[0, 1] if dt == "float64" else None)
        a3, v = g.of((2, 2, 3), dt, lo=-3, hi=4), g.of((3,), dt, lo=-3, hi=4)
        add("matmul", dt, "batched_vec", [a3, v], lambda a, b: [f64(a) @ f64(b)], [dt],
            grad=[0, 1] if dt == "float64" else None)
    for dt in ("float32", "float64", "int32", "bool"):
        g = G(f"einsum/{dt}")
        a, b = g.of((2, 3), dt, lo=-3, hi=4), g.of((3, 2), dt, lo=-3, hi=4)
        if dt == "bool":
            add("einsum", dt, "trace", [[g.b((2, 2))]], lambda ops, equation, **k: [np.einsum(equation, *ops)],
                ["bool"], attrs={"equation": "ii->i"})
            continue
        add("einsum", dt, "ij_jk", [[a, b]], lambda ops, equation, **k: [np.einsum(equation, *[f64(o) for o in ops])],
            [dt], attrs={"equation": "ij,jk->ik"}, grad=[0] if dt == "float64" else None)
    for op in ("softmax", "log_softmax"):
        for dt in ("float32", "float64"):
            x = G(f"{op}/{dt}").f((2, 3), dt)
            def sm(x, dim, dtype, log=(op == "log_softmax")):
                x = f64(x)
                e = np.exp(x - x.max(axis=dim, keepdims=True))
                p = e / e.sum(axis=dim, keepdims=True)
                return [np.log(p) if log else p]
            add(op, dt, "dim1", [x], sm, [dt], attrs={"dim": 1}, grad=[0] if dt == "float64" else None)
    # ---- views and copies (every op: float32, float64 with grads, int32, bool)
    views = [
        ("reshape", (2, 3), {"shape": [3, -1]}, lambda x, shape: [x.reshape(shape)]),
        ("view", (2, 3), {"shape": [6]}, lambda x, shape: [x.reshape(shape)]),
        ("permute", (2, 3, 2), {"dims": [2, 0, 1]}, lambda x, dims: [np.transpose(x, dims)]),
        ("transpose", (2, 3), {"dim0": 0, "dim1": 1}, lambda x, dim0, dim1: [np.swapaxes(x, dim0, dim1)]),
        ("slice", (3, 5), {"dim": 1, "start": 1, "end": 5, "step": 2},
         lambda x, dim, start, end, step: [x[:, start:end:step]]),
        ("select", (2, 3), {"dim": 1, "index": -1}, lambda x, dim, index: [np.take(x, index, axis=dim)]),
        ("expand", (3, 1), {"size": [2, 3, 2]}, lambda x, size: [np.broadcast_to(x, size)]),
        ("broadcast_to", (1, 3), {"shape": [2, 3]}, lambda x, shape: [np.broadcast_to(x, shape)]),
        ("squeeze", (2, 1, 3, 1), {"dim": [1]}, lambda x, dim: [np.squeeze(x, axis=tuple(dim))]),
        ("unsqueeze", (2, 3), {"dim": -1}, lambda x, dim: [np.expand_dims(x, dim)]),
        ("flatten", (2, 2, 3), {"start_dim": 1}, lambda x, start_dim, end_dim=-1: [x.reshape(x.shape[0], -1)]),
        ("as_strided", (2, 3), {"size": [2, 2], "stride": [1, 2], "storage_offset": 1},
         lambda x, size, stride, storage_offset: [np.array([[x.reshape(-1)[storage_offset + i * stride[0] + j * stride[1]]
                                                            for j in range(size[1])] for i in range(size[0])])]),
        ("contiguous", (2, 3), {}, lambda x: [x]),
        ("clone", (2, 3), {}, lambda x: [x]),
        ("flip", (2, 3), {"dims": [0, 1]}, lambda x, dims: [np.flip(x, axis=tuple(dims))]),
        ("roll", (2, 3), {"shifts": [1, -1], "dims": [0, 1]}, lambda x, shifts, dims: [np.roll(x, shifts, axis=dims)]),
        ("tril", (3, 3), {"diagonal": 0}, lambda x, diagonal: [np.tril(x, diagonal)]),
        ("triu", (3, 4), {"diagonal": 1}, lambda x, diagonal: [np.triu(x, diagonal)]),
        ("pixel_shuffle", (1, 4, 1, 2), {"upscale_factor": 2},
         lambda x, upscale_factor: [x.reshape(1, 1, 2, 2, 1, 2).transpose(0, 1, 4, 2, 5, 3).reshape(1, 1, 2, 4)]),
        ("pixel_unshuffle", (1, 1, 2, 4), {"downscale_factor": 2},
         lambda x, downscale_factor: [x.reshape(1, 1, 1, 2, 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(1, 4, 1, 2)]),
    ]
    for op, shape, attrs, fn in views:
        for dt in ("float32", "float64", "int32", "bool"):
            if dt not in SCHEMA_OPS[op]["dtype_list"]:
                continue
            x = G(f"{op}/{dt}").of(shape, dt)
            add(op, dt, "basic", [x], fn, [dt], attrs=attrs, grad=[0] if dt == "float64" else None)
    for dt in ("float32", "float64", "int32", "bool"):
        g = G(f"pad/{dt}")
        x = g.of((2, 3), dt)
        add("pad", dt, "constant", [x], lambda x, pad, mode, value: [np.pad(x, ((0, 0), (pad[0], pad[1])), constant_values=value)],
            [dt], attrs={"pad": [1, 2], "mode": "constant", "value": 0.0 if dt == "bool" else 1.5 if dtype_class(dt) == "float" else 3.0},
            grad=[0] if dt == "float64" else None)
        if dtype_class(dt) == "float":
            for mode, npm in (("reflect", "reflect"), ("replicate", "edge")):
                add("pad", dt, mode, [x], (lambda npm: lambda x, pad, mode, value: [np.pad(x, ((pad[2], pad[3]), (pad[0], pad[1])), mode=npm)])(npm),
                    [dt], attrs={"pad": [2, 1, 1, 0], "mode": mode}, grad=[0] if dt == "float64" else None)
        # cast to every class, to_device to cpu
        for to in ("float64", "int32", "bool"):
            add("cast", dt, f"to_{to}", [x], (lambda to: lambda x, dtype: [np.trunc(f64(x)) if to == "int32" else x.astype(NP_DT[to])])(to),
                [to], attrs={"dtype": to}, grad=[0] if dt == "float64" and to == "float64" else None)
        add("to_device", dt, "cpu", [x], lambda x, device: [x], [dt], attrs={"device": "cpu"},
            grad=[0] if dt == "float64" else None)
        add("copy_", dt, "broadcast", [x, g.of((3,), dt)], lambda x, src: [np.broadcast_to(src, x.shape)], [dt])
        # joins and splits
        y = g.of((1, 3), dt)
        add("concat", dt, "dim0", [[x, y]], lambda ts, dim: [np.concatenate(ts, axis=dim)], [dt], attrs={"dim": 0},
            grad=[0] if dt == "float64" else None)
        add("stack", dt, "dim1", [[x, g.of((2, 3), dt)]], lambda ts, dim: [np.stack(ts, axis=dim)], [dt], attrs={"dim": 1},
            grad=[0] if dt == "float64" else None)
        z = g.of((5, 2), dt)
        add("split", dt, "size2", [z], lambda x, split_size, sizes, dim: [np.split(x, [2, 4], axis=dim)], [dt],
            attrs={"split_size": 2, "dim": 0}, grad=[0] if dt == "float64" else None)
        add("split", dt, "sizes", [z], lambda x, split_size, sizes, dim: [np.split(x, [1], axis=dim)], [dt],
            attrs={"sizes": [1, 4], "dim": 0})
        add("chunk", dt, "3", [z], lambda x, chunks, dim: [np.split(x, [2, 4], axis=dim)], [dt], attrs={"chunks": 3, "dim": 0}, grad=[0] if dt == "float64" else None)



def build_cases_3():
    G = Gen
    i64 = lambda a: np.asarray(a, dtype=np.int64)  # noqa: E731
    for dt in ("float32", "float64", "int32", "bool"):
        g = G(f"index/{dt}")
        x = g.of((2, 3), dt)
        gr = [0] if dt == "float64" else None
        idx = i64([[2, 0, 1], [1, 1, 0]])
        add("gather", dt, "dim1", [x, idx], lambda x, i, dim: [np.take_along_axis(x, i, axis=dim)], [dt],
            attrs={"dim": 1}, grad=gr)
        src = g.of((2, 3), dt)
        pidx = i64([[2, 0, 1], [0, 1, 2]])
        def scat(x, i, s, dim, reduce=None):
            out = np.array(x, copy=True)
            for r in range(i.shape[0]):
                for c in range(i.shape[1]):
                    if reduce == "add":
                        out[r, i[r, c]] = out[r, i[r, c]] + s[r, c]
                    elif reduce == "multiply":
                        out[r, i[r, c]] = out[r, i[r, c]] * s[r, c]
                    else:
                        out[r, i[r, c]] = s[r, c]
            return [out]
        add("scatter", dt, "dim1", [x, pidx, src], scat, [dt], attrs={"dim": 1}, grad=[0, 2] if dt == "float64" else None)
        if dt != "bool":
            add("scatter", dt, "add", [x, idx, src], scat, [dt], attrs={"dim": 1, "reduce": "add"})
            add("scatter_add", dt, "dim1", [x, idx, src], lambda x, i, s, dim: scat(f64(x) if x.dtype.kind == "f" else x, i, s, dim, "add"),
                [dt], attrs={"dim": 1}, grad=[0, 2] if dt == "float64" else None)
        add("index_select", dt, "dim1", [x, i64([2, 0, 2])], lambda x, i, dim: [np.take(x, i, axis=dim)], [dt],
            attrs={"dim": 1}, grad=gr)
        add("take_along_dim", dt, "dim0", [x, i64([[1, 0, 1]])], lambda x, i, dim: [np.take_along_axis(x, i, axis=dim)],
            [dt], attrs={"dim": 0}, grad=gr)
        add("index", dt, "rows_cols", [x, [i64([1, 0]), i64([2, 2])]], lambda x, ind: [x[ind[0], ind[1]]], [dt], grad=gr)
        add("index", dt, "rows", [x, [i64([1, 1, 0])]], lambda x, ind: [x[ind[0]]], [dt], grad=gr)
        vals = g.of((2,), dt)
        def iput(x, v, ind, accumulate):
            out = np.array(x, copy=True)
            if accumulate:
                np.add.at(out, tuple(ind), v)
            else:
                out[tuple(ind)] = v
            return [out]
        add("index_put_", dt, "set", [x, vals, [i64([0, 1]), i64([2, 0])]], iput, [dt], attrs={"accumulate": False})
        if dt != "bool":
            add("index_put_", dt, "accumulate", [x, vals, [i64([1, 1]), i64([0, 0])]], iput, [dt], attrs={"accumulate": True})
        nz = g.of((2, 3), dt, lo=-1, hi=2) if dtype_class(dt) != "float" else g.f((2, 3), dt, lo=-0.5, hi=0.75, step=0.25, avoid_zero=False)
        add("nonzero", dt, "basic", [nz], lambda x: [np.argwhere(x)], ["int64"])
        mask = g.b((3,))
        fill = True if dt == "bool" else (2.5 if dtype_class(dt) == "float" else 7)
        add("masked_fill", dt, "broadcast", [x, mask], lambda x, m, value: [np.where(m, value, x)], [dt],
            attrs={"value": fill}, grad=gr)
    # ---- sort, topk
    for dt in ("float32", "float64", "int32"):
        g = G(f"sort/{dt}")
        x = g.distinct((2, 4), dt) if dtype_class(dt) == "float" else (g.rng.permutation(8) - 4).reshape(2, 4).astype(np.int32)
        gr = [0] if dt == "float64" else None
        for desc in (False, True):
            def srt(x, dim, descending, stable):
                i = np.argsort(-f64(x) if descending else x, axis=dim, kind="stable")
                return [np.take_along_axis(x, i, axis=dim), i]
            add("sort", dt, "desc" if desc else "asc", [x], srt, [dt, "int64"], attrs={"dim": -1, "descending": desc}, grad=gr)
        def tk(x, k, dim, largest, sorted):
            i = np.argsort(-f64(x) if largest else x, axis=dim, kind="stable")[..., :k]
            return [np.take_along_axis(x, i, axis=dim), i]
        add("topk", dt, "largest2", [x], tk, [dt, "int64"], attrs={"k": 2}, grad=gr)
        add("topk", dt, "smallest3", [x], tk, [dt, "int64"], attrs={"k": 3, "largest": False}, grad=gr)
    # ---- creation
    for dt in ("float32", "float64", "int32", "int64", "bool"):
        add("zeros", dt, "basic", [], lambda size, dtype, device: [np.zeros(size)], [dt], attrs={"size": [2, 3], "dtype": dt})
        add("ones", dt, "basic", [], lambda size, dtype, device: [np.ones(size)], [dt], attrs={"size": [3], "dtype": dt})
        fv = True if dt == "bool" else 2.5 if dtype_class(dt) == "float" else 7
        add("full", dt, "basic", [], lambda size, fill_value, dtype, device: [np.full(size, fill_value)], [dt],
            attrs={"size": [2, 2], "fill_value": fv, "dtype": dt})
        add("eye", dt, "rect", [], lambda n, m, dtype, device: [np.eye(n, m)], [dt], attrs={"n": 2, "m": 3, "dtype": dt})
        x = G(f"like/{dt}").of((2, 3), dt)
        add("zeros_like", dt, "basic", [x], lambda x, dtype: [np.zeros(x.shape)], [dt])
        add("ones_like", dt, "basic", [x], lambda x, dtype: [np.ones(x.shape)], [dt])
        add("full_like", dt, "basic", [x], lambda x, fill_value, dtype: [np.full(x.shape, fill_value)], [dt],
            attrs={"fill_value": fv})
    add("full", "int64", "infer_int", [], lambda size, fill_value, dtype, device: [np.full(size, fill_value)], ["int64"],
        attrs={"size": [2], "fill_value": 3})
    for dt in ("float32", "float64", "int32", "int64"):
        if dtype_class(dt) == "float":
            add("arange", dt, "float_step", [], lambda start, end, step, dtype, device: [np.arange(start, end, step)], [dt],
                attrs={"start": 0.5, "end": 2.0, "step": 0.25, "dtype": dt})
            add("linspace", dt, "5", [], lambda start, end, steps, dtype, device: [np.linspace(start, end, steps)], [dt],
                attrs={"start": -1.0, "end": 1.0, "steps": 5, "dtype": dt})
        else:
            add("arange", dt, "int_step", [], lambda start, end, step, dtype, device: [np.arange(start, end, step)], [dt],
                attrs={"start": 7, "end": -2, "step": -3, "dtype": dt})
            add("linspace", dt, "5", [], lambda start, end, steps, dtype, device: [np.trunc(np.linspace(start, end, steps))], [dt],
                attrs={"start": 0.0, "end": 8.0, "steps": 5, "dtype": dt})
    # ---- random ops whose parameters make them deterministic (the "seed" key seeds heron's generator)
    for dt in ("int32", "int64"):
        add("randint", dt, "one_value", [], lambda low, high, size, dtype, device, seed: [np.full(size, low)], [dt],
            attrs={"low": 3, "high": 4, "size": [2, 3], "dtype": dt}, seed=7)
    for dt in ("float32", "float64", "bfloat16"):
        add("rand", dt, "low_eq_high", [], lambda size, low, high, dtype, device, seed: [np.full(size, low)], [dt],
            attrs={"size": [2, 2], "low": 1.5, "high": 1.5, "dtype": dt}, seed=11)
        add("randn", dt, "std0", [], lambda size, mean, std, dtype, device, seed: [np.full(size, mean)], [dt],
            attrs={"size": [3], "mean": -0.75, "std": 0.0, "dtype": dt}, seed=11)
    for dt in ("int32", "int64"):
        add("randperm", dt, "n1", [], lambda n, dtype, device, seed: [np.arange(n)], [dt],
            attrs={"n": 1, "dtype": dt}, seed=11)
    add("randperm", "int64", "n0", [], lambda n, dtype, device, seed: [np.arange(n)], ["int64"], attrs={"n": 0})
    # empty and empty_like: zero-element shapes, so that the (uninitialised) contents do not matter
    for dt in ("float32", "int32", "bool"):
        add("empty", dt, "zero_size", [], lambda size, dtype, device: [np.zeros(size)], [dt],
            attrs={"size": [2, 0], "dtype": dt})
        add("empty_like", dt, "zero_size", [np.zeros((0, 3), dtype=NP_DT[dt])], lambda x, dtype: [np.zeros(x.shape)],
            [dt])
    add("empty_like", "int32", "to_float64", [np.zeros((1, 0), dtype=np.int32)], lambda x, dtype: [np.zeros(x.shape)],
        ["float64"], attrs={"dtype": "float64"})
    # half precision: a few ops in float16 and bfloat16 (tensors of those dtypes in every language)
    for dt in ("float16", "bfloat16"):
        g = Gen(f"half/{dt}")
        a, b = g.f((2, 3), dt), g.f((3,), dt)
        add("add", dt, "broadcast", [a, b], lambda a, b, alpha: [f64(a) + alpha * f64(b)], [dt], attrs={"alpha": 1})
        add("mul", dt, "broadcast", [a, b], lambda a, b: [f64(a) * f64(b)], [dt])
        add("neg", dt, "basic", [a], lambda x: [-f64(x)], [dt])
        add("exp", dt, "basic", [a], lambda x: [np.exp(f64(x))], [dt])
        add("sum", dt, "dim1", [a], lambda x, dim, keepdim, dtype: [f64(x).sum(axis=1)], [dt], attrs={"dim": [1]})
        add("matmul", dt, "2d", [a, g.f((3, 2), dt)], lambda a, b: [f64(a) @ f64(b)], [dt])
        add("cast", dt, "to_float32", [a], lambda x, dtype: [x], ["float32"], attrs={"dtype": "float32"})
        add("cast", "float32", f"to_{dt}", [g.f((4,), "float32", step=0.0625)], lambda x, dtype: [x], [dt],
            attrs={"dtype": dt})
    for dt in ("float32", "float64"):
        add("bernoulli", dt, "p01", [np.array([[0.0, 1.0], [1.0, 0.0]], dtype=NP_DT[dt])], lambda p, seed: [p], [dt], seed=7)



# ---- numpy nn references (direct loops at tiny sizes)
def conv2d_ref(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    x, w = f64(x), f64(w)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    OH = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    OW = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((N, K, OH, OW))
    kpg = K // groups
    for n in range(N):
        for k in range(K):
            gi = k // kpg
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0
                    for c in range(Cg):
                        for a in range(kh):
                            for bb in range(kw):
                                acc += xp[n, gi * Cg + c, i * stride[0] + a * dilation[0], j * stride[1] + bb * dilation[1]] * w[k, c, a, bb]
                    out[n, k, i, j] = acc + (0.0 if b is None else f64(b)[k])
    return out


def conv_transpose2d_ref(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), groups=1, dilation=(1, 1)):
    x, w = f64(x), f64(w)
    N, C, H, W = x.shape
    _, Kg, kh, kw = w.shape
    K = Kg * groups
    cpg = C // groups
    OH = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    OW = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    full = np.zeros((N, K, OH + 2 * padding[0], OW + 2 * padding[1]))
    for n in range(N):
        for c in range(C):
            gi = c // cpg
            for i in range(H):
                for j in range(W):
                    for kk in range(Kg):
                        for a in range(kh):
                            for bb in range(kw):
                                full[n, gi * Kg + kk, i * stride[0] + a * dilation[0], j * stride[1] + bb * dilation[1]] += x[n, c, i, j] * w[c, kk, a, bb]
    out = full[:, :, padding[0]:padding[0] + OH, padding[1]:padding[1] + OW]
    if b is not None:
        out = out + f64(b)[None, :, None, None]
    return out


def pool_windows(H, k, s, p, d, ceil_mode):
    span = d * (k - 1) + 1
    num = H + 2 * p - span
    O = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (O - 1) * s >= H + p:
        O -= 1
    return O


def max_pool2d_ref(x, kernel_size, stride, padding, dilation, ceil_mode):
    x = np.asarray(x)
    stride = stride or kernel_size
    N, C, H, W = x.shape
    OH = pool_windows(H, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    OW = pool_windows(W, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    out = np.zeros((N, C, OH, OW), dtype=np.float64)
    idx = np.zeros((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    best, bi = -np.inf, -1
                    for a in range(kernel_size[0]):
                        for b in range(kernel_size[1]):
                            r = i * stride[0] - padding[0] + a * dilation[0]
                            q = j * stride[1] - padding[1] + b * dilation[1]
                            if 0 <= r < H and 0 <= q < W and x[n, c, r, q] > best:
                                best, bi = x[n, c, r, q], r * W + q
                    out[n, c, i, j], idx[n, c, i, j] = best, bi
    return [out, idx]


def avg_pool2d_ref(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x = f64(x)
    stride = stride or kernel_size
    N, C, H, W = x.shape
    OH = pool_windows(H, kernel_size[0], stride[0], padding[0], 1, ceil_mode)
    OW = pool_windows(W, kernel_size[1], stride[1], padding[1], 1, ceil_mode)
    out = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            r0, q0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
            r1, q1 = min(r0 + kernel_size[0], H + padding[0]), min(q0 + kernel_size[1], W + padding[1])
            pool_size = (r1 - r0) * (q1 - q0)
            rr0, qq0, rr1, qq1 = max(r0, 0), max(q0, 0), min(r1, H), min(q1, W)
            s_ = x[:, :, rr0:rr1, qq0:qq1].sum(axis=(2, 3))
            div = divisor_override or (pool_size if count_include_pad else (rr1 - rr0) * (qq1 - qq0))
            out[:, :, i, j] = s_ / div
    return [out]


def adaptive_avg_pool2d_ref(x, output_size):
    x = f64(x)
    N, C, H, W = x.shape
    oh, ow = output_size
    out = np.zeros((N, C, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * H) // oh, -(-((i + 1) * H) // oh)
            q0, q1 = (j * W) // ow, -(-((j + 1) * W) // ow)
            out[:, :, i, j] = x[:, :, r0:r1, q0:q1].mean(axis=(2, 3))
    return [out]


def reduce_loss(l, reduction):
    return l.mean() if reduction == "mean" else l.sum() if reduction == "sum" else l


def log_softmax_np(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def nll_ref(logp, target, weight, ignore_index, reduction):
    N = logp.shape[0]
    w = np.ones(logp.shape[1]) if weight is None else f64(weight)
    l = np.zeros(N)
    ws = np.zeros(N)
    for n in range(N):
        t = int(target[n])
        if t == ignore_index:
            continue
        l[n] = -w[t] * logp[n, t]
        ws[n] = w[t]
    if reduction == "mean":
        return l.sum() / ws.sum()
    return l.sum() if reduction == "sum" else l


def cross_entropy_ref(x, target, weight, ignore_index, reduction, label_smoothing):
    logp = log_softmax_np(f64(x))
    if target.dtype.kind == "f":
        C = x.shape[1]
        t = f64(target) * (1 - label_smoothing) + label_smoothing / C
        w = np.ones(C) if weight is None else f64(weight)
        return reduce_loss(-(logp * t * w).sum(axis=1), reduction)
    nll = nll_ref(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    C = x.shape[1]
    w = np.ones(C) if weight is None else f64(weight)
    mask = target != ignore_index
    smooth = -(logp * w).sum(axis=1) * mask
    if reduction == "mean":
        smooth = smooth.sum() / (w[np.where(mask, target, 0)] * mask).sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - label_smoothing) * nll + label_smoothing / C * smooth


def vjp(fn, inputs, attrs, gouts, wrt):
    """Central differences of sum(fn(*inputs) * gouts) w.r.t. inputs[k] for k in wrt (float64)."""
    base = [f64(x) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x for x in inputs]

    def loss(ins):
        outs = fn(*ins, **attrs)
        return sum(float(np.sum(f64(o) * f64(g))) for o, g in zip(outs, gouts) if g is not None)

    res = []
    for k in wrt:
        x = base[k]
        gr = np.zeros(x.shape)
        for j in range(x.size):
            xp = x.copy().reshape(-1); xm = x.copy().reshape(-1)
            xp[j] += 1e-6; xm[j] -= 1e-6
            ip = list(base); im = list(base)
            ip[k] = xp.reshape(x.shape); im[k] = xm.reshape(x.shape)
            gr.reshape(-1)[j] = (loss(ip) - loss(im)) / 2e-6
        res.append(np.vectorize(lambda v: float(f"{v:.9g}"), otypes=[np.float64])(gr) if gr.size else gr)
    return res


def build_cases_nn():
    G = Gen
    i64 = lambda a: np.asarray(a, dtype=np.int64)  # noqa: E731
    for dt in ("float32", "float64"):
        g = G(f"nn/{dt}")
        gr = (lambda ks: ks if dt == "float64" else None)
        # linear
        x, w, b = g.f((2, 3), dt), g.f((4, 3), dt), g.f((4,), dt)
        lin = lambda x, w, b: [f64(x) @ f64(w).T + (0 if b is None else f64(b))]  # noqa: E731
        add("linear", dt, "bias", [x, w, b], lin, [dt], grad=gr([0, 1, 2]))
        add("linear", dt, "nobias", [x, w, None], lin, [dt], grad=gr([0, 1]))
        if dt == "float64":
            go = g.f((2, 4), dt)
            add("linear_backward", dt, "all", [go, x, w],
                lambda go, x, w, output_mask: vjp(lin, [x, w, np.zeros(w.shape[0])], {}, [go], [0, 1, 2]),
                [dt, dt, dt])
        lr = lambda x, negative_slope: [np.where(f64(x) > 0, f64(x), negative_slope * f64(x))]  # noqa: E731
        add("leaky_relu", dt, "slope", [x], lr, [dt], attrs={"negative_slope": 0.2}, grad=gr([0]))
        add("leaky_relu_backward", dt, "slope", [g.f((2, 3), dt), x],
            lambda go, x, negative_slope: [np.where(f64(x) > 0, f64(go), negative_slope * f64(go))], [dt],
            attrs={"negative_slope": 0.2})
        add("dropout", dt, "eval", [x], lambda x, p, training: [x, np.ones(x.shape, bool)], [dt, "bool"],
            attrs={"p": 0.5, "training": False}, grad=gr([0]))
        add("dropout", dt, "p0", [x], lambda x, p, training: [x, np.ones(x.shape, bool)], [dt, "bool"],
            attrs={"p": 0.0, "training": True}, grad=gr([0]), seed=3)
        mask = g.b((2, 3))
        add("dropout_backward", dt, "p", [g.f((2, 3), dt), mask], lambda go, m, p: [f64(go) * m / (1 - p)], [dt],
            attrs={"p": 0.5})
        emb_w = g.f((4, 3), dt)
        ids = i64([[1, 3], [0, 1]])
        add("embedding", dt, "basic", [emb_w, ids], lambda w, i, padding_idx: [np.asarray(w)[i]], [dt], grad=gr([0]))
        def emb_bwd(go, i, num_weights, padding_idx):
            out = np.zeros((num_weights, go.shape[-1]))
            np.add.at(out, i.reshape(-1), f64(go).reshape(-1, go.shape[-1]))
            if padding_idx is not None:
                out[padding_idx] = 0
            return [out]
        add("embedding_backward", dt, "pad", [g.f((2, 2, 3), dt), ids], emb_bwd, [dt],
            attrs={"num_weights": 4, "padding_idx": 1})
        img = g.f((1, 2, 2, 3), dt)
        add("interpolate", dt, "nearest_size", [img],
            lambda x, size, scale_factor, mode, align_corners: [np.asarray(x)[:, :, [0, 0, 1, 1]][:, :, :, [0, 0, 1, 1, 2, 2]]],
            [dt], attrs={"size": [4, 6], "mode": "nearest"}, grad=gr([0]))
        # norms
        xn = g.f((2, 3, 2), dt)
        wn, bn = g.f((3,), dt), g.f((3,), dt)
        def bn_ref(x, w, b, rm, rv, training, momentum, eps):
            x = f64(x)
            m = x.mean(axis=(0, 2))
            v = x.var(axis=(0, 2))
            inv = 1 / np.sqrt(v + eps)
            y = (x - m[None, :, None]) * inv[None, :, None]
            if w is not None:
                y = y * f64(w)[None, :, None] + f64(b)[None, :, None]
            return [y, m, inv]
        add("batch_norm", dt, "train_affine", [xn, wn, bn, None, None], bn_ref, [dt, dt, dt],
            attrs={"training": True}, grad=gr([0, 1, 2]))
        def ln_ref(x, w, b, normalized_shape, eps):
            x = f64(x)
            ax = tuple(range(x.ndim - len(normalized_shape), x.ndim))
            m = x.mean(axis=ax, keepdims=True)
            r = 1 / np.sqrt(x.var(axis=ax, keepdims=True) + eps)
            y = (x - m) * r
            if w is not None:
                y = y * f64(w) + f64(b)
            return [y, m, r]
        add("layer_norm", dt, "affine", [xn, g.f((2,), dt), g.f((2,), dt)], ln_ref, [dt, dt, dt],
            attrs={"normalized_shape": [2]}, grad=gr([0, 1, 2]))
        def gn_ref(x, w, b, num_groups, eps):
            x = f64(x)
            N, C = x.shape[:2]
            xg = x.reshape(N, num_groups, -1)
            m = xg.mean(axis=2)
            r = 1 / np.sqrt(xg.var(axis=2) + eps)
            y = ((xg - m[:, :, None]) * r[:, :, None]).reshape(x.shape)
            if w is not None:
                sh = (1, C) + (1,) * (x.ndim - 2)
                y = y * f64(w).reshape(sh) + f64(b).reshape(sh)
            return [y, m, r]
        xg4 = g.f((2, 4, 2), dt)
        add("group_norm", dt, "g2", [xg4, g.f((4,), dt), g.f((4,), dt)], gn_ref, [dt, dt, dt],
            attrs={"num_groups": 2}, grad=gr([0, 1, 2]))
        def in_ref(x, w, b, rm, rv, use_input_stats, momentum, eps):
            x = f64(x)
            m = x.mean(axis=2)
            r = 1 / np.sqrt(x.var(axis=2) + eps)
            y = (x - m[:, :, None]) * r[:, :, None]
            if w is not None:
                y = y * f64(w)[None, :, None] + f64(b)[None, :, None]
            return [y, m, r]
        add("instance_norm", dt, "affine", [xn, wn, bn, None, None], in_ref, [dt, dt, dt], grad=gr([0, 1, 2]))
        # losses
        logits, tgt = g.f((3, 4), dt), i64([1, 0, 3])
        cw = g.pos((4,), dt)
        ce = lambda x, t, w, ignore_index, reduction, label_smoothing: [cross_entropy_ref(x, t, w, ignore_index, reduction, label_smoothing)]  # noqa: E731
        add("cross_entropy", dt, "mean", [logits, tgt, None], ce, [dt], grad=gr([0]))
        add("cross_entropy", dt, "weight_sum_smooth", [logits, tgt, cw], ce, [dt],
            attrs={"reduction": "sum", "label_smoothing": 0.1}, grad=gr([0]))
        add("cross_entropy", dt, "ignore_none", [logits, i64([1, -100, 2]), None], ce, [dt],
            attrs={"reduction": "none"}, grad=gr([0]))
        lp = log_softmax_np(f64(logits)).astype(NP_DT[dt])
        nll = lambda x, t, w, ignore_index, reduction: [nll_ref(f64(x), t, w, ignore_index, reduction)]  # noqa: E731
        add("nll_loss", dt, "weight_mean", [lp, tgt, cw], nll, [dt], grad=gr([0]))
        add("nll_loss", dt, "none", [lp, tgt, None], nll, [dt], attrs={"reduction": "none"}, grad=gr([0]))
        a, t = g.f((2, 3), dt), g.f((2, 3), dt)
        t = t + round_to(np.float64(0.0625), dt)  # off the kinks
        mse = lambda x, t, reduction: [reduce_loss((f64(x) - f64(t)) ** 2, reduction)]  # noqa: E731
        l1 = lambda x, t, reduction: [reduce_loss(np.abs(f64(x) - f64(t)), reduction)]  # noqa: E731
        def sl1(x, t, reduction, beta):
            d = np.abs(f64(x) - f64(t))
            return [reduce_loss(np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)]
        for red in ("mean", "sum", "none"):
            add("mse_loss", dt, red, [a, t], mse, [dt], attrs={"reduction": red}, grad=gr([0, 1]))
            add("l1_loss", dt, red, [a, t], l1, [dt], attrs={"reduction": red}, grad=gr([0, 1]))
            add("smooth_l1_loss", dt, red, [a, t], sl1, [dt], attrs={"reduction": red, "beta": 0.5}, grad=gr([0, 1]))
        pr = round_to(np.array([[0.25, 0.5, 0.75], [0.125, 0.875, 0.625]]), dt)
        yt = round_to(np.array([[0.0, 1.0, 1.0], [0.5, 0.0, 1.0]]), dt)
        bw = g.pos((2, 3), dt)
        def bce(x, y, w, reduction):
            x, y = f64(x), f64(y)
            l = -(y * np.log(x) + (1 - y) * np.log(1 - x))
            return [reduce_loss(l * (1 if w is None else f64(w)), reduction)]
        def bcel(x, y, w, pw, reduction):
            x, y = f64(x), f64(y)
            pwv = 1 if pw is None else f64(pw)
            ls = -np.logaddexp(0, -x)  # log sigmoid
            l = -(pwv * y * ls + (1 - y) * (ls - x))
            return [reduce_loss(l * (1 if w is None else f64(w)), reduction)]
        add("binary_cross_entropy", dt, "mean", [pr, yt, None], bce, [dt], grad=gr([0]))
        add("binary_cross_entropy", dt, "weight_none", [pr, yt, bw], bce, [dt], attrs={"reduction": "none"}, grad=gr([0]))
        # Input 0 only: heron has no derivative with respect to `target` (NotImplementedError).
        add("binary_cross_entropy_with_logits", dt, "mean", [a, yt, None, None], bcel, [dt], grad=gr([0]))
        add("binary_cross_entropy_with_logits", dt, "pos_weight_sum", [a, yt, bw, g.pos((3,), dt)], bcel, [dt],
            attrs={"reduction": "sum"}, grad=gr([0]))
        # loss backward ops (float64: expected values by central differences of the forward reference)
        if dt == "float64":
            gs = np.array(0.75)
            gn = g.f((2, 3), dt)
            for red, go in (("mean", gs), ("none", gn)):
                add("mse_loss_backward", dt, red, [go, a, t], lambda go, x, t, reduction: vjp(mse, [x, t], {"reduction": reduction}, [go], [0]), [dt], attrs={"reduction": red})
                add("l1_loss_backward", dt, red, [go, a, t], lambda go, x, t, reduction: vjp(l1, [x, t], {"reduction": reduction}, [go], [0]), [dt], attrs={"reduction": red})
                add("smooth_l1_loss_backward", dt, red, [go, a, t], lambda go, x, t, reduction, beta: vjp(sl1, [x, t], {"reduction": reduction, "beta": beta}, [go], [0]), [dt], attrs={"reduction": red, "beta": 0.5})
                add("binary_cross_entropy_backward", dt, red, [go, pr, yt, None], lambda go, x, y, w, reduction: vjp(bce, [x, y, w], {"reduction": reduction}, [go], [0]), [dt], attrs={"reduction": red})
                add("binary_cross_entropy_with_logits_backward", dt, red, [go, a, yt, None, None], lambda go, x, y, w, pw, reduction: vjp(bcel, [x, y, w, pw], {"reduction": reduction}, [go], [0]), [dt], attrs={"reduction": red})
            add("cross_entropy_backward", dt, "mean", [gs, logits, tgt, None], lambda go, x, t, w, ignore_index, reduction, label_smoothing: vjp(ce, [x, t, w], dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing), [go], [0]), [dt])
            add("nll_loss_backward", dt, "mean", [gs, lp, tgt, None], lambda go, x, t, w, ignore_index, reduction: vjp(nll, [x, t, w], dict(ignore_index=ignore_index, reduction=reduction), [go], [0]), [dt])
        # convolutions and pooling
        xc, wc, bc = g.f((1, 2, 3, 4), dt), g.f((2, 1, 2, 2), dt), g.f((2,), dt)
        c2 = lambda x, w, b, stride, padding, dilation, groups, same_padding: [conv2d_ref(x, w, b, stride, padding, dilation, groups)]  # noqa: E731
        add("conv2d", dt, "groups2_pad1", [xc, wc, bc], c2, [dt], attrs={"padding": [1, 1], "groups": 2}, grad=gr([0, 1, 2]))
        add("conv2d", dt, "stride2_dil", [xc, g.f((3, 2, 2, 2), dt), None], c2, [dt],
            attrs={"stride": [2, 1], "dilation": [1, 2]}, grad=gr([0, 1]))
        def cf(x, w, b, r, stride, padding, dilation, groups, same_padding, min, max):
            y = conv2d_ref(x, w, b, stride, padding, dilation, groups)
            if r is not None:
                y = y + f64(r)
            return [np.clip(y, -np.inf if min is None else min, np.inf if max is None else max)]
        y0 = conv2d_ref(xc, wc, bc, (1, 1), (1, 1), (1, 1), 2)
        add("conv2d_fused", dt, "residual_relu", [xc, wc, bc, g.f(y0.shape, dt)], cf, [dt],
            attrs={"padding": [1, 1], "groups": 2, "min": 0.0})
        x1, w1 = g.f((1, 2, 5), dt), g.f((3, 2, 2), dt)
        add("conv1d", dt, "stride2", [x1, w1, g.f((3,), dt)],
            lambda x, w, b, stride, padding, dilation, groups, same_padding: [conv2d_ref(x[:, :, None], w[:, :, None], b, (1, stride[0]), (0, padding[0]), (1, dilation[0]), groups)[:, :, 0]],
            [dt], attrs={"stride": [2], "padding": [1]}, grad=gr([0, 1, 2]))
        xt, wt = g.f((1, 2, 2, 2), dt), g.f((2, 3, 2, 2), dt)
        add("conv_transpose2d", dt, "stride2", [xt, wt, g.f((3,), dt)],
            lambda x, w, b, stride, padding, output_padding, groups, dilation: [conv_transpose2d_ref(x, w, b, stride, padding, output_padding, groups, dilation)],
            [dt], attrs={"stride": [2, 2], "padding": [1, 0], "output_padding": [1, 0]}, grad=gr([0, 1, 2]))
        xpool = g.distinct((1, 2, 4, 5), dt)
        add("max_pool2d", dt, "k2_ceil", [xpool], max_pool2d_ref, [dt, "int64"],
            attrs={"kernel_size": [2, 2], "ceil_mode": True}, grad=gr([0]))
        add("max_pool2d", dt, "k3_s2_p1", [xpool], max_pool2d_ref, [dt, "int64"],
            attrs={"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1]}, grad=gr([0]))
        add("avg_pool2d", dt, "k2_p1_nopad", [xpool], avg_pool2d_ref, [dt],
            attrs={"kernel_size": [2, 2], "padding": [1, 1], "count_include_pad": False}, grad=gr([0]))
        add("avg_pool2d", dt, "k3_s2_p1", [xpool], avg_pool2d_ref, [dt],
            attrs={"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1]}, grad=gr([0]))
        add("adaptive_avg_pool2d", dt, "3x2", [xpool], adaptive_avg_pool2d_ref, [dt], attrs={"output_size": [3, 2]},
            grad=gr([0]))

        # backward ops (float64: expected values by central differences of the forward reference)
        if dt == "float64":
            def bwd(fwd, wrt, n_in, extra=None):
                def ref(go, *rest, **at):
                    ins = list(rest[:n_in])
                    fat = {k: v for k, v in at.items() if k != "output_mask"}
                    if extra:
                        ins, fat = extra(ins, fat)
                    return vjp(fwd, ins, fat, [go], wrt)
                return ref
            go = g.f(y0.shape, dt)
            c2b = lambda x, w, b, **at: c2(x, w, b, **at)  # noqa: E731
            add("conv2d_backward", dt, "groups2_pad1", [go, xc, wc],
                bwd(c2b, [0, 1, 2], 2, lambda ins, at: (ins + [np.zeros(wc.shape[0])], at)), [dt, dt, dt],
                attrs={"padding": [1, 1], "groups": 2})
            c1 = lambda x, w, b, stride, padding, dilation, groups, same_padding: [conv2d_ref(x[:, :, None], w[:, :, None], b, (1, stride[0]), (0, padding[0]), (1, dilation[0]), groups)[:, :, 0]]  # noqa: E731
            y1 = c1(x1, w1, None, [2], [1], [1], 1, False)[0]
            add("conv1d_backward", dt, "stride2", [g.f(y1.shape, dt), x1, w1],
                bwd(c1, [0, 1, 2], 2, lambda ins, at: (ins + [np.zeros(w1.shape[0])], at)), [dt, dt, dt],
                attrs={"stride": [2], "padding": [1]})
            ct = lambda x, w, b, **at: [conv_transpose2d_ref(x, w, b, **at)]  # noqa: E731
            yt_ = conv_transpose2d_ref(xt, wt, None, (2, 2), (1, 0), (1, 0))
            add("conv_transpose2d_backward", dt, "stride2", [g.f(yt_.shape, dt), xt, wt],
                bwd(ct, [0, 1, 2], 2, lambda ins, at: (ins + [np.zeros(wt.shape[1])], at)), [dt, dt, dt],
                attrs={"stride": [2, 2], "padding": [1, 0], "output_padding": [1, 0]})
            mp, mi = max_pool2d_ref(xpool, [2, 2], [], [0, 0], [1, 1], True)
            add("max_pool2d_backward", dt, "k2_ceil", [g.f(mp.shape, dt), xpool, mi],
                lambda go, x, idx: vjp(max_pool2d_ref, [x], dict(kernel_size=[2, 2], stride=[], padding=[0, 0], dilation=[1, 1], ceil_mode=True), [go, None], [0]),
                [dt])
            ap = avg_pool2d_ref(xpool, [3, 3], [2, 2], [1, 1], False, True, None)[0]
            add("avg_pool2d_backward", dt, "k3_s2_p1", [g.f(ap.shape, dt), xpool],
                lambda go, x, **at: vjp(avg_pool2d_ref, [x], at, [go], [0]), [dt],
                attrs={"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1]})
            add("adaptive_avg_pool2d_backward", dt, "3x2", [g.f((1, 2, 3, 2), dt), xpool],
                lambda go, x: vjp(adaptive_avg_pool2d_ref, [x], {"output_size": [3, 2]}, [go], [0]), [dt])
            interp = lambda x: [np.asarray(x)[:, :, [0, 0, 1, 1]][:, :, :, [0, 0, 1, 1, 2, 2]]]  # noqa: E731
            add("interpolate_backward", dt, "nearest_size", [g.f((1, 2, 4, 6), dt)],
                lambda go, **at: vjp(interp, [np.zeros((1, 2, 2, 3))], {}, [go], [0]), [dt],
                attrs={"input_size": [1, 2, 2, 3], "mode": "nearest"})
            _, sm, si = bn_ref(xn, wn, bn, None, None, True, 0.1, 1e-5)
            add("batch_norm_backward", dt, "train_affine", [g.f(xn.shape, dt), xn, wn, sm, si],
                lambda go, x, w, m, r, training: vjp(bn_ref, [x, w, bn, None, None], dict(training=True, momentum=0.1, eps=1e-5), [go], [0, 1, 2]),
                [dt, dt, dt])
            lw = g.f((2,), dt)
            _, lm, lr_ = ln_ref(xn, lw, lw, [2], 1e-5)
            add("layer_norm_backward", dt, "affine", [g.f(xn.shape, dt), xn, lw, lm, lr_],
                lambda go, x, w, m, r, normalized_shape: vjp(ln_ref, [x, w, np.zeros(2)], dict(normalized_shape=normalized_shape, eps=1e-5), [go], [0, 1, 2]),
                [dt, dt, dt], attrs={"normalized_shape": [2]})
            gw = g.f((4,), dt)
            _, gm, gr_ = gn_ref(xg4, gw, gw, 2, 1e-5)
            add("group_norm_backward", dt, "g2", [g.f(xg4.shape, dt), xg4, gw, gm, gr_],
                lambda go, x, w, m, r, num_groups: vjp(gn_ref, [x, w, np.zeros(4)], dict(num_groups=num_groups, eps=1e-5), [go], [0, 1, 2]),
                [dt, dt, dt], attrs={"num_groups": 2})
        # locally connected convolution: weight (OH, OW, IC, FH, FW, OC)
        def local_ref(x, w, b, stride, padding, algo):
            x, w = f64(x), f64(w)
            N, IC, H, W = x.shape
            OH, OW, _, FH, FW, OC = w.shape
            xp = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
            out = np.zeros((N, OC, OH, OW))
            for i in range(OH):
                for j in range(OW):
                    patch = xp[:, :, i * stride[0]:i * stride[0] + FH, j * stride[1]:j * stride[1] + FW]
                    out[:, :, i, j] = np.einsum("nchw,chwo->no", patch, w[i, j])
            if b is not None:
                out = out + f64(b)[None, :, None, None]
            return [out]
        xl = g.f((1, 2, 3, 3), dt)
        wl = g.f((2, 2, 2, 2, 2, 3), dt)
        add("local_conv2d", dt, "basic", [xl, wl, g.f((3,), dt)], local_ref, [dt], grad=gr([0, 1, 2]))
        if dt == "float64":
            add("local_conv2d_backward", dt, "basic", [g.f((1, 3, 2, 2), dt), xl, wl],
                lambda go, x, w, stride, padding, algo, output_mask: vjp(local_ref, [x, w, None], dict(stride=stride, padding=padding, algo=algo), [go], [0, 1]),
                [dt, dt])
        # locally shared convolution: weight (SGH, SGW, IC, FH, FW, OC), 6-d (groups=1)
        def local_share_ref(x, w, b, stride, padding, dilation, spatial_groups, groups, mode, algo):
            x, w = f64(x), f64(w)
            if mode == "convolution":
                w = w[:, :, :, ::-1, ::-1, :]
            N, IC, H, W = x.shape
            SGH, SGW, _, FH, FW, OC = w.shape
            xp = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
            OH = (H + 2 * padding[0] - dilation[0] * (FH - 1) - 1) // stride[0] + 1
            OW = (W + 2 * padding[1] - dilation[1] * (FW - 1) - 1) // stride[1] + 1
            out = np.zeros((N, OC, OH, OW))
            for i in range(OH):
                for j in range(OW):
                    wk = w[i // (OH // SGH), j // (OW // SGW)]
                    r0, q0 = i * stride[0], j * stride[1]
                    patch = xp[:, :, r0:r0 + dilation[0] * (FH - 1) + 1:dilation[0], q0:q0 + dilation[1] * (FW - 1) + 1:dilation[1]]
                    out[:, :, i, j] = np.einsum("nchw,chwo->no", patch, wk)
            if b is not None:
                out = out + f64(b)[None, :, None, None]
            return [out]
        xs = g.f((1, 2, 5, 5), dt)
        ws = g.f((2, 2, 2, 2, 2, 3), dt)
        ls_attrs = {"padding": [1, 1], "spatial_groups": [2, 2]}
        add("local_share_conv2d", dt, "sg2", [xs, ws, g.f((3,), dt)], local_share_ref, [dt], attrs=ls_attrs,
            grad=gr([0, 1, 2]))
        add("local_share_conv2d", dt, "sg21_convolution_dil", [xs, g.f((2, 1, 2, 2, 2, 3), dt), None], local_share_ref,
            [dt], attrs={"spatial_groups": [2, 1], "dilation": [1, 2], "mode": "convolution"})
        if dt == "float64":
            add("local_share_conv2d_backward", dt, "sg2", [g.f((1, 3, 6, 6), dt), xs, ws],
                lambda go, x, w, output_mask, **at: vjp(local_share_ref, [x, w, None], at, [go], [0, 1]),
                [dt, dt], attrs=ls_attrs)
    for dt in ("float32", "float64"):
        add("randint", dt, "one_value", [], lambda low, high, size, dtype, device, seed: [np.full(size, low)], [dt],
            attrs={"low": -2, "high": -1, "size": [3], "dtype": dt}, seed=5)



def build_cases_optim():
    for dt in ("float32", "float64"):
        g = Gen(f"optim/{dt}")
        n = 2
        ps = [g.f((3,), dt), g.f((2, 2), dt)]
        gs = [g.f(p.shape, dt) for p in ps]
        bufs = [g.f(p.shape, dt) for p in ps]
        sq = [g.pos(p.shape, dt) for p in ps]

        def sgd(ts, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step):
            out = []
            for k in range(n):
                p, gr = f64(ts[k]), f64(ts[n + k])
                gr = (-gr if maximize else gr) + weight_decay * p
                if momentum:
                    b = gr if first_step else momentum * f64(ts[2 * n + k]) + (1 - dampening) * gr
                    gr = gr + momentum * b if nesterov else b
                out.append(p - lr * gr)
            return [out]
        add("sgd_step_", dt, "plain", [ps + gs], sgd, [dt], attrs={"lr": 0.5, "weight_decay": 0.25})
        add("sgd_step_", dt, "momentum_nesterov", [ps + gs + bufs], sgd, [dt],
            attrs={"lr": 0.5, "momentum": 0.75, "nesterov": True})

        def adam(ts, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, step, decoupled_weight_decay):
            out = []
            for k in range(n):
                p, gr = f64(ts[k]), f64(ts[n + k])
                m, v = f64(ts[2 * n + k]), f64(ts[3 * n + k])
                gr = -gr if maximize else gr
                if decoupled_weight_decay:
                    p = p * (1 - lr * weight_decay)
                else:
                    gr = gr + weight_decay * p
                m = m + (gr - m) * (1 - beta1)
                v = beta2 * v + (1 - beta2) * gr * gr
                if amsgrad:
                    v = np.maximum(f64(ts[4 * n + k]), v)
                out.append(p - lr / (1 - beta1 ** step) * m / (np.sqrt(v) / math.sqrt(1 - beta2 ** step) + eps))
            return [out]
        add("adam_step_", dt, "step3", [ps + gs + bufs + sq], adam, [dt], attrs={"lr": 0.125, "step": 3, "weight_decay": 0.5})
        add("adam_step_", dt, "adamw_amsgrad", [ps + gs + bufs + sq + [q + 0.5 for q in sq]], adam, [dt],
            attrs={"lr": 0.125, "step": 2, "weight_decay": 0.5, "amsgrad": True, "decoupled_weight_decay": True})

        def rmsprop(ts, lr, alpha, eps, weight_decay, momentum, centered, maximize):
            out = []
            for k in range(n):
                p, gr = f64(ts[k]), f64(ts[n + k])
                gr = (-gr if maximize else gr) + weight_decay * p
                s_ = alpha * f64(ts[2 * n + k]) + (1 - alpha) * gr * gr
                avg = np.sqrt(s_) + eps
                out.append(p - lr * gr / avg)
            return [out]
        add("rmsprop_step_", dt, "plain", [ps + gs + sq], rmsprop, [dt], attrs={"lr": 0.125, "weight_decay": 0.25})

        def adagrad(ts, lr, lr_decay, weight_decay, eps, step, maximize):
            out = []
            for k in range(n):
                p, gr = f64(ts[k]), f64(ts[n + k])
                gr = (-gr if maximize else gr) + weight_decay * p
                clr = lr / (1 + (step - 1) * lr_decay)
                s_ = f64(ts[2 * n + k]) + gr * gr
                out.append(p - clr * gr / (np.sqrt(s_) + eps))
            return [out]
        add("adagrad_step_", dt, "decay", [ps + gs + sq], adagrad, [dt], attrs={"lr": 0.25, "lr_decay": 0.5, "step": 3})

        def clip(ts, max_norm, norm_type, error_if_nonfinite):
            norms = [np.linalg.norm(f64(t).reshape(-1), ord=norm_type) for t in ts]
            return [np.asarray(np.linalg.norm(np.array(norms), ord=norm_type))]
        add("clip_grad_norm_", dt, "l2", [gs], clip, [dt], attrs={"max_norm": 0.5})
        add("clip_grad_norm_", dt, "inf", [gs], clip, [dt], attrs={"max_norm": 0.5, "norm_type": float("inf")})



def bilinear_ref(x, size, scale_factor, mode, align_corners):
    x = f64(x)
    N, C, H, W = x.shape
    if size is None:
        sf = list(scale_factor) * (2 if len(scale_factor) == 1 else 1)
        size = [int(math.floor(H * sf[0])), int(math.floor(W * sf[1]))]
        scales = [1 / sf[0], 1 / sf[1]]
    else:
        scales = [H / size[0], W / size[1]]

    def src_idx(o, n_in, n_out, scale):
        if align_corners:
            s_ = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            s_ = max((o + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(math.floor(s_)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        return i0, i1, s_ - i0
    out = np.zeros((N, C, size[0], size[1]))
    for i in range(size[0]):
        r0, r1, lr = src_idx(i, H, size[0], scales[0])
        for j in range(size[1]):
            q0, q1, lq = src_idx(j, W, size[1], scales[1])
            out[:, :, i, j] = ((1 - lr) * ((1 - lq) * x[:, :, r0, q0] + lq * x[:, :, r0, q1])
                               + lr * ((1 - lq) * x[:, :, r1, q0] + lq * x[:, :, r1, q1]))
    return [out]


def build_cases_more():
    """More attribute variants of already covered ops."""
    for dt in ("float32", "float64"):
        g = Gen(f"more/{dt}")
        gr = (lambda ks: ks if dt == "float64" else None)
        img = g.f((1, 2, 2, 3), dt)
        add("interpolate", dt, "bilinear_align", [img], bilinear_ref, [dt],
            attrs={"size": [3, 4], "mode": "bilinear", "align_corners": True}, grad=gr([0]))
        add("interpolate", dt, "bilinear_scale", [img], bilinear_ref, [dt],
            attrs={"scale_factor": [2.0], "mode": "bilinear"}, grad=gr([0]))
        xn = g.f((2, 3, 2), dt)
        rm, rv = g.f((3,), dt), g.pos((3,), dt)
        def bn_eval(x, w, b, rm, rv, training, momentum, eps):
            inv = 1 / np.sqrt(f64(rv) + eps)
            y = (f64(x) - f64(rm)[None, :, None]) * inv[None, :, None]
            return [y, f64(rm), inv]  # the statistics used: the running ones
        add("batch_norm", dt, "eval_running", [xn, None, None, rm, rv], bn_eval, [dt, dt, dt],
                attrs={"training": False}, grad=gr([0]))
        logits = g.f((2, 3), dt)
        probs = round_to(np.array([[0.25, 0.5, 0.25], [0.0, 0.125, 0.875]]), dt)
        add("cross_entropy", dt, "prob_target_smooth", [logits, probs, None],
            lambda x, t, w, ignore_index, reduction, label_smoothing: [cross_entropy_ref(x, t, w, ignore_index, reduction, label_smoothing)],
            [dt], attrs={"label_smoothing": 0.25}, grad=gr([0]))
        xc = g.f((1, 2, 3, 4), dt)
        add("conv2d", dt, "same_padding", [xc, g.f((2, 2, 3, 3), dt), None],
            lambda x, w, b, stride, padding, dilation, groups, same_padding: [conv2d_ref(x, w, b, (1, 1), (1, 1), (1, 1), 1)],
            [dt], attrs={"same_padding": True}, grad=gr([0, 1]))
        xp = g.distinct((1, 1, 4, 4), dt)
        add("avg_pool2d", dt, "divisor_override", [xp], avg_pool2d_ref, [dt],
            attrs={"kernel_size": [2, 2], "divisor_override": 3}, grad=gr([0]))
        x = g.f((2, 4), dt)
        add("pad", dt, "negative_crop", [x], lambda x, pad, mode, value: [np.asarray(x)[:, 1:3]], [dt],
            attrs={"pad": [-1, -1]}, grad=gr([0]))
        add("take_along_dim", dt, "flat", [x, np.array([7, 0, 3], dtype=np.int64)],
            lambda x, i, dim: [np.asarray(x).reshape(-1)[i]], [dt], grad=gr([0]))
        add("scatter", dt, "multiply", [x, np.array([[3, 0], [1, 1]], dtype=np.int64), g.f((2, 2), dt)],
            lambda x, i, s_, dim, reduce: [_scatter_mul(x, i, s_)], [dt], attrs={"dim": 1, "reduce": "multiply"})
        add("clamp", dt, "max_only", [x], lambda x, min, max: [np.minimum(f64(x), max)], [dt],
            attrs={"min": None, "max": 0.5}, grad=gr([0]))
        add("softmax", dt, "dim0_to_float64", [x],
            lambda x, dim, dtype: [np.exp(f64(x)) / np.exp(f64(x)).sum(axis=dim, keepdims=True)], ["float64"],
            attrs={"dim": 0, "dtype": "float64"}, grad=gr([0]))
    xi = Gen("more/int").i((2, 3), "int32")
    add("sum", "int32", "dtype_float64", [xi], lambda x, dim, keepdim, dtype: [f64(x).sum()], ["float64"],
        attrs={"dtype": "float64"})
    add("arange", "int64", "end_only", [], lambda start, end, step, dtype, device: [np.arange(start, end, step)], ["int64"],
        attrs={"end": 4})
    add("arange", "float32", "float_end", [], lambda start, end, step, dtype, device: [np.arange(start, end, step)],
        ["float32"], attrs={"end": 2.5})


def build_cases_int_dtypes():
    """int8, uint8 and int64 through a few ops (every integer dtype in every language)."""
    for dt in ("int8", "uint8", "int64"):
        g = Gen(f"ints/{dt}")
        a, b = g.i((2, 3), dt, lo=-9, hi=10), g.i((3,), dt, lo=1, hi=5)
        add("add", dt, "small_broadcast", [a, b], lambda a, b, alpha: [a.astype(np.int64) + alpha * b.astype(np.int64)], [dt],
            attrs={"alpha": 2})
        add("mul", dt, "small_broadcast", [a, b], lambda a, b: [a.astype(np.int64) * b], [dt])
        add("maximum", dt, "small_broadcast", [a, b], lambda a, b: [np.maximum(a, b)], [dt])
        add("remainder", dt, "small_broadcast", [a, b], lambda a, b: [np.mod(a, b)], [dt])
        add("floor_divide", dt, "small_broadcast", [a, b], lambda a, b: [np.floor_divide(a, b)], [dt])
        add("sum", dt, "small_dim0", [a], lambda x, dim, keepdim, dtype: [x.astype(np.int64).sum(axis=0)], ["int64"],
            attrs={"dim": [0]})
        add("cast", dt, "small_to_float32", [a], lambda x, dtype: [f64(x)], ["float32"], attrs={"dtype": "float32"})
        add("cast", "int32", f"to_{dt}", [g.i((4,), "int32", lo=0, hi=100)], lambda x, dtype: [x], [dt],
            attrs={"dtype": dt})
        add("eq", dt, "small_broadcast", [a, b], lambda a, b: [a == b], ["bool"])
        add("sort", dt, "small_desc", [a], lambda x, dim, descending, stable: [np.take_along_axis(x, np.argsort(-x.astype(np.int64), axis=-1, kind="stable"), -1),
                                                                      np.argsort(-x.astype(np.int64), axis=-1, kind="stable")],
            [dt, "int64"], attrs={"descending": True, "stable": True})
        if dt != "uint8":
            add("neg", dt, "small", [a], lambda x: [-x.astype(np.int64)], [dt])
            add("abs", dt, "small", [a], lambda x: [np.abs(x.astype(np.int64))], [dt])


def _scatter_mul(x, i, s_):
    out = np.array(x, dtype=np.float64, copy=True)
    for r in range(i.shape[0]):
        for c in range(i.shape[1]):
            out[r, i[r, c]] *= f64(s_)[r, c]
    return out


def sigm(x):
    return 1 / (1 + np.exp(-x))


def cell_step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    gi = x @ f64(w_ih).T + (0 if b_ih is None else f64(b_ih))
    gh = h @ f64(w_hh).T + (0 if b_hh is None else f64(b_hh))
    if mode == "rnn":
        a = gi + gh
        return (np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)), None
    if mode == "lstm":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c2 = sigm(f) * c + sigm(i) * np.tanh(g)
        return sigm(o) * np.tanh(c2), c2
    r_i, z_i, n_i = np.split(gi, 3, axis=-1)
    r_h, z_h, n_h = np.split(gh, 3, axis=-1)
    r, z = sigm(r_i + r_h), sigm(z_i + z_h)
    n = np.tanh(n_i + r * n_h)
    return (1 - z) * n + z * h, None


def rnn_ref(mode, x, hx, cx, params, hidden_size, num_layers, bias, batch_first, bidirectional, nonlinearity="tanh"):
    x = f64(x)
    if batch_first:
        x = x.transpose(1, 0, 2)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = hidden_size
    per = 4 if bias else 2
    hn, cn = [], []
    inp = x
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            ps = params[(layer * D + d) * per:(layer * D + d + 1) * per]
            w_ih, w_hh = ps[0], ps[1]
            b_ih, b_hh = (ps[2], ps[3]) if bias else (None, None)
            h = np.zeros((B, H)) if hx is None else f64(hx)[layer * D + d]
            c = np.zeros((B, H)) if cx is None else f64(cx)[layer * D + d]
            seq = np.zeros((T, B, H))
            for t in (range(T) if d == 0 else reversed(range(T))):
                h, c2 = cell_step(mode, inp[t], h, c, w_ih, w_hh, b_ih, b_hh, nonlinearity)
                c = c2 if c2 is not None else c
                seq[t] = h
            outs.append(seq)
            hn.append(h)
            cn.append(c)
        inp = np.concatenate(outs, axis=-1)
    out = inp.transpose(1, 0, 2) if batch_first else inp
    return out, np.stack(hn), np.stack(cn)


def rnn_lengths_ref(x, ps, lengths, H):
    """One-layer tanh RNN over padded sequences: steps past an item's length give zeros; h_n is the
    hidden state after its last step."""
    x = f64(x)
    T, B, _ = x.shape
    out = np.zeros((T, B, H))
    hn = np.zeros((B, H))
    for b in range(B):
        h = np.zeros(H)
        for t in range(int(lengths[b])):
            h = cell_step("rnn", x[t, b], h, None, *ps)[0]
            out[t, b] = h
        hn[b] = h
    return out, hn[None]


def lstm_proj_ref(x, ps, H, P):
    x = f64(x)
    T, B, _ = x.shape
    w_ih, w_hh, b_ih, b_hh, w_hr = ps
    h, c = np.zeros((B, P)), np.zeros((B, H))
    out = np.zeros((T, B, P))
    for t in range(T):
        i, f, g, o = np.split(x[t] @ f64(w_ih).T + f64(b_ih) + h @ f64(w_hh).T + f64(b_hh), 4, axis=-1)
        c = sigm(f) * c + sigm(i) * np.tanh(g)
        h = (sigm(o) * np.tanh(c)) @ f64(w_hr).T
        out[t] = h
    return out, h[None], c[None]


def build_cases_rnn():
    """Forward only: with no gradient recorded the `reserve` output is empty (shape (0,))."""
    empty = np.zeros((0,))
    for dt in ("float32", "float64"):
        g = Gen(f"rnn/{dt}")
        I, H, B = 3, 2, 2
        x = g.f((B, I), dt, lo=-1, hi=1)
        h0, c0 = g.f((B, H), dt, lo=-1, hi=1), g.f((B, H), dt, lo=-1, hi=1)
        w = lambda r, c_: g.f((r, c_), dt, lo=-1, hi=1)  # noqa: E731
        wih, whh, bih, bhh = w(H, I), w(H, H), g.f((H,), dt, lo=-1, hi=1), g.f((H,), dt, lo=-1, hi=1)
        add("rnn_cell", dt, "tanh", [x, h0, wih, whh, bih, bhh],
            lambda x, h, wi, wh, bi, bh, nonlinearity: [cell_step("rnn", f64(x), f64(h), None, wi, wh, bi, bh, nonlinearity)[0], empty],
            [dt, dt])
        add("rnn_cell", dt, "relu_nobias_nohx", [x, None, wih, whh, None, None],
            lambda x, h, wi, wh, bi, bh, nonlinearity: [cell_step("rnn", f64(x), np.zeros((B, H)), None, wi, wh, bi, bh, nonlinearity)[0], empty],
            [dt, dt], attrs={"nonlinearity": "relu"})
        w4 = (w(4 * H, I), w(4 * H, H), g.f((4 * H,), dt, lo=-1, hi=1), g.f((4 * H,), dt, lo=-1, hi=1))
        add("lstm_cell", dt, "basic", [x, h0, c0, *w4],
            lambda x, h, c, wi, wh, bi, bh: [*cell_step("lstm", f64(x), f64(h), f64(c), wi, wh, bi, bh), empty], [dt, dt, dt])
        w3 = (w(3 * H, I), w(3 * H, H), g.f((3 * H,), dt, lo=-1, hi=1), g.f((3 * H,), dt, lo=-1, hi=1))
        add("gru_cell", dt, "basic", [x, h0, *w3],
            lambda x, h, wi, wh, bi, bh: [cell_step("gru", f64(x), f64(h), None, wi, wh, bi, bh)[0], empty], [dt, dt])
        T = 3
        xs = g.f((T, B, I), dt, lo=-1, hi=1)
        add("rnn", dt, "1layer", [xs, None, None, [wih, whh, bih, bhh]],
            lambda x, hx, lengths, ps, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout, training, bidirectional:
            [*rnn_ref("rnn", x, hx, None, ps, hidden_size, num_layers, bias, batch_first, bidirectional, nonlinearity)[:2], empty],
            [dt, dt, dt], attrs={"hidden_size": H})
        wr = [w(4 * H, I), w(4 * H, H), g.f((4 * H,), dt, lo=-1, hi=1), g.f((4 * H,), dt, lo=-1, hi=1)]
        hx2, cx2 = g.f((2, B, H), dt, lo=-1, hi=1), g.f((2, B, H), dt, lo=-1, hi=1)
        add("lstm", dt, "bidirectional", [xs, hx2, cx2, None, [*w4, *wr]],
            lambda x, hx, cx, lengths, ps, hidden_size, num_layers, bias, batch_first, dropout, training, bidirectional, proj_size:
            [*rnn_ref("lstm", x, hx, cx, ps, hidden_size, num_layers, bias, batch_first, bidirectional), empty],
            [dt, dt, dt, dt], attrs={"hidden_size": H, "bidirectional": True})
        add("rnn", dt, "lengths", [xs, None, np.array([3, 1], dtype=np.int64), [wih, whh, bih, bhh]],
            lambda x, hx, lengths, ps, hidden_size, **k: [*rnn_lengths_ref(x, ps, lengths, hidden_size), empty],
            [dt, dt, dt], attrs={"hidden_size": H})
        P = 1
        wp = [w(4 * H, I), w(4 * H, P), g.f((4 * H,), dt, lo=-1, hi=1), g.f((4 * H,), dt, lo=-1, hi=1), w(P, H)]
        add("lstm", dt, "proj", [xs, None, None, None, wp],
            lambda x, hx, cx, lengths, ps, hidden_size, proj_size, **k: [*lstm_proj_ref(x, ps, hidden_size, proj_size), empty],
            [dt, dt, dt, dt], attrs={"hidden_size": H, "proj_size": P})
        xb = g.f((B, T, I), dt, lo=-1, hi=1)
        gp = [w(3 * H, I), w(3 * H, H), w(3 * H, H), w(3 * H, H)]
        add("gru", dt, "2layer_batch_first_nobias", [xb, None, None, gp],
            lambda x, hx, lengths, ps, hidden_size, num_layers, bias, batch_first, dropout, training, bidirectional:
            [*rnn_ref("gru", x, hx, None, ps, hidden_size, num_layers, bias, batch_first, bidirectional)[:2], empty],
            [dt, dt, dt], attrs={"hidden_size": H, "num_layers": 2, "bias": False, "batch_first": True})


# ----------------------------------------------------------------------------- evaluation
def flat_inputs(inputs):
    return [x for i in inputs for x in (i if isinstance(i, list) else [i])]


def call_ref(case, inputs):
    kw = {}
    for a in SCHEMA_OPS[case.op]["attrs"]:
        kw[a["name"]] = case.attrs.get(a["name"], a.get("default"))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        outs = case.ref(*inputs, **kw)
    return outs


def expected(case):
    outs = call_ref(case, case.inputs)
    res = []
    for o, dt in zip(outs, case.out_dtypes):
        if isinstance(o, list):
            res.append([round_to(np.asarray(x), dt) for x in o])
        else:
            res.append(round_to(np.asarray(o), dt))
    return res


def fd_grads(case, gouts):
    """Central finite differences in float64 of sum(outputs * grad_outputs) w.r.t. case.grad inputs
    (a variadic input gets a list of gradients, one per tensor)."""
    def to64(x):
        if isinstance(x, list):
            return [to64(e) for e in x]
        return f64(x) if (x is not None and x.dtype.kind == "f") else x
    base = [to64(x) for x in case.inputs]

    def loss(ins):
        outs = call_ref(case, ins)
        s = 0.0
        for o, g in zip(outs, gouts):
            if g is None:
                continue
            for oo, gg in (zip(o, g) if isinstance(g, list) else [(o, g)]):
                s += float(np.sum(f64(oo) * f64(gg)))
        return s

    def fd(get, put):
        x = get()
        gr = np.zeros(x.shape, dtype=np.float64)
        for j in range(x.size):
            vals = []
            for sgn in (1, -1):
                xx = x.copy().reshape(-1)
                xx[j] += sgn * 1e-6
                vals.append(loss(put(xx.reshape(x.shape))))
            gr.reshape(-1)[j] = (vals[0] - vals[1]) / 2e-6
        return np.vectorize(lambda v: float(f"{v:.9g}"), otypes=[np.float64])(gr) if gr.size else gr

    grads = []
    for k in range(len(case.inputs)):
        if k not in case.grad:
            grads.append(None)
        elif isinstance(base[k], list):
            def put_e(v, k=k, e=0):
                ins = list(base)
                ins[k] = list(base[k])
                ins[k][e] = v
                return ins
            grads.append([fd(lambda e=e: base[k][e], lambda v, e=e: put_e(v, k, e)) for e in range(len(base[k]))])
        else:
            def put(v, k=k):
                ins = list(base)
                ins[k] = v
                return ins
            grads.append(fd(lambda: base[k], put))
    return grads


def input_dtype(x, case):
    if x is None:
        return None
    if x.dtype == np.float32 and case.dtype == "bfloat16":
        return "bfloat16"
    return {np.dtype(v): k for k, v in NP_DT.items() if k != "bfloat16"}[x.dtype]


def to_json_case(case):
    op = SCHEMA_OPS[case.op]
    outs = expected(case)
    d = {"id": case.id, "op": case.op}
    ins = []
    for x in case.inputs:
        if isinstance(x, list):
            ins.append([None if e is None else enc_tensor(e, input_dtype(e, case)) for e in x])
        else:
            ins.append(None if x is None else enc_tensor(x, input_dtype(x, case)))
    d["inputs"] = ins
    types = {a["name"]: a["type"] for a in op["attrs"]}
    d["attrs"] = {k: tag_attr(types[k], v) for k, v in case.attrs.items()}
    d["outputs"] = [[enc_tensor(e, dt) for e in o] if isinstance(o, list) else enc_tensor(o, dt)
                    for o, dt in zip(outs, case.out_dtypes)]
    if case.grad:
        g = Gen(case.id + "/grad")
        gouts = []
        for k, (o, dt) in enumerate(zip(outs, case.out_dtypes)):
            # Only the first output is back-propagated (statistics outputs such as layer_norm's mean
            # and rstd carry no gradient).
            if k == 0 and dtype_class(dt) == "float":
                gouts.append([g.f(e.shape, dt) for e in o] if isinstance(o, list) else g.f(o.shape, dt))
            else:
                gouts.append(None)
        d["grad_outputs"] = [None if go is None else [enc_tensor(e, dt) for e in go] if isinstance(go, list)
                             else enc_tensor(go, dt) for go, dt in zip(gouts, case.out_dtypes)]
        grads = fd_grads(case, gouts)

        def enc_grad(gr, x):
            if gr is None:
                return None
            if isinstance(gr, list):
                return [enc_grad(a, b) for a, b in zip(gr, x)]
            return enc_tensor(round_to(gr, input_dtype(x, case)), input_dtype(x, case))
        d["grads"] = [enc_grad(gr, case.inputs[k]) for k, gr in enumerate(grads)]
    else:
        d["grad_outputs"] = None
        d["grads"] = None
    float_dts = [dt for dt in case.out_dtypes if dtype_class(dt) == "float"]
    rtol, atol = 0.0, 0.0
    # Backward ops' expected outputs are finite differences too.
    fd = bool(case.grad) or op["category"] == "backward"
    for dt in float_dts:
        r, a = numeric_float_tols(dt, fd)
        rtol, atol = max(rtol, r), max(atol, a)
    d["rtol"] = case.rtol if case.rtol is not None else rtol
    d["atol"] = case.atol if case.atol is not None else atol
    if case.seed is not None:
        d["seed"] = case.seed
    return d


def dumps(cases) -> str:
    lines = [json.dumps(c, separators=(", ", ": "), allow_nan=False) for c in cases]
    return '{"version": 1, "cases": [\n' + ",\n".join(lines) + "\n]}\n"


def generate():
    global SCHEMA_OPS
    spec = load_schema()
    SCHEMA_OPS = {op["name"]: op for op in spec["ops"]}
    CASES.clear()
    for build in (build_cases, build_cases_2, build_cases_3, build_cases_nn, build_cases_optim, build_cases_rnn,
                  build_cases_more, build_cases_int_dtypes):
        build()
    ids = set()
    out = []
    for c in CASES:
        if c.id in ids:
            raise SystemExit(f"make_cases.py: duplicate case id {c.id}")
        ids.add(c.id)
        out.append(to_json_case(c))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--no-heron", action="store_true")
    args = ap.parse_args()
    cases = generate()
    text = dumps(cases)
    if args.check:
        with open(OUT) as f:
            if f.read() != text:
                sys.exit("tests/conformance/cases.json is stale: run tests/conformance/make_cases.py")
        print(f"cases.json is fresh ({len(cases)} cases)")
        return
    if not args.no_heron:
        from runner import run_case, compare_case
        bad = []
        for c in cases:
            try:
                errs = compare_case(c, run_case(c))
            except Exception as e:  # noqa: BLE001
                errs = [f"raised {type(e).__name__}: {e}"]
            if errs:
                bad.append((c["id"], errs))
        if bad:
            for cid, errs in bad:
                print(f"HERON DISAGREES: {cid}: " + "; ".join(errs[:3]), file=sys.stderr)
            sys.exit(f"make_cases.py: heron disagrees with numpy on {len(bad)} of {len(cases)} cases; not written")
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT} ({len(cases)} cases, {len(text)} bytes)")


if __name__ == "__main__":
    main()
