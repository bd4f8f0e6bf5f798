"""Runs every ```python block of the Markdown files under the given folders (docs are tested),
and every ```js block with Node.js (the blocks of one file joined into one script, in order, with
`require('heron')` resolving to javascript/; skipped loudly without node, an error under CI=true).

A block whose first line is `# not-run` (`// not-run` in js) is skipped. Python blocks of one file
share a namespace, in order.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks(path, langs=("python",), skip="# not-run"):
    """The code blocks of `path` fenced with one of `langs`, except those starting with `skip`."""
    out, cur, lang = [], None, None
    with open(path) as f:
        for line in f:
            if line.startswith("```"):
                if cur is None:
                    lang = line[3:].strip()
                    cur = []
                else:
                    if lang in langs and cur and cur[0].strip() != skip:
                        out.append("".join(cur))
                    cur = None
            elif cur is not None:
                cur.append(line)
    return out


def run_scripts(files, label, tool, langs, skip, argv, env):
    """(count, failed): the `langs` blocks of each file joined into one script, run as argv(script)."""
    todo = [(p, blocks(p, langs, skip)) for p in files]
    todo = [(p, b) for p, b in todo if b]
    if not todo:
        return 0, 0
    if not shutil.which(tool):
        if os.environ.get("CI") == "true":
            print(f"FAILED: {tool} is missing; the {label} doc examples cannot run (CI=true)")
            return len(todo), len(todo)
        print(f"!!! {tool} is missing: SKIPPING the {label} doc examples")
        return 0, 0
    failed = 0
    for path, bl in todo:
        r = subprocess.run(argv("\n".join(bl)), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            failed += 1
            print(f"FAILED: {path} ({label} blocks)\n{r.stdout}\n{r.stderr}")
    return len(todo), failed


def run_js(files):
    """JavaScript blocks, with `require('heron')` resolving to javascript/."""
    with tempfile.TemporaryDirectory() as mods:
        os.symlink(os.path.join(ROOT, "javascript"), os.path.join(mods, "heron"))
        return run_scripts(files, "JavaScript", "node", ("js", "javascript"), "// not-run",
                           lambda code: ["node", "-e", code], dict(os.environ, NODE_PATH=mods))


def run_ruby(files):
    """Ruby blocks, with ruby/lib on the load path and this build's libheron."""
    env = dict(os.environ, HERON_LIBRARY=os.path.join(ROOT, "python", "heron", "lib", "libheron.so"))
    return run_scripts(files, "Ruby", "ruby", ("ruby",), "# not-run",
                       lambda code: ["ruby", "-I", os.path.join(ROOT, "ruby", "lib"), "-e", code], env)


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
    jc, jf = run_js(sorted(files))
    rc, rf = run_ruby(sorted(files))
    count += jc + rc
    failed += jf + rf
    print(f"doc examples: {count - failed} passed, {failed} failed ({jc} JavaScript files, {rc} Ruby files)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["docs"]))
