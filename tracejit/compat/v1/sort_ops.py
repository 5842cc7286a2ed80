"""``tf.cumsum``, ``tf.cumprod``, ``tf.sort``, ``tf.argsort``, ``tf.nn.top_k`` and
``tf.nn.in_top_k`` in a TF1 graph (also under ``tf.math``): tracejit's functions
(trace/sort_ops.py) recorded as Operations with TensorFlow's op types, so
``gradient_override_map`` finds them by those names.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None, 4])
...     best = tf.nn.top_k(x, 2)
...     with tf.Session() as sess:
...         sess.run(best.indices, {x: [[1.0, 3.0, 3.0, 2.0]]}).tolist()
[[1, 2]]
"""

from __future__ import annotations

from ...ir import dtypes as dt
from ...trace import sort_ops as core
from .ops import graph_op

__all__ = ["cumsum", "cumprod", "sort", "argsort", "top_k", "in_top_k"]

TopKV2 = core.TopKV2
cumsum = graph_op(core.cumsum, "Cumsum")
cumprod = graph_op(core.cumprod, "Cumprod")
sort = graph_op(core.sort, "Sort")
argsort = graph_op(core.argsort, "ArgSort")
in_top_k = graph_op(core.in_top_k, "InTopKV2")
_record_top_k = graph_op(core.top_k, "TopKV2")


def top_k(input, k=1, sorted=True, name=None, index_type=dt.int32) -> TopKV2:  # noqa: A002
    """TensorFlow's ``TopKV2(values, indices)`` of graph tensors (see core.top_k)."""
    values, indices = _record_top_k(input, k, sorted, index_type=index_type,
                                    name=name or "TopKV2")
    return TopKV2(values, indices)
