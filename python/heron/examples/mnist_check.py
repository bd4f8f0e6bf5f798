"""Checks that the deployment runs of `make demo` predict exactly what Python predicted.

    python -m heron.examples.mnist_check OUT_DIR

Reads OUT_DIR/predictions.txt (Python's), OUT_DIR/heron-run/logits.npy (heron-run --dump-outputs)
and OUT_DIR/c_predictions.txt (examples/c/mnist_classify), compares the predictions and prints the
accuracy of each. Exits with 1 when any differs.
"""
import os
import sys

import numpy as np


def read_predictions(path):
    rows = [line.split() for line in open(path) if line.strip() and not line.startswith("images=")]
    return np.array([[int(v) for v in r] for r in rows], dtype=np.int64)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = argv[0]
    py = read_predictions(os.path.join(out, "predictions.txt"))
    ok = True
    print(f"python    : {len(py)} test images, accuracy {np.mean(py[:, 1] == py[:, 2]):.4f}")
    logits = os.path.join(out, "heron-run", "logits.npy")
    if os.path.exists(logits):
        pred = np.load(logits).argmax(axis=1)
        same = pred.shape[0] == len(py) and bool((pred == py[:, 2]).all())
        ok &= same
        print(f"heron-run : accuracy {np.mean(pred == py[:, 1]):.4f}; predictions "
              f"{'equal' if same else 'DIFFER FROM'} Python's")
    cpred = os.path.join(out, "c_predictions.txt")
    if os.path.exists(cpred):
        c = read_predictions(cpred)
        same = c.shape == py.shape and bool((c == py).all())
        ok &= same
        print(f"C program : accuracy {np.mean(c[:, 1] == c[:, 2]):.4f}; predictions "
              f"{'equal' if same else 'DIFFER FROM'} Python's")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
