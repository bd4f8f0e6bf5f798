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


def js_blocks(path, langs=("js", "javascript"), skip="// not-run"):
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


def run_js(files):
    """(count, failed) for the js blocks of `files`."""
    todo = [(p, js_blocks(p)) for p in files]
    todo = [(p, b) for p, b in todo if b]
    if not todo:
        return 0, 0
    if not shutil.which("node"):
        if os.environ.get("CI") == "true":
            print("FAILED: node is missing; the JavaScript doc examples cannot run (CI=true)")
            return len(todo), len(todo)
        print("!!! node is missing: SKIPPING the JavaScript doc examples")
        return 0, 0
    failed = 0
    with tempfile.TemporaryDirectory() as mods:
        os.symlink(os.path.join(ROOT, "javascript"), os.path.join(mods, "heron"))
        env = dict(os.environ, NODE_PATH=mods)
        for path, bl in todo:
            script = "\n".join(bl)
            r = subprocess.run(["node", "-e", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                failed += 1
                print(f"FAILED: {path} (js blocks)\n{r.stdout}\n{r.stderr}")
    return len(todo), failed


def run_ruby(files):
    """(count, failed) for the ```ruby blocks of `files` (one script per file, ruby/lib on the path)."""
    todo = [(p, js_blocks(p, ("ruby",), "# not-run")) for p in files]
    todo = [(p, b) for p, b in todo if b]
    if not todo:
        return 0, 0
    if not shutil.which("ruby"):
        if os.environ.get("CI") == "true":
            print("FAILED: ruby is missing; the Ruby doc examples cannot run (CI=true)")
            return len(todo), len(todo)
        print("!!! ruby is missing: SKIPPING the Ruby doc examples")
        return 0, 0
    failed = 0
    env = dict(os.environ, HERON_LIBRARY=os.path.join(ROOT, "python", "heron", "lib", "libheron.so"))
    for path, bl in todo:
        r = subprocess.run(["ruby", "-I", os.path.join(ROOT, "ruby", "lib"), "-e", "\n".join(bl)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            failed += 1
            print(f"FAILED: {path} (ruby blocks)\n{r.stdout}\n{r.stderr}")
    return len(todo), failed


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
    jc, jf = run_js(sorted(files))
    rc, rf = run_ruby(sorted(files))
    count += jc + rc
    failed += jf + rf
    print(f"doc examples: {count - failed} passed, {failed} failed ({jc} JavaScript files, {rc} Ruby files)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["docs"]))
