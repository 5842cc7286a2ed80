"""Sequence losses: ``tf.contrib.seq2seq.sequence_loss`` and the older
``tf.contrib.legacy_seq2seq.sequence_loss_by_example`` / ``sequence_loss`` (also
``tf.nn.seq2seq`` in TF 0.x code), with TensorFlow 1's reductions.

>>> import numpy as np, tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     logits = tf.constant(np.zeros((2, 3, 4), np.float32))       # uniform over 4 classes
...     loss = tf.contrib.seq2seq.sequence_loss(logits, tf.zeros([2, 3], tf.int32),
...                                             tf.ones([2, 3]))
...     with tf.Session() as sess:
...         round(float(sess.run(loss)), 6) == round(float(np.log(4)), 6)
True
"""

from __future__ import annotations

import types

from ...ir import dtypes as dt
from ...trace import array_ops, math_ops, nn_ops
from .graph import get_default_graph
from .ops import convert_to_tensor, graph_arg, graph_op, ops

__all__ = ["sequence_loss", "sequence_loss_by_example", "legacy_sequence_loss", "seq2seq",
           "legacy_seq2seq"]


def _weighted_mean(total, weights, axis):
    """``total / sum(weights)``, 0 where the weights sum to 0 (TF's div_no_nan)."""
    size = math_ops.reduce_sum(weights, axis=axis)
    empty = math_ops.equal(size, 0)
    safe = math_ops.where(empty, math_ops.cast(1, size.dtype), size)
    return math_ops.where(empty, math_ops.cast(0, total.dtype), total / safe)


def _per_count(total, weights, axis):
    """``total / count_nonzero(weights)``, 0 for no nonzero weight."""
    return _weighted_mean(total, math_ops.cast(math_ops.not_equal(weights, 0), total.dtype),
                          axis)


def _sequence_loss(crossent, weights, average_across_timesteps, average_across_batch,
                   sum_over_timesteps, sum_over_batch):
    crossent = crossent * weights
    if average_across_timesteps and average_across_batch:
        return _weighted_mean(math_ops.reduce_sum(crossent), weights, None)
    if sum_over_timesteps and sum_over_batch:
        return _per_count(math_ops.reduce_sum(crossent), weights, None)
    if average_across_timesteps or average_across_batch:
        axis = 0 if average_across_batch else 1
        return _weighted_mean(math_ops.reduce_sum(crossent, axis=axis), weights, axis)
    if sum_over_timesteps or sum_over_batch:
        axis = 0 if sum_over_batch else 1
        return _per_count(math_ops.reduce_sum(crossent, axis=axis), weights, axis)
    return crossent


def sequence_loss(logits, targets, weights, average_across_timesteps=True,
                  average_across_batch=True, sum_over_timesteps=False, sum_over_batch=False,
                  softmax_loss_function=None, name=None):
    """Weighted cross-entropy of ``logits`` [batch, time, classes] against ``targets``
    [batch, time]: averaged by the weights' sum over the time and/or batch axes
    (``average_across_*``), or summed and divided by the number of nonzero weights
    (``sum_over_*``); without either, per [batch, time] entry."""
    logits, targets, weights = (convert_to_tensor(graph_arg(v)) for v in
                                (logits, targets, weights))
    if logits.shape.ndims != 3:
        raise ValueError("Logits must be a [batch_size x sequence_length x logits] tensor")
    if targets.shape.ndims != 2:
        raise ValueError("Targets must be a [batch_size x sequence_length] tensor")
    if weights.shape.ndims != 2:
        raise ValueError("Weights must be a [batch_size x sequence_length] tensor")
    if average_across_timesteps and sum_over_timesteps:
        raise ValueError("average_across_timesteps and sum_over_timesteps cannot be set to "
                         "True at same time.")
    if average_across_batch and sum_over_batch:
        raise ValueError("average_across_batch and sum_over_batch cannot be set to True at "
                         "same time.")
    with get_default_graph().name_scope(name or "sequence_loss"):
        flat_logits = ops["reshape"](logits, [-1, ops["shape"](logits)[2]])
        flat_targets = ops["reshape"](targets, [-1])
        loss = _cross_entropy(softmax_loss_function, flat_targets, flat_logits)
        loss = ops["reshape"](loss, ops["shape"](logits)[:2])
        return graph_op(_sequence_loss, "SequenceLoss")(
            loss, ops["cast"](weights, loss.dtype), bool(average_across_timesteps),
            bool(average_across_batch), bool(sum_over_timesteps), bool(sum_over_batch))


def _cross_entropy(softmax_loss_function, labels, logits):
    if softmax_loss_function is not None:
        return softmax_loss_function(labels=labels, logits=logits)
    return graph_op(nn_ops.sparse_softmax_cross_entropy_with_logits,
                    "SparseSoftmaxCrossEntropyWithLogits")(labels=labels, logits=logits)


def sequence_loss_by_example(logits, targets, weights, average_across_timesteps=True,
                             softmax_loss_function=None, name=None):
    """Per example: the sum over the lists' steps (``logits[t]`` [batch, classes],
    ``targets[t]`` and ``weights[t]`` [batch]) of the weighted cross-entropy, divided
    by the summed weights (plus 1e-12) with ``average_across_timesteps``."""
    if not len(logits) == len(targets) == len(weights):
        raise ValueError(f"Lengths of logits, weights, and targets must be the same "
                         f"{len(logits)}, {len(weights)}, {len(targets)}.")
    with get_default_graph().name_scope(name or "sequence_loss_by_example"):
        terms = []
        for logit, target, weight in zip(logits, targets, weights, strict=True):
            target = ops["reshape"](target, [-1]) if softmax_loss_function is None \
                else target
            terms.append(_cross_entropy(softmax_loss_function, target, logit) * weight)
        total = ops["add_n"](terms)
        if average_across_timesteps:
            total = total / (ops["add_n"](list(weights)) + 1e-12)
        return total


def legacy_sequence_loss(logits, targets, weights, average_across_timesteps=True,
                         average_across_batch=True, softmax_loss_function=None, name=None):
    """The summed ``sequence_loss_by_example``, divided by the batch size with
    ``average_across_batch``."""
    with get_default_graph().name_scope(name or "sequence_loss"):
        cost = ops["reduce_sum"](sequence_loss_by_example(
            logits, targets, weights, average_across_timesteps, softmax_loss_function))
        if not average_across_batch:
            return cost
        batch = graph_op(lambda t: math_ops.cast(array_ops.shape(t)[0], dt.float32),
                         "BatchSize")(convert_to_tensor(graph_arg(targets[0])))
        return cost / ops["cast"](batch, cost.dtype)


seq2seq = types.SimpleNamespace(sequence_loss=sequence_loss)
legacy_seq2seq = types.SimpleNamespace(sequence_loss_by_example=sequence_loss_by_example,
                                       sequence_loss=legacy_sequence_loss)
