"""Runs every ```python block of the Markdown files under the given folders (docs are tested).

A block whose first line is `# not-run` is skipped. Blocks of one file share a namespace, in order.
"""
import os
import sys
import traceback


def blocks(path):
    out, cur, lang = [], None, None
    with open(path) as f:
        for line in f:
            if line.startswith("```"):
                if cur is None:
                    lang = line[3:].strip()
                    cur = []
                else:
                    if lang == "python" and cur and cur[0].strip() != "# not-run":
                        out.append("".join(cur))
                    cur = None
            elif cur is not None:
                cur.append(line)
    return out


def main(roots):
    failed = 0
    count = 0
    files = []
    for root in roots:
        if os.path.isfile(root):
            files.append(root)
            continue
        for dp, _, fns in os.walk(root):
            files += [os.path.join(dp, f) for f in fns if f.endswith(".md")]
    for path in sorted(files):
        ns = {"__name__": "__doc_example__"}
        for i, code in enumerate(blocks(path)):
            count += 1
            try:
                exec(compile(code, f"{path}[block {i}]", "exec"), ns)
            except Exception:
                failed += 1
                print(f"FAILED: {path} block {i}\n{code}")
                traceback.print_exc()
    print(f"doc examples: {count - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["docs"]))
