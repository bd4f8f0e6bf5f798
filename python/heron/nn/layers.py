"""Layers with PyTorch's constructor arguments, parameter names, shapes and initialisation."""
import math
import numbers

from .. import _C, _ops
from .. import _dtypes as _dt
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from ._utils import _pair, _single, no_grad, shape_str

Tensor = _C.Tensor

__all__ = ["Identity", "Linear", "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
           "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm2d", "Dropout", "Embedding", "Flatten",
           "Unflatten", "Upsample"]


def _empty(shape, dtype, device):
    return _ops.empty(tuple(shape), dtype or _dt.float32, device)


def _bad_shape(desc, expected, input):
    return ValueError(f"{desc}: expected input of shape {expected}, got {shape_str(input.shape)}")


def _check_dtype(desc, input, param):
    if param is not None and input.dtype != param.dtype:
        raise TypeError(f"{desc}: expected input of dtype {input_dtype_name(param.dtype)} (the dtype of its "
                        f"parameters), got {input_dtype_name(input.dtype)}")


def input_dtype_name(dt):
    return str(dt).replace("heron.", "")


class Identity(Module):
    """Returns its input; accepts and ignores any constructor arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


# ------------------------------------------------------------------ Linear
class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features), bias (out_features,)."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(_empty((out_features, in_features), dtype, device))
        if bias:
            self.bias = Parameter(_empty((out_features,), dtype, device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _desc(self):
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None})"

    def forward(self, input):
        w = self.weight
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise _bad_shape(self._desc(), f"(*, {self.in_features})", input)
        if input.dtype != w.dtype:
            _check_dtype(self._desc(), input, w)
        return _ops.linear(input, w, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# ------------------------------------------------------------------ convolution
class _ConvNd(Module):
    _n = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                 output_padding=0, device=None, dtype=None):
        super().__init__()
        n = self._n
        tup = _single if n == 1 else _pair
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels must be divisible by groups")
        valid_modes = {"zeros", "reflect", "replicate", "circular"}
        if padding_mode not in valid_modes:
            raise ValueError(f"padding_mode must be one of {sorted(valid_modes)}, but got padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = tup(kernel_size)
        self.stride = tup(stride)
        self.dilation = tup(dilation)
        self.groups = groups
        self.padding_mode = padding_mode
        self.output_padding = tup(output_padding)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = tup(padding)
        # F.pad's (left, right) pairs, last dim first, for padding modes other than zeros.
        pads = []
        for d, k, i in zip(reversed(self.dilation), reversed(self.kernel_size), range(n - 1, -1, -1)):
            if self.padding == "same":
                total = d * (k - 1)
                left = total // 2
                pads += [left, total - left]
            elif self.padding == "valid":
                pads += [0, 0]
            else:
                pads += [self.padding[i], self.padding[i]]
        self._reversed_padding_repeated_twice = pads
        if self._transposed:
            wshape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            wshape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(_empty(wshape, dtype, device))
        if bias:
            self.bias = Parameter(_empty((out_channels,), dtype, device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as in PyTorch.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _desc(self):
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def _expected(self):
        spatial = ("L",) if self._n == 1 else ("H", "W")
        c = self.in_channels
        return f"(N, {c}, {', '.join(spatial)}) or ({c}, {', '.join(spatial)})"

    def _check(self, input):
        nd = self._n
        shape = input.shape
        if not nd < len(shape) < nd + 3 or shape[-nd - 1] != self.in_channels:
            raise _bad_shape(self._desc(), self._expected(), input)
        if input.dtype != self.weight.dtype:
            _check_dtype(self._desc(), input, self.weight)

    def extra_repr(self):
        n = self._n
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L) or (C_in, L); weight (C_out, C_in/groups, K)."""
    _n = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device=device, dtype=dtype)

    def forward(self, input):
        self._check(input)
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv1d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-d convolution over (N, C_in, H, W) or (C_in, H, W); weight (C_out, C_in/groups, kH, kW);
    padding an int, a pair, 'valid' or 'same'."""
    _n = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device=device, dtype=dtype)

    def forward(self, input):
        self._check(input)
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-d convolution; weight (C_in, C_out/groups, kH, kW). forward(input, output_size=None)."""
    _n = 2
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a pair, not '{padding}'")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         output_padding=output_padding, device=device, dtype=dtype)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        output_size = list(output_size)
        non_spatial = 2 if input.ndim == 4 else 1
        if len(output_size) == non_spatial + 2:
            output_size = output_size[non_spatial:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2d: output_size must have 2 or {non_spatial + 2} elements (got "
                             f"{len(output_size)})")
        res = []
        for d in range(2):
            lo = ((input.shape[d + non_spatial] - 1) * self.stride[d] - 2 * self.padding[d]
                  + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            hi = lo + self.stride[d] - 1
            if not lo <= output_size[d] <= hi:
                raise ValueError(f"ConvTranspose2d: requested an output size of {output_size}, but valid sizes range "
                                 f"from {lo} to {hi} (for an input of {shape_str(input.shape[2:])})")
            res.append(output_size[d] - lo)
        return tuple(res)

    def forward(self, input, output_size=None):
        self._check(input)
        op = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, op, self.groups,
                                  self.dilation)


# ------------------------------------------------------------------ pooling
class MaxPool2d(Module):
    """Max pooling over (N, C, H, W) or (C, H, W); return_indices also returns the argmax indices."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise _bad_shape(f"MaxPool2d(kernel_size={self.kernel_size})", "(N, C, H, W) or (C, H, W)", input)
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise _bad_shape(f"AvgPool2d(kernel_size={self.kernel_size})", "(N, C, H, W) or (C, H, W)", input)
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise _bad_shape(f"AdaptiveAvgPool2d(output_size={self.output_size})", "(N, C, H, W) or (C, H, W)", input)
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


# ------------------------------------------------------------------ normalisation
class _NormBase(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(_empty((num_features,), dtype, device))
            if bias:
                self.bias = Parameter(_empty((num_features,), dtype, device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _ops.zeros((num_features,), dtype or _dt.float32, device))
            self.register_buffer("running_var", _ops.ones((num_features,), dtype or _dt.float32, device))
            self.register_buffer("num_batches_tracked", _ops.zeros((), _dt.int64, device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Like PyTorch for state dicts without version metadata (safetensors files, old checkpoints):
        # a missing num_batches_tracked is not an error; the counter keeps its value.
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and key not in state_dict and self.num_batches_tracked is not None:
            state_dict = dict(state_dict)
            state_dict[key] = self.num_batches_tracked
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _desc(self):
        return f"{type(self).__name__}({self.num_features})"

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def _check_input_dim(self, input):
        raise NotImplementedError

    def forward(self, input):
        self._check_input_dim(input)
        if self.weight is not None and input.dtype != self.weight.dtype:
            _check_dtype(self._desc(), input, self.weight)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_stats = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if use_stats else None, self.running_var if use_stats else None,
                            self.weight, self.bias, bn_training, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L)."""

    def _check_input_dim(self, input):
        if input.ndim not in (2, 3) or input.shape[1] != self.num_features:
            c = self.num_features
            raise _bad_shape(self._desc(), f"(N, {c}) or (N, {c}, L)", input)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W)."""

    def _check_input_dim(self, input):
        if input.ndim != 4 or input.shape[1] != self.num_features:
            raise _bad_shape(self._desc(), f"(N, {self.num_features}, H, W)", input)


class InstanceNorm2d(_NormBase):
    """Instance normalisation over (N, C, H, W) or (C, H, W); no affine parameters and no running
    statistics by default."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise _bad_shape(self._desc(), f"(N, {self.num_features}, H, W) or ({self.num_features}, H, W)", input)
        if (self.affine or self.track_running_stats) and input.shape[-3] != self.num_features:
            raise _bad_shape(self._desc(), f"(N, {self.num_features}, H, W) or ({self.num_features}, H, W)", input)
        if self.weight is not None and input.dtype != self.weight.dtype:
            _check_dtype(self._desc(), input, self.weight)
        unbatched = input.ndim == 3
        if unbatched:
            input = _ops.unsqueeze(input, 0)
        out = F.instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps)
        return _ops.squeeze(out, 0) if unbatched else out


class LayerNorm(Module):
    """Normalises over the last len(normalized_shape) dims; weight ones, bias zeros of that shape."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_ops.ones(self.normalized_shape, dtype or _dt.float32, device))
            if bias:
                self.bias = Parameter(_ops.zeros(self.normalized_shape, dtype or _dt.float32, device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input):
        ns = self.normalized_shape
        if input.ndim < len(ns) or tuple(input.shape[input.ndim - len(ns):]) != ns:
            raise _bad_shape(f"LayerNorm({ns})", "(*, " + ", ".join(str(s) for s in ns) + ")", input)
        if self.weight is not None and input.dtype != self.weight.dtype:
            _check_dtype(f"LayerNorm({ns})", input, self.weight)
        return F.layer_norm(input, ns, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalises (N, C, *) over groups of C/num_groups channels; per-channel weight and bias."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = Parameter(_ops.ones((num_channels,), dtype or _dt.float32, device))
            if bias:
                self.bias = Parameter(_ops.zeros((num_channels,), dtype or _dt.float32, device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise _bad_shape(f"GroupNorm({self.num_groups}, {self.num_channels})", f"(N, {self.num_channels}, *)",
                             input)
        if self.weight is not None and input.dtype != self.weight.dtype:
            _check_dtype(f"GroupNorm({self.num_groups}, {self.num_channels})", input, self.weight)
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.bias is not None}"


# ------------------------------------------------------------------ dropout, embedding, shape
class Dropout(Module):
    """Zeroes elements with probability p in training (scaling the rest by 1/(1-p)); identity in eval."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim), N(0, 1) initialised; padding_idx's row
    is zero and gets no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        super().__init__()
        if padding_idx is not None:
            if padding_idx > 0 and padding_idx >= num_embeddings:
                raise ValueError("Padding_idx must be within num_embeddings")
            if padding_idx < 0:
                if padding_idx < -num_embeddings:
                    raise ValueError("Padding_idx must be within num_embeddings")
                padding_idx += num_embeddings
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: max_norm, scale_grad_by_freq and sparse are not supported")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(_empty((num_embeddings, embedding_dim), dtype, device), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        if embeddings.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=embeddings,
                   _freeze=freeze)

    def forward(self, input):
        if input.dtype.is_floating_point or input.dtype == _dt.bool:
            raise TypeError(f"Embedding({self.num_embeddings}, {self.embedding_dim}): expected indices of an integer "
                            f"dtype (int64), got {input_dtype_name(input.dtype)}")
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s


class Flatten(Module):
    """Merges dims start_dim..end_dim (default: all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return _ops.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim `dim` into `unflattened_size`."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (list, tuple)):
            raise TypeError(f"unflattened_size must be a tuple of ints, but found type {type(unflattened_size).__name__}")
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input):
        nd = input.ndim
        d = self.dim + nd if self.dim < 0 else self.dim
        if not 0 <= d < nd:
            raise IndexError(f"Unflatten: dim {self.dim} is out of range for an input of {nd} dims")
        shape = tuple(input.shape[:d]) + self.unflattened_size + tuple(input.shape[d + 1:])
        return _ops.reshape(input, shape)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Upsample(Module):
    """Resizes (N, C, H, W) input to `size` or by `scale_factor` ('nearest' or 'bilinear')."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__()
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, numbers.Real) else scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


def _local_out(size, k, s, p, d=1):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class _LocalBase(Module):
    def _init_params(self, wshape, fan_in, bias, out_channels, dtype, device):
        self.weight = Parameter(_empty(wshape, dtype, device))
        if bias:
            self.bias = Parameter(_empty((out_channels,), dtype, device))
        else:
            self.register_parameter("bias", None)
        self._fan_in = fan_in
        self.reset_parameters()

    def reset_parameters(self):
        # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, fan_in = IC/groups * FH * FW (what
        # kaiming_uniform_(a=sqrt(5)) gives a conv2d).
        bound = 1 / math.sqrt(self._fan_in) if self._fan_in > 0 else 0.0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)


class LocalConv2d(_LocalBase):
    """Locally connected 2-d layer (untied convolution): one filter per output position, so the input's
    spatial size is fixed at construction. weight (OH, OW, IC, FH, FW, OC), or (G, OH, OW, IC/G, FH, FW, OC/G)
    with groups=G > 1; bias (OC)."""

    def __init__(self, in_channels, out_channels, input_height, input_width, kernel_size, stride=1, padding=0,
                 groups=1, bias=True, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups must be a positive integer dividing in_channels ({in_channels}) and "
                             f"out_channels ({out_channels}), got {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.input_height, self.input_width = input_height, input_width
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        oh = _local_out(input_height, self.kernel_size[0], self.stride[0], self.padding[0])
        ow = _local_out(input_width, self.kernel_size[1], self.stride[1], self.padding[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"{name}: a {input_height}x{input_width} input with kernel_size {self.kernel_size}, "
                             f"stride {self.stride} and padding {self.padding} has no output")
        self.output_size = (oh, ow)
        wshape = (oh, ow, in_channels // groups) + self.kernel_size + (out_channels // groups,)
        if groups > 1:
            wshape = (groups,) + wshape
        self._init_params(wshape, in_channels // groups * self.kernel_size[0] * self.kernel_size[1], bias,
                          out_channels, dtype, device)

    def forward(self, input):
        return F.local_conv2d(input, self.weight, self.bias, self.stride, self.padding)

    def _desc(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, input=({self.input_height}, "
                f"{self.input_width}), kernel_size={self.kernel_size})")


class LocalShareConv2d(_LocalBase):
    """Locally shared 2-d convolution: the output plane is cut into spatial_groups (SGH, SGW) equal parts, each
    with its own filter. weight (SGH, SGW, IC, FH, FW, OC), or (G, SGH, SGW, IC/G, FH, FW, OC/G) with groups=G > 1;
    bias (OC); mode 'cross_correlation' or 'convolution'."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, spatial_groups=(1, 1),
                 groups=1, bias=True, mode="cross_correlation", device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups must be a positive integer dividing in_channels ({in_channels}) and "
                             f"out_channels ({out_channels}), got {groups}")
        if mode not in ("cross_correlation", "convolution"):
            raise ValueError(f"{name}: mode must be 'cross_correlation' or 'convolution', got {mode!r}")
        self.in_channels, self.out_channels, self.groups, self.mode = in_channels, out_channels, groups, mode
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        self.dilation, self.spatial_groups = _pair(dilation), _pair(spatial_groups)
        if min(self.spatial_groups) < 1:
            raise ValueError(f"{name}: spatial_groups must be >= 1, got {self.spatial_groups}")
        wshape = self.spatial_groups + (in_channels // groups,) + self.kernel_size + (out_channels // groups,)
        if groups > 1:
            wshape = (groups,) + wshape
        self._init_params(wshape, in_channels // groups * self.kernel_size[0] * self.kernel_size[1], bias,
                          out_channels, dtype, device)

    def forward(self, input):
        return F.local_share_conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                    self.spatial_groups, self.groups, self.mode)

    def _desc(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"spatial_groups={self.spatial_groups})")
