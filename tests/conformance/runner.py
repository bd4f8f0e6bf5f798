"""The Python frontend's conformance runner: runs one case of cases.json through heron's generic op
call (heron._C._calln with the op's attributes in schema order, the path the generated
python/heron/_ops.py functions take) and compares with the README's rule.

Used by tests/python/test_conformance.py and by make_cases.py (which refuses to write a case heron
disagrees with).
"""
from __future__ import annotations

import functools
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

NP_DT = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": np.float32,
         "int8": np.int8, "uint8": np.uint8, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


@functools.lru_cache(maxsize=None)
def schema_ops():
    sys.path.insert(0, os.path.join(ROOT, "bindings"))
    from generate import load_schema
    return {op["name"]: op for op in load_schema()["ops"]}


def to_numpy(t: dict) -> np.ndarray:
    data = [float(x) if isinstance(x, str) else x for x in t["data"]]
    return np.array(data, dtype=NP_DT[t["dtype"]]).reshape(t["shape"])


def to_heron(t: dict, requires_grad=False):
    import heron
    arr = to_numpy(t)
    h = heron.tensor(arr)
    if t["dtype"] == "bfloat16":
        h = h.to(heron.bfloat16)
    if requires_grad:
        h.requires_grad_(True)
    return h


def from_heron(h) -> dict:
    import heron
    dt = str(h.dtype).replace("heron.", "")
    if h.dtype == heron.bfloat16:
        h = h.to(heron.float32)
    arr = np.array(h.detach().numpy(), copy=True)
    return {"dtype": dt, "shape": list(arr.shape), "arr": arr}


def attr_value(atype, v):
    import heron
    if v is None:
        return None
    if atype == "dtype":
        return getattr(heron, v)
    if atype in ("float", "scalar") and isinstance(v, str):
        return float(v)  # "nan", "inf", "-inf"
    return v


def untag(tagged: dict):
    (k, v), = tagged.items()
    return None if k == "none" else v


def run_case(case: dict) -> dict:
    """Runs `case` through heron; returns {"outputs": [...], "grads": [...] | None} as from_heron dicts."""
    import heron
    from heron import _C
    op = schema_ops()[case["op"]]
    want_grads = case.get("grads") is not None
    leaves = []  # (input position, heron tensor) that require grad
    flat = []
    for k, (spec, x) in enumerate(zip(op["inputs"], case["inputs"])):
        if spec["variadic"]:
            rg = want_grads and case["grads"][k] is not None
            hs = [None if e is None else to_heron(e, requires_grad=rg) for e in x]
            if rg:
                leaves.append((k, hs))
            flat.extend(hs)
            continue
        if x is None:
            flat.append(None)
            continue
        rg = want_grads and case["grads"][k] is not None
        h = to_heron(x, requires_grad=rg)
        if rg:
            leaves.append((k, h))
        flat.append(h)
    attrs = []
    for a in op["attrs"]:
        if a["name"] in case["attrs"]:
            v = untag(case["attrs"][a["name"]])
        elif a["has_default"]:
            v = a["default"]
        else:
            raise ValueError(f"{case['id']}: required attribute {a['name']} missing")
        attrs.append(attr_value(a["type"], v))
    if "seed" in case:
        heron.manual_seed(case["seed"])
    outs = _C._calln(_C._op(case["op"]), tuple(flat), tuple(attrs))
    if op["outputs"][0]["variadic"]:
        got_outs = [[from_heron(o) for o in outs]]
    else:
        got_outs = [from_heron(o) for o in outs]
    got_grads = None
    if want_grads:
        ts, gs = [], []
        grouped = [list(outs)] if op["outputs"][0]["variadic"] else list(outs)
        for o, g in zip(grouped, case["grad_outputs"]):
            if g is None:
                continue
            for oo, gg in (zip(o, g) if isinstance(g, list) else [(o, g)]):
                ts.append(oo)
                gs.append(to_heron(gg))
        wrt = [h for _, hs in leaves for h in (hs if isinstance(hs, list) else [hs])]
        res = list(heron.autograd.grad(ts, wrt, gs, allow_unused=True))
        got_grads = [None] * len(case["inputs"])
        for k, hs in leaves:
            if isinstance(hs, list):
                got_grads[k] = [None if r is None else from_heron(r) for r in res[:len(hs)]]
                res = res[len(hs):]
            else:
                r = res.pop(0)
                got_grads[k] = None if r is None else from_heron(r)
    return {"outputs": got_outs, "grads": got_grads}


def compare_tensor(want: dict, got: dict, rtol, atol, what) -> list:
    if got is None:
        return [f"{what}: got none, want a {want['dtype']} tensor"]
    errs = []
    if got["dtype"] != want["dtype"]:
        errs.append(f"{what}: dtype {got['dtype']} != {want['dtype']}")
    if list(got["shape"]) != list(want["shape"]):
        return errs + [f"{what}: shape {got['shape']} != {want['shape']}"]
    w = to_numpy(want)
    g = got["arr"]
    if want["dtype"] in ("bool",) or np.dtype(NP_DT[want["dtype"]]).kind in "iu":
        if not np.array_equal(g.astype(np.int64), w.astype(np.int64)):
            errs.append(f"{what}: got {g.reshape(-1).tolist()} want {w.reshape(-1).tolist()}")
        return errs
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    both_nan = np.isnan(g64) & np.isnan(w64)
    with np.errstate(invalid="ignore"):
        ok = both_nan | (g64 == w64) | (np.abs(g64 - w64) <= atol + rtol * np.abs(w64))
    if not ok.all():
        errs.append(f"{what}: got {g64.reshape(-1).tolist()} want {w64.reshape(-1).tolist()} (rtol {rtol} atol {atol})")
    return errs


def compare_case(case: dict, got: dict) -> list:
    """The list of disagreements (empty when heron matches the case)."""
    rtol, atol = case["rtol"], case["atol"]
    errs = []
    if len(got["outputs"]) != len(case["outputs"]):
        return [f"{len(got['outputs'])} outputs, want {len(case['outputs'])}"]
    for i, (w, g) in enumerate(zip(case["outputs"], got["outputs"])):
        if isinstance(w, list):
            if len(w) != len(g):
                errs.append(f"output {i}: {len(g)} tensors, want {len(w)}")
                continue
            for j, (ww, gg) in enumerate(zip(w, g)):
                errs += compare_tensor(ww, gg, rtol, atol, f"output {i}[{j}]")
        else:
            errs += compare_tensor(w, g, rtol, atol, f"output {i}")
    if case.get("grads") is not None:
        for k, w in enumerate(case["grads"]):
            g = got["grads"][k]
            if w is None:
                continue
            if isinstance(w, list):
                if g is None or len(g) != len(w):
                    errs.append(f"grad of input {k}: want {len(w)} tensors")
                    continue
                for j, (ww, gg) in enumerate(zip(w, g)):
                    errs += compare_tensor(ww, gg, rtol, atol, f"grad of input {k}[{j}]")
                continue
            errs += compare_tensor(w, g, rtol, atol, f"grad of input {k}")
    return errs
