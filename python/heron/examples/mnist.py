"""Train a small ConvNet on MNIST-10k (bundled with Heron) and save its weights and learning curves.

    python -m heron.examples.mnist --epochs 10 --batch-size 64 --lr 0.003 --out out/mnist [--seed 0] [--threads N]

ConvNet: conv 3x3x16 relu, maxpool 2, conv 3x3x32 relu, maxpool 2, conv 3x3x32 relu, flatten,
dense 64 relu, dense 10. Trained with Adam under a one-cycle learning-rate schedule on the first
8,500 images (or the first --train-size of them), evaluated on the last 1,500. Writes
mnist.safetensors and curves.png into --out; the last line printed is `test_accuracy=<fraction>`.

Data-parallel on N processes (DistributedDataParallel + DistributedSampler):

    python -m heron.distributed.run --nproc-per-node 2 -m heron.examples.mnist --batch-size 64 ...

--batch-size is the global batch: each of the N ranks takes batch-size / N images per step. The
shuffling is the same as one process's (DistributedSampler with the seed: rank r takes every N-th
index of the epoch's permutation, so each step's global batch is the same set of images), the ranks
start from rank 0's weights and average their gradients, so the N-process run follows the
1-process run to rounding (the model has no batch norm or dropout, whose statistics would be per
rank). This holds when the training-set size is a multiple of N (otherwise the sampler pads the
ranks with repeated images, as PyTorch's does). Rank 0 prints, evaluates and writes the outputs.
"""
import argparse
import os
import sys
import time

import heron

try:
    from heron import nn
    from heron.nn import functional as F
    nn.Module, F.cross_entropy  # noqa: B018 - fail here, clearly, when heron.nn is incomplete
except (ImportError, AttributeError) as e:  # pragma: no cover - only in builds without heron.nn
    raise ImportError(f"heron.examples.mnist needs heron.nn ({e})") from None
from heron.datasets import MNIST
from heron.utils.data import DataLoader


class ConvNet(nn.Module):
    """conv 3x3x16 relu, maxpool 2, conv 3x3x32 relu, maxpool 2, conv 3x3x32 relu, flatten, dense 64 relu,
    dense 10: 28x28 -> 26 -> 13 -> 11 -> 5 -> 3, so the flattened features are 32 * 3 * 3 = 288."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, kernel_size=3), nn.ReLU(),
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(32 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


class ProgressBar:
    """A one-line progress bar (no dependencies): redrawn in place on a terminal, one line per epoch
    otherwise (logs, pipes)."""

    def __init__(self, total, prefix, stream=None, width=24, min_interval=0.1):
        self.total = total
        self.prefix = prefix
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval = min_interval
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self.n = 0
        self.fields = ""

    def update(self, n, **fields):
        self.n = n
        self.fields = "  ".join(f"{k} {v}" for k, v in fields.items())
        now = time.perf_counter()
        if self.tty and (now - self._last_draw >= self.min_interval or n == self.total):
            self._last_draw = now
            self.stream.write("\r" + self._line() + "\033[K")
            self.stream.flush()

    def _line(self):
        frac = self.n / self.total if self.total else 1.0
        filled = int(round(self.width * frac))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        return f"{self.prefix} [{bar}] {self.n}/{self.total}  {self.fields}  {elapsed:.1f}s"

    def close(self):
        if self.tty:
            self.stream.write("\r" + self._line() + "\033[K\n")
        else:
            self.stream.write(self._line() + "\n")
        self.stream.flush()


def evaluate(model, loader, dtype=None):
    """(mean loss, accuracy) of `model` over `loader` (images cast to `dtype` when given)."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with heron.no_grad():
        for images, labels in loader:
            logits = model(images if dtype is None else images.to(dtype))
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum").item())
            correct += int(heron.sum(heron.eq(heron.argmax(logits, 1), labels)).item())
            count += labels.shape[0]
    model.train()
    return total_loss / max(count, 1), correct / max(count, 1)


def save_curves(path, history):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    it = history["iter"]
    ax_loss.plot(it, history["iter_loss"], lw=0.6, alpha=0.35, color="C0", label="train (batch)")
    ax_loss.plot(it, _smooth(history["iter_loss"], 25), lw=1.4, color="C0", label="train (smoothed)")
    ep_iters = history["epoch_iter"]
    ax_loss.plot(ep_iters, history["test_loss"], "o-", color="C1", label="test (per epoch)")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    epochs = list(range(1, len(history["train_acc"]) + 1))
    ax_acc.plot(epochs, [100 * a for a in history["train_acc"]], "o-", color="C0", label="train")
    ax_acc.plot(epochs, [100 * a for a in history["test_acc"]], "o-", color="C1", label="test")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_xticks(epochs)
    ax_acc.legend()
    ax_acc.grid(alpha=0.3)
    fig.suptitle("Heron ConvNet on MNIST-10k")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _smooth(values, k):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= k:
            acc -= values[i - k]
        out.append(acc / min(i + 1, k))
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m heron.examples.mnist", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10, help="passes over the 8,500 training images (default 10)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle Adam schedule "
                   "(default 3e-3)")
    p.add_argument("--out", default="out/mnist", help="directory for mnist.safetensors and curves.png")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and of the shuffling")
    p.add_argument("--threads", type=int, default=None, help="threads for the ops (default: all cores)")
    p.add_argument("--train-size", type=int, default=None,
                   help="train on the first N of the 8,500 training images (default: all)")
    p.add_argument("--no-export", action="store_true",
                   help="skip the deployment export (mnist.heron, predictions) and curves.png")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="dtype of the weights and the computation (default float32; float64, e.g. to compare "
                        "runs without float32 rounding, skips the deployment export)")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.lr > 0:
        p.error(f"--lr must be positive, got {args.lr}")
    if args.train_size is not None and args.train_size < 1:
        p.error(f"--train-size must be at least 1, got {args.train_size}")
    return args


def _world_from_env():
    """(rank, world size) from the launcher's environment (heron.distributed.run, torchrun-style
    RANK / WORLD_SIZE); (0, 1) for a plain run."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError as e:
        raise SystemExit(f"heron.examples.mnist: bad RANK/WORLD_SIZE in the environment ({e})") from None
    if world < 1 or not 0 <= rank < world:
        raise SystemExit(f"heron.examples.mnist: rank {rank} is out of range for world size {world}")
    return rank, world


def export_for_deployment(model, test_set, out):
    """Traces the trained model to mnist.heron (run without Python by heron-run and
    examples/c/mnist_classify.c), and writes Python's own predictions on the test split
    (predictions.txt: "index label prediction" per line, indices into MNIST-10k) and the test
    images as test_images.npy, so the deployment runs can be compared with Python's."""
    import numpy as np
    model.eval()
    images, labels = test_set.data, test_set.targets
    traced = heron.jit.trace(model, images[:8], input_names=["image"], output_names=["logits"])
    path = os.path.join(out, "mnist.heron")
    heron.jit.save(traced, path)
    with heron.no_grad():
        pred = heron.argmax(model(images), 1).numpy()
    first = test_set.split
    with open(os.path.join(out, "predictions.txt"), "w") as f:
        for i, (lab, p) in enumerate(zip(labels.numpy().tolist(), pred.tolist())):
            f.write(f"{first + i} {lab} {p}\n")
    np.save(os.path.join(out, "test_images.npy"), images.numpy())
    print(f"model: {os.path.abspath(path)} (traced graph, {len(traced.graph.splitlines())} lines of text form)")


def main(argv=None):
    args = parse_args(argv)
    rank, world = _world_from_env()
    if args.batch_size % world:
        raise SystemExit(f"heron.examples.mnist: --batch-size {args.batch_size} (the global batch) must be a "
                         f"multiple of the number of processes ({world})")
    if world > 1:
        import heron.distributed as dist
        dist.init_process_group()
    try:
        return _train(args, rank, world)
    finally:
        if world > 1:
            dist.destroy_process_group()


def _train(args, rank, world):
    from heron.utils.data import DistributedSampler, Subset
    if world > 1:
        import heron.distributed as dist

    lead = rank == 0
    say = print if lead else (lambda *a, **k: None)
    if args.threads is not None:
        heron.set_num_threads(args.threads)
    heron.manual_seed(args.seed)
    if lead:
        os.makedirs(args.out, exist_ok=True)

    train_set = MNIST(train=True)
    if args.train_size is not None and args.train_size < len(train_set):
        train_set = Subset(train_set, range(args.train_size))
    test_set = MNIST(train=False)
    # The same permutation for every world size (seed + epoch); rank r takes every world-th index.
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size // world, sampler=sampler)
    test_loader = DataLoader(test_set, batch_size=500)
    ranks = f"; {world} processes, {args.batch_size // world} images per process per step" if world > 1 else ""
    say(f"MNIST-10k: {len(train_set)} training / {len(test_set)} test images; "
        f"{heron.get_num_threads()} threads{ranks}", flush=True)

    dtype = getattr(heron, args.dtype)
    net = ConvNet().to(dtype)
    n_params = sum(p.numel() for p in net.parameters())
    model = net
    if world > 1:
        from heron.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(net)
    optimizer = heron.optim.Adam(net.parameters(), lr=args.lr)
    steps = len(train_loader)
    scheduler = heron.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps, pct_start=0.25)
    say(f"ConvNet: {n_params} parameters; Adam, one-cycle lr up to {args.lr}, batch {args.batch_size}, "
        f"{args.epochs} epochs", flush=True)

    history = {"iter": [], "iter_loss": [], "epoch_iter": [], "train_acc": [], "test_loss": [], "test_acc": []}
    t_start = time.perf_counter()
    it = 0
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch - 1)
        bar = ProgressBar(steps, f"epoch {epoch}/{args.epochs}") if lead else None
        seen, correct, loss_sum = 0, 0, 0.0
        t_epoch = time.perf_counter()
        for i, (images, labels) in enumerate(train_loader, 1):
            logits = model(images.to(dtype))
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            it += 1
            b = labels.shape[0]
            lv = float(loss.item())  # this rank's share of the global batch
            seen += b
            loss_sum += lv * b
            correct += int(heron.sum(heron.eq(heron.argmax(logits, 1), labels)).item())
            history["iter"].append(it)
            history["iter_loss"].append(lv)
            if bar is not None:
                ips = seen * world / max(time.perf_counter() - t_epoch, 1e-9)
                bar.update(i, loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}%",
                           speed=f"{ips:,.0f} img/s")
        if world > 1:  # the epoch's totals over every rank
            totals = heron.tensor([loss_sum, float(correct), float(seen)], dtype=heron.float64)
            dist.all_reduce(totals)
            loss_sum, correct, seen = totals[0].item(), int(totals[1].item()), int(totals[2].item())
        if bar is not None:
            bar.close()
        history["epoch_iter"].append(it)
        history["train_acc"].append(correct / seen)
        if lead:
            test_loss, test_acc = evaluate(net, test_loader, dtype)
            history["test_loss"].append(test_loss)
            history["test_acc"].append(test_acc)
            say(f"epoch {epoch}: train loss {loss_sum / seen:.4f} acc {100 * correct / seen:.2f}%  "
                f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}%  ({time.perf_counter() - t_start:.1f}s)",
                flush=True)

    if not lead:
        return None
    train_time = time.perf_counter() - t_start
    weights = os.path.join(args.out, "mnist.safetensors")
    heron.save(net.state_dict(), weights)
    say(f"trained in {train_time:.1f}s; weights: {os.path.abspath(weights)}")
    if not args.no_export:
        if dtype == heron.float32:  # the deployment runs take float32 images
            export_for_deployment(net, test_set, args.out)
        curves = os.path.join(args.out, "curves.png")
        try:
            save_curves(curves, history)
            say(f"curves: {os.path.abspath(curves)}")
        except ImportError:
            say("curves: not drawn (matplotlib is not installed)")
    say(f"test_loss={history['test_loss'][-1]:.8f}")
    test_acc = history["test_acc"][-1]
    say(f"test_accuracy={test_acc:.4f}", flush=True)
    return test_acc

if __name__ == "__main__":
    main()
