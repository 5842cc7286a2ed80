"""Clipping by norm on traced values (TF1's ``tf.clip_by_norm`` records it in a graph;
``embedding_lookup``'s ``max_norm`` uses it on each row)."""

from __future__ import annotations

from . import math_ops as m
from .array_ops import ones_like
from .tracing import to_tensor


def clip_by_norm(t, clip_norm, axes=None, name=None):
    """``t * clip_norm / max(l2norm(t), clip_norm)`` with the norm over ``axes`` (all by
    default): values whose norm is at most ``clip_norm`` are unchanged. A zero norm
    gives no NaN, in the value or its gradient (TensorFlow's two-``where`` form: sqrt
    never sees 0)."""
    t = to_tensor(t)
    # NOTE: no axes (a lookup of scalar rows) clips each element, as TensorFlow's empty
    # reduction does; reduce_sum's axis=() would sum everything
    empty = isinstance(axes, (list, tuple)) and not axes
    squares = t * t if empty else m.reduce_sum(t * t, axis=axes, keepdims=True)
    positive = m.greater(squares, 0.0)
    safe = m.where(positive, squares, ones_like(squares))
    norm = m.where(positive, m.sqrt(safe), squares)
    clip_norm = m.cast(to_tensor(clip_norm), t.dtype)
    return t * clip_norm / m.maximum(norm, clip_norm)
