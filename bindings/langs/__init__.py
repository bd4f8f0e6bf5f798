"""Language emitters. Each module here has `emit(spec, abi) -> {path relative to the repo: text}`
(spec: the loaded op schema, as generate.load_schema() returns it; abi: bindings.abi.parse()).
generate.py writes (or, with --check, compares) everything they return."""
from __future__ import annotations

import importlib
import pkgutil


def all_outputs(spec, abi) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{m.name}")
        for rel, text in mod.emit(spec, abi).items():
            if rel in out:
                raise SystemExit(f"bindings/langs/{m.name}.py: {rel} is emitted twice")
            out[rel] = text
    return out
