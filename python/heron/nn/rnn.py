"""Recurrent layers with PyTorch's constructor arguments, parameter names, shapes, initialisation and
call conventions: RNN, LSTM, GRU (whole sequences over the core's rnn / lstm / gru ops) and RNNCell,
LSTMCell, GRUCell (one step over rnn_cell / lstm_cell / gru_cell).

Parameters are registered in PyTorch's order (per layer, per direction: weight_ih_l{k}, weight_hh_l{k},
bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k}; the reverse direction with the suffix _reverse), so a
PyTorch state_dict loads unchanged. A PackedSequence input is run as padded data (sorted order) plus a
length per batch item, and comes back packed.
"""
import math
import numbers
import warnings

from .. import _C, _ops
from .. import _dtypes as _dt
from . import init
from .module import Module
from .parameter import Parameter
from ._utils import shape_str
from .utils.rnn import PackedSequence, _fresh, _i64, _pack_time_major, _unpack_time_major

Tensor = _C.Tensor
_ArgError = _C.InvalidArgumentError  # a ValueError and a RuntimeError, like PyTorch's RuntimeErrors here

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _empty(shape, dtype, device):
    return _ops.empty(tuple(shape), dtype or _dt.float32, device)


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than zero")
    return int(value)


def _dtype_name(dt):
    return str(dt).replace("heron.", "")


# ------------------------------------------------------------------ whole sequences
class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU (mode 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU')."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        hidden_size = _check_positive_int(hidden_size, "hidden_size")
        num_layers = _check_positive_int(num_layers, "num_layers")
        if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral) or input_size < 0:
            raise TypeError(f"input_size should be a non-negative int, got: {input_size!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral):
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode = mode
        self.input_size = int(input_size)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = int(proj_size)
        num_directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = self.input_size if layer == 0 else real_hidden * num_directions
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                names = []
                for base, shape in shapes:
                    name = base + sfx
                    setattr(self, name, Parameter(_empty(shape, dtype, device)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    # -- parameters
    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self):
        """A no-op (PyTorch uses it to compact cuDNN weights); the core packs weights itself."""

    def reset_parameters(self):
        """Every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in PyTorch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self._flat_weights:
            init.uniform_(w, -stdv, stdv)

    # -- checks (PyTorch's messages, with the expected shape named)
    def _name(self):
        return type(self).__name__

    def _expected_hidden(self, batch, is_batched, cell=False):
        size = self.hidden_size if (cell or self.proj_size == 0) else self.proj_size
        first = self.num_layers * (2 if self.bidirectional else 1)
        return (first, batch, size) if is_batched else (first, size)

    def _check_input(self, input, is_packed):
        name = self._name()
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a heron.Tensor or a PackedSequence, got {type(input).__name__}")
        w = self.weight_ih_l0
        if input.dtype != w.dtype:
            raise TypeError(f"{name}: expected input of dtype {_dtype_name(w.dtype)} (the dtype of its parameters), "
                            f"got {_dtype_name(input.dtype)}")
        want = 2 if is_packed else None
        if want is not None and input.ndim != want:
            raise ValueError(f"{name}: expected the packed data to be 2D (sum of lengths, {self.input_size}), "
                             f"got {shape_str(input.shape)}")
        if not is_packed and input.ndim not in (2, 3):
            layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D instead: input must be "
                             f"{layout} or unbatched (T, input_size) = (T, {self.input_size}); got shape "
                             f"{shape_str(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise _ArgError(f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                            f"{input.shape[-1]} (input shape {shape_str(input.shape)})")

    def _check_hidden(self, h, expected, what):
        name = self._name()
        if not isinstance(h, Tensor):
            raise TypeError(f"{name}: {what} must be a heron.Tensor, got {type(h).__name__}")
        if h.dtype != self.weight_ih_l0.dtype:
            raise TypeError(f"{name}: expected {what} of dtype {_dtype_name(self.weight_ih_l0.dtype)}, got "
                            f"{_dtype_name(h.dtype)}")
        if tuple(h.shape) != tuple(expected):
            raise _ArgError(f"{name}: Expected {what} size {shape_str(expected)}, got {shape_str(h.shape)}")

    def _run(self, input, hx, cx, lengths, batch_first):
        p = self._flat_weights
        common = dict(hidden_size=self.hidden_size, num_layers=self.num_layers, bias=self.bias,
                      batch_first=batch_first, dropout=self.dropout, training=self.training,
                      bidirectional=self.bidirectional)
        if self.mode == "LSTM":
            r = _ops.lstm(input, hx, cx, lengths, p, proj_size=self.proj_size, **common)
            return r[0], r[1], r[2]
        if self.mode == "GRU":
            r = _ops.gru(input, hx, lengths, p, **common)
        else:
            nl = "tanh" if self.mode == "RNN_TANH" else "relu"
            r = _ops.rnn(input, hx, lengths, p, nonlinearity=nl, **common)
        return r[0], r[1], None

    def forward(self, input, hx=None):
        name = self._name()
        is_lstm = self.mode == "LSTM"
        packed = isinstance(input, PackedSequence)
        sorted_indices = unsorted_indices = None
        lengths = None
        if packed:
            self._check_input(input.data, True)
            bs = [int(v) for v in input.batch_sizes.tolist()]
            data, lens = _unpack_time_major(input.data, bs, 0.0)
            batch = bs[0]
            lengths = _i64(lens)
            sorted_indices, unsorted_indices = input.sorted_indices, input.unsorted_indices
            x, batch_first, is_batched = data, False, True
        else:
            self._check_input(input, False)
            is_batched = input.ndim == 3
            batch = (input.shape[0] if self.batch_first else input.shape[1]) if is_batched else None
            x, batch_first = input, self.batch_first
        h0 = c0 = None
        if hx is not None:
            if is_lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{name}: hx must be a tuple (h_0, c_0) of two tensors, got "
                                    f"{type(hx).__name__}" + (f" of length {len(hx)}" if isinstance(hx, (tuple, list))
                                                              else ""))
                h0, c0 = hx
            else:
                if isinstance(hx, (tuple, list)):
                    raise TypeError(f"{name}: hx must be a tensor (h_0), got a {type(hx).__name__}")
                h0 = hx
            want_dim = 3 if is_batched else 2
            states = [h0] + ([c0] if is_lstm else [])
            for s in states:
                if not isinstance(s, Tensor):
                    raise TypeError(f"{name}: hx must hold heron.Tensors, got {type(s).__name__}")
            if any(s.ndim != want_dim for s in states):
                kind = "batched 3-D" if is_batched else "unbatched 2-D"
                if is_lstm:
                    got = f"({h0.ndim}-D, {c0.ndim}-D) tensors"
                else:
                    got = f"{h0.ndim}-D tensor"
                what = "hx and cx" if is_lstm else "hx"
                raise _ArgError(f"{name}: For {kind} input, {what} should also be {want_dim}-D but got {got}")
            self._check_hidden(h0, self._expected_hidden(batch, is_batched), "hidden[0]" if is_lstm else "hidden")
            if is_lstm:
                self._check_hidden(c0, self._expected_hidden(batch, is_batched, cell=True), "hidden[1]")
            if sorted_indices is not None:  # PyTorch's permute_hidden: the states follow the sorted batch
                h0 = _ops.index_select(h0, _fresh(sorted_indices, h0), 1)
                if c0 is not None:
                    c0 = _ops.index_select(c0, _fresh(sorted_indices, c0), 1)
        output, h_n, c_n = self._run(x, h0, c0, lengths, batch_first)
        if packed:
            out_data, _ = _pack_time_major(output, lens)
            output = PackedSequence(out_data, input.batch_sizes, sorted_indices, unsorted_indices)
            if unsorted_indices is not None:
                h_n = _ops.index_select(h_n, _fresh(unsorted_indices, h_n), 1)
                if c_n is not None:
                    c_n = _ops.index_select(c_n, _fresh(unsorted_indices, c_n), 1)
        return (output, (h_n, c_n)) if is_lstm else (output, h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu.

    RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None). forward(input, hx=None) -> (output, h_n):
    input (T, B, input_size) ((B, T, input_size) with batch_first), unbatched (T, input_size), or a
    PackedSequence; hx (num_layers * D, B, hidden_size), zeros when absent."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """LSTM (gates i, f, g, o): c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t); with proj_size > 0,
    h_t = (o * tanh(c_t)) W_hr^T.

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0, device=None, dtype=None). forward(input, hx=None) ->
    (output, (h_n, c_n)); hx = (h_0, c_0) or None (zeros)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """GRU (gates r, z, n): r = sig(W_ir x + b_ir + W_hr h + b_hr), z likewise,
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.

    GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None). forward(input, hx=None) -> (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


# ------------------------------------------------------------------ cells
class RNNCellBase(Module):
    """The shared machinery of the cells: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh (G*H)."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        hidden_size = _check_positive_int(hidden_size, "hidden_size")
        if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral) or input_size < 0:
            raise TypeError(f"input_size should be a non-negative int, got: {input_size!r}")
        self.input_size = int(input_size)
        self.hidden_size = hidden_size
        self.bias = bool(bias)
        self.weight_ih = Parameter(_empty((num_chunks * hidden_size, input_size), dtype, device))
        self.weight_hh = Parameter(_empty((num_chunks * hidden_size, hidden_size), dtype, device))
        if bias:
            self.bias_ih = Parameter(_empty((num_chunks * hidden_size,), dtype, device))
            self.bias_hh = Parameter(_empty((num_chunks * hidden_size,), dtype, device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in PyTorch."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def _check(self, input, states):
        """Checks input (B, I) / (I,) and the states (B, H) / (H,); returns whether the input is batched."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a heron.Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead: input must be "
                             f"(B, {self.input_size}) or unbatched ({self.input_size},); got shape "
                             f"{shape_str(input.shape)}")
        if input.dtype != self.weight_ih.dtype:
            raise TypeError(f"{name}: expected input of dtype {_dtype_name(self.weight_ih.dtype)} (the dtype of its "
                            f"parameters), got {_dtype_name(input.dtype)}")
        if input.shape[-1] != self.input_size:
            raise _ArgError(f"{name}: input has inconsistent input_size: got {input.shape[-1]} expected "
                            f"{self.input_size} (input shape {shape_str(input.shape)})")
        batched = input.ndim == 2
        want = (input.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        for what, s in states:
            if s is None:
                continue
            if not isinstance(s, Tensor):
                raise TypeError(f"{name}: {what} must be a heron.Tensor, got {type(s).__name__}")
            if s.dtype != self.weight_ih.dtype:
                raise TypeError(f"{name}: expected {what} of dtype {_dtype_name(self.weight_ih.dtype)}, got "
                                f"{_dtype_name(s.dtype)}")
            if tuple(s.shape) != want:
                raise _ArgError(f"{name}: Expected {what} of shape {shape_str(want)} (input shape "
                                f"{shape_str(input.shape)}), got {shape_str(s.shape)}")
        return batched

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nl = getattr(self, "nonlinearity", "tanh")
        if nl != "tanh":
            s += f", nonlinearity={nl}"
        return s


class RNNCell(RNNCellBase):
    """One Elman RNN step: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh). forward(input, hx=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}. Select from 'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        self._check(input, [("hx", hx)])
        return _ops.rnn_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                             nonlinearity=self.nonlinearity)[0]


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o). forward(input, hx=None) -> (h', c'); hx = (h, c) or None (zeros)."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        h = c = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTMCell: hx must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}")
            h, c = hx
        self._check(input, [("hx[0]", h), ("hx[1]", c)])
        r = _ops.lstm_cell(input, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return r[0], r[1]


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n). forward(input, hx=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        self._check(input, [("hx", hx)])
        return _ops.gru_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)[0]
