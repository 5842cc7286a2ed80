"""``tf.contrib.layers``' regularizers: functions of a weight tensor returning a scalar
penalty, for ``weights_regularizer=``, ``kernel_regularizer=``,
``variable_scope(regularizer=...)`` (the penalty of each new variable goes to
``tf.GraphKeys.REGULARIZATION_LOSSES``) or ``apply_regularization``.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     w = tf.constant([3.0, -4.0])
...     penalty = tf.contrib.layers.l1_l2_regularizer(0.5, 0.1)(w)
...     float(tf.Session().run(penalty))        # 0.5 * 7 + 0.1 * 25 / 2
4.75
"""

from __future__ import annotations

import numbers

from .graph import get_default_graph
from .ops import nn_ops_table, ops
from .variables import GraphKeys

__all__ = ["apply_regularization", "l1_l2_regularizer", "l1_regularizer", "l2_regularizer",
           "sum_regularizer"]


def _check_scale(scale, what: str) -> float | None:
    """The scale as a float; None when it is 0 (the regularizer then gives no penalty)."""
    if isinstance(scale, numbers.Integral):
        raise ValueError(f"scale cannot be an integer: {scale!r} (write {scale}.0)")
    if not isinstance(scale, numbers.Real):
        raise TypeError(f"{what}'s scale must be a number, got {scale!r}")
    if scale < 0.0:
        raise ValueError(f"Setting a scale less than 0 on a regularizer: {scale}")
    return None if scale == 0.0 else float(scale)


def _no_penalty(weights):
    return None


def l1_regularizer(scale, scope=None):
    """``scale * sum(|w|)``."""
    factor = _check_scale(scale, "l1_regularizer")
    if factor is None:
        return _no_penalty

    def l1(weights):
        return ops["multiply"](factor, ops["reduce_sum"](ops["abs"](weights)),
                               name=scope or "l1_regularizer")
    return l1


def l2_regularizer(scale, scope=None):
    """``scale * sum(w ** 2) / 2`` (``scale * tf.nn.l2_loss(w)``)."""
    factor = _check_scale(scale, "l2_regularizer")
    if factor is None:
        return _no_penalty

    def l2(weights):
        return ops["multiply"](factor, nn_ops_table["l2_loss"](weights),
                               name=scope or "l2_regularizer")
    return l2


def sum_regularizer(regularizer_list, scope=None):
    """The sum of the penalties of ``regularizer_list`` (None entries left out)."""
    regularizers = [r for r in regularizer_list if r is not None]
    if not regularizers:
        return _no_penalty

    def summed(weights):
        penalties = [p for p in (r(weights) for r in regularizers) if p is not None]
        return ops["add_n"](penalties, name=scope or "sum_regularizer") if penalties else None
    return summed


def l1_l2_regularizer(scale_l1=1.0, scale_l2=1.0, scope=None):
    """``scale_l1 * sum(|w|) + scale_l2 * sum(w ** 2) / 2``."""
    _check_scale(scale_l1, "l1_l2_regularizer")
    _check_scale(scale_l2, "l1_l2_regularizer")
    return sum_regularizer([l1_regularizer(scale_l1), l2_regularizer(scale_l2)],
                           scope=scope or "l1_l2_regularizer")


def apply_regularization(regularizer, weights_list=None):
    """The sum of ``regularizer`` over ``weights_list`` (default: the ``tf.GraphKeys.WEIGHTS``
    collection), added to ``REGULARIZATION_LOSSES`` and returned."""
    graph = get_default_graph()
    if weights_list is None:
        weights_list = graph.get_collection(GraphKeys.WEIGHTS)
    if not weights_list:
        raise ValueError("No weights to regularize: pass weights_list or add variables to "
                         "tf.GraphKeys.WEIGHTS")
    with graph.name_scope("get_regularization_penalty"):
        penalties = [regularizer(w) for w in weights_list]
        penalties = [p if p is not None else ops["zeros"]([]) for p in penalties]
        total = ops["add_n"](penalties)
    graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, total)
    return total
