"""Gradient clipping by norm: ``tf.clip_by_global_norm``, ``tf.clip_by_norm``,
``tf.clip_by_average_norm``, ``tf.global_norm`` with TensorFlow 1.x's formulas.

Each is one graph Operation whose function is written with tracejit's math, so a whole
list of gradients is clipped by one recorded op (and the compiled step fuses it).

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     grads = [tf.constant([3.0, 4.0]), None, tf.constant([12.0])]
...     clipped, norm = tf.clip_by_global_norm(grads, 6.5)
...     with tf.Session() as sess:
...         sess.run([clipped[0], clipped[1], norm])
[array([1.5, 2. ], dtype=float32), None, array(13., dtype=float32)]
"""

from __future__ import annotations

from ...ir import dtypes as dt
from ...ir.errors import DTypeError
from ...ir.source import user_location
from ...trace import array_ops, math_ops, nn_ops
from ...trace import clip_ops as trace_clip_ops
from ...trace.indexed_slices import IndexedSlices
from .graph import Tensor
from .ops import convert_to_tensor, graph_arg, graph_op

__all__ = ["clip_by_global_norm", "clip_by_norm", "clip_by_average_norm", "global_norm"]


def _tensor_list(t_list, op: str) -> list:
    """``t_list`` as a list of graph tensors (None entries kept, an IndexedSlices kept
    whole); a single tensor is the user's mistake TensorFlow rejects too."""
    if isinstance(t_list, (Tensor, str, bytes, IndexedSlices)) or \
            not hasattr(t_list, "__iter__") or hasattr(t_list, "_graph_element"):
        raise TypeError(f"{op}: `t_list` should be a sequence of tensors. Received "
                        f"{type(t_list).__name__} (at {user_location()})")
    return [None if t is None else _as_tensor_or_slices(t) for t in t_list]


def _as_tensor_or_slices(t):
    if isinstance(t, IndexedSlices):
        return IndexedSlices(convert_to_tensor(t.values), t.indices, t.dense_shape)
    return convert_to_tensor(graph_arg(t))


def _values_of(t):
    """What is clipped and measured: an IndexedSlices' rows as they are (repeated
    indices not summed), as in TensorFlow."""
    return t.values if isinstance(t, IndexedSlices) else t


def _like(t, clipped):
    return IndexedSlices(clipped, t.indices, t.dense_shape) \
        if isinstance(t, IndexedSlices) else clipped


def _check_one_dtype(tensors: list, op: str) -> None:
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        names = ", ".join(t.dtype.name for t in tensors)
        raise DTypeError(f"{op}: the tensors in t_list have types [{names}] that don't all "
                         "match", op=op, location=user_location())


def _norm_of(values):
    """sqrt(2 * sum of each tensor's l2_loss): TensorFlow's global norm."""
    half_squared = math_ops.reduce_sum(array_ops.stack([nn_ops.l2_loss(v) for v in values]))
    return math_ops.sqrt(half_squared * 2.0)


def global_norm(t_list, name=None):
    """sqrt(sum(l2norm(t)**2 for t in t_list)), None entries skipped."""
    present = [_values_of(t) for t in _tensor_list(t_list, "global_norm") if t is not None]
    _check_one_dtype(present, "global_norm")
    return graph_op(_norm_of, "GlobalNorm")(present, name=name or "global_norm")


def _clip_by_global_norm_fn(values, clip_norm, use_norm):
    norm = _norm_of(values) if use_norm is None else array_ops.identity(use_norm)
    dtype = norm.dtype
    clip = math_ops.cast(clip_norm, dtype)
    # NOTE: TensorFlow's formula: a finite norm scales by clip/max(norm, clip); adding
    # (norm - norm) makes the scale NaN when the norm is inf or NaN, as TF does.
    scale = clip * math_ops.minimum(1.0 / norm, math_ops.cast(1.0, dtype) / clip)
    scale = scale + (norm - norm)
    return [v * math_ops.cast(scale, v.dtype) for v in values] + [norm]



def clip_by_global_norm(t_list, clip_norm, use_norm=None, name=None):
    """``(list_clipped, global_norm)``: every tensor scaled by
    ``clip_norm / max(global_norm, clip_norm)``; None entries stay None. With
    ``use_norm`` that norm is used instead of computing one."""
    tensors = _tensor_list(t_list, "clip_by_global_norm")
    present = [t for t in tensors if t is not None]
    if use_norm is None:
        _check_one_dtype(present, "clip_by_global_norm")
    else:
        use_norm = convert_to_tensor(graph_arg(use_norm))
    outs = graph_op(_clip_by_global_norm_fn, "ClipByGlobalNorm")(
        [_values_of(t) for t in present], graph_arg(clip_norm), use_norm,
        name=name or "clip_by_global_norm")
    clipped = iter(outs[:-1])
    return [None if t is None else _like(t, next(clipped)) for t in tensors], outs[-1]


def _clip_by_norm_fn(t, clip_norm, axes=None):
    return trace_clip_ops.clip_by_norm(t, clip_norm, axes)


def clip_by_norm(t, clip_norm, axes=None, name=None):
    """``t * clip_norm / max(l2norm(t, axes), clip_norm)``: the L2 norm over ``axes``
    (all axes when None) is at most ``clip_norm``."""
    t = _as_tensor_or_slices(t)
    if not t.dtype.is_float:
        raise DTypeError(f"clip_by_norm needs a floating-point tensor, got {t.dtype.name}",
                         op="clip_by_norm", location=user_location())
    return _like(t, graph_op(_clip_by_norm_fn, "ClipByNorm")(
        _values_of(t), graph_arg(clip_norm), axes=axes, name=name or "clip_by_norm"))


def _clip_by_average_norm_fn(t, clip_norm):
    t = array_ops.identity(t)
    count = math_ops.cast(array_ops.size(t), dt.float32)
    inverse_norm = math_ops.rsqrt(math_ops.reduce_sum(t * t))
    clip = math_ops.cast(clip_norm, t.dtype)
    return t * clip * math_ops.minimum(inverse_norm * math_ops.cast(count, t.dtype),
                                       math_ops.cast(1.0, t.dtype) / clip)



def clip_by_average_norm(t, clip_norm, name=None):
    """``t * clip_norm / max(l2norm(t) / size(t), clip_norm)`` (deprecated in TF too)."""
    t = convert_to_tensor(graph_arg(t))
    return graph_op(_clip_by_average_norm_fn, "ClipByAverageNorm")(
        t, graph_arg(clip_norm), name=name or "clip_by_average_norm")
