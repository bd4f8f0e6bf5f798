"""Reads c_api/include/heron.h into a description every language emitter shares.

`parse()` returns an `Abi` with
  functions: [Function(name, ret, params=[Param(type, name)], doc)] in header order,
  constants: {name: int} for every `#define HERON_<NAME> <integer>` (status codes, dtypes,
             attribute kinds, reduce ops, flags, versions),
  handles:   names of the opaque handle types (`typedef struct heron_x heron_x;`).

The parser knows only the subset of C the header uses (one declaration per `HERON_API` statement,
no macros in signatures, function pointers only as `void (*name)(...)` parameters); anything else
is an error naming the line, so a header change that an emitter cannot follow fails `make generate`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(ROOT, "c_api/include/heron.h")


@dataclass
class Param:
    type: str  # normalised C type, e.g. "const heron_tensor*", "int64_t", "const char* const*"
    name: str

    @property
    def is_pointer(self) -> bool:
        return self.type.endswith("*")


@dataclass
class Function:
    name: str
    ret: str
    params: list[Param]
    doc: str = ""

    @property
    def returns_status(self) -> bool:
        return self.ret == "heron_status"


@dataclass
class Abi:
    functions: list[Function] = field(default_factory=list)
    constants: dict[str, int] = field(default_factory=dict)
    handles: list[str] = field(default_factory=list)

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)


def _norm_type(t: str) -> str:
    t = re.sub(r"\s+", " ", t.strip())
    t = re.sub(r"\s*\*\s*", "*", t)      # "char * *" -> "char**"
    t = re.sub(r"\*(?=[A-Za-z])", "* ", t)  # "char*const" -> "char* const"
    return t


def _split_params(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def _param(text: str, where: str) -> Param:
    text = text.strip()
    m = re.match(r"^(.*)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)$", text)
    if m:  # a function pointer parameter
        return Param(_norm_type(m.group(1)) + "(*)(" + _norm_type(m.group(3)) + ")", m.group(2))
    m = re.match(r"^(.*?)(\w+)$", text)
    if not m or not m.group(1).strip():
        raise SystemExit(f"heron.h: cannot read parameter '{text}' of {where}")
    return Param(_norm_type(m.group(1)), m.group(2))


def _doc_before(src: str, pos: int) -> str:
    """The /** ... */ comment that ends right before `pos` (blank lines allowed), cleaned."""
    head = src[:pos].rstrip()
    if not head.endswith("*/"):
        return ""
    start = head.rfind("/**")
    if start < 0 or "*/" in head[start:-2]:
        return ""
    body = head[start + 3:-2]
    lines = [re.sub(r"^\s*\*\s?", "", ln).rstrip() for ln in body.splitlines()]
    return "\n".join(ln for ln in lines).strip()


def parse(path: str = HEADER) -> Abi:
    with open(path) as f:
        src = f.read()
    abi = Abi()
    for m in re.finditer(r"^#define\s+(HERON_[A-Z0-9_]+)\s+(-?\d+)\b", src, re.M):
        abi.constants[m.group(1)] = int(m.group(2))
    for m in re.finditer(r"^typedef struct (heron_\w+) (heron_\w+);", src, re.M):
        if m.group(1) == m.group(2):
            abi.handles.append(m.group(1))
    for m in re.finditer(r"^HERON_API\s+([^;]*?)\(([^;]*)\)\s*;", src, re.M | re.S):
        decl, params = m.group(1).strip(), m.group(2).strip()
        dm = re.match(r"^(.*?)(\w+)$", decl)
        if not dm:
            raise SystemExit(f"heron.h: cannot read declaration '{decl}'")
        name, ret = dm.group(2), _norm_type(dm.group(1))
        ps = [] if params in ("void", "") else [_param(p, name) for p in _split_params(params)]
        abi.functions.append(Function(name, ret, ps, _doc_before(src, m.start())))
    # every HERON_API statement must have been read
    n_api = len(re.findall(r"^HERON_API\b", src, re.M))
    if n_api != len(abi.functions):
        raise SystemExit(f"heron.h: read {len(abi.functions)} of {n_api} HERON_API declarations")
    return abi


if __name__ == "__main__":  # a quick listing
    a = parse()
    for fn in a.functions:
        print(f"{fn.ret} {fn.name}(" + ", ".join(f"{p.type} {p.name}" for p in fn.params) + ")")
    print(len(a.functions), "functions,", len(a.constants), "constants,", len(a.handles), "handles")
