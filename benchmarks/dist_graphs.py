"""W4 and W5 as TF1 graph code, written once for both ``tracejit.compat.v1`` and
TensorFlow's own ``tf.compat.v1``: the distributed benchmark hands either module in as
``tf``, so the two frameworks train exactly the same graph.

The variables start from seeded truncated normals (He scale) rather than from the
NumPy arrays of ``workloads.py``: an initial value given as an array would be a constant
of the graph, and 13 MB of W5 constants would then travel inside the stage registered on
the parameter server, which measures nothing a TF1 user does.
"""

from __future__ import annotations

import math

import numpy as np

from .workloads import DROPOUT_KEEP, LEARNING_RATE, MLP_DIMS

__all__ = ["PER_WORKER_BATCH", "build", "batches", "optimizer", "parameter_bytes",
           "variable_bytes"]

# BENCHMARKS.md's batch of one process becomes the batch of one worker
PER_WORKER_BATCH = {"W4": 128, "W5": 64}
CNN_SHAPES = [(5, 5, 1, 32), (5, 5, 32, 64), (7 * 7 * 64, 1024), (1024, 10)]
BATCHES_KEPT = 4        # distinct synthetic batches a worker cycles through


def _shapes(workload: str) -> list[tuple[int, ...]]:
    if workload == "W4":
        weights = list(zip(MLP_DIMS[:-1], MLP_DIMS[1:], strict=True))
    elif workload == "W5":
        weights = CNN_SHAPES
    else:
        raise KeyError(f"the distributed benchmark runs W4 and W5, not {workload!r}")
    shapes = []
    for shape in weights:
        shapes += [tuple(shape), (shape[-1],)]
    return shapes


def variable_bytes(workload: str) -> list[int]:
    """Bytes of each trainable float32 variable, in creation order."""
    return [4 * math.prod(s) for s in _shapes(workload)]


def parameter_bytes(workload: str) -> int:
    """Bytes of the model's trainable parameters (weights and biases)."""
    return sum(variable_bytes(workload))


def _variables(tf, workload: str) -> list:
    params = []
    for i, shape in enumerate(_shapes(workload)):
        if len(shape) == 1:
            params.append(tf.Variable(tf.zeros(list(shape)), name=f"b{i // 2}"))
        else:
            scale = math.sqrt(2.0 / math.prod(shape[:-1]))
            params.append(tf.Variable(tf.truncated_normal(list(shape), stddev=scale,
                                                          seed=17 + i), name=f"w{i // 2}"))
    return params


def build(tf, workload: str, batch: int) -> tuple:
    """``(x, y, loss, params)`` of ``workload`` in the current graph and device scope;
    ``x`` is [batch, 784] images, ``y`` [batch, 10] one-hot labels."""
    x = tf.placeholder(tf.float32, [batch, 784], name="x")
    y = tf.placeholder(tf.float32, [batch, 10], name="y")
    params = _variables(tf, workload)
    if workload == "W4":
        w1, b1, w2, b2, w3, b3 = params
        h = tf.nn.relu(tf.matmul(x, w1) + b1)
        h = tf.nn.relu(tf.matmul(h, w2) + b2)
        logits = tf.matmul(h, w3) + b3
    else:
        c1, cb1, c2, cb2, f1, fb1, f2, fb2 = params

        def conv_relu_pool(h, w, b):
            h = tf.nn.relu(tf.nn.conv2d(h, w, strides=[1, 1, 1, 1], padding="SAME") + b)
            return tf.nn.max_pool(h, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")

        h = conv_relu_pool(tf.reshape(x, [-1, 28, 28, 1]), c1, cb1)
        h = conv_relu_pool(h, c2, cb2)
        h = tf.nn.relu(tf.matmul(tf.reshape(h, [-1, 7 * 7 * 64]), f1) + fb1)
        h = tf.nn.dropout(h, keep_prob=DROPOUT_KEEP)
        logits = tf.matmul(h, f2) + fb2
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    return x, y, loss, params


def optimizer(tf):
    return tf.train.GradientDescentOptimizer(LEARNING_RATE)


def batches(workload: str, batch: int, worker: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few synthetic batches for ``worker`` (images in [0, 1), one-hot labels): data
    loading is not what this benchmark measures."""
    rng = np.random.default_rng(1000 * (1 + worker) + int(workload[1:]))
    out = []
    for _ in range(BATCHES_KEPT):
        x = rng.random((batch, 784), dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
        out.append((x, y))
    return out
