"""``tracejit.nn``: activations, convolution and pooling, normalization, dropout and
losses, under TensorFlow's names (TF 2 signatures that also accept TF 1.x spellings)."""

from __future__ import annotations

import math
import secrets

import numpy as np

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.errors import ParamError, ShapeError, TracejitError
from ..ir.source import user_location
from . import math_ops as m
from . import random_ops
from .array_ops import reshape, squeeze, stop_gradient, transpose
from .tracing import bind, to_tensor
from .values import Tensor

relu = m.relu
sigmoid = m.sigmoid
tanh = m.tanh


def relu6(features, name=None):
    return m.minimum(m.relu(features), 6)   # a weak int: integer features stay integers


def leaky_relu(features, alpha=0.2, name=None):
    x = to_tensor(features)
    return m.where(x > 0, x, x * alpha)


def elu(features, name=None):
    x = to_tensor(features)
    return m.where(x > 0, x, m.expm1(x))


def softplus(features, name=None):
    """log(1 + exp(x)) computed without overflow."""
    x = to_tensor(features)
    return m.add(m.relu(x), m.log1p(m.exp(m.negative(m.abs(x)))))


def gelu(features, approximate=False, name=None):
    x = to_tensor(features)
    if approximate:
        inner = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + m.tanh(inner))
    return 0.5 * x * (1.0 + m.erf(x * 0.7071067811865476))


def silu(features, name=None):
    x = to_tensor(features)
    return x * m.sigmoid(x)


swish = silu


def softmax(logits, axis=-1, name=None):
    x = to_tensor(logits)
    x = x if x.dtype.is_float else m.cast(x, dt.float32)
    shifted = m.subtract(x, m.exp_shift(x, axis, finite=False))
    e = m.exp(shifted)
    return m.divide(e, m.reduce_sum(e, axis=axis, keepdims=True))


def log_softmax(logits, axis=-1, name=None):
    x = to_tensor(logits)
    x = x if x.dtype.is_float else m.cast(x, dt.float32)
    shifted = m.subtract(x, m.exp_shift(x, axis, finite=False))
    return m.subtract(shifted, m.log(m.reduce_sum(m.exp(shifted), axis=axis, keepdims=True)))


def bias_add(value, bias, data_format=None, name=None):
    x = to_tensor(value)
    if data_format == "NCHW":
        from .array_ops import reshape
        b = to_tensor(bias)
        return m.add(x, reshape(b, (-1,) + (1,) * (x.ndim - 2)))
    return m.add(x, bias)


def l2_loss(t, name=None):
    """sum(t ** 2) / 2, as in TensorFlow."""
    return m.reduce_sum(m.square(t)) * 0.5


def l2_normalize(x, axis=None, epsilon=1e-12, name=None):
    x = to_tensor(x)
    sq = m.reduce_sum(m.square(x), axis=axis, keepdims=True)
    return m.multiply(x, m.rsqrt(m.maximum(sq, epsilon)))


# ---- losses -------------------------------------------------------------------------------------

def softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, dim=-1,
                                      axis=None, name=None):
    """-sum(labels * log_softmax(logits)) over the class axis, per example.
    Gradients flow into labels too (TF 1.x's ``_v2`` behaviour)."""
    if _sentinel is not None:
        raise ValueError("softmax_cross_entropy_with_logits takes keyword arguments only: "
                         "labels=..., logits=...")
    axis = dim if axis is None else axis
    logits = to_tensor(logits)
    labels = m.cast(to_tensor(labels), logits.dtype)
    return m.negative(m.reduce_sum(m.multiply(labels, log_softmax(logits, axis)), axis=axis))


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits


def sparse_softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None,
                                             name=None):
    """Cross-entropy against integer class labels: -log_softmax(logits)[label]."""
    if _sentinel is not None:
        raise ValueError("sparse_softmax_cross_entropy_with_logits takes keyword arguments "
                         "only: labels=..., logits=...")
    from .array_ops import one_hot
    logits = to_tensor(logits)
    labels = to_tensor(labels)
    if not labels.dtype.is_integer:
        raise TypeError(f"labels must be integers, got {labels.dtype.name}")
    picked = one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return m.negative(m.reduce_sum(m.multiply(picked, log_softmax(logits)), axis=-1))


def sigmoid_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, name=None):
    """max(x, 0) - x * z + log(1 + exp(-|x|)), stable for large |x| (TensorFlow's form)."""
    logits = to_tensor(logits)
    labels = m.cast(to_tensor(labels), logits.dtype)
    return m.add(m.subtract(m.relu(logits), m.multiply(logits, labels)),
                 m.log1p(m.exp(m.negative(m.abs(logits)))))


# ---- convolution and pooling --------------------------------------------------------------------
# NOTE: the IR ops take NHWC images and explicit pads; NCHW is handled here by transposing
# in and out (the transposes fold into neighbours or cost one copy), and "SAME"/"VALID"
# become pads by TensorFlow's rule, so the IR has one spelling per meaning.

def _fail(error, message: str, op: str):
    raise error(message, op=op, location=user_location())


def _layout(data_format, op: str) -> bool:
    """True for channels-first (NCHW)."""
    if data_format in (None, "NHWC", "channels_last"):
        return False
    if data_format in ("NCHW", "channels_first"):
        return True
    _fail(ParamError, f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}", op)


def _pair(value, what: str, channels_first: bool, op: str, default=1) -> tuple[int, int]:
    """An int, 2 ints, or 4 ints in the data format's order with 1 for batch and channels."""
    value = default if value is None else value
    values = [int(v) for v in np.asarray(value).reshape(-1)]
    if len(values) == 1:
        values *= 2
    elif len(values) == 4:
        outer = (values[0], values[1]) if channels_first else (values[0], values[3])
        if outer != (1, 1):
            _fail(ParamError, f"{what} {values} must be 1 on the batch and channel axes", op)
        values = values[2:] if channels_first else values[1:3]
    if len(values) != 2 or min(values) < 1:
        _fail(ParamError, f"{what} must be a positive int, 2 ints or 4 ints, got {value!r}", op)
    return values[0], values[1]


def same_padding(size: int, window: int, stride: int, dilation: int = 1) -> list[int]:
    """TensorFlow's "SAME" padding of one axis: [before, after], the extra one after."""
    total = max((math.ceil(size / stride) - 1) * stride + (window - 1) * dilation + 1 - size, 0)
    return [total // 2, total - total // 2]


def _pads(padding, hw, windows, strides, dilations, channels_first, op):
    """(top, bottom, left, right) from "SAME", "VALID", an int, [[t, b], [l, r]], or
    TF's explicit 4 pairs in the data format's order."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return (0, 0, 0, 0)
        if mode != "SAME":
            _fail(ParamError, f"padding must be 'SAME', 'VALID' or explicit, got {padding!r}",
                  op)
        pads = []
        for size, k, s, d in zip(hw, windows, strides, dilations, strict=True):
            pads += same_padding(size, k, s, d)
        return tuple(pads)
    if padding is None:
        _fail(ParamError, "padding is required: 'SAME', 'VALID' or explicit pads", op)
    flat = [int(v) for v in np.asarray(padding).reshape(-1)]
    if len(flat) == 1:
        flat *= 4
    elif len(flat) == 8:
        outer = flat[0:2] + flat[2:4] if channels_first else flat[0:2] + flat[6:8]
        if any(outer):
            _fail(ParamError, f"explicit padding {padding!r} must not pad batch or channels", op)
        flat = flat[4:8] if channels_first else flat[2:6]
    if len(flat) != 4 or min(flat) < 0:
        _fail(ParamError, f"explicit padding must be non-negative [[top, bottom], [left, "
              f"right]], got {padding!r}", op)
    return tuple(flat)


def _image(value, channels_first: bool, op: str) -> Tensor:
    x = to_tensor(value)
    x = x if x.dtype.is_float else m.cast(x, dt.float32)
    if x.ndim != 4:
        _fail(ShapeError, f"expects a rank-4 image batch, got {x.type}", op)
    return transpose(x, (0, 2, 3, 1)) if channels_first else x


def _restore(y: Tensor, channels_first: bool) -> Tensor:
    return transpose(y, (0, 3, 1, 2)) if channels_first else y


def conv2d(input, filters=None, strides=1, padding=None, data_format="NHWC", dilations=None,
           name=None, *, filter=None, use_cudnn_on_gpu=None):
    """2-D cross-correlation of ``input`` [N, H, W, C] (NCHW with ``data_format``) with
    ``filters`` [KH, KW, C, O]. ``strides``/``dilations``: an int, 2 ints or TF's 4.

    >>> import numpy as np, tracejit as tj
    >>> x = np.ones((1, 4, 4, 1), np.float32)
    >>> tj.nn.conv2d(x, np.ones((3, 3, 1, 2), np.float32), 1, "SAME").numpy()[0, :2, :2, 0]
    array([[4., 6.],
           [6., 9.]], dtype=float32)
    """
    first = _layout(data_format, "conv2d")
    x = _image(input, first, "conv2d")
    w = to_tensor(filters if filters is not None else filter)
    (x, w), _ = m.promote(x, w)
    if w.ndim != 4:
        _fail(ShapeError, f"filters must be [height, width, in, out], got {w.type}", "conv2d")
    s = _pair(strides, "strides", first, "conv2d")
    d = _pair(dilations, "dilations", first, "conv2d")
    pads = _pads(padding, x.shape[1:3], w.shape[:2], s, d, first, "conv2d")
    y = bind(ops.CONV2D, [x, w], {"strides": s, "pads": pads, "dilations": d})
    return _restore(y, first)


def conv2d_transpose(input, filters=None, output_shape=None, strides=1, padding="SAME",
                     data_format="NHWC", dilations=None, name=None, *, value=None, filter=None):
    """The gradient of conv2d with respect to its input: ``filters`` is [KH, KW, O, C]
    for an ``input`` with C channels and a result of ``output_shape``."""
    first = _layout(data_format, "conv2d_transpose")
    x = _image(input if input is not None else value, first, "conv2d_transpose")
    w = to_tensor(filters if filters is not None else filter)
    (x, w), _ = m.promote(x, w)
    shape = [int(v) for v in np.asarray(output_shape).reshape(-1)]
    if first:
        shape = [shape[0], shape[2], shape[3], shape[1]]
    s = _pair(strides, "strides", first, "conv2d_transpose")
    d = _pair(dilations, "dilations", first, "conv2d_transpose")
    pads = _pads(padding, shape[1:3], w.shape[:2], s, d, first, "conv2d_transpose")
    y = bind(ops.CONV2D_BACKPROP_INPUT, [x, w],
             {"input_shape": tuple(shape), "strides": s, "pads": pads, "dilations": d})
    return _restore(y, first)


def _pool(op_name):
    def pool(input, ksize, strides, padding, data_format="NHWC", name=None):
        first = _layout(data_format, op_name)
        x = _image(input, first, op_name)
        k = _pair(ksize, "ksize", first, op_name)
        s = _pair(strides, "strides", first, op_name)
        pads = _pads(padding, x.shape[1:3], k, s, (1, 1), first, op_name)
        y = bind(ops.OPS[op_name], [x], {"ksize": k, "strides": s, "pads": pads})
        return _restore(y, first)
    pool.__name__ = op_name
    return pool


max_pool2d = _pool("max_pool2d")
avg_pool2d = _pool("avg_pool2d")
max_pool2d.__doc__ = """The maximum of each ``ksize`` window (padding never wins)."""
avg_pool2d.__doc__ = """The mean of each ``ksize`` window over the elements inside the
image (with SAME padding the border windows average fewer elements, as in TensorFlow)."""


def max_pool(value=None, ksize=None, strides=None, padding=None, data_format="NHWC",
             name=None, input=None):
    """TF 1.x's ``tf.nn.max_pool`` (``value`` or ``input``)."""
    return max_pool2d(value if value is not None else input, ksize, strides, padding,
                      data_format)


def avg_pool(value=None, ksize=None, strides=None, padding=None, data_format="NHWC",
             name=None, input=None):
    """TF 1.x's ``tf.nn.avg_pool`` (``value`` or ``input``)."""
    return avg_pool2d(value if value is not None else input, ksize, strides, padding,
                      data_format)


def flatten(x, name=None):
    """[batch, ...] -> [batch, everything else]."""
    x = to_tensor(x)
    return reshape(x, (x.shape[0] if x.ndim else 1, -1))


# ---- normalization ------------------------------------------------------------------------------

def moments(x, axes, shift=None, keepdims=False, name=None, keep_dims=None):
    """(mean, variance) over ``axes``; halves are computed in float32, as in TensorFlow."""
    x = to_tensor(x)
    keepdims = keep_dims if keep_dims is not None else keepdims
    wide = m.cast(x, dt.float32) if x.dtype.is_half or not x.dtype.is_float else x
    axes = [axes] if isinstance(axes, int) else list(axes)
    mean = m.reduce_mean(wide, axes, keepdims=True)
    variance = m.reduce_mean(m.squared_difference(wide, stop_gradient(mean)), axes,
                             keepdims=True)
    if not keepdims:
        mean, variance = squeeze(mean, axes), squeeze(variance, axes)
    out = x.dtype if x.dtype.is_float else dt.float32
    return m.cast(mean, out), m.cast(variance, out)


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon, name=None):
    """``(x - mean) / sqrt(variance + eps) * scale + offset`` (offset, scale may be None)."""
    inv = m.rsqrt(m.add(variance, variance_epsilon))
    if scale is not None:
        inv = m.multiply(inv, scale)
    shift = m.negative(m.multiply(mean, inv))
    if offset is not None:
        shift = m.add(shift, offset)
    return m.add(m.multiply(x, inv), shift)


# ---- dropout ------------------------------------------------------------------------------------
# NOTE: without an explicit key, dropout draws from one module-level generator whose state
# is a Variable: inside @jit it becomes a captured input and its advance an output, so each
# call of a compiled step gets a fresh mask with no retrace.

_RNG = []


def _generator():
    if not _RNG:
        from .variables import Variable
        seed = secrets.randbits(31)
        _RNG.append(Variable(np.asarray(random_ops.key(seed)), name="nn/dropout_rng",
                             trainable=False))
    return _RNG[0]


def set_dropout_seed(seed: int) -> None:
    """Restart the generator that ``dropout`` uses when given no key."""
    _generator().load(np.asarray(random_ops.key(int(seed))))


def dropout_key():
    """The next key of the module-level generator (and advance it)."""
    state = _generator()
    keys = random_ops.split(state.read_value(), 2)
    state.assign(keys[0])
    return keys[1]


def dropout(x, rate=None, key=None, training=True, noise_shape=None, seed=None, name=None,
            keep_prob=None):
    """Zero each element with probability ``rate`` (or keep it with ``keep_prob``) and
    scale the kept ones by 1 / keep_prob. ``training`` is a Python bool or a bool tensor
    (False: the identity). ``key`` is a ``tracejit.random`` key; without one the
    module-level generator's next key is used (``set_dropout_seed`` restarts it; ``seed``
    folds a static integer into that key)."""
    x = to_tensor(x)
    if training is False:
        return x
    if (rate is None) == (keep_prob is None):
        _fail(ParamError, "give exactly one of rate and keep_prob", "dropout")
    keep = keep_prob if rate is None else (m.subtract(1.0, rate) if isinstance(rate, Tensor)
                                           else 1.0 - float(rate))
    if not isinstance(keep, Tensor):
        keep = float(keep)
        if not 0.0 < keep <= 1.0:
            _fail(ParamError, f"keep probability must be in (0, 1], got {keep}", "dropout")
        if keep == 1.0:
            return x
    if key is None:
        key = dropout_key()
        if seed is not None:
            key = random_ops.fold_in(key, int(seed) & 0x7FFFFFFF)
    shape = x.shape if noise_shape is None else tuple(
        d if d is not None else x.shape[i] for i, d in enumerate(noise_shape))
    if isinstance(keep, float):
        # NOTE: one integer compare per element on the raw bits: P(bits < t) = keep for
        # bits uniform over int32 and t = keep * 2^32 - 2^31; it fuses with the select.
        threshold = min(round(keep * 2.0 ** 32) - 2 ** 31, 2 ** 31 - 1)
        kept = m.less(random_ops.bits(key, shape), np.int32(threshold))
        dropped = m.where(kept, m.multiply(x, 1.0 / keep), 0.0)
    else:
        kept = m.less(random_ops.uniform(key, shape), keep)
        dropped = m.where(kept, m.divide(x, m.cast(keep, x.dtype)), 0.0)
    if training is True:
        return dropped
    try:
        return m.where(to_tensor(training), dropped, x)
    except TracejitError as err:
        raise err.at(user_location()) from None
