"""``tf.losses``: TF 1.x's weighted losses, their reductions and the loss collections.

Each loss computes a per-element loss, multiplies it by ``weights`` (a scalar, or a
tensor of the losses' rank whose dimensions are 1 or equal to the losses'), reduces it
as ``reduction`` says (by default: the weighted sum over the number of nonzero weights),
and adds the result to ``loss_collection`` (``tf.GraphKeys.LOSSES``), as TensorFlow does.
Inputs are computed in float32, as TensorFlow casts them.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     loss = tf.losses.mean_squared_error([[1.0], [2.0]], [[2.0], [4.0]])
...     with tf.Session() as sess:
...         float(sess.run(loss)), len(tf.losses.get_losses())
(2.5, 1)
"""

from __future__ import annotations

from ...ir import dtypes as dt
from ...ir.errors import ShapeError
from ...ir.source import user_location
from ...trace import array_ops, math_ops, nn_ops
from .graph import get_default_graph
from .ops import convert_to_tensor, graph_op, ops
from .variables import GraphKeys

__all__ = ["Reduction", "absolute_difference", "add_loss", "compute_weighted_loss",
           "cosine_distance", "get_losses", "get_regularization_loss",
           "get_regularization_losses", "get_total_loss", "hinge_loss", "huber_loss",
           "log_loss", "mean_pairwise_squared_error", "mean_squared_error",
           "sigmoid_cross_entropy", "softmax_cross_entropy", "sparse_softmax_cross_entropy"]


class Reduction:
    """How a weighted loss is reduced (``tf.losses.Reduction``)."""

    NONE = "none"
    SUM = "weighted_sum"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    MEAN = "weighted_mean"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls) -> tuple[str, ...]:
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE,
                cls.SUM_OVER_NONZERO_WEIGHTS, cls.SUM_BY_NONZERO_WEIGHTS)

    @classmethod
    def validate(cls, key) -> None:
        if key not in cls.all():
            raise ValueError(f"Invalid Reduction Key {key!r}; expected one of "
                             f"{sorted(set(cls.all()))}")


# ---- the reduction (traced) -------------------------------------------------------------------

def safe_divide(numerator, denominator):
    """``numerator / denominator``, and 0 where the denominator is 0 (TF's div_no_nan)."""
    nonzero = math_ops.not_equal(denominator, 0.0)
    return math_ops.where(nonzero, math_ops.divide(
        numerator, math_ops.where(nonzero, denominator, 1.0)), 0.0)


def broadcast_weights(weights, values, what: str = "the losses"):
    """``weights`` broadcast to ``values``'s shape: a scalar, or of the same rank with each
    dimension 1 or equal (TensorFlow's rule; it refuses to add or drop axes)."""
    weights = math_ops.cast(weights, values.dtype)
    fits = weights.ndim == 0 or (weights.ndim == values.ndim and all(
        w in (1, v) for w, v in zip(weights.shape, values.shape, strict=True)))
    if not fits:
        raise ShapeError(f"weights of shape {list(weights.shape)} cannot be broadcast to "
                         f"{what} of shape {list(values.shape)}: weights must be a scalar or "
                         "have the same rank, each dimension 1 or equal", op="tf.losses")
    return array_ops.broadcast_to(weights, values.shape)


def count_present(losses, weights, per_batch: bool = False):
    """How many elements of ``losses`` have a nonzero weight (per example if ``per_batch``)."""
    present = broadcast_weights(math_ops.cast(math_ops.not_equal(
        math_ops.cast(weights, losses.dtype), 0.0), losses.dtype), losses)
    if per_batch:
        return math_ops.reduce_sum(present, list(range(1, losses.ndim)), keepdims=True)
    return math_ops.reduce_sum(present)


def reduce_weighted(losses, weights, reduction: str):
    """TensorFlow's ``compute_weighted_loss`` on traced values."""
    losses = math_ops.cast(losses, dt.float32)
    full_weights = broadcast_weights(weights, losses)
    weighted = math_ops.multiply(losses, full_weights)
    if reduction == Reduction.NONE:
        return weighted
    total = math_ops.reduce_sum(weighted)
    if reduction == Reduction.MEAN:
        return safe_divide(total, math_ops.reduce_sum(full_weights))
    if reduction == Reduction.SUM_BY_NONZERO_WEIGHTS:
        return safe_divide(total, count_present(losses, weights))
    if reduction == Reduction.SUM_OVER_BATCH_SIZE:
        return safe_divide(total, float(max(losses.size, 0)))
    return total


# ---- building a loss in the graph -------------------------------------------------------------

def _check_compatible(first, second, what: str) -> None:
    if not first.shape.is_compatible_with(second.shape):
        raise ShapeError(f"Shapes {first.shape} and {second.shape} are incompatible: {what} "
                         "must have the same shape", op="tf.losses", location=user_location())


def _check_reduction(reduction) -> None:
    if reduction not in Reduction.all():
        raise ValueError(f"reduction must be one of tf.losses.Reduction's values "
                         f"{sorted(set(Reduction.all()))}, got {reduction!r}")


def _weighted_loss(name: str, per_element, inputs, weights, scope, loss_collection,
                   reduction, **params):
    """One graph op computing ``per_element(*inputs, **params)`` weighted and reduced,
    added to ``loss_collection``."""
    _check_reduction(reduction)
    graph = get_default_graph()

    def compute(inputs, weights):
        floats = [x if not x.dtype.is_float else math_ops.cast(x, dt.float32) for x in inputs]
        return reduce_weighted(per_element(*floats, **params), weights, reduction)

    with graph.name_scope(scope or name):
        loss = graph_op(compute, "WeightedLoss")(list(inputs), weights, name="value")
    add_loss(loss, loss_collection)
    return loss


def compute_weighted_loss(losses, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``losses * weights`` reduced by ``reduction``, added to ``loss_collection``."""
    return _weighted_loss("weighted_loss", lambda x: x, [convert_to_tensor(losses)], weights,
                          scope, loss_collection, reduction)


def _elementwise_loss(name, per_element, labels, predictions, weights, scope,
                      loss_collection, reduction, second_name="predictions", **params):
    if labels is None or predictions is None:
        raise ValueError(f"{name}: labels and {second_name} must not be None")
    labels, predictions = convert_to_tensor(labels), convert_to_tensor(predictions)
    _check_compatible(predictions, labels, f"{second_name} and labels")
    return _weighted_loss(name, per_element, (labels, predictions), weights, scope,
                          loss_collection, reduction, **params)


def _absolute(labels, predictions):
    return math_ops.abs(math_ops.subtract(predictions, labels))


def _squared(labels, predictions):
    return math_ops.squared_difference(predictions, labels)


def _huber(labels, predictions, delta=1.0):
    error = math_ops.abs(math_ops.subtract(predictions, labels))
    quadratic = math_ops.minimum(error, float(delta))
    linear = math_ops.subtract(error, quadratic)
    return math_ops.add(math_ops.multiply(0.5, math_ops.square(quadratic)),
                        math_ops.multiply(float(delta), linear))


def _log(labels, predictions, epsilon=1e-7):
    return math_ops.subtract(
        math_ops.negative(math_ops.multiply(labels, math_ops.log(predictions + epsilon))),
        math_ops.multiply(1.0 - labels, math_ops.log(1.0 - predictions + epsilon)))


def _hinge(labels, logits):
    signs = math_ops.subtract(math_ops.multiply(2.0, labels), 1.0)
    return math_ops.relu(math_ops.subtract(1.0, math_ops.multiply(signs, logits)))


def absolute_difference(labels, predictions, weights=1.0, scope=None,
                        loss_collection=GraphKeys.LOSSES,
                        reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``|predictions - labels|``, weighted and reduced."""
    return _elementwise_loss("absolute_difference", _absolute, labels, predictions, weights,
                             scope, loss_collection, reduction)


def mean_squared_error(labels, predictions, weights=1.0, scope=None,
                       loss_collection=GraphKeys.LOSSES,
                       reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``(predictions - labels) ** 2``, weighted and reduced."""
    return _elementwise_loss("mean_squared_error", _squared, labels, predictions, weights,
                             scope, loss_collection, reduction)


def huber_loss(labels, predictions, weights=1.0, delta=1.0, scope=None,
               loss_collection=GraphKeys.LOSSES, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Quadratic (``0.5 * e ** 2``) for errors up to ``delta``, linear beyond."""
    return _elementwise_loss("huber_loss", _huber, labels, predictions, weights, scope,
                             loss_collection, reduction, delta=delta)


def log_loss(labels, predictions, weights=1.0, epsilon=1e-7, scope=None,
             loss_collection=GraphKeys.LOSSES, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Binary cross-entropy of probabilities ``predictions``, ``epsilon`` inside the logs."""
    return _elementwise_loss("log_loss", _log, labels, predictions, weights, scope,
                             loss_collection, reduction, epsilon=epsilon)


def hinge_loss(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``max(0, 1 - (2 * labels - 1) * logits)`` for labels in {0, 1}."""
    return _elementwise_loss("hinge_loss", _hinge, labels, logits, weights, scope,
                             loss_collection, reduction, second_name="logits")


def cosine_distance(labels, predictions, axis=None, weights=1.0, scope=None,
                    loss_collection=GraphKeys.LOSSES,
                    reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, dim=None):
    """``1 - sum(labels * predictions, axis)`` (keeping ``axis``) for unit-normalized
    inputs."""
    axis = dim if axis is None else axis
    if axis is None:
        raise ValueError("cosine_distance needs `axis`")

    def distance(labels, predictions):
        return math_ops.subtract(1.0, math_ops.reduce_sum(
            math_ops.multiply(predictions, labels), axis, keepdims=True))

    labels, predictions = convert_to_tensor(labels), convert_to_tensor(predictions)
    _check_compatible(predictions, labels, "predictions and labels")
    return _weighted_loss("cosine_distance_loss", distance, (labels, predictions), weights,
                          scope, loss_collection, reduction)


def sigmoid_cross_entropy(multi_class_labels, logits, weights=1.0, label_smoothing=0,
                          scope=None, loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Sigmoid cross-entropy; ``label_smoothing`` moves labels towards 1/2:
    ``labels * (1 - s) + s / 2``."""
    def loss(labels, logits):
        if label_smoothing:
            labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
        return nn_ops.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)

    labels, logits = convert_to_tensor(multi_class_labels), convert_to_tensor(logits)
    _check_compatible(logits, labels, "logits and multi_class_labels")
    return _weighted_loss("sigmoid_cross_entropy_loss", loss, (labels, logits), weights,
                          scope, loss_collection, reduction)


def softmax_cross_entropy(onehot_labels, logits, weights=1.0, label_smoothing=0, scope=None,
                          loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Softmax cross-entropy per example; ``label_smoothing`` mixes the one-hot labels with
    the uniform distribution: ``labels * (1 - s) + s / num_classes``. No gradient flows
    into the labels."""
    def loss(labels, logits):
        if label_smoothing:
            classes = labels.shape[-1]
            labels = labels * (1.0 - label_smoothing) + label_smoothing / classes
        return nn_ops.softmax_cross_entropy_with_logits(
            labels=array_ops.stop_gradient(labels), logits=logits)

    labels, logits = convert_to_tensor(onehot_labels), convert_to_tensor(logits)
    _check_compatible(logits, labels, "logits and onehot_labels")
    return _weighted_loss("softmax_cross_entropy_loss", loss, (labels, logits), weights,
                          scope, loss_collection, reduction)


def sparse_softmax_cross_entropy(labels, logits, weights=1.0, scope=None,
                                 loss_collection=GraphKeys.LOSSES,
                                 reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Softmax cross-entropy against integer ``labels`` ([batch], or [batch, 1] which is
    squeezed, as are weights [batch, 1])."""
    labels, logits = convert_to_tensor(labels), convert_to_tensor(logits)
    if labels.shape.ndims is not None and logits.shape.ndims is not None:
        if labels.shape.ndims == logits.shape.ndims:
            labels = ops["squeeze"](labels, [-1])
        if labels.shape.ndims != logits.shape.ndims - 1:
            raise ShapeError(f"labels of shape {labels.shape} do not fit logits of shape "
                             f"{logits.shape}: expected labels of rank "
                             f"{logits.shape.ndims - 1}", op="sparse_softmax_cross_entropy",
                             location=user_location())
    weights = convert_to_tensor(weights, dtype=dt.float32)
    if weights.shape.ndims is not None and weights.shape.ndims == logits.shape.ndims:
        weights = ops["squeeze"](weights, [-1])

    def loss(labels, logits):
        return nn_ops.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    return _weighted_loss("sparse_softmax_cross_entropy_loss", loss, (labels, logits),
                          weights, scope, loss_collection, reduction)


def _pairwise(labels, predictions, weights):
    diffs = math_ops.subtract(math_ops.cast(predictions, dt.float32),
                              math_ops.cast(labels, dt.float32))
    axes = list(range(1, diffs.ndim))
    present = count_present(diffs, weights, per_batch=True)
    sum_squares = math_ops.reduce_sum(math_ops.square(diffs), axes, keepdims=True)
    term1 = 2.0 * safe_divide(sum_squares, math_ops.maximum(present - 1.0, 0.0))
    sum_diffs = math_ops.reduce_sum(diffs, axes, keepdims=True)
    term2 = 2.0 * safe_divide(math_ops.square(sum_diffs),
                              math_ops.maximum(present * (present - 1.0), 0.0))
    weights = math_ops.cast(weights, dt.float32)
    loss = math_ops.reduce_sum(math_ops.multiply(term1 - term2, weights))
    return math_ops.where(math_ops.reduce_sum(present) > 0.0, loss, 0.0)


def mean_pairwise_squared_error(labels, predictions, weights=1.0, scope=None,
                                loss_collection=GraphKeys.LOSSES):
    """For each example, the mean of ``((p_i - p_j) - (l_i - l_j)) ** 2`` over pairs of
    its elements, weighted by ``weights`` (scalar or [batch, 1, ...]) and summed."""
    labels, predictions = convert_to_tensor(labels), convert_to_tensor(predictions)
    _check_compatible(predictions, labels, "predictions and labels")
    with get_default_graph().name_scope(scope or "mean_pairwise_squared_error"):
        loss = graph_op(_pairwise, "MeanPairwiseSquaredError")(labels, predictions, weights,
                                                               name="value")
    add_loss(loss, loss_collection)
    return loss


# ---- the collections --------------------------------------------------------------------------

def add_loss(loss, loss_collection=GraphKeys.LOSSES) -> None:
    """Add ``loss`` to ``loss_collection`` (nothing if it is None)."""
    if loss_collection:
        get_default_graph().add_to_collection(loss_collection, loss)


def get_losses(scope=None, loss_collection=GraphKeys.LOSSES) -> list:
    return get_default_graph().get_collection(loss_collection, scope)


def get_regularization_losses(scope=None) -> list:
    return get_default_graph().get_collection(GraphKeys.REGULARIZATION_LOSSES, scope)


def get_regularization_loss(scope=None, name="total_regularization_loss"):
    """The sum of the regularization losses, or a constant 0 if there are none."""
    losses = get_regularization_losses(scope)
    if not losses:
        return convert_to_tensor(0.0, name=name)
    return ops["add_n"](losses, name=name)


def get_total_loss(add_regularization_losses=True, name="total_loss", scope=None):
    """The sum of ``get_losses()`` and (by default) the regularization losses."""
    losses = get_losses(scope)
    if add_regularization_losses:
        losses = losses + get_regularization_losses(scope)
    if not losses:
        raise ValueError("No losses to sum: make a loss with tf.losses.* or add one with "
                         "tf.losses.add_loss first")
    return ops["add_n"](losses, name=name)
