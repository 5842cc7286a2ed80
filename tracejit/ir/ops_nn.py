"""Convolution and pooling over NHWC images, and the ops their gradients need.

Layouts are fixed: images are ``[batch, height, width, channels]`` (NHWC) and filters
``[height, width, in_channels, out_channels]`` (HWIO), as TensorFlow's defaults. The
front end turns NCHW into NHWC with transposes and resolves ``"SAME"``/``"VALID"`` into
explicit ``pads = (top, bottom, left, right)``, so the IR has one spelling per meaning.
Output sizes follow from the params: ``out = (in + lo + hi - (k - 1) * dilation - 1) //
stride + 1``.

* ``conv2d`` is a cross-correlation (no filter flip). Its gradients are
  ``conv2d_backprop_input`` (the transposed convolution, given the input's shape) and
  ``conv2d_backprop_filter`` (given the filter's shape); the three are linear in each
  operand and their rules only use one another, so any order of derivative works.
* ``max_pool2d`` pads with -inf (padding never wins); ``max_pool2d_backprop(x, ct)``
  routes each window's cotangent to the *first* maximum of the window in row-major
  order, as TensorFlow does, and ``max_pool2d_select(x, g)`` reads ``g`` at that same
  position (the transpose of the backprop, used by second derivatives).
* ``avg_pool2d`` averages over the window's elements that lie inside the image
  (TensorFlow's SAME semantics: padding is not counted); ``avg_pool2d_backprop`` is its
  transpose.

``int8_conv2d`` is conv2d of 8-bit integers (int8 or uint8) with exact int32 sums, for
quantized models: its padding holds ``pad_value`` (the input's zero point, so that a
padded position stands for the real value 0 as TensorFlow Lite's quantized convolution
pads), and it has no gradient.

The references use im2col and one matrix product for convolutions, and one vectorized
pass per window offset for pooling. Halves compute in float32 and round once.
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from . import vjp_nn
from .core import TensorType
from .errors import ParamError, ShapeError
from .opdef import (
    ParamSpec,
    declare,
    int_param,
    ints_param,
    require_dtype,
    require_same_dtype,
)
from .ops_elementwise import signed_maximum
from .ops_linalg import EIGHT_BIT_DTYPES

__all__ = [
    "CONV2D", "CONV2D_BACKPROP_INPUT", "CONV2D_BACKPROP_FILTER", "MAX_POOL2D",
    "MAX_POOL2D_BACKPROP", "MAX_POOL2D_SELECT", "AVG_POOL2D", "AVG_POOL2D_BACKPROP",
    "INT8_CONV2D",
]


# ---- parameters ---------------------------------------------------------------------------

def _counted(count: int, positive: bool):
    def convert(value) -> tuple[int, ...]:
        values = ints_param(value)
        if len(values) != count:
            raise ValueError(f"expected {count} ints, got {list(values)}")
        if any(v < 1 if positive else v < 0 for v in values):
            raise ValueError(f"expected {'positive' if positive else 'non-negative'} ints, "
                             f"got {list(values)}")
        return values
    return convert


_PAIR = _counted(2, positive=True)          # strides, dilations, ksize
_PADS = _counted(4, positive=False)         # (top, bottom, left, right)
_SHAPE4 = _counted(4, positive=False)       # input_shape, filter_shape

_CONV_PARAMS = {"strides": ParamSpec(_PAIR, (1, 1)), "pads": ParamSpec(_PADS, (0, 0, 0, 0)),
                "dilations": ParamSpec(_PAIR, (1, 1))}
_POOL_PARAMS = {"ksize": ParamSpec(_PAIR), "strides": ParamSpec(_PAIR, (1, 1)),
                "pads": ParamSpec(_PADS, (0, 0, 0, 0))}


# ---- shape rules --------------------------------------------------------------------------

def output_size(op: str, size: int, k: int, stride: int, lo: int, hi: int,
                dilation: int = 1) -> int:
    """The number of windows along one spatial axis."""
    span = (k - 1) * dilation + 1
    if size + lo + hi < span:
        raise ShapeError(f"a window of {span} does not fit in {size} + padding {lo} + {hi}",
                         op=op)
    return (size + lo + hi - span) // stride + 1


def _image(op: str, t: TensorType, what: str = "an NHWC image") -> None:
    require_dtype(op, t, dt.FLOAT_DTYPES, "floating-point operands")
    if t.ndim != 4:
        raise ShapeError(f"expects {what} of rank 4, got {t}", op=op)


def _conv_out(op: str, x_shape, w_shape, params) -> tuple[int, ...]:
    n, h, w, c = x_shape
    kh, kw, ci, co = w_shape
    if ci != c:
        raise ShapeError(f"the filter {list(w_shape)} expects {ci} input channels, the "
                         f"image {list(x_shape)} has {c}", op=op)
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = params["strides"], params["pads"], params["dilations"]
    return (n, output_size(op, h, kh, sh, pt, pb, dh), output_size(op, w, kw, sw, pl, pr, dw),
            co)


def _conv2d_infer(types, params):
    x, w = types
    dtype = require_same_dtype("conv2d", types)
    _image("conv2d", x)
    _image("conv2d", w, "an HWIO filter")
    return (TensorType(_conv_out("conv2d", x.shape, w.shape, params), dtype),)


def _int8_conv2d_infer(types, params):
    x, w = types
    op = "int8_conv2d"
    dtype = require_same_dtype(op, types)
    require_dtype(op, x, EIGHT_BIT_DTYPES, "int8 or uint8 operands")
    for t, what in ((x, "an NHWC image"), (w, "an HWIO filter")):
        if t.ndim != 4:
            raise ShapeError(f"expects {what} of rank 4, got {t}", op=op)
    info = np.iinfo(dtype.np_dtype)
    if not info.min <= params["pad_value"] <= info.max:
        raise ParamError(f"pad_value {params['pad_value']} is outside the range of "
                         f"{dtype.name} [{info.min}, {info.max}]", op=op)
    return (TensorType(_conv_out(op, x.shape, w.shape, params), dt.int32),)


def _check_out(op: str, given: TensorType, expected: tuple[int, ...], what: str) -> None:
    if given.shape != expected:
        raise ShapeError(f"{what} should be {list(expected)} for these params, got {given}",
                         op=op)


def _backprop_input_infer(types, params):
    ct, w = types
    op = "conv2d_backprop_input"
    dtype = require_same_dtype(op, types)
    _image(op, ct, "an NHWC cotangent")
    _image(op, w, "an HWIO filter")
    shape = params["input_shape"]
    _check_out(op, ct, _conv_out(op, shape, w.shape, params), "the cotangent")
    return (TensorType(shape, dtype),)


def _backprop_filter_infer(types, params):
    x, ct = types
    op = "conv2d_backprop_filter"
    dtype = require_same_dtype(op, types)
    _image(op, x)
    _image(op, ct, "an NHWC cotangent")
    shape = params["filter_shape"]
    _check_out(op, ct, _conv_out(op, x.shape, shape, params), "the cotangent")
    return (TensorType(shape, dtype),)


def _pool_out(op: str, x_shape, params) -> tuple[int, ...]:
    n, h, w, c = x_shape
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = params["ksize"], params["strides"], params["pads"]
    if max(pt, pb) >= kh or max(pl, pr) >= kw:
        # NOTE: so every window holds at least one element of the image (SAME padding
        # always does): a max or mean over padding alone has no meaning.
        raise ParamError(f"pads {list(params['pads'])} must be smaller than the window "
                         f"{[kh, kw]}", op=op)
    return (n, output_size(op, h, kh, sh, pt, pb), output_size(op, w, kw, sw, pl, pr), c)


def _pool_infer(op: str):
    def infer(types, params):
        (x,) = types
        _image(op, x)
        return (TensorType(_pool_out(op, x.shape, params), x.dtype),)
    return infer


def _pool_pair_infer(op: str):
    """(x, values of the pooled shape) -> the pooled shape (select), or x's (backprop)."""
    def infer(types, params):
        x, other = types
        require_same_dtype(op, types)
        _image(op, x)
        pooled = _pool_out(op, x.shape, params)
        if op.endswith("backprop"):
            _check_out(op, other, pooled, "the cotangent")
            return (x,)
        _check_out(op, other, x.shape, "the values to select from")
        return (TensorType(pooled, x.dtype),)
    return infer


def _avg_backprop_infer(types, params):
    (ct,) = types
    op = "avg_pool2d_backprop"
    _image(op, ct, "an NHWC cotangent")
    shape = params["input_shape"]
    _check_out(op, ct, _pool_out(op, shape, params), "the cotangent")
    return (TensorType(shape, ct.dtype),)


# ---- reference implementations -------------------------------------------------------------

def _quiet(impl):
    """IEEE results (inf, NaN) without NumPy's warnings, as the other ops' references."""
    def run(*args, **params):
        with np.errstate(all="ignore"):
            return impl(*args, **params)
    return run


def _compute(*arrays) -> tuple[np.ndarray, ...]:
    dtype = dt.as_dtype(arrays[0].dtype)
    compute = np.float32 if dtype.is_half else dtype.np_dtype
    return tuple(a.astype(compute, copy=False) for a in arrays)


def _result(value: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(value).astype(like.dtype, copy=False)


def _pad(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    pt, pb, pl, pr = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)


def _window(xp: np.ndarray, i: int, j: int, out_hw, strides, dilations=(1, 1)):
    """The view of padded ``xp`` that kernel offset (i, j) reads for every output pixel."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, strides, dilations
    return xp[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]


def _offsets(kh: int, kw: int):
    return [(i, j) for i in range(kh) for j in range(kw)]


def _im2col(x: np.ndarray, kh: int, kw: int, out_hw, strides, pads, dilations) -> np.ndarray:
    """Patches ``[n * oh * ow, kh * kw * c]``, row-major over (kh, kw, c) like HWIO."""
    xp = np.ascontiguousarray(_pad(x, pads))
    n, _, _, c = xp.shape
    (oh, ow), (sh, sw), (dh, dw) = out_hw, strides, dilations
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
        writeable=False)
    return view.reshape(n * oh * ow, kh * kw * c)       # one copy, in C


def _col2im(cols: np.ndarray, shape, kh: int, kw: int, out_hw, strides, pads, dilations):
    """The transpose of _im2col: add each patch element back where it was read from."""
    n, h, w, c = shape
    pt, pb, pl, pr = pads
    cols = cols.reshape(n, *out_hw, kh, kw, c)
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), cols.dtype)
    for i, j in _offsets(kh, kw):
        _window(xp, i, j, out_hw, strides, dilations)[...] += cols[:, :, :, i, j]
    return xp[:, pt: pt + h, pl: pl + w]


@_quiet
def _conv2d_impl(x, w, strides, pads, dilations):
    xc, wc = _compute(x, w)
    kh, kw, ci, co = w.shape
    out = _conv_out("conv2d", x.shape, w.shape, {"strides": strides, "pads": pads,
                                                   "dilations": dilations})
    cols = _im2col(xc, kh, kw, out[1:3], strides, pads, dilations)
    # NOTE: explicit sizes, not -1: reshape(-1, co) of an empty filter is ambiguous
    return _result((cols @ wc.reshape(kh * kw * ci, co)).reshape(out), x)


def _int8_conv2d_impl(x, w, strides, pads, dilations, pad_value):
    """Exact sums in int64 over the image padded with ``pad_value``, wrapped to int32."""
    kh, kw, ci, co = w.shape
    out = _conv_out("int8_conv2d", x.shape, w.shape, {"strides": strides, "pads": pads,
                                                      "dilations": dilations})
    xp = _pad(x.astype(np.int64), pads, pad_value)
    cols = _im2col(xp, kh, kw, out[1:3], strides, (0, 0, 0, 0), dilations)
    return (cols @ w.astype(np.int64).reshape(kh * kw * ci, co)).reshape(out).astype(np.int32)


@_quiet
def _backprop_input_impl(ct, w, input_shape, strides, pads, dilations):
    ctc, wc = _compute(ct, w)
    kh, kw, ci, co = w.shape
    n, oh, ow, _ = ct.shape
    # NOTE: explicit sizes, not -1: reshape(-1, co) of an empty array is ambiguous
    cols = ctc.reshape(n * oh * ow, co) @ wc.reshape(kh * kw * ci, co).T
    return _result(_col2im(cols, input_shape, kh, kw, ct.shape[1:3], strides, pads,
                           dilations), ct)


@_quiet
def _backprop_filter_impl(x, ct, filter_shape, strides, pads, dilations):
    xc, ctc = _compute(x, ct)
    kh, kw, _, co = filter_shape
    cols = _im2col(xc, kh, kw, ct.shape[1:3], strides, pads, dilations)
    rows = ct.shape[0] * ct.shape[1] * ct.shape[2]
    return _result((cols.T @ ctc.reshape(rows, co)).reshape(filter_shape), x)


def _first_max(xp: np.ndarray, ksize, out_hw, strides) -> np.ndarray:
    """For each window, the offset (row-major in the window) of its first maximum; a NaN
    counts as the maximum, so the first NaN wins, as in np.argmax (which this is)."""
    kh, kw = ksize
    return np.argmax(_im2col(xp, kh, kw, out_hw, strides, (0, 0, 0, 0), (1, 1)).reshape(
        *xp.shape[:1], *out_hw, kh * kw, xp.shape[3]), axis=3)


@_quiet
def _max_pool_impl(x, ksize, strides, pads):
    (xc,) = _compute(x)
    xp = _pad(xc, pads, -np.inf)
    out_hw = _pool_out("max_pool2d", x.shape, {"ksize": ksize, "strides": strides,
                                              "pads": pads})[1:3]
    out = None
    for i, j in _offsets(*ksize):
        window = _window(xp, i, j, out_hw, strides)
        # NOTE: -0.0 below +0.0, as the backends' maximum (np.maximum returns either).
        out = window.copy() if out is None else signed_maximum(out, window)
    return _result(out, x)


@_quiet
def _max_backprop_impl(x, ct, ksize, strides, pads):
    xc, ctc = _compute(x, ct)
    kh, kw = ksize
    where = _first_max(_pad(xc, pads, -np.inf), ksize, ct.shape[1:3], strides)
    hits = where[:, :, :, None, :] == np.arange(kh * kw)[:, None]
    cols = np.where(hits, ctc[:, :, :, None, :], 0).astype(ctc.dtype, copy=False)
    return _result(_col2im(cols, x.shape, kh, kw, ct.shape[1:3], strides, pads, (1, 1)), x)


@_quiet
def _max_select_impl(x, g, ksize, strides, pads):
    xc, gc = _compute(x, g)
    kh, kw = ksize
    out_hw = _pool_out("max_pool2d_select", x.shape, {"ksize": ksize, "strides": strides,
                                                     "pads": pads})[1:3]
    where = _first_max(_pad(xc, pads, -np.inf), ksize, out_hw, strides)
    cols = _im2col(gc, kh, kw, out_hw, strides, pads, (1, 1))
    cols = cols.reshape(*where.shape[:3], kh * kw, where.shape[3])
    return _result(np.take_along_axis(cols, where[:, :, :, None, :], axis=3)[:, :, :, 0], x)


def _window_counts(hw, ksize, strides, pads, dtype) -> np.ndarray:
    """How many image (not padding) elements each window holds: [1, oh, ow, 1]."""
    ones = _pad(np.ones((1, *hw, 1), dtype), pads)
    out_hw = _pool_out("avg_pool2d", (1, *hw, 1), {"ksize": ksize, "strides": strides,
                                                  "pads": pads})[1:3]
    return sum(_window(ones, i, j, out_hw, strides) for i, j in _offsets(*ksize))


@_quiet
def _avg_pool_impl(x, ksize, strides, pads):
    (xc,) = _compute(x)
    xp = _pad(xc, pads)
    out_hw = _pool_out("avg_pool2d", x.shape, {"ksize": ksize, "strides": strides,
                                              "pads": pads})[1:3]
    total = sum(_window(xp, i, j, out_hw, strides) for i, j in _offsets(*ksize))
    return _result(total / _window_counts(x.shape[1:3], ksize, strides, pads, xc.dtype), x)


@_quiet
def _avg_backprop_impl(ct, input_shape, ksize, strides, pads):
    (ctc,) = _compute(ct)
    n, h, w, c = input_shape
    pt, pb, pl, pr = pads
    share = ctc / _window_counts((h, w), ksize, strides, pads, ctc.dtype)
    dxp = np.zeros((n, h + pt + pb, w + pl + pr, c), ctc.dtype)
    for i, j in _offsets(*ksize):
        _window(dxp, i, j, ct.shape[1:3], strides)[...] += share
    return _result(dxp[:, pt: pt + h, pl: pl + w], ct)


# ---- the table rows ------------------------------------------------------------------------


CONV2D = declare(
    "conv2d", arity=2, infer=_conv2d_infer, impl=_conv2d_impl, params=_CONV_PARAMS,
    vjp=vjp_nn.conv2d_vjp,
    doc="conv2d[strides, pads, dilations](x: NHWC, w: HWIO) -> NHWC: cross-correlation; "
        "pads = (top, bottom, left, right)")
CONV2D_BACKPROP_INPUT = declare(
    "conv2d_backprop_input", arity=2, infer=_backprop_input_infer, impl=_backprop_input_impl,
    params={"input_shape": ParamSpec(_SHAPE4), **_CONV_PARAMS},
    vjp=vjp_nn.conv2d_backprop_input_vjp,
    doc="conv2d_backprop_input[input_shape, strides, pads, dilations](ct, w): the gradient "
        "of conv2d with respect to its input (a transposed convolution)")
CONV2D_BACKPROP_FILTER = declare(
    "conv2d_backprop_filter", arity=2, infer=_backprop_filter_infer,
    impl=_backprop_filter_impl, params={"filter_shape": ParamSpec(_SHAPE4), **_CONV_PARAMS},
    vjp=vjp_nn.conv2d_backprop_filter_vjp,
    doc="conv2d_backprop_filter[filter_shape, strides, pads, dilations](x, ct): the "
        "gradient of conv2d with respect to its filter")
MAX_POOL2D = declare(
    "max_pool2d", arity=1, infer=_pool_infer("max_pool2d"), impl=_max_pool_impl,
    params=_POOL_PARAMS, vjp=vjp_nn.max_pool2d_vjp,
    doc="max_pool2d[ksize, strides, pads](x: NHWC): the maximum of each window; padding "
        "is -inf")
MAX_POOL2D_BACKPROP = declare(
    "max_pool2d_backprop", arity=2, infer=_pool_pair_infer("max_pool2d_backprop"),
    impl=_max_backprop_impl, params=_POOL_PARAMS, vjp=vjp_nn.max_pool2d_backprop_vjp,
    doc="max_pool2d_backprop[ksize, strides, pads](x, ct) -> x's shape: each window's "
        "cotangent added at the window's first maximum")
MAX_POOL2D_SELECT = declare(
    "max_pool2d_select", arity=2, infer=_pool_pair_infer("max_pool2d_select"),
    impl=_max_select_impl, params=_POOL_PARAMS, vjp=vjp_nn.max_pool2d_select_vjp,
    doc="max_pool2d_select[ksize, strides, pads](x, g) -> pooled shape: g read at the "
        "first maximum of x in each window")
AVG_POOL2D = declare(
    "avg_pool2d", arity=1, infer=_pool_infer("avg_pool2d"), impl=_avg_pool_impl,
    params=_POOL_PARAMS, vjp=vjp_nn.avg_pool2d_vjp,
    doc="avg_pool2d[ksize, strides, pads](x: NHWC): the mean of each window's elements "
        "inside the image (padding is not counted)")
AVG_POOL2D_BACKPROP = declare(
    "avg_pool2d_backprop", arity=1, infer=_avg_backprop_infer, impl=_avg_backprop_impl,
    params={"input_shape": ParamSpec(_SHAPE4), **_POOL_PARAMS},
    vjp=vjp_nn.avg_pool2d_backprop_vjp,
    doc="avg_pool2d_backprop[input_shape, ksize, strides, pads](ct): each window's "
        "cotangent spread evenly over its image elements")
INT8_CONV2D = declare(
    "int8_conv2d", arity=2, infer=_int8_conv2d_infer, impl=_int8_conv2d_impl,
    params={**_CONV_PARAMS, "pad_value": ParamSpec(int_param, 0)},
    doc="int8_conv2d[strides, pads, dilations, pad_value](x: NHWC, w: HWIO) -> int32 NHWC: "
        "conv2d of int8 or uint8 operands (one dtype) with exact int32 sums (wrapping past "
        "int32), the padding filled with pad_value (the input's zero point)")
