"""heron.nn: modules, layers, losses, initialisers and the functional interface, with PyTorch's
names, arguments and semantics."""
from .parameter import Parameter  # noqa: F401
from .module import Module, RemovableHandle  # noqa: F401
from .container import Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict  # noqa: F401
from .layers import (Identity, Linear, Conv1d, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d,  # noqa: F401
                     AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, InstanceNorm2d, Dropout,
                     Embedding, Flatten, Unflatten, Upsample, LocalConv2d, LocalShareConv2d)
from .rnn import RNNBase, RNN, LSTM, GRU, RNNCellBase, RNNCell, LSTMCell, GRUCell  # noqa: F401
from .activation import ReLU, ReLU6, Hardtanh, LeakyReLU, GELU, SiLU, Tanh, Sigmoid, Softmax, LogSoftmax  # noqa: F401
from .loss import (CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, BCELoss,  # noqa: F401
                   BCEWithLogitsLoss)
from . import functional, init  # noqa: F401

try:  # heron.nn.utils (clip_grad_norm_, clip_grad_value_) comes with heron.optim
    from . import utils  # noqa: F401
except ImportError:  # pragma: no cover
    pass
