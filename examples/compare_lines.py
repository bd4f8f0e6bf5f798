"""make demo: checks that every language printed the same `predictions:` line (files given)."""
import os
import sys

lines = {os.path.basename(p)[len("line_"):-len(".txt")]: open(p).read().strip() for p in sys.argv[1:]}
ref = lines.get("python")
bad = {k: v for k, v in lines.items() if v != ref or not v.startswith("predictions:")}
if ref is None or bad:
    sys.exit(f"the languages disagree: {lines}")
print(f"identical predictions in {len(lines)} languages: {', '.join(sorted(lines))}")
