"""Conformance: every case of tests/conformance/cases.json through the Python frontend's generic op
call, the freshness of cases.json, and its coverage of the schema (every op, every dtype class it
supports, unless excluded with a reason in make_cases.py)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "tests", "conformance")
sys.path.insert(0, CONF)

import make_cases  # noqa: E402
import runner  # noqa: E402

with open(os.path.join(CONF, "cases.json")) as f:
    DOC = json.load(f)
CASES = DOC["cases"]


def test_format_version():
    assert DOC["version"] == 1
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    for c in CASES:
        assert set(c) <= {"id", "op", "inputs", "attrs", "outputs", "grad_outputs", "grads", "rtol", "atol", "seed"}, c["id"]
        assert c["id"].split("/")[0] == c["op"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case):
    errs = runner.compare_case(case, runner.run_case(case))
    assert not errs, "\n".join(errs)


def test_cases_json_is_fresh():
    r = subprocess.run([sys.executable, os.path.join(CONF, "make_cases.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_op_and_dtype_class_has_a_case():
    ops = runner.schema_ops()
    have = {}
    for c in CASES:
        dt = c["id"].split("/")[1]
        have.setdefault(c["op"], set()).add(make_cases.dtype_class(dt))
    missing = []
    for name, op in ops.items():
        if name in make_cases.EXCLUDED:
            continue
        classes = {make_cases.dtype_class(dt) for dt in op["dtype_list"]}
        for cls in sorted(classes):
            if f"{name}/{cls}" in make_cases.EXCLUDED:
                continue
            if cls not in have.get(name, set()):
                missing.append(f"{name}/{cls}")
    assert not missing, f"ops/dtype classes with no conformance case and no exclusion: {missing}"


def test_exclusions_are_real_ops_with_reasons():
    ops = runner.schema_ops()
    for key, reason in make_cases.EXCLUDED.items():
        assert key.split("/")[0] in ops, key
        assert reason.strip(), key
