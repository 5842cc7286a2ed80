"""The tf.losses and tf.metrics programs of the tests and their fixed inputs, shared by
the tests (run with ``tracejit.compat.v1``) and make_tf_losses_metrics_reference.py (run
with TensorFlow 2.21's ``tensorflow.compat.v1``): the same lines on either module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = np.array([[0.0, 1.0, 2.0], [1.0, -1.0, 0.5], [3.0, 0.0, 1.0], [0.5, 0.5, -2.0]],
                  np.float32)
PREDICTIONS = np.array([[0.5, 1.5, 0.0], [1.0, 0.0, 0.5], [2.0, -1.0, 1.5], [0.0, 3.0, -1.0]],
                       np.float32)
PROBABILITIES = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.4], [0.99, 0.01, 0.3],
                          [0.6, 0.5, 0.8]], np.float32)
BINARY_LABELS = np.array([[0, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 1]], np.float32)
LOGITS = np.array([[1.0, -2.0, 0.5], [0.3, 2.0, -1.0], [-0.5, 0.0, 3.0], [2.0, 1.0, -0.2]],
                  np.float32)
ONEHOT = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]], np.float32)
SPARSE = np.array([1, 0, 2, 1], np.int32)
# weights of the elementwise losses: a scalar, one per example, one per element
ELEMENT_WEIGHTS = {
    "scalar": 2.0,
    "batch": np.array([[1.0], [0.0], [2.0], [0.5]], np.float32),
    "full": np.array([[1, 0, 2], [0.5, 0, 1], [0, 0, 0], [3, 1, 1]], np.float32),
}
# weights of the per-example (softmax) losses
EXAMPLE_WEIGHTS = {"scalar": 2.0, "batch": np.array([1.0, 0.0, 2.0, 0.5], np.float32)}
REDUCTIONS = ("NONE", "SUM", "MEAN", "SUM_OVER_BATCH_SIZE", "SUM_BY_NONZERO_WEIGHTS")

# Three batches streamed through each metric: integer labels in {0, 1, 2}, binary labels,
# probabilities, class predictions, weights.
METRIC_BATCHES = [
    {"labels": np.array([0, 1, 2, 1, 0], np.int64),
     "binary": np.array([1, 0, 1, 1, 0], np.int64),
     "probs": np.array([0.9, 0.3, 0.45, 0.8, 0.1], np.float32),
     "classes": np.array([0, 2, 2, 1, 1], np.int64),
     "weights": np.array([1.0, 2.0, 0.0, 1.0, 0.5], np.float32)},
    {"labels": np.array([2, 2, 1], np.int64),
     "binary": np.array([0, 1, 1], np.int64),
     "probs": np.array([0.55, 0.35, 0.95], np.float32),
     "classes": np.array([2, 0, 1], np.int64),
     "weights": np.array([3.0, 1.0, 1.0], np.float32)},
    {"labels": np.array([1, 0, 0, 2], np.int64),
     "binary": np.array([0, 0, 1, 0], np.int64),
     "probs": np.array([0.2, 0.6, 0.7, 0.05], np.float32),
     "classes": np.array([1, 0, 2, 2], np.int64),
     "weights": np.array([0.5, 1.0, 2.0, 1.0], np.float32)},
]


def build_losses(tf) -> dict:
    """Every loss under each weighting and reduction, keyed by name."""
    L = tf.losses
    out = {}
    for wname, w in ELEMENT_WEIGHTS.items():
        for rname in REDUCTIONS:
            r = getattr(L.Reduction, rname)
            key = f"{wname}-{rname}"
            out["mean_squared_error-" + key] = L.mean_squared_error(
                LABELS, PREDICTIONS, w, reduction=r)
            out["absolute_difference-" + key] = L.absolute_difference(
                LABELS, PREDICTIONS, w, reduction=r)
            out["huber_loss-" + key] = L.huber_loss(LABELS, PREDICTIONS, w, 1.5, reduction=r)
            out["log_loss-" + key] = L.log_loss(BINARY_LABELS, PROBABILITIES, w, reduction=r)
            out["hinge_loss-" + key] = L.hinge_loss(BINARY_LABELS, LOGITS, w, reduction=r)
            out["sigmoid_cross_entropy-" + key] = L.sigmoid_cross_entropy(
                BINARY_LABELS, LOGITS, w, label_smoothing=0.2, reduction=r)
    for wname, w in EXAMPLE_WEIGHTS.items():
        for rname in REDUCTIONS:
            r = getattr(L.Reduction, rname)
            key = f"{wname}-{rname}"
            out["softmax_cross_entropy-" + key] = L.softmax_cross_entropy(
                ONEHOT, LOGITS, w, label_smoothing=0.1, reduction=r)
            out["sparse_softmax_cross_entropy-" + key] = L.sparse_softmax_cross_entropy(
                SPARSE, LOGITS, w, reduction=r)
    unit_l, unit_p = tf.nn.l2_normalize(LABELS, 1), tf.nn.l2_normalize(PREDICTIONS, 1)
    out["cosine_distance-NONE"] = L.cosine_distance(unit_l, unit_p, axis=1,
                                                    reduction=L.Reduction.NONE)
    out["cosine_distance-batch"] = L.cosine_distance(unit_l, unit_p, axis=1,
                                                     weights=ELEMENT_WEIGHTS["batch"])
    out["mean_pairwise_squared_error"] = L.mean_pairwise_squared_error(LABELS, PREDICTIONS)
    out["mean_pairwise_squared_error-batch"] = L.mean_pairwise_squared_error(
        LABELS, PREDICTIONS, weights=ELEMENT_WEIGHTS["batch"])
    out["sparse_softmax_cross_entropy-column"] = L.sparse_softmax_cross_entropy(
        SPARSE.reshape(4, 1), LOGITS)
    return out


def metric_placeholders(tf) -> dict:
    return {"labels": tf.placeholder(tf.int64, [None]),
            "binary": tf.placeholder(tf.int64, [None]),
            "probs": tf.placeholder(tf.float32, [None]),
            "classes": tf.placeholder(tf.int64, [None]),
            "weights": tf.placeholder(tf.float32, [None])}


def build_metrics(tf, p) -> dict:
    """Every metric, keyed by name, on the placeholders ``p``: (value, update_op)."""
    M = tf.metrics
    labels, binary, probs, classes, weights = (p[k] for k in ("labels", "binary", "probs",
                                                               "classes", "weights"))
    truth = tf.cast(binary, tf.float32)
    return {
        "accuracy": M.accuracy(labels, classes),
        "accuracy-weighted": M.accuracy(labels, classes, weights),
        "mean-weighted": M.mean(probs, weights),
        "mean_absolute_error": M.mean_absolute_error(truth, probs, weights),
        "mean_squared_error": M.mean_squared_error(truth, probs),
        "root_mean_squared_error": M.root_mean_squared_error(truth, probs, weights),
        "precision": M.precision(binary, probs > 0.5),
        "precision-weighted": M.precision(binary, probs > 0.5, weights),
        "recall-weighted": M.recall(binary, probs > 0.5, weights),
        "true_positives": M.true_positives(binary, probs > 0.5, weights),
        "false_positives": M.false_positives(binary, probs > 0.5, weights),
        "false_negatives": M.false_negatives(binary, probs > 0.5),
        "true_negatives": M.true_negatives(binary, probs > 0.5, weights),
        "auc": M.auc(binary, probs),
        "auc-10-weighted": M.auc(binary, probs, weights, num_thresholds=10),
        "auc-PR": M.auc(binary, probs, num_thresholds=20, curve="PR"),
        "auc-PR-careful": M.auc(binary, probs, weights, num_thresholds=20, curve="PR",
                                summation_method="careful_interpolation"),
        "auc-PR-minoring": M.auc(binary, probs, num_thresholds=20, curve="PR",
                                 summation_method="minoring"),
        "auc-PR-majoring": M.auc(binary, probs, num_thresholds=20, curve="PR",
                                 summation_method="majoring"),
        "auc-thresholds": M.auc(binary, probs, thresholds=[0.25, 0.5, 0.75]),
        "mean_per_class_accuracy": M.mean_per_class_accuracy(labels, classes, 3, weights),
        "mean_iou": M.mean_iou(labels, classes, 3, weights),
    }


def feed(p, batch) -> dict:
    return {p[k]: batch[k] for k in p}


def recorded(section: str) -> dict:
    """TensorFlow's results of these programs (``losses`` or ``metrics``)."""
    path = Path(__file__).with_name("tf_losses_metrics_reference.json")
    return json.loads(path.read_text())[section]
