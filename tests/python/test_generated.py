"""Generated files are fresh, and every language surface exposes exactly the schema's ops."""
import json
import os
import subprocess
import sys

import heron

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_generated_files_are_fresh():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bindings", "generate.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_python_exposes_every_schema_op():
    schema = json.loads(heron._C._schema_json())
    names = [op["name"] for op in schema["ops"]]
    assert names == heron._C._op_names()
    for n in names:
        assert callable(getattr(heron._ops, n)), n
        assert getattr(heron._ops, n).__doc__, n
    for op in schema["ops"]:
        if op["method"]:
            assert hasattr(heron.Tensor, op["name"]), op["name"]


def test_staleness_check_detects_an_edit(tmp_path):
    # The check must fail when a generated file differs: simulate by editing a copy of the tree's file.
    path = os.path.join(ROOT, "docs", "ops.md")
    original = open(path).read()
    try:
        with open(path, "a") as f:
            f.write("\nhand edit\n")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bindings", "generate.py"), "--check"],
                           capture_output=True, text=True)
        assert r.returncode == 1
        assert "docs/ops.md" in r.stderr
    finally:
        with open(path, "w") as f:
            f.write(original)


def test_c_reference_documents_every_abi_function():
    import re
    header = open(os.path.join(ROOT, "c_api", "include", "heron.h")).read()
    functions = set(re.findall(r"HERON_API\s+[^;(]*?\b(heron_\w+)\s*\(", header))
    reference = open(os.path.join(ROOT, "docs", "c_api_reference.md")).read()
    assert len(functions) > 40
    missing = sorted(f for f in functions if f + "(" not in reference)
    assert missing == [], missing
