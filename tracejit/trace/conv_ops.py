"""1-D and 3-D convolution and pooling, depthwise and separable convolution, composed
from the 2-D ops (the IR has 2-D convolution and pooling only).

* 1-D: the 2-D op on images of height 1.
* 3-D: for each depth offset ``kd`` of the window, the (strided) depth slices it meets
  are folded into the batch and convolved (pooled) in 2-D; the ``KD`` results are summed
  (maximized, averaged). That is ``KD`` 2-D convolutions over ``N * OD`` images: the
  same multiply-adds as a direct 3-D convolution, plus the copies of the slices.
* depthwise: for each window offset ``(i, j)`` a strided slice of the padded input times
  the filter's ``[C, M]`` row, summed: ``KH * KW`` elementwise products that fuse, and
  the multiply-adds of a direct depthwise convolution.

Everything is differentiable through the ops it is made of.
"""

from __future__ import annotations

import numpy as np

from ..ir.errors import ParamError, ShapeError
from ..ir.source import user_location
from . import math_ops as m
from .array_ops import expand_dims, pad, reshape, squeeze, transpose
from .nn_ops import avg_pool2d, conv2d, max_pool2d, same_padding
from .tracing import to_tensor

__all__ = ["avg_pool1d", "avg_pool3d", "conv1d", "conv3d", "depthwise_conv2d",
           "max_pool1d", "max_pool3d", "separable_conv2d"]


def _fail(error, message: str, op: str):
    raise error(message, op=op, location=user_location())


def _spatial(value, count: int, what: str, op: str, channels_first: bool,
             default: int = 1) -> list[int]:
    """An int, ``count`` ints, or ``count + 2`` ints with 1 on batch and channels."""
    value = default if value is None else value
    values = [int(v) for v in np.asarray(value).reshape(-1)]
    if len(values) == 1:
        values *= count
    elif len(values) == count + 2:
        outer = values[:2] if channels_first else [values[0], values[-1]]
        if outer != [1, 1]:
            _fail(ParamError, f"{what} {values} must be 1 on the batch and channel axes", op)
        values = values[2:] if channels_first else values[1:-1]
    if len(values) != count or min(values) < 1:
        _fail(ParamError, f"{what} must be a positive int or {count} ints, got {value!r}", op)
    return values


def _channels_first(data_format, last: str, first: str, op: str) -> bool:
    if data_format in (None, last, "channels_last"):
        return False
    if data_format in (first, "channels_first"):
        return True
    _fail(ParamError, f"data_format must be {last!r} or {first!r}, got {data_format!r}", op)


def _input(value, rank: int, channels_first: bool, op: str):
    x = to_tensor(value)
    x = x if x.dtype.is_float else m.cast(x, "float32")
    if x.ndim != rank:
        _fail(ShapeError, f"expects an input of rank {rank}, got {x.type}", op)
    return transpose(x, (0,) + tuple(range(2, rank)) + (1,)) if channels_first else x


def _output(y, channels_first: bool):
    return transpose(y, (0, y.ndim - 1) + tuple(range(1, y.ndim - 1))) if channels_first else y


def _padding_mode(padding, op: str) -> str:
    mode = padding.upper() if isinstance(padding, str) else None
    if mode not in ("SAME", "VALID"):
        _fail(ParamError, f"padding must be 'SAME' or 'VALID', got {padding!r}", op)
    return mode


# ---- 1-D ----------------------------------------------------------------------------------

def conv1d(value=None, filters=None, stride=None, padding=None, use_cudnn_on_gpu=None,
           data_format=None, name=None, input=None, dilations=None):
    """``value`` [N, W, C] (NCW with ``data_format``) with ``filters`` [K, C, O]."""
    first = _channels_first(data_format, "NWC", "NCW", "conv1d")
    x = _input(value if value is not None else input, 3, first, "conv1d")
    w = to_tensor(filters)
    if w.ndim != 3:
        _fail(ShapeError, f"filters must be [width, in, out], got {w.type}", "conv1d")
    s = _spatial(stride, 1, "stride", "conv1d", first)[0]
    d = _spatial(dilations, 1, "dilations", "conv1d", first)[0]
    y = conv2d(expand_dims(x, 1), expand_dims(w, 0), (1, s), _padding_mode(padding, "conv1d"),
               dilations=(1, d))
    return _output(squeeze(y, [1]), first)


def _pool1d(pool2d, op):
    def pool(input, ksize, strides, padding, data_format="NWC", name=None):
        first = _channels_first(data_format, "NWC", "NCW", op)
        x = _input(input, 3, first, op)
        k = _spatial(ksize, 1, "ksize", op, first)[0]
        s = _spatial(strides, 1, "strides", op, first)[0]
        y = pool2d(expand_dims(x, 1), (1, k), (1, s), _padding_mode(padding, op))
        return _output(squeeze(y, [1]), first)
    pool.__name__ = op
    pool.__doc__ = f"``{pool2d.__name__}`` over the one spatial axis of [N, W, C]."
    return pool


max_pool1d = _pool1d(max_pool2d, "max_pool1d")
avg_pool1d = _pool1d(avg_pool2d, "avg_pool1d")


# ---- 3-D ----------------------------------------------------------------------------------

def _depth_plan(depth: int, window: int, stride: int, dilation: int, mode: str):
    """(pad before, pad after, output depth) along the depth axis."""
    lo, hi = same_padding(depth, window, stride, dilation) if mode == "SAME" else [0, 0]
    span = (window - 1) * dilation + 1
    if depth + lo + hi < span:
        _fail(ShapeError, f"a depth window of {span} does not fit in depth {depth}", "conv3d")
    return lo, hi, (depth + lo + hi - span) // stride + 1


def _depth_slices(x, window, stride, dilation, out_depth):
    """For each window offset, the depth slices it meets for every output depth:
    [N, OD, H, W, C] each."""
    last = (out_depth - 1) * stride + 1
    return [x[:, k * dilation:k * dilation + last:stride] for k in range(window)]


def _fold(x):
    """[N, D, H, W, C] -> [N * D, H, W, C]."""
    return reshape(x, (-1,) + tuple(x.shape[2:]))


def conv3d(input, filter=None, strides=None, padding=None, data_format="NDHWC",
           dilations=None, name=None, filters=None):
    """``input`` [N, D, H, W, C] (NCDHW with ``data_format``) with ``filter``
    [KD, KH, KW, C, O]; ``strides``/``dilations``: 3 ints or TF's 5."""
    op = "conv3d"
    first = _channels_first(data_format, "NDHWC", "NCDHW", op)
    x = _input(input, 5, first, op)
    w = to_tensor(filter if filter is not None else filters)
    if w.ndim != 5:
        _fail(ShapeError, f"filter must be [depth, height, width, in, out], got {w.type}", op)
    if w.shape[3] != x.shape[4]:
        _fail(ShapeError, f"the filter {list(w.shape)} expects {w.shape[3]} input channels, "
              f"the input {list(x.shape)} has {x.shape[4]}", op)
    sd, sh, sw = _spatial(strides, 3, "strides", op, first)
    dd, dh, dw = _spatial(dilations, 3, "dilations", op, first)
    mode = _padding_mode(padding, op)
    lo, hi, out_depth = _depth_plan(x.shape[1], w.shape[0], sd, dd, mode)
    x = pad(x, [[0, 0], [lo, hi], [0, 0], [0, 0], [0, 0]])
    total = None
    for k, part in enumerate(_depth_slices(x, w.shape[0], sd, dd, out_depth)):
        y = conv2d(_fold(part), w[k], (sh, sw), mode, dilations=(dh, dw))
        total = y if total is None else m.add(total, y)
    n = x.shape[0]
    return _output(reshape(total, (n, out_depth) + tuple(total.shape[1:])), first)


def _pool3d(kind, op):
    def pool(input, ksize, strides, padding, data_format="NDHWC", name=None):
        first = _channels_first(data_format, "NDHWC", "NCDHW", op)
        x = _input(input, 5, first, op)
        kd, kh, kw = _spatial(ksize, 3, "ksize", op, first)
        sd, sh, sw = _spatial(strides, 3, "strides", op, first)
        mode = _padding_mode(padding, op)
        n, depth = x.shape[0], x.shape[1]
        pool2d = max_pool2d if kind == "max" else avg_pool2d
        planes = pool2d(_fold(x), (kh, kw), (sh, sw), mode)
        planes = reshape(planes, (n, depth) + tuple(planes.shape[1:]))
        lo, hi, out_depth = _depth_plan(depth, kd, sd, 1, mode)
        # NOTE: padding never wins a max (-inf) and is not counted in a mean (as TF)
        filler = -np.inf if kind == "max" else 0.0
        planes = pad(planes, [[0, 0], [lo, hi], [0, 0], [0, 0], [0, 0]],
                     constant_values=filler)
        slices = _depth_slices(planes, kd, sd, 1, out_depth)
        result = slices[0]
        for part in slices[1:]:
            result = m.maximum(result, part) if kind == "max" else m.add(result, part)
        if kind == "avg":
            counts = [sum(0 <= o * sd + k - lo < depth for k in range(kd))
                      for o in range(out_depth)]
            result = m.divide(result, np.asarray(counts, np.float32).reshape(1, -1, 1, 1, 1)
                              .astype(result.dtype.np_dtype))
        return _output(result, first)
    pool.__name__ = op
    pool.__doc__ = (f"The {'maximum' if kind == 'max' else 'mean'} of each ``ksize`` window "
                    "of [N, D, H, W, C] (3 ints or TF's 5 for ``ksize`` and ``strides``).")
    return pool


max_pool3d = _pool3d("max", "max_pool3d")
avg_pool3d = _pool3d("avg", "avg_pool3d")


# ---- depthwise and separable --------------------------------------------------------------

def depthwise_conv2d(input, filter, strides, padding, rate=None, name=None, data_format=None,
                     dilations=None):
    """Each input channel convolved with its own ``M`` filters: ``filter`` [KH, KW, C, M]
    gives C * M output channels, channel ``c * M + m`` from input channel ``c``."""
    op = "depthwise_conv2d"
    first = _channels_first(data_format, "NHWC", "NCHW", op)
    x = _input(input, 4, first, op)
    w = to_tensor(filter)
    (x, w), _ = m.promote(x, w)
    if w.ndim != 4 or w.shape[2] != x.shape[3]:
        _fail(ShapeError, f"filter must be [height, width, {x.shape[3]}, multiplier] for an "
              f"input of {x.shape[3]} channels, got {w.type}", op)
    sh, sw = _spatial(strides, 2, "strides", op, first)
    dh, dw = _spatial(rate if rate is not None else dilations, 2, "rate", op, first)
    mode = _padding_mode(padding, op)
    (kh, kw, channels, multiplier), (n, h, wd, _) = w.shape, x.shape
    pads = [same_padding(size, k, s, d) if mode == "SAME" else [0, 0]
            for size, k, s, d in ((h, kh, sh, dh), (wd, kw, sw, dw))]
    oh = (h + sum(pads[0]) - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + sum(pads[1]) - (kw - 1) * dw - 1) // sw + 1
    if oh < 1 or ow < 1:
        _fail(ShapeError, f"a window of {[kh, kw]} (rate {[dh, dw]}) does not fit in the image "
              f"{[h, wd]}", op)
    x = pad(x, [[0, 0], pads[0], pads[1], [0, 0]])
    total = None
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                      j * dw:j * dw + (ow - 1) * sw + 1:sw]
            term = m.multiply(expand_dims(patch, -1), w[i, j])
            total = term if total is None else m.add(total, term)
    return _output(reshape(total, (n, oh, ow, channels * multiplier)), first)


def separable_conv2d(input, depthwise_filter, pointwise_filter, strides, padding, rate=None,
                     name=None, data_format=None, dilations=None):
    """``depthwise_conv2d`` then a 1x1 ``conv2d`` with ``pointwise_filter``
    [1, 1, C * M, O]."""
    fmt = "NCHW" if data_format in ("NCHW", "channels_first") else "NHWC"
    depthwise = depthwise_conv2d(input, depthwise_filter, strides, padding, rate,
                                 data_format=fmt, dilations=dilations)
    return conv2d(depthwise, pointwise_filter, 1, "VALID", data_format=fmt)

