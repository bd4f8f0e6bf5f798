"""Recurrent layers in traced graphs: heron.jit.trace of LSTM / GRU / RNN models gives eager's outputs,
with a symbolic batch; the .heron file round-trips and runs in heron.inference.Session."""
import numpy as np
import pytest

import heron
from heron import nn


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


class RowClassifier(nn.Module):
    """LSTM over the rows (batch_first: the batch is the first, symbolic dim) + a linear head on h_n."""

    def __init__(self, rnn, hidden, classes=4):
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        out, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state
        return self.head(h_n[-1]), out


MODELS = {
    "lstm": lambda: RowClassifier(nn.LSTM(6, 8, batch_first=True), 8),
    "lstm_2layer_bidir_proj": lambda: RowClassifier(
        nn.LSTM(6, 8, num_layers=2, bidirectional=True, proj_size=5, batch_first=True, dropout=0.3), 5),
    "gru_2layer_bidir": lambda: RowClassifier(nn.GRU(6, 8, num_layers=2, bidirectional=True, batch_first=True), 8),
    "rnn_relu": lambda: RowClassifier(nn.RNN(6, 8, nonlinearity="relu", batch_first=True), 8),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_traced_rnn_equals_eager_and_runs_in_a_session(name, tmp_path):
    heron.manual_seed(0)
    model = MODELS[name]()
    model.train()  # trace puts it in eval mode (no dropout) and restores training afterwards
    x = heron.randn(2, 7, 6)
    traced = heron.jit.trace(model, x, output_names=["logits", "sequence"])
    assert model.training
    model.eval()
    with heron.no_grad():
        want = model(x)
        got = traced(x)
        for g, w in zip(got, want):
            close(g.numpy(), w.numpy())
        x3 = heron.randn(3, 7, 6)  # the batch dim is symbolic
        want3 = model(x3)
        for g, w in zip(traced(x3), want3):
            close(g.numpy(), w.numpy())
    assert traced.inputs[0][2][0] == -1
    path = tmp_path / f"{name}.heron"
    heron.jit.save(traced, path)
    loaded = heron.jit.load(path)
    with heron.no_grad():
        for g, w in zip(loaded(x3), want3):
            close(g.numpy(), w.numpy())
    sess = heron.inference.Session(path)
    out = sess.run({"input": x3.numpy()})
    close(out["logits"], want3[0].numpy())
    close(out["sequence"], want3[1].numpy())


def test_traced_cells_unrolled(tmp_path):
    """A hand-unrolled LSTMCell + GRUCell loop traces into a graph of cell ops."""
    heron.manual_seed(1)

    class Unrolled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTMCell(3, 5)
            self.gru = nn.GRUCell(5, 4)

        def forward(self, x):
            h = c = g = None
            for t in range(x.shape[1]):
                h, c = self.lstm(x[:, t], None if h is None else (h, c))
                g = self.gru(h, g)
            return g

    model = Unrolled().eval()
    x = heron.randn(2, 4, 3)
    traced = heron.jit.trace(model, x)
    assert "lstm_cell(" in traced.graph and "gru_cell(" in traced.graph
    path = tmp_path / "cells.heron"
    heron.jit.save(traced, path)
    sess = heron.inference.Session(path)
    x5 = heron.randn(5, 4, 3)
    with heron.no_grad():
        want = model(x5).numpy()
    close(sess.run({"input": x5.numpy()})["output"], want)


def test_time_major_trace_takes_any_sequence_length(tmp_path):
    """With (T, B, I) input the symbolic first dim is the sequence length."""
    heron.manual_seed(2)
    m = nn.GRU(4, 5, num_layers=2, bidirectional=True).eval()
    traced = heron.jit.trace(lambda x: m(x)[0], heron.randn(6, 2, 4))
    assert traced.inputs[0][2] == (-1, 2, 4)
    with heron.no_grad():
        for steps in (6, 9, 1):
            x = heron.randn(steps, 2, 4)
            close(traced(x).numpy(), m(x)[0].numpy())


def test_initial_states_as_graph_inputs(tmp_path):
    heron.manual_seed(3)

    class WithStates(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 5, num_layers=2, batch_first=True, proj_size=3)

        def forward(self, x, h, c):
            out, (h_n, c_n) = self.lstm(x, (h, c))
            return out, h_n, c_n

    model = WithStates().eval()
    x, h, c = heron.randn(2, 6, 4), heron.randn(2, 2, 3), heron.randn(2, 2, 5)
    traced = heron.jit.trace(model, (x, h, c), input_names=["x", "h0", "c0"], dynamic_batch=False)
    path = tmp_path / "states.heron"
    heron.jit.save(traced, path)
    sess = heron.inference.Session(path)
    got = sess.run({"x": x.numpy(), "h0": h.numpy(), "c0": c.numpy()})
    with heron.no_grad():
        want = model(x, h, c)
    for name, w in zip(traced.output_names, want):
        close(got[name], w.numpy())
