"""The MNIST row-LSTM example (python -m heron.examples.mnist_lstm): arguments and the model's shapes.
(A full training run takes minutes; it is not part of the suite: see docs/guide/rnn.md.)"""
import numpy as np
import pytest

import heron
from heron.examples import mnist_lstm


def test_parse_args_defaults_and_errors():
    a = mnist_lstm.parse_args([])
    assert (a.epochs, a.batch_size, a.lr, a.hidden, a.shift, a.seed, a.out) == (12, 64, 3e-3, 128, 2, 0, None)
    a = mnist_lstm.parse_args(["--epochs", "2", "--batch-size", "32", "--lr", "0.01", "--hidden", "16", "--threads",
                               "1", "--out", "x"])
    assert (a.epochs, a.batch_size, a.lr, a.hidden, a.threads, a.out) == (2, 32, 0.01, 16, 1, "x")
    for bad in (["--epochs", "0"], ["--batch-size", "-1"], ["--lr", "0"], ["--hidden", "0"], ["--shift", "-1"]):
        with pytest.raises(SystemExit):
            mnist_lstm.parse_args(bad)


def test_random_shift_moves_each_image_within_bounds():
    rng = np.random.default_rng(0)
    img = np.zeros((5, 1, 28, 28), np.float32)
    img[:, 0, 10:14, 12:16] = 1.0  # a 4x4 square
    out = mnist_lstm.random_shift(heron.tensor(img), 2, rng).numpy()
    assert out.shape == img.shape and out.dtype == np.float32
    for k in range(5):
        ys, xs = np.nonzero(out[k, 0])
        assert out[k].sum() == 16 and ys.max() - ys.min() == 3 and xs.max() - xs.min() == 3
        assert 8 <= ys.min() <= 12 and 10 <= xs.min() <= 14
    assert len({tuple(np.argwhere(o[0])[0]) for o in out}) > 1  # not all moved alike
    assert mnist_lstm.random_shift(heron.tensor(img), 0, rng) is not None


def test_row_lstm_shapes_and_parameters():
    model = mnist_lstm.RowLSTM(hidden_size=128)
    n = sum(p.numel() for p in model.parameters())
    assert n == 4 * 128 * (28 + 128) + 2 * 4 * 128 + 128 * 10 + 10
    with heron.no_grad():
        assert model(heron.zeros(3, 1, 28, 28)).shape == (3, 10)
        assert model(heron.zeros(2, 28, 28)).shape == (2, 10)
