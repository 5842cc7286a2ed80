"""softmax, log_softmax, the three cross-entropies, l2_loss and flatten: values against
NumPy and gradients against finite differences (float64), eagerly, under @jit and in a
TF1 Session."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
import tracejit.compat.v1 as tf
from tracejit import nn

from .reference import numeric_gradient

RNG = np.random.default_rng(11)
LOGITS = RNG.normal(size=(4, 5)) * 3
CLASSES = np.array([0, 4, 2, 2], np.int32)
ONE_HOT = np.eye(5)[CLASSES]
BINARY = RNG.uniform(size=(4, 5))
WEIGHTS = RNG.normal(size=(4, 5))


def np_log_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def np_sigmoid_xent(z, y):
    return np.logaddexp(0.0, z) - z * y


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_and_log_softmax_values_and_gradients(axis):
    want = np_log_softmax(LOGITS, axis)
    np.testing.assert_allclose(np.asarray(nn.log_softmax(LOGITS, axis)), want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(tj.jit(lambda z: nn.softmax(z, axis))(LOGITS)),
                               np.exp(want), rtol=1e-12)
    for fn, ref in ((nn.softmax, lambda z: np.exp(np_log_softmax(z, axis))),
                    (nn.log_softmax, lambda z: np_log_softmax(z, axis))):
        got = tj.grad(lambda z, fn=fn: tj.reduce_sum(fn(z, axis) * WEIGHTS))(LOGITS)
        np.testing.assert_allclose(np.asarray(got), numeric_gradient(
            lambda z, ref=ref: float(np.sum(ref(z) * WEIGHTS)), LOGITS), rtol=1e-6, atol=1e-8)


def test_cross_entropy_values_match_numpy():
    dense = nn.softmax_cross_entropy_with_logits(labels=ONE_HOT, logits=LOGITS)
    sparse = nn.sparse_softmax_cross_entropy_with_logits(labels=CLASSES, logits=LOGITS)
    want = -np_log_softmax(LOGITS)[np.arange(4), CLASSES]
    np.testing.assert_allclose(np.asarray(dense), want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sparse), want, rtol=1e-12)
    big = np.array([[-800.0, -2.0, 0.0, 3.0, 800.0]])     # no overflow at either end
    got = np.asarray(nn.sigmoid_cross_entropy_with_logits(labels=np.ones_like(big), logits=big))
    np.testing.assert_allclose(got, np_sigmoid_xent(big, 1.0), rtol=1e-12)
    got = nn.sigmoid_cross_entropy_with_logits(labels=BINARY, logits=LOGITS)
    np.testing.assert_allclose(np.asarray(got), np_sigmoid_xent(LOGITS, BINARY), rtol=1e-12)
    with pytest.raises(TypeError, match="integers"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=ONE_HOT, logits=LOGITS)


def test_sigmoid_cross_entropy_gradients_in_both_operands():
    def f(z, y):
        return tj.reduce_sum(nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z) * WEIGHTS)

    gz, gy = tj.grad(f, argnums=(0, 1))(LOGITS, BINARY)
    ref = lambda z, y: float(np.sum(np_sigmoid_xent(z, y) * WEIGHTS))  # noqa: E731
    np.testing.assert_allclose(np.asarray(gz), numeric_gradient(
        lambda z: ref(z, BINARY), LOGITS), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(gy), numeric_gradient(
        lambda y: ref(LOGITS, y), BINARY), rtol=1e-6, atol=1e-8)


def test_l2_loss_and_flatten_gradients():
    x = RNG.normal(size=(2, 3, 2, 2))
    np.testing.assert_allclose(float(nn.l2_loss(x)), np.sum(x ** 2) / 2, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(tj.grad(nn.l2_loss)(x)), x, rtol=1e-12)
    r = RNG.normal(size=(2, 12))
    got = tj.grad(lambda x: tj.reduce_sum(nn.flatten(x) * r))(x)
    np.testing.assert_array_equal(np.asarray(got), r.reshape(x.shape))
    assert nn.flatten(x).shape == (2, 12)


def test_the_same_functions_in_a_tf1_session():
    with tf.Graph().as_default():
        # NOTE: static batch: an unknown one meeting the constants fails the graph's
        # shape inference (it tries two stand-in sizes), where TF1 would wait for run time.
        z = tf.placeholder(tf.float64, [4, 5])
        labels = tf.placeholder(tf.int32, [4])
        fetches = [tf.nn.softmax(z), tf.nn.log_softmax(z),
                   tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=z),
                   tf.nn.softmax_cross_entropy_with_logits_v2(labels=ONE_HOT, logits=z),
                   tf.nn.sigmoid_cross_entropy_with_logits(labels=BINARY, logits=z),
                   tf.nn.l2_loss(z)]
        grad = tf.gradients(tf.reduce_sum(fetches[2]), z)[0]      # TF1's idiom
        with tf.Session() as sess:
            soft, log_soft, sparse, dense, sig, l2, g = sess.run(
                fetches + [grad], {z: LOGITS, labels: CLASSES})
    want = np_log_softmax(LOGITS)
    np.testing.assert_allclose(soft, np.exp(want), rtol=1e-12)
    np.testing.assert_allclose(log_soft, want, rtol=1e-12)
    np.testing.assert_allclose(sparse, -want[np.arange(4), CLASSES], rtol=1e-12)
    np.testing.assert_allclose(dense, sparse, rtol=1e-12)
    np.testing.assert_allclose(sig, np_sigmoid_xent(LOGITS, BINARY), rtol=1e-12)
    np.testing.assert_allclose(l2, np.sum(LOGITS ** 2) / 2, rtol=1e-12)
    np.testing.assert_allclose(g, np.exp(want) - ONE_HOT, rtol=1e-10, atol=1e-12)
