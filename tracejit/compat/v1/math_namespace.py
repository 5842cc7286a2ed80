"""``tf.math``: the TF1 ops TensorFlow also files under ``tf.math`` (``tf.math.exp`` is
``tf.exp``), found by name in TensorFlow 2.21's public-name list, as ops.py derives
``tf.*``; plus what is defined beside the op table (top_k, in_top_k, cumsum, ...)."""

from __future__ import annotations

from . import sort_ops
from .coverage import tensorflow_names
from .ops import ops

_MATH = sorted(name.split(".")[2] for name in tensorflow_names()[1]
               if name.startswith("tf.math.") and name.count(".") == 2)
_FOUND = {**ops, **{name: getattr(sort_ops, name) for name in sort_ops.__all__}}
globals().update({name: _FOUND[name] for name in _MATH if name in _FOUND})
__all__ = sorted(name for name in _MATH if name in _FOUND)
