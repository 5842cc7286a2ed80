"""Sampled losses over a large output vocabulary: ``nce_loss`` (noise-contrastive
estimation, as the word2vec tutorial trains) and ``sampled_softmax_loss``, TensorFlow's
``nn_impl`` formulas.

Both score each example's ``num_true`` true classes and the ``num_sampled`` classes a
candidate sampler drew (shared by the batch) with the rows of ``weights`` and ``biases``
at those classes (an embedding lookup, so the gradient of a weight table is an
``IndexedSlices``), subtract ``log`` of each class's expected count (the sampling
correction), and then:

* ``nce_loss``: sigmoid cross-entropy with label ``1 / num_true`` for each true class and
  0 for each sampled one, summed per example;
* ``sampled_softmax_loss``: softmax cross-entropy over the true and sampled logits.

With ``remove_accidental_hits`` a sampled class equal to one of the example's true
classes gets a logit of ``-FLT_MAX`` (it drops out), as TensorFlow's
``compute_accidental_hits`` does (for a value sampled twice, only its last position).
"""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as dt
from ..ir.errors import ParamError, ShapeError
from ..ir.source import user_location
from . import math_ops as m
from .array_ops import concat, ones_like, reshape, stop_gradient, zeros_like
from .candidate_sampling import log_uniform, sample_candidates
from .embedding_ops import embedding_lookup
from .nn_ops import sigmoid_cross_entropy_with_logits, softmax_cross_entropy_with_logits
from .tracing import to_tensor

__all__ = ["nce_loss", "sampled_softmax_loss", "sampled_logits"]


def _fail(error, message: str, op: str):
    raise error(message, op=op, location=user_location())


def _accidental_hits(labels, sampled):
    """bool [batch, num_sampled]: sampled class j is one of example i's true classes
    (only the last position of a value sampled more than once)."""
    same = m.equal(reshape(sampled, (-1, 1)), reshape(sampled, (1, -1)))
    count = sampled.shape[0]
    later = np.triu(np.ones((count, count), bool), k=1)      # j' > j
    last = m.logical_not(m.reduce_any(m.logical_and(same, later), axis=1))
    matches = m.equal(reshape(labels, labels.shape + (1,)), reshape(sampled, (1, 1, count)))
    return m.logical_and(m.reduce_any(matches, axis=1), reshape(last, (1, count)))


def sampled_logits(weights, biases, labels, inputs, num_sampled: int, num_classes: int,
                   num_true: int = 1, sampled_values=None, subtract_log_q: bool = True,
                   remove_accidental_hits: bool = False, partition_strategy: str = "mod",
                   key=None, op: str = "sampled_logits"):
    """``(logits [batch, num_true + num_sampled], labels of the same shape)``: TF's
    ``_compute_sampled_logits``. ``sampled_values`` is a sampler's triple; None draws
    it with the log-uniform sampler (``unique=True``) from ``key``."""
    inputs = to_tensor(inputs)
    labels = m.cast(to_tensor(labels), dt.int64)
    if inputs.ndim != 2:
        _fail(ShapeError, f"inputs must be [batch_size, dim], got {inputs.type}", op)
    if labels.ndim == 1 and num_true == 1:
        labels = reshape(labels, (-1, 1))
    if labels.shape != (inputs.shape[0], num_true):
        _fail(ShapeError, f"labels must be [batch_size={inputs.shape[0]}, num_true="
              f"{num_true}], got {list(labels.shape)}", op)
    if sampled_values is None:
        if key is None:
            _fail(ParamError, "pass sampled_values (a candidate sampler's result) or a "
                  "random key to draw them", op)
        sampled_values = sample_candidates(log_uniform(num_classes), labels, num_true,
                                           num_sampled, True, key, op)
    sampled, true_expected, sampled_expected = (stop_gradient(to_tensor(v))
                                                for v in sampled_values)
    sampled = m.cast(sampled, dt.int64)
    if sampled.shape != (num_sampled,):
        _fail(ShapeError, f"sampled_values must hold {num_sampled} candidates, got shape "
              f"{list(sampled.shape)}", op)
    flat_labels = reshape(labels, (-1,))
    count = flat_labels.shape[0]
    all_ids = concat([flat_labels, sampled], 0)
    all_w = m.cast(embedding_lookup(weights, all_ids, partition_strategy), inputs.dtype)
    all_b = m.cast(embedding_lookup(biases, all_ids, partition_strategy), inputs.dtype)
    if all_w.ndim != 2 or all_w.shape[1] != inputs.shape[1] or all_b.ndim != 1:
        _fail(ShapeError, f"weights must be [num_classes, {inputs.shape[1]}] and biases "
              f"[num_classes] (rows {list(all_w.shape[1:])} and {list(all_b.shape[1:])})", op)
    true_w, sampled_w = all_w[:count], all_w[count:]
    true_b, sampled_b = all_b[:count], all_b[count:]
    dim = inputs.shape[1]
    row_dots = reshape(inputs, (-1, 1, dim)) * reshape(true_w, (-1, num_true, dim))
    true_logits = m.reduce_sum(row_dots, axis=2) + reshape(true_b, (-1, num_true))
    sampled_logits = m.matmul(inputs, sampled_w, transpose_b=True) + sampled_b
    if remove_accidental_hits:
        lowest = float(np.finfo(np.float32).min)     # TF's weights are float32's -max
        hits = _accidental_hits(labels, sampled)
        sampled_logits = sampled_logits + m.cast(m.where(hits, lowest, 0.0),
                                                 sampled_logits.dtype)
    if subtract_log_q:
        true_logits = true_logits - m.log(m.cast(true_expected, true_logits.dtype))
        sampled_logits = sampled_logits - m.log(m.cast(sampled_expected,
                                                       sampled_logits.dtype))
    logits = concat([true_logits, sampled_logits], 1)
    targets = concat([ones_like(true_logits) / float(num_true), zeros_like(sampled_logits)], 1)
    return logits, targets


def nce_loss(weights, biases, labels, inputs, num_sampled: int, num_classes: int,
             num_true: int = 1, sampled_values=None, remove_accidental_hits: bool = False,
             partition_strategy: str = "mod", name: str = "nce_loss", key=None):
    """Noise-contrastive estimation loss per example, ``[batch_size]``."""
    logits, targets = sampled_logits(weights, biases, labels, inputs, num_sampled,
                                     num_classes, num_true, sampled_values, True,
                                     remove_accidental_hits, partition_strategy, key,
                                     "nce_loss")
    losses = sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    return m.reduce_sum(losses, axis=1)


def sampled_softmax_loss(weights, biases, labels, inputs, num_sampled: int,
                         num_classes: int, num_true: int = 1, sampled_values=None,
                         remove_accidental_hits: bool = True, partition_strategy: str = "mod",
                         name: str = "sampled_softmax_loss", key=None):
    """Sampled softmax cross-entropy per example, ``[batch_size]``."""
    logits, targets = sampled_logits(weights, biases, labels, inputs, num_sampled,
                                     num_classes, num_true, sampled_values, True,
                                     remove_accidental_hits, partition_strategy, key,
                                     "sampled_softmax_loss")
    return softmax_cross_entropy_with_logits(labels=stop_gradient(targets), logits=logits)
