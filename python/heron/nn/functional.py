"""heron.nn.functional: PyTorch's functional signatures over Heron's ops (int/tuple arguments,
padding strings, optional outputs)."""
import math
import numbers
import warnings

from .. import _C, _ops
from .. import _dtypes as _dt
from ._utils import _pair, _single, shape_str

Tensor = _C.Tensor

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction, size_average=None, reduce=None):
    if size_average is not None or reduce is not None:  # PyTorch's deprecated pair
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


# ------------------------------------------------------------------ activations
def relu(input, inplace=False):
    return _ops.relu(input)


def relu6(input, inplace=False):
    return _ops.clamp(input, 0.0, 6.0)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """min(max(input, min_val), max_val); the gradient is zero outside [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _ops.clamp(input, float(min_val), float(max_val))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _ops.leaky_relu(input, negative_slope=negative_slope)


def gelu(input, approximate="none"):
    return _ops.gelu(input, approximate)


def silu(input, inplace=False):
    return _ops.silu(input)


def tanh(input):
    return _ops.tanh(input)


def sigmoid(input):
    return _ops.sigmoid(input)


def softplus(input, beta=1.0, threshold=20.0):
    return _ops.softplus(input, beta, threshold)


def _softmax_dim(name, ndim):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return _ops.softmax(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return _ops.log_softmax(input, dim, dtype)


# ------------------------------------------------------------------ linear and convolution
def linear(input, weight, bias=None):
    """input @ weight.T + bias."""
    return _ops.linear(input, weight, bias)


def _conv_padding(padding, n, fn):
    """(padding ints, same_padding) from an int, a tuple, 'same' or 'valid'."""
    if isinstance(padding, str):
        if padding == "same":
            return (0,) * n, True
        if padding == "valid":
            return (0,) * n, False
        raise ValueError(f"{fn}: invalid padding string '{padding}', should be one of 'valid', 'same'")
    return _ntuple_of(n)(padding), False


def _ntuple_of(n):
    return _single if n == 1 else _pair


def _check_same(same, stride, fn):
    if same and stride != (1,) * len(stride):
        raise ValueError(f"{fn}: padding='same' is not supported for strided convolutions")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution of (N, C_in, L) or (C_in, L) input with a (C_out, C_in/groups, K) weight."""
    stride, dilation = _single(stride), _single(dilation)
    pad, same = _conv_padding(padding, 1, "conv1d")
    _check_same(same, stride, "conv1d")
    unbatched = input.ndim == 2
    if unbatched:
        input = _ops.unsqueeze(input, 0)
    out = _ops.conv1d(input, weight, bias, stride=stride, padding=pad, dilation=dilation, groups=groups,
                      same_padding=same)
    return _ops.squeeze(out, 0) if unbatched else out


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution of (N, C_in, H, W) or (C_in, H, W) input with a (C_out, C_in/groups, kH, kW) weight;
    padding is an int, a pair, 'valid' or 'same'."""
    stride, dilation = _pair(stride), _pair(dilation)
    pad, same = _conv_padding(padding, 2, "conv2d")
    _check_same(same, stride, "conv2d")
    unbatched = input.ndim == 3
    if unbatched:
        input = _ops.unsqueeze(input, 0)
    out = _ops.conv2d(input, weight, bias, stride=stride, padding=pad, dilation=dilation, groups=groups,
                      same_padding=same)
    return _ops.squeeze(out, 0) if unbatched else out


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-d convolution with a (C_in, C_out/groups, kH, kW) weight."""
    unbatched = input.ndim == 3
    if unbatched:
        input = _ops.unsqueeze(input, 0)
    out = _ops.conv_transpose2d(input, weight, bias, stride=_pair(stride), padding=_pair(padding),
                                output_padding=_pair(output_padding), groups=groups, dilation=_pair(dilation))
    return _ops.squeeze(out, 0) if unbatched else out


def local_conv2d(input, weight, bias=None, stride=1, padding=0):
    """Locally connected 2-d layer (untied convolution, MegEngine's local): every output position has its own
    filter. input (N, IC, IH, IW) or (IC, IH, IW); weight (OH, OW, IC, FH, FW, OC) or grouped
    (G, OH, OW, IC/G, FH, FW, OC/G); bias (OC) or None. Output (N, OC, OH, OW)."""
    unbatched = input.ndim == 3
    if unbatched:
        input = _ops.unsqueeze(input, 0)
    out = _ops.local_conv2d(input, weight, bias, stride=_pair(stride), padding=_pair(padding))
    return _ops.squeeze(out, 0) if unbatched else out


def local_share_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, spatial_groups=(1, 1), groups=1,
                       mode="cross_correlation"):
    """Locally shared 2-d convolution (MegEngine's local_share): the output plane is cut into SGH x SGW spatial
    groups, each with its own filter. input (N, IC, IH, IW) or (IC, IH, IW); weight (SGH, SGW, IC, FH, FW, OC) or,
    with groups=G, (G, SGH, SGW, IC/G, FH, FW, OC/G); bias (OC) or None; mode 'cross_correlation' or
    'convolution' (filter flipped). spatial_groups must divide the output's height and width."""
    if mode not in ("cross_correlation", "convolution"):
        raise ValueError(f"local_share_conv2d: mode must be 'cross_correlation' or 'convolution', got {mode!r}")
    unbatched = input.ndim == 3
    if unbatched:
        input = _ops.unsqueeze(input, 0)
    out = _ops.local_share_conv2d(input, weight, bias, stride=_pair(stride), padding=_pair(padding),
                                  dilation=_pair(dilation), spatial_groups=_pair(spatial_groups), groups=groups,
                                  mode=mode)
    return _ops.squeeze(out, 0) if unbatched else out


# ------------------------------------------------------------------ pooling
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling; with return_indices also the flat (per-plane) argmax indices."""
    unbatched = input.ndim == 3
    if unbatched:
        input = _ops.unsqueeze(input, 0)
    stride = () if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride)
    out, idx = _ops.max_pool2d(input, _pair(kernel_size), stride=stride, padding=_pair(padding),
                               dilation=_pair(dilation), ceil_mode=ceil_mode)
    if unbatched:
        out, idx = _ops.squeeze(out, 0), _ops.squeeze(idx, 0)
    return (out, idx) if return_indices else out


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    unbatched = input.ndim == 3
    if unbatched:
        input = _ops.unsqueeze(input, 0)
    stride = () if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride)
    out = _ops.avg_pool2d(input, _pair(kernel_size), stride=stride, padding=_pair(padding),
                          ceil_mode=ceil_mode, count_include_pad=count_include_pad, divisor_override=divisor_override)
    return _ops.squeeze(out, 0) if unbatched else out


def _adaptive_size(output_size, input):
    size = list(output_size) if isinstance(output_size, (list, tuple)) else [output_size, output_size]
    if len(size) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size}")
    return [input.shape[-2 + i] if s is None else int(s) for i, s in enumerate(size)]


def adaptive_avg_pool2d(input, output_size):
    unbatched = input.ndim == 3
    if unbatched:
        input = _ops.unsqueeze(input, 0)
    out = _ops.adaptive_avg_pool2d(input, _adaptive_size(output_size, input))
    return _ops.squeeze(out, 0) if unbatched else out


# ------------------------------------------------------------------ normalisation
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation over (N, C, *) input; in training it normalises with the batch statistics
    and updates running_mean/running_var in place (momentum None counts as 0 here: the module passes
    the cumulative factor)."""
    if training:
        size = input.shape
        n = size[0]
        for s in size[2:]:
            n *= s
        if n == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")
    return _ops.batch_norm(input, weight, bias, running_mean, running_var, training=training,
                           momentum=0.0 if momentum is None else momentum, eps=eps)[0]


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    return _ops.layer_norm(input, weight, bias, list(normalized_shape), eps)[0]


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    if input.ndim < 2 or input.shape[1] % num_groups != 0:
        raise ValueError(f"group_norm: expected input of shape (N, C, *) with C divisible by num_groups={num_groups}, "
                         f"got {shape_str(input.shape)}")
    return _ops.group_norm(input, weight, bias, num_groups, eps)[0]


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    out = _ops.instance_norm(input, weight, bias, running_mean, running_var, use_input_stats=use_input_stats,
                             momentum=momentum, eps=eps)
    return out[0] if isinstance(out, tuple) else out  # (out, mean, rstd)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p along dim, eps)."""
    if p == 2.0:
        s = _ops.sum(_ops.mul(input, input), dim, True)
        return _ops.mul(input, _ops.rsqrt(_ops.clamp(s, eps * eps, None)))
    if p == math.inf:
        norm = _ops.amax(_ops.abs(input), dim, True)
        return _ops.div(input, _ops.clamp(norm, eps, None))
    s = _ops.sum(_ops.pow(_ops.abs(input), float(p)), dim, True)
    norm = _ops.pow(s, 1.0 / p)
    return _ops.div(input, _ops.clamp(norm, eps, None))


# ------------------------------------------------------------------ dropout, embedding
def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes elements with probability p and scales the rest by 1/(1-p) (identity when not training)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    return _ops.dropout(input, p, training)[0]


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    """Rows of weight at the integer indices `input`; padding_idx's row gets no gradient."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return _ops.embedding(weight, input, padding_idx)


def one_hot(tensor, num_classes=-1):
    """(*, num_classes) int64 one-hot encoding of an int64 tensor of class indices."""
    if tensor.dtype != _dt.int64:
        raise TypeError(f"one_hot is only applicable to index tensor of dtype int64, got {tensor.dtype}")
    if num_classes == -1:
        if tensor.numel() == 0:
            raise ValueError("one_hot: can not infer total number of classes from empty tensor")
        num_classes = int(_ops.amax(tensor).item()) + 1
    if tensor.numel() and (int(_ops.amin(tensor).item()) < 0 or int(_ops.amax(tensor).item()) >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes})")
    classes = _ops.arange(end=num_classes, dtype=_dt.int64, device=tensor.device)
    return _ops.cast(_ops.eq(_ops.unsqueeze(tensor, -1), classes), _dt.int64)


# ------------------------------------------------------------------ shape
def pad(input, pad, mode="constant", value=None):
    """Pads the last dims: pad = (left, right[, top, bottom, ...]), last dim first. Modes 'constant',
    'reflect', 'replicate', 'circular'."""
    if len(pad) % 2 != 0:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise ValueError("Padding length too large")
    if mode == "circular":
        out = input
        for i in range(len(pad) // 2):
            d = input.ndim - 1 - i
            left, right = int(pad[2 * i]), int(pad[2 * i + 1])
            n = out.shape[d]
            if left > n or right > n:
                raise ValueError("Padding value causes wrapping around more than once.")
            parts = []
            if left > 0:
                parts.append(_ops.slice(out, d, n - left, n, 1))
            parts.append(_ops.slice(out, d, max(0, -left), n - max(0, -right), 1))
            if right > 0:
                parts.append(_ops.slice(out, d, 0, right, 1))
            out = _ops.concat(parts, d) if len(parts) > 1 else parts[0]
        return out
    if mode != "constant" and value:
        raise ValueError(f"Padding mode \"{mode}\" doesn't take in value argument")
    return _ops.pad(input, [int(p) for p in pad], mode, 0.0 if value is None else float(value))


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resizes (N, C, H, W) input (nearest also (N, C, W)) to `size` or by `scale_factor`
    ('nearest' or 'bilinear')."""
    if mode not in ("nearest", "bilinear"):
        raise NotImplementedError(f"interpolate: mode '{mode}' is not supported (only 'nearest' and 'bilinear')")
    if align_corners is not None and mode == "nearest":
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if input.ndim not in (3, 4):
        raise ValueError(f"interpolate: expected input of shape (N, C, H, W) or (N, C, W), got {shape_str(input.shape)}")
    nsp = input.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        size = [int(s) for s in size] if isinstance(size, (list, tuple)) else [int(size)] * nsp
        if len(size) != nsp:
            raise ValueError(f"interpolate: size must have {nsp} elements for {input.ndim}-d input, got {size}")
        scales = None
    else:
        scales = [float(s) for s in scale_factor] if isinstance(scale_factor, (list, tuple)) \
            else [float(scale_factor)] * nsp
        if len(scales) != nsp:
            raise ValueError(f"interpolate: scale_factor must have {nsp} elements for {input.ndim}-d input, "
                             f"got {scale_factor}")
        if recompute_scale_factor:
            size = [int(math.floor(input.shape[2 + i] * scales[i])) for i in range(nsp)]
            scales = None
    return _ops.interpolate(input, size=size, scale_factor=scales, mode=mode, align_corners=bool(align_corners))


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def pixel_shuffle(input, upscale_factor):
    return _ops.pixel_shuffle(input, upscale_factor)


def pixel_unshuffle(input, downscale_factor):
    return _ops.pixel_unshuffle(input, downscale_factor)


# ------------------------------------------------------------------ losses
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross entropy of logits (N, C[, d1, ...]) or (C,) against class indices (int64) or class
    probabilities (a floating target of the input's shape)."""
    reduction = _reduction(reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if target.dtype.is_floating_point and tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"cross_entropy: class-probability target must have the input's shape "
                         f"{shape_str(input.shape)}, got {shape_str(target.shape)}")
    return _ops.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    reduction = _reduction(reduction, size_average, reduce)
    return _ops.nll_loss(input, target, weight, ignore_index, reduction)


def _same_shape(name, input, target):
    """PyTorch broadcasts input and target of different shapes (with a warning); so do we."""
    if tuple(input.shape) == tuple(target.shape):
        return input, target
    import numpy as np
    warnings.warn(f"{name}: using a target size ({shape_str(target.shape)}) that is different to the input size "
                  f"({shape_str(input.shape)}); they will be broadcast, which is likely not what you want.",
                  stacklevel=3)
    try:
        shape = np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
    except ValueError:
        raise ValueError(f"{name}: the target size {shape_str(target.shape)} does not broadcast with the input size "
                         f"{shape_str(input.shape)}") from None
    return _ops.broadcast_to(input, shape), _ops.broadcast_to(target, shape)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    input, target = _same_shape("mse_loss", input, target)
    return _ops.mse_loss(input, target, _reduction(reduction, size_average, reduce))


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    input, target = _same_shape("l1_loss", input, target)
    return _ops.l1_loss(input, target, _reduction(reduction, size_average, reduce))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    if beta < 0:
        raise ValueError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    input, target = _same_shape("smooth_l1_loss", input, target)
    return _ops.smooth_l1_loss(input, target, _reduction(reduction, size_average, reduce), beta)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({shape_str(target.shape)}) that is different to the input size "
                         f"({shape_str(input.shape)}) is deprecated. Please ensure they have the same size.")
    return _ops.binary_cross_entropy(input, target, weight, _reduction(reduction, size_average, reduce))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({shape_str(target.shape)}) must be the same as input size "
                         f"({shape_str(input.shape)})")
    return _ops.binary_cross_entropy_with_logits(input, target, weight, pos_weight,
                                                 _reduction(reduction, size_average, reduce))
