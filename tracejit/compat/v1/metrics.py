"""``tf.metrics``: streaming metrics over several ``Session.run`` calls.

Each metric returns ``(value, update_op)``. Its state lives in LOCAL variables (in
``tf.GraphKeys.LOCAL_VARIABLES`` and ``METRIC_VARIABLES``, named ``<metric>/total:0``,
... as in TensorFlow), which ``tf.local_variables_initializer()`` resets. Running
``update_op`` folds one batch into the state and returns the metric so far; ``value``
reads the state without changing it.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None])
...     mean, update = tf.metrics.mean(x)
...     with tf.Session() as sess:
...         sess.run(tf.local_variables_initializer())
...         _ = sess.run(update, {x: [1.0, 2.0]}); _ = sess.run(update, {x: [6.0]})
...         float(sess.run(mean))
3.0
"""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as dt
from ...ir.errors import ParamError, ShapeError
from ...ir.source import user_location
from ...trace import array_ops, math_ops
from .graph import get_default_graph
from .losses import broadcast_weights, safe_divide
from .ops import convert_to_tensor, graph_op, ops
from .variables import GraphKeys, Variable

__all__ = ["accuracy", "auc", "false_negatives", "false_positives", "mean",
           "mean_absolute_error", "mean_iou", "mean_per_class_accuracy",
           "mean_squared_error", "precision", "recall", "root_mean_squared_error",
           "true_negatives", "true_positives"]


# ---- state and collections --------------------------------------------------------------------

def metric_variable(shape, dtype, name: str) -> Variable:
    """A zero-initialized local variable holding a metric's state."""
    return Variable(np.zeros(shape, dt.as_dtype(dtype).np_dtype), trainable=False, name=name,
                    collections=[GraphKeys.LOCAL_VARIABLES, GraphKeys.METRIC_VARIABLES])


def _collect(value, update, metrics_collections, updates_collections):
    graph = get_default_graph()
    for key in metrics_collections or ():
        graph.add_to_collection(key, value)
    for key in updates_collections or ():
        graph.add_to_collection(key, update)
    return value, update


def _align(predictions, labels=None, weights=None):
    """TensorFlow's squeezing of a trailing 1 (labels [n, 1] against predictions [n]), a
    check that predictions and labels have compatible shapes, and weights made to have the
    predictions' rank where they differ by one."""
    predictions = convert_to_tensor(predictions)
    if labels is not None:
        labels = convert_to_tensor(labels)
        rank_p, rank_l = predictions.shape.ndims, labels.shape.ndims
        if rank_p is not None and rank_l is not None:
            if rank_l - rank_p == 1 and labels.shape.as_list()[-1] == 1:
                labels = ops["squeeze"](labels, [-1])
            elif rank_p - rank_l == 1 and predictions.shape.as_list()[-1] == 1:
                predictions = ops["squeeze"](predictions, [-1])
        if not predictions.shape.is_compatible_with(labels.shape):
            raise ShapeError(f"predictions of shape {predictions.shape} and labels of shape "
                             f"{labels.shape} are incompatible", op="tf.metrics",
                             location=user_location())
    if weights is not None:
        weights = convert_to_tensor(weights, dtype=dt.float32)
        rank_w, rank_p = weights.shape.ndims, predictions.shape.ndims
        if rank_w and rank_p is not None:
            if rank_w - rank_p == 1:
                weights = ops["squeeze"](weights, [-1])
            elif rank_p - rank_w == 1:
                weights = ops["expand_dims"](weights, -1)
    return predictions, labels, weights


def _weights_like(values, weights):
    return (array_ops.ones_like(values) if weights is None
            else broadcast_weights(weights, values, "the values"))


# ---- mean and what is built on it -------------------------------------------------------------

def _weighted_sum(values, weights):
    values = math_ops.cast(values, dt.float32)
    return math_ops.reduce_sum(math_ops.multiply(values, _weights_like(values, weights)))


def _weight_sum(values, weights):
    return math_ops.reduce_sum(_weights_like(math_ops.cast(values, dt.float32), weights))


def _streaming_mean(values, weights, name):
    """(value, update) of the weighted mean of every value seen."""
    graph = get_default_graph()
    total = metric_variable([], dt.float32, "total")
    count = metric_variable([], dt.float32, "count")
    update_total = total.assign_add(graph_op(_weighted_sum, "Sum")(values, weights))
    update_count = count.assign_add(graph_op(_weight_sum, "Sum")(values, weights))
    divide = graph_op(safe_divide, "DivNoNan")
    value = divide(total, count, name="value")
    with graph.control_dependencies(None):
        update = divide(update_total, update_count, name="update_op")
    return value, update


def mean(values, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """The (weighted) mean of ``values`` over every batch seen."""
    with get_default_graph().name_scope(name or "mean"):
        values, _, weights = _align(values, None, weights)
        result = _streaming_mean(values, weights, name)
    return _collect(*result, metrics_collections, updates_collections)


def _mean_of(default_name, per_element, labels, predictions, weights, metrics_collections,
             updates_collections, name):
    with get_default_graph().name_scope(name or default_name):
        predictions, labels, weights = _align(predictions, labels, weights)
        values = graph_op(per_element, "".join(p.capitalize() for p in
                                               default_name.split("_")))(labels, predictions)
        result = _streaming_mean(values, weights, name)
    return _collect(*result, metrics_collections, updates_collections)


def _correct(labels, predictions):
    return math_ops.cast(math_ops.equal(predictions, labels), dt.float32)


def _absolute_error(labels, predictions):
    return math_ops.abs(math_ops.subtract(math_ops.cast(predictions, dt.float32),
                                          math_ops.cast(labels, dt.float32)))


def _squared_error(labels, predictions):
    return math_ops.squared_difference(math_ops.cast(predictions, dt.float32),
                                       math_ops.cast(labels, dt.float32))


def accuracy(labels, predictions, weights=None, metrics_collections=None,
             updates_collections=None, name=None):
    """The (weighted) fraction of ``predictions`` equal to ``labels``."""
    return _mean_of("accuracy", _correct, labels, predictions, weights, metrics_collections,
                    updates_collections, name)


def mean_absolute_error(labels, predictions, weights=None, metrics_collections=None,
                        updates_collections=None, name=None):
    return _mean_of("mean_absolute_error", _absolute_error, labels, predictions, weights,
                    metrics_collections, updates_collections, name)


def mean_squared_error(labels, predictions, weights=None, metrics_collections=None,
                       updates_collections=None, name=None):
    return _mean_of("mean_squared_error", _squared_error, labels, predictions, weights,
                    metrics_collections, updates_collections, name)


def root_mean_squared_error(labels, predictions, weights=None, metrics_collections=None,
                            updates_collections=None, name=None):
    """The square root of the streaming mean squared error."""
    value, update = _mean_of("root_mean_squared_error", _squared_error, labels, predictions,
                             weights, None, None, name)
    result = ops["sqrt"](value), ops["sqrt"](update)
    return _collect(*result, metrics_collections, updates_collections)


# ---- counts of true/false positives/negatives -------------------------------------------------

_CONDITIONS = {"true_positives": (True, True), "false_positives": (False, True),
               "false_negatives": (True, False), "true_negatives": (False, False)}


def _count_where(labels, predictions, weights, label_is, prediction_is):
    labels = math_ops.cast(labels, dt.bool_)
    predictions = math_ops.cast(predictions, dt.bool_)
    hit = math_ops.logical_and(math_ops.equal(labels, label_is),
                               math_ops.equal(predictions, prediction_is))
    hit = math_ops.cast(hit, dt.float32)
    return math_ops.reduce_sum(math_ops.multiply(hit, _weights_like(hit, weights)))


def _count(kind, labels, predictions, weights, scope=None):
    """(count variable, value, update) of one of ``_CONDITIONS``, in its own scope."""
    with get_default_graph().name_scope(scope or kind):
        predictions, labels, weights = _align(predictions, labels, weights)
        count = metric_variable([], dt.float32, "count")
        label_is, prediction_is = _CONDITIONS[kind]
        delta = graph_op(_count_where, "CountWhere")(labels, predictions, weights, label_is,
                                                     prediction_is)
        update = count.assign_add(delta)
        value = ops["identity"](count, name="value")
    return count, value, update


def _counter(kind):
    def metric(labels, predictions, weights=None, metrics_collections=None,
               updates_collections=None, name=None):
        _, value, update = _count(kind, labels, predictions, weights, name)
        return _collect(value, update, metrics_collections, updates_collections)
    metric.__name__ = kind
    metric.__doc__ = f"The weighted number of {kind.replace('_', ' ')} (labels and " \
                     "predictions are cast to bool)."
    return metric


true_positives = _counter("true_positives")
false_positives = _counter("false_positives")
false_negatives = _counter("false_negatives")
true_negatives = _counter("true_negatives")


def _ratio(default_name, other_kind, labels, predictions, weights, metrics_collections,
           updates_collections, name):
    """tp / (tp + other), 0 while tp + other is 0."""
    def ratio(tp, other):
        return math_ops.where(math_ops.greater(tp + other, 0.0),
                              safe_divide(tp, tp + other), 0.0)
    with get_default_graph().name_scope(name or default_name):
        _, tp, update_tp = _count("true_positives", labels, predictions, weights)
        _, other, update_other = _count(other_kind, labels, predictions, weights)
        value = graph_op(ratio, "Ratio")(tp, other, name="value")
        update = graph_op(ratio, "Ratio")(update_tp, update_other, name="update_op")
    return _collect(value, update, metrics_collections, updates_collections)


def precision(labels, predictions, weights=None, metrics_collections=None,
              updates_collections=None, name=None):
    """true positives / (true positives + false positives), streamed."""
    return _ratio("precision", "false_positives", labels, predictions, weights,
                  metrics_collections, updates_collections, name)


def recall(labels, predictions, weights=None, metrics_collections=None,
           updates_collections=None, name=None):
    """true positives / (true positives + false negatives), streamed."""
    return _ratio("recall", "false_negatives", labels, predictions, weights,
                  metrics_collections, updates_collections, name)


# ---- per-class metrics ------------------------------------------------------------------------

def _per_class_counts(labels, predictions, weights, num_classes):
    labels = array_ops.reshape(math_ops.cast(labels, dt.int32), (-1,))
    predictions = array_ops.reshape(math_ops.cast(predictions, dt.int32), (-1,))
    ones = array_ops.ones_like(labels, dtype=dt.float32)
    if weights is not None:          # one weight per label, or one for all
        ones = math_ops.multiply(ones, array_ops.reshape(math_ops.cast(weights, dt.float32),
                                                         (-1,) if weights.ndim else ()))
    correct = math_ops.multiply(ones, math_ops.cast(math_ops.equal(predictions, labels),
                                                    dt.float32))
    per_class = array_ops.one_hot(labels, num_classes, dtype=dt.float32)
    return (math_ops.reduce_sum(per_class * array_ops.reshape(ones, (-1, 1)), 0),
            math_ops.reduce_sum(per_class * array_ops.reshape(correct, (-1, 1)), 0))


def mean_per_class_accuracy(labels, predictions, num_classes, weights=None,
                            metrics_collections=None, updates_collections=None, name=None):
    """The mean over classes of each class's accuracy. As TensorFlow, ``update_op``
    returns the per-class accuracies ([num_classes])."""
    with get_default_graph().name_scope(name or "mean_accuracy"):
        predictions, labels, weights = _align(predictions, labels, weights)
        total = metric_variable([num_classes], dt.float32, "total")
        count = metric_variable([num_classes], dt.float32, "count")
        deltas = graph_op(_per_class_counts, "PerClassCounts")(labels, predictions, weights,
                                                               int(num_classes))
        update_total, update_count = total.assign_add(deltas[0]), count.assign_add(deltas[1])
        divide = graph_op(safe_divide, "DivNoNan")
        value = ops["reduce_mean"](divide(count, total), name="mean_accuracy")
        update = divide(update_count, update_total, name="update_op")
    return _collect(value, update, metrics_collections, updates_collections)


def _confusion(labels, predictions, weights, num_classes):
    labels = array_ops.reshape(math_ops.cast(labels, dt.int32), (-1,))
    predictions = array_ops.reshape(math_ops.cast(predictions, dt.int32), (-1,))
    rows = array_ops.one_hot(labels, num_classes, dtype=dt.float64)
    cols = array_ops.one_hot(predictions, num_classes, dtype=dt.float64)
    if weights is not None:
        rows = math_ops.multiply(rows, array_ops.reshape(math_ops.cast(weights, dt.float64),
                                                         (-1, 1) if weights.ndim else ()))
    return math_ops.matmul(array_ops.matrix_transpose(rows), cols)


def _mean_iou(matrix):
    row_sums = math_ops.reduce_sum(matrix, 0)
    col_sums = math_ops.reduce_sum(matrix, 1)
    diagonal = math_ops.reduce_sum(matrix * np.eye(matrix.shape[0]), 1)
    denominator = row_sums + col_sums - diagonal
    valid = math_ops.reduce_sum(math_ops.cast(math_ops.not_equal(denominator, 0.0),
                                              dt.float64))
    iou = diagonal / math_ops.where(denominator > 0.0, denominator, 1.0)
    return math_ops.cast(math_ops.where(valid > 0.0, safe_divide(math_ops.reduce_sum(iou),
                                                                 valid), 0.0), dt.float32)


def mean_iou(labels, predictions, num_classes, weights=None, metrics_collections=None,
             updates_collections=None, name=None):
    """The mean over classes of intersection / union, from a streamed confusion matrix
    (float64, ``mean_iou/total_confusion_matrix``). As TensorFlow, ``update_op`` returns
    the updated confusion matrix."""
    with get_default_graph().name_scope(name or "mean_iou"):
        predictions, labels, weights = _align(predictions, labels, weights)
        matrix = metric_variable([num_classes, num_classes], dt.float64,
                                 "total_confusion_matrix")
        update = matrix.assign_add(graph_op(_confusion, "ConfusionMatrix")(
            labels, predictions, weights, int(num_classes)))
        value = graph_op(_mean_iou, "MeanIoU")(matrix, name="mean_iou")
    return _collect(value, update, metrics_collections, updates_collections)


# ---- area under the ROC or PR curve ------------------------------------------------------------

_AUC_EPSILON = 1e-7          # keeps 0 and 1 strictly inside the outer thresholds


def auc_thresholds(num_thresholds: int = 200, thresholds=None) -> np.ndarray:
    """TensorFlow's thresholds: evenly spaced inside (0, 1), then -eps and 1 + eps."""
    if thresholds is None:
        if num_thresholds < 2:
            raise ParamError(f"num_thresholds must be > 1, got {num_thresholds}", op="auc",
                             location=user_location())
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    else:
        inner = [float(t) for t in thresholds]
    return np.array([0.0 - _AUC_EPSILON] + inner + [1.0 + _AUC_EPSILON], np.float32)


def _confusion_at(labels, predictions, weights, thresholds):
    """[tp, fn, tn, fp], each [len(thresholds)]: a prediction is positive above a
    threshold."""
    values = math_ops.cast(predictions, dt.float32)
    w = array_ops.reshape(_weights_like(values, weights), (1, -1))
    positive = math_ops.greater(array_ops.reshape(values, (1, -1)),
                                array_ops.reshape(thresholds, (-1, 1)))
    truth = array_ops.reshape(math_ops.cast(labels, dt.bool_), (1, -1))
    counts = []
    for label_is, predicted_is in ((True, True), (True, False), (False, False),
                                   (False, True)):
        hit = math_ops.logical_and(math_ops.equal(truth, label_is),
                                   math_ops.equal(positive, predicted_is))
        counts.append(math_ops.reduce_sum(math_ops.where(hit, w, 0.0), 1))
    return counts


def _interpolated_pr_auc(tp, fp, fn):
    """The PR-AUC of 'careful_interpolation': true and false positives are interpolated
    linearly between thresholds, and precision integrated exactly along that line."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    slope = safe_divide(dtp, math_ops.maximum(p[:-1] - p[1:], 0.0))
    intercept = tp[1:] - slope * p[1:]
    both = math_ops.logical_and(p[:-1] > 0.0, p[1:] > 0.0)
    p_ratio = math_ops.where(both, safe_divide(p[:-1], math_ops.maximum(p[1:], 0.0)), 1.0)
    return math_ops.reduce_sum(safe_divide(slope * (dtp + intercept * math_ops.log(p_ratio)),
                                           math_ops.maximum(tp[1:] + fn[1:], 0.0)))


def _area(tp, fn, tn, fp, curve, summation_method):
    if curve == "PR" and summation_method == "careful_interpolation":
        return _interpolated_pr_auc(tp, fp, fn)
    epsilon = 1e-6
    recall_ = (tp + epsilon) / (tp + fn + epsilon)
    if curve == "ROC":
        x, y = fp / (fp + tn + epsilon), recall_
    else:
        x, y = recall_, (tp + epsilon) / (tp + fp + epsilon)
    widths = x[:-1] - x[1:]
    if summation_method == "minoring":
        heights = math_ops.minimum(y[:-1], y[1:])
    elif summation_method == "majoring":
        heights = math_ops.maximum(y[:-1], y[1:])
    else:                                  # trapezoidal (and careful_interpolation for ROC)
        heights = (y[:-1] + y[1:]) / 2.0
    return math_ops.reduce_sum(widths * heights)


def auc(labels, predictions, weights=None, num_thresholds=200, metrics_collections=None,
        updates_collections=None, curve="ROC", name=None, summation_method="trapezoidal",
        thresholds=None):
    """The area under the ROC (or precision-recall, ``curve='PR'``) curve, from true and
    false positives and negatives counted at ``num_thresholds`` thresholds (local
    variables ``auc/true_positives``, ...) and summed by ``summation_method``
    ('trapezoidal', 'careful_interpolation', 'minoring', 'majoring'). ``predictions``
    are probabilities in [0, 1]."""
    if curve not in ("ROC", "PR"):
        raise ParamError(f"curve must be 'ROC' or 'PR', got {curve!r}", op="auc",
                         location=user_location())
    methods = ("trapezoidal", "careful_interpolation", "minoring", "majoring")
    if summation_method not in methods:
        raise ParamError(f"summation_method must be one of {list(methods)}, got "
                         f"{summation_method!r}", op="auc", location=user_location())
    points = auc_thresholds(num_thresholds, thresholds)
    with get_default_graph().name_scope(name or "auc"):
        predictions, labels, weights = _align(predictions, labels, weights)
        names = ("true_positives", "false_negatives", "true_negatives", "false_positives")
        state = [metric_variable([len(points)], dt.float32, n) for n in names]
        deltas = graph_op(_confusion_at, "ConfusionAtThresholds")(labels, predictions,
                                                                  weights, points)
        updates = [v.assign_add(d) for v, d in zip(state, deltas, strict=True)]
        area = graph_op(_area, "AUC")
        value = area(*state, curve, summation_method, name="value")
        update = area(*updates, curve, summation_method, name="update_op")
    return _collect(value, update, metrics_collections, updates_collections)
