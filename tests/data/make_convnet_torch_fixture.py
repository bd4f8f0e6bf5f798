"""Writes tests/data/convnet_torch.safetensors (a ConvNet trained a few steps by PyTorch, saved by
`safetensors.torch.save_file`) and tests/data/convnet_torch_expected.npz (an input batch, PyTorch's
logits, and the gradients and updated weights after one SGD step on it), so the suite checks without
PyTorch that a PyTorch-saved file for the demo's architecture loads and computes unchanged.
Run once with a Python that has torch and safetensors (not test dependencies):
    python tests/data/make_convnet_torch_fixture.py
"""
import pathlib

import numpy as np
import torch
import torch.nn as tnn
from safetensors.torch import save_file

HERE = pathlib.Path(__file__).parent


class ConvNet(tnn.Module):  # the architecture of heron.examples.mnist.ConvNet, PyTorch's names
    def __init__(self):
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(1, 16, 3), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(16, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 32, 3), tnn.ReLU())
        self.flatten = tnn.Flatten()
        self.classifier = tnn.Sequential(tnn.Linear(32 * 3 * 3, 64), tnn.ReLU(), tnn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


if __name__ == "__main__":
    torch.manual_seed(0)
    m = ConvNet()
    rng = np.random.default_rng(0)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(3):  # move the weights away from their initialisation
        x = torch.from_numpy(rng.random((16, 1, 28, 28), dtype=np.float32))
        y = torch.from_numpy(rng.integers(0, 10, 16))
        opt.zero_grad()
        tnn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(HERE / "convnet_torch.safetensors"),
              metadata={"framework": "pytorch", "torch": torch.__version__})
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 8)
    logits = m(torch.from_numpy(x))
    loss = tnn.functional.cross_entropy(logits, torch.from_numpy(y))
    opt.zero_grad()
    loss.backward()
    grads = {f"grad.{k}": p.grad.numpy().copy() for k, p in m.named_parameters()}
    opt.step()
    stepped = {f"step.{k}": p.detach().numpy().copy() for k, p in m.named_parameters()}
    np.savez_compressed(HERE / "convnet_torch_expected.npz", x=x, y=y, logits=logits.detach().numpy(),
                        loss=loss.detach().numpy(), **grads, **stepped)
    print("wrote", HERE / "convnet_torch.safetensors", HERE / "convnet_torch_expected.npz")
