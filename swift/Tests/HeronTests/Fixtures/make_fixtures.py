"""Writes tiny_mlp.heron, the model the Swift session test runs: y = relu(x @ W1^T + b1) @ W2^T + b2
with the fixed weights below (the test checks it against the same closed form computed in Swift),
input "x" (batch, 3) float32 with a symbolic batch, output "y" (batch, 2).

Run from the repository root: /work/main/.venv/bin/python swift/Tests/HeronTests/Fixtures/make_fixtures.py
"""
import os

import numpy as np

import heron

W1 = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, -1.0], [2.0, 0.0, 1.0], [-1.0, 1.0, 1.0]], dtype=np.float32)
B1 = np.array([0.1, -0.2, 0.3, 0.0], dtype=np.float32)
W2 = np.array([[1.0, 0.5, -1.0, 2.0], [-0.5, 1.0, 0.25, 0.0]], dtype=np.float32)
B2 = np.array([0.05, -0.1], dtype=np.float32)


class TinyMLP(heron.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = heron.nn.Linear(3, 4)
        self.fc2 = heron.nn.Linear(4, 2)
        with heron.no_grad():
            self.fc1.weight.copy_(heron.tensor(W1))
            self.fc1.bias.copy_(heron.tensor(B1))
            self.fc2.weight.copy_(heron.tensor(W2))
            self.fc2.bias.copy_(heron.tensor(B2))

    def forward(self, x):
        return self.fc2(heron.relu(self.fc1(x)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    model = TinyMLP()
    x = heron.tensor(np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]], dtype=np.float32))
    traced = heron.jit.trace(model, x, input_names=["x"], output_names=["y"])
    heron.jit.save(traced, os.path.join(here, "tiny_mlp.heron"))
    # The numpy oracle, printed for the record (the Swift test recomputes it).
    h = np.maximum(x.numpy() @ W1.T + B1, 0)
    print("y =", (h @ W2.T + B2).tolist())


if __name__ == "__main__":
    main()
