"""Prints the predictions of a .heron MNIST model for the first 20 MNIST-10k test images, as one
line `predictions: d d ...` — the line every language's example prints (make demo compares them).

    python -m heron.examples.mnist_predict out/mnist/mnist.heron
"""
import sys

import numpy as np

from heron.datasets import MNIST
from heron.inference import Session


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit(__doc__)
    session = Session(argv[0])
    test = MNIST(train=False)
    x = np.stack([np.asarray(test[i][0], dtype=np.float32) for i in range(20)]).reshape(20, 1, 28, 28)
    out = session.run({session.input_names[0]: x})[session.output_names[0]]
    print("predictions: " + " ".join(str(int(v)) for v in np.asarray(out).argmax(axis=1)))


if __name__ == "__main__":
    main()
