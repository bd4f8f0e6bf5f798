"""Classify MNIST-10k digits with an LSTM that reads each image row by row (28 steps of 28 pixels).

    python -m heron.examples.mnist_lstm --epochs 12 --batch-size 64 --lr 0.003 [--hidden 128] [--shift 2]
                                        [--seed 0] [--threads N] [--out out/mnist_lstm]

Model: LSTM(28, hidden, batch_first=True) over the 28 rows, then Linear(hidden, 10) on the last hidden
state. Trained with Adam under a one-cycle learning-rate schedule on the first 8,500 images of the bundled
MNIST-10k (each training image moved by a random shift of up to --shift pixels in each direction: with
8,500 images the LSTM otherwise overfits), evaluated on the last 1,500. With --out, saves the weights
(mnist_lstm.safetensors) and the traced model (mnist_lstm.heron). The last line printed is
`test_accuracy=<fraction>`.
"""
import argparse
import os
import time

import numpy as np

import heron
from heron import nn
from heron.datasets import MNIST
from heron.examples.mnist import ProgressBar
from heron.nn import functional as F
from heron.utils.data import DataLoader

# Pixel statistics of MNIST: rows are fed standardised.
MEAN, STD = 0.1307, 0.3081


class RowLSTM(nn.Module):
    """(B, 1, 28, 28) or (B, 28, 28) images -> (B, 10) logits: an LSTM over the 28 rows, a linear head on
    the last hidden state."""

    def __init__(self, hidden_size=128, num_classes=10):
        super().__init__()
        self.lstm = nn.LSTM(28, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, images):
        x = images.reshape(-1, 28, 28)  # -1: the batch stays symbolic in traced graphs
        x = (x - MEAN) * (1.0 / STD)
        _, (h_n, _) = self.lstm(x)
        return self.fc(h_n[-1])


def random_shift(images, shift, rng):
    """Each (1, 28, 28) image moved by its own random (dy, dx) in [-shift, shift], the background filling in."""
    if shift <= 0:
        return images
    x = images.numpy().reshape(-1, 28, 28)
    n = x.shape[0]
    padded = np.zeros((n, 28 + 2 * shift, 28 + 2 * shift), np.float32)
    padded[:, shift:shift + 28, shift:shift + 28] = x
    dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
    rows = dy[:, None] + np.arange(28)[None, :]                      # (n, 28)
    cols = dx[:, None] + np.arange(28)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return heron.tensor(np.ascontiguousarray(out.reshape(n, 1, 28, 28)))


def evaluate(model, loader):
    """(mean loss, accuracy) of `model` over `loader`."""
    was = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with heron.no_grad():
        for images, labels in loader:
            logits = model(images)
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum").item())
            correct += int(heron.sum(heron.eq(heron.argmax(logits, 1), labels)).item())
            count += labels.shape[0]
    model.train(was)
    return total_loss / max(count, 1), correct / max(count, 1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m heron.examples.mnist_lstm", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=12, help="passes over the 8,500 training images (default 12)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle Adam schedule "
                   "(default 3e-3)")
    p.add_argument("--hidden", type=int, default=128, help="LSTM hidden size (default 128)")
    p.add_argument("--shift", type=int, default=2, help="random shift of the training images, in pixels "
                   "(default 2; 0 turns it off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, shuffling and shifts")
    p.add_argument("--threads", type=int, default=None, help="threads for the ops (default: all cores)")
    p.add_argument("--out", default=None, help="directory for mnist_lstm.safetensors and mnist_lstm.heron "
                   "(default: save nothing)")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.lr > 0:
        p.error(f"--lr must be positive, got {args.lr}")
    if args.hidden < 1:
        p.error(f"--hidden must be at least 1, got {args.hidden}")
    if not 0 <= args.shift <= 8:
        p.error(f"--shift must be in [0, 8], got {args.shift}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        heron.set_num_threads(args.threads)
    heron.manual_seed(args.seed)
    train_set, test_set = MNIST(train=True), MNIST(train=False)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              generator=heron.Generator().manual_seed(args.seed))
    test_loader = DataLoader(test_set, batch_size=500)
    print(f"MNIST-10k: {len(train_set)} training / {len(test_set)} test images, read as 28 rows of 28 pixels; "
          f"{heron.get_num_threads()} threads", flush=True)

    model = RowLSTM(args.hidden)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = heron.optim.Adam(model.parameters(), lr=args.lr)
    steps = len(train_loader)
    scheduler = heron.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps, pct_start=0.25)
    print(f"RowLSTM: {model.lstm} + {model.fc}, {n_params} parameters; Adam, one-cycle lr up to {args.lr}, "
          f"batch {args.batch_size}, {args.epochs} epochs, random shifts of up to {args.shift} px", flush=True)

    rng = np.random.default_rng(args.seed)
    t_start = time.perf_counter()
    test_acc = 0.0
    for epoch in range(1, args.epochs + 1):
        bar = ProgressBar(steps, f"epoch {epoch}/{args.epochs}")
        seen, correct, loss_sum = 0, 0, 0.0
        for i, (images, labels) in enumerate(train_loader, 1):
            logits = model(random_shift(images, args.shift, rng))
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            b = labels.shape[0]
            seen += b
            loss_sum += float(loss.item()) * b
            correct += int(heron.sum(heron.eq(heron.argmax(logits, 1), labels)).item())
            bar.update(i, loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}%")
        bar.close()
        test_loss, test_acc = evaluate(model, test_loader)
        print(f"epoch {epoch}: train loss {loss_sum / seen:.4f} acc {100 * correct / seen:.2f}%  "
              f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}%  ({time.perf_counter() - t_start:.1f}s)",
              flush=True)
    print(f"trained in {time.perf_counter() - t_start:.1f}s")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        weights = os.path.join(args.out, "mnist_lstm.safetensors")
        heron.save(model.state_dict(), weights)
        model.eval()
        traced = heron.jit.trace(model, test_set.data[:8], input_names=["image"], output_names=["logits"])
        heron.jit.save(traced, os.path.join(args.out, "mnist_lstm.heron"))
        print(f"weights: {os.path.abspath(weights)}; traced model: {os.path.abspath(args.out)}/mnist_lstm.heron")
    print(f"test_accuracy={test_acc:.4f}", flush=True)
    return test_acc


if __name__ == "__main__":
    main()
