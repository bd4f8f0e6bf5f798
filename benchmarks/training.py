"""Training benchmarks next to PyTorch in the same process, interleaved, medians over blocks.

    python benchmarks/training.py [--quick] [--only convnet,resnet]

- convnet: one training step of the demo ConvNet (heron.examples.mnist.ConvNet), batch 64:
  forward, cross-entropy, backward, Adam step (zero_grad included).
- resnet: a ResNet basic block (conv3x3-BN-ReLU-conv3x3-BN + identity, ReLU), N=32, C=64, 56x56,
  forward and forward+backward, float32, NCHW.

Both libraries run with the same thread count (heron.get_num_threads()). Set
HERON_BENCH_EXTRA_PATH to a site-packages folder holding torch when torch lives outside this
environment. Without torch the Heron column is printed alone.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

if os.environ.get("HERON_BENCH_EXTRA_PATH"):
    sys.path.append(os.environ["HERON_BENCH_EXTRA_PATH"])

import heron  # noqa: E402
from heron import nn  # noqa: E402
from heron.examples.mnist import ConvNet  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn as tnn  # noqa: E402
except Exception:  # pragma: no cover - optional peer
    torch = None


def block_ms(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1e3 / n


def interleaved(contenders, n, reps):
    """{name: (median ms per call, all block medians)}: contenders alternate block by block."""
    samples = {k: [] for k in contenders}
    for fn in contenders.values():
        fn()  # warm up (allocations, BLAS threads)
        fn()
    for _ in range(reps):
        for k, fn in contenders.items():
            samples[k].append(block_ms(fn, n))
    return {k: statistics.median(v) for k, v in samples.items()}


def copy_weights_to_torch(hmod, tmod):
    sd = {k: torch.from_numpy(np.array(v.detach().numpy())) for k, v in hmod.state_dict().items()}
    tmod.load_state_dict(sd)


# ------------------------------------------------------------------ ConvNet step
def torch_convnet():
    class TConvNet(tnn.Module):
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
    return TConvNet()


def bench_convnet(quick):
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    hx, hy = heron.from_numpy(x), heron.from_numpy(y)
    hm = ConvNet()
    hopt = heron.optim.Adam(hm.parameters(), lr=1e-3)

    def heron_step():
        hopt.zero_grad()
        loss = heron.nn.functional.cross_entropy(hm(hx), hy)
        loss.backward()
        hopt.step()

    contenders = {"heron": heron_step}
    if torch is not None:
        tm = torch_convnet()
        copy_weights_to_torch(hm, tm)
        topt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step():
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tm(tx), ty)
            loss.backward()
            topt.step()
        contenders["torch"] = torch_step
    n, reps = (5, 3) if quick else (20, 9)
    return {"ConvNet train step, batch 64": interleaved(contenders, n, reps)}


# ------------------------------------------------------------------ ResNet basic block
def heron_block(c):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            out = heron.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return heron.relu(out + x)
    return Block()


def torch_block(c):
    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(c)
            self.conv2 = tnn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(c)

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + x)
    return Block()


def bench_resnet(quick):
    n_img, c, hw = (8, 64, 56) if quick else (32, 64, 56)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_img, c, hw, hw), dtype=np.float32)
    hm = heron_block(c)
    hx = heron.from_numpy(x).requires_grad_()

    def h_fwd():
        with heron.no_grad():
            hm(hx)

    def h_fwd_bwd():
        hx.grad = None
        hm(hx).sum().backward()

    fwd = {"heron": h_fwd}
    fb = {"heron": h_fwd_bwd}
    if torch is not None:
        tm = torch_block(c)
        copy_weights_to_torch(hm, tm)
        tx = torch.from_numpy(x).requires_grad_()

        def t_fwd():
            with torch.no_grad():
                tm(tx)

        def t_fwd_bwd():
            tx.grad = None
            tm(tx).sum().backward()
        fwd["torch"] = t_fwd
        fb["torch"] = t_fwd_bwd
    reps = 3 if quick else 7
    shape = f"N={n_img}, C={c}, {hw}x{hw}"
    return {f"ResNet basic block forward ({shape})": interleaved(fwd, 1, reps),
            f"ResNet basic block forward+backward ({shape})": interleaved(fb, 1, reps)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
    ap.add_argument("--only", default="convnet,resnet")
    args = ap.parse_args()
    n = heron.get_num_threads()
    if torch is not None:
        torch.set_num_threads(n)
    print(f"threads: {n}; torch: {torch.__version__ if torch is not None else 'not installed'}")
    rows = {}
    if "convnet" in args.only:
        rows.update(bench_convnet(args.quick))
    if "resnet" in args.only:
        rows.update(bench_resnet(args.quick))
    print(f"{'benchmark':58s} {'heron ms':>10s} {'torch ms':>10s} {'heron/torch':>12s}")
    for name, r in rows.items():
        t = r.get("torch")
        ratio = f"{r['heron'] / t:.2f}x" if t else "-"
        print(f"{name:58s} {r['heron']:10.2f} {t if t else float('nan'):10.2f} {ratio:>12s}")


if __name__ == "__main__":
    main()
