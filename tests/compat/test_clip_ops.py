"""tf.clip_by_global_norm, tf.global_norm, tf.clip_by_norm, tf.clip_by_average_norm.

Expected values were recorded from TensorFlow 2.21 (tf.compat.v1, eager execution off)
on the same programs; gradients are also checked against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

A = [[3.0, 4.0], [1.0, -2.0]]
B = [12.0, -5.0]
GLOBAL_NORM = 14.106736       # sqrt(9 + 16 + 1 + 4 + 144 + 25)


def run(make, feed=None):
    with tf.Graph().as_default():
        out = make()
        with tf.Session() as sess:
            return sess.run(out, feed)


def test_clip_by_global_norm_scales_every_tensor_and_keeps_none():
    def make():
        clipped, norm = tf.clip_by_global_norm([tf.constant(A), None, tf.constant(B)], 5.0)
        assert clipped[1] is None and len(clipped) == 3
        return clipped[0], clipped[2], norm
    a, b, norm = run(make)
    np.testing.assert_allclose(a, [[1.0633217, 1.4177623], [0.35444057, -0.70888114]],
                               rtol=1e-6)
    np.testing.assert_allclose(b, [4.253287, -1.7722028], rtol=1e-6)
    np.testing.assert_allclose(norm, GLOBAL_NORM, rtol=1e-6)


def test_clip_by_global_norm_below_the_limit_is_unchanged():
    a, b, norm = run(lambda: [*tf.clip_by_global_norm([tf.constant(A), tf.constant(B)],
                                                      100.0)[0],
                              tf.global_norm([tf.constant(A), None, tf.constant(B)])])
    np.testing.assert_allclose(a, A, rtol=1e-6)
    np.testing.assert_allclose(b, B, rtol=1e-6)
    np.testing.assert_allclose(norm, GLOBAL_NORM, rtol=1e-6)


def test_clip_by_global_norm_with_use_norm():
    a, b = run(lambda: tf.clip_by_global_norm([tf.constant(A), tf.constant(B)], 5.0,
                                              use_norm=tf.constant(10.0))[0])
    np.testing.assert_allclose(a, [[1.5, 2.0], [0.5, -1.0]], rtol=1e-6)
    np.testing.assert_allclose(b, [6.0, -2.5], rtol=1e-6)


def test_clip_by_global_norm_of_an_infinite_norm_is_nan():
    # TensorFlow 2.21: every clipped value NaN, the norm inf
    (a, b), norm = run(lambda: tf.clip_by_global_norm(
        [tf.constant(A), tf.constant(B)], 5.0, use_norm=tf.constant(np.inf, tf.float32)))
    assert np.isnan(a).all() and np.isnan(b).all()
    assert norm == np.inf


def test_clip_by_global_norm_with_fed_shapes_and_tensor_clip_norm():
    def make():
        x = tf.placeholder(tf.float32, [None])
        limit = tf.placeholder(tf.float32, [])
        clipped, norm = tf.clip_by_global_norm([x, 2.0 * x], limit)
        assert clipped[0].shape.as_list() == [None]
        return clipped, norm, x, limit
    with tf.Graph().as_default():
        clipped, norm, x, limit = make()
        with tf.Session() as sess:
            (c0, c1), n = sess.run([clipped, norm], {x: [1.0, 2.0], limit: 1.0})
    np.testing.assert_allclose(n, 5.0, rtol=1e-6)          # sqrt(1 + 4 + 4 + 16)
    np.testing.assert_allclose(c0, [0.2, 0.4], rtol=1e-6)
    np.testing.assert_allclose(c1, [0.4, 0.8], rtol=1e-6)


@pytest.mark.parametrize("axes,expected", [
    (None, [[1.095445, 1.4605935], [0.36514837, -0.73029673]]),
    ([1], [[1.2, 1.6], [0.8944272, -1.7888544]]),
    (0, [[1.8973665, 1.7888544], [0.6324555, -0.8944272]]),
])
def test_clip_by_norm(axes, expected):
    got = run(lambda: tf.clip_by_norm(tf.constant(A), 2.0, axes=axes))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_clip_by_norm_of_zeros_and_its_gradient():
    def make():
        x = tf.Variable(A)
        weights = tf.constant([[1.0, 2.0], [3.0, 4.0]])
        g = tf.gradients(tf.reduce_sum(tf.clip_by_norm(x, 2.0, axes=[1]) * weights), x)[0]
        zero = tf.zeros([2]) * x[0]
        gz = tf.gradients(tf.reduce_sum(tf.clip_by_norm(zero, 1.0)), x)[0]
        return tf.clip_by_norm(tf.zeros([2]), 1.0), g, gz
    with tf.Graph().as_default():
        out = make()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            zeros, g, gz = sess.run(out)
    assert zeros.tolist() == [0.0, 0.0]
    # TensorFlow 2.21's values
    np.testing.assert_allclose(g, [[-0.128, 0.096], [3.5777087, 1.7888546]], rtol=1e-5,
                               atol=1e-6)
    assert gz.tolist() == [[0.0, 0.0], [0.0, 0.0]]     # no NaN from sqrt(0)


def test_clip_by_norm_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(3, 4))
    w = rng.normal(size=(3, 4))
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float64, [3, 4])
        y = tf.reduce_sum(tf.clip_by_norm(x, 1.5, axes=[1]) * w)
        g = tf.gradients(y, x)[0]
        with tf.Session() as sess:
            grad = sess.run(g, {x: x0})
            eps = 1e-6
            numeric = np.zeros_like(x0)
            for i in np.ndindex(x0.shape):
                step = np.zeros_like(x0)
                step[i] = eps
                numeric[i] = (sess.run(y, {x: x0 + step}) - sess.run(y, {x: x0 - step})) \
                    / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_clip_by_average_norm():
    got = run(lambda: tf.clip_by_average_norm(tf.constant(A), 1.0))
    np.testing.assert_allclose(got, [[2.1908903, 2.921187], [0.73029673, -1.4605935]],
                               rtol=1e-6)


def test_clip_by_global_norm_trains_a_variable():
    with tf.Graph().as_default():
        w = tf.Variable([3.0, 4.0])
        loss = tf.reduce_sum(w * tf.constant([30.0, 40.0]))
        opt = tf.train.GradientDescentOptimizer(1.0)
        grads, variables = zip(*opt.compute_gradients(loss, [w]), strict=True)
        clipped, norm = tf.clip_by_global_norm(list(grads), 5.0)
        train = opt.apply_gradients(zip(clipped, variables, strict=True))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            _, n = sess.run([train, norm])
            np.testing.assert_allclose(n, 50.0, rtol=1e-6)
            np.testing.assert_allclose(sess.run(w), [0.0, 0.0], atol=1e-6)


def test_user_mistakes_are_clear():
    with tf.Graph().as_default():
        a = tf.constant(A)
        # TensorFlow: TypeError "`t_list` should be a sequence of tensors"
        with pytest.raises(TypeError, match="t_list.*sequence of tensors"):
            tf.clip_by_global_norm(a, 1.0)
        with pytest.raises(TypeError, match=r"float32, float64.*don't all match"):
            tf.clip_by_global_norm([a, tf.constant([1.0], tf.float64)], 1.0)
        with pytest.raises(TypeError, match="floating-point"):
            tf.clip_by_norm(tf.constant([1, 2]), 1.0)
