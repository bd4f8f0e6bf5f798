"""The MNIST row-LSTM example (python -m heron.examples.mnist_lstm): arguments and the model's shapes.
(A full training run takes minutes; it is not part of the suite: see docs/guide/rnn.md.)"""
import pytest

import heron
from heron.examples import mnist_lstm


def test_parse_args_defaults_and_errors():
    a = mnist_lstm.parse_args([])
    assert (a.epochs, a.batch_size, a.lr, a.hidden, a.seed, a.out) == (12, 64, 3e-3, 128, 0, None)
    a = mnist_lstm.parse_args(["--epochs", "2", "--batch-size", "32", "--lr", "0.01", "--hidden", "16", "--threads",
                               "1", "--out", "x"])
    assert (a.epochs, a.batch_size, a.lr, a.hidden, a.threads, a.out) == (2, 32, 0.01, 16, 1, "x")
    for bad in (["--epochs", "0"], ["--batch-size", "-1"], ["--lr", "0"], ["--hidden", "0"]):
        with pytest.raises(SystemExit):
            mnist_lstm.parse_args(bad)


def test_row_lstm_shapes_and_parameters():
    model = mnist_lstm.RowLSTM(hidden_size=128)
    n = sum(p.numel() for p in model.parameters())
    assert n == 4 * 128 * (28 + 128) + 2 * 4 * 128 + 128 * 10 + 10
    with heron.no_grad():
        assert model(heron.zeros(3, 1, 28, 28)).shape == (3, 10)
        assert model(heron.zeros(2, 28, 28)).shape == (2, 10)
