"""tf.gradients with respect to a tf.constant or a placeholder_with_default left unfed:
values TensorFlow computes eagerly in no step of ours still get gradients (hand-derived:
d sum(c*c)/dc = 2c; d(d^3)/dd = 3 d^2)."""

from __future__ import annotations

import numpy as np

import tracejit.compat.v1 as tf


def test_gradient_with_respect_to_a_constant():
    with tf.Graph().as_default():
        c = tf.constant([1.0, 2.0, -3.0])
        (g,) = tf.gradients(tf.reduce_sum(c * c), c)
        with tf.Session() as sess:
            np.testing.assert_allclose(sess.run(g), [2.0, 4.0, -6.0])


def test_gradient_with_respect_to_a_default_fed_or_not():
    with tf.Graph().as_default():
        d = tf.placeholder_with_default(tf.constant(3.0), [])
        (g,) = tf.gradients(d * d * d, d)
        with tf.Session() as sess:
            assert float(sess.run(g)) == 27.0
            assert float(sess.run(g, {d: 2.0})) == 12.0


def test_a_constant_used_beside_variables_keeps_their_gradients():
    with tf.Graph().as_default():
        w = tf.Variable(np.array([0.5, -1.0], np.float32))
        c = tf.constant([2.0, 3.0])
        loss = tf.reduce_sum(w * c * c)
        gw, gc = tf.gradients(loss, [w, c])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            np.testing.assert_allclose(sess.run(gw), [4.0, 9.0])          # c^2
            np.testing.assert_allclose(sess.run(gc), [2.0, -6.0])         # 2 w c
