"""The suite drives every entry point of heron.h: each declared function is called by name from
at least one test file (helpers in conftest.py do not count)."""
import pathlib
import re


def test_every_entry_point_is_called_by_a_test(capi):
    here = pathlib.Path(__file__).parent
    text = "\n".join(p.read_text() for p in sorted(here.glob("test_*.py")) if p.name != "test_capi_coverage.py")
    missing = [fn for fn in capi.functions if not re.search(r"\b%s\(" % re.escape(fn), text)]
    assert not missing, f"heron.h entry points no test calls: {missing}"
