"""``tracejit.nn``: activations and small composites, under TensorFlow's names."""

from __future__ import annotations

from ..ir import dtypes as dt
from . import math_ops as m
from .array_ops import stop_gradient
from .tracing import to_tensor

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
    shifted = m.subtract(x, stop_gradient(m.reduce_max(x, axis=axis, keepdims=True)))
    e = m.exp(shifted)
    return m.divide(e, m.reduce_sum(e, axis=axis, keepdims=True))


def log_softmax(logits, axis=-1, name=None):
    x = to_tensor(logits)
    x = x if x.dtype.is_float else m.cast(x, dt.float32)
    shifted = m.subtract(x, stop_gradient(m.reduce_max(x, axis=axis, keepdims=True)))
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
