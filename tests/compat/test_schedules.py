"""tf.train's learning-rate schedules against TF 1.x's formulas, and optimizers whose
hyperparameters are graph tensors (placeholders, schedules, variables)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def _values(make, steps=30):
    """The schedule's value at global steps 0..steps-1."""
    step = tf.placeholder(tf.int64, [])
    rate = make(step)
    with tf.Session() as sess:
        return np.array([sess.run(rate, {step: k}) for k in range(steps)])


def test_exponential_decay():
    k = np.arange(30)
    np.testing.assert_allclose(_values(lambda s: tf.train.exponential_decay(0.5, s, 7, 0.8)),
                               0.5 * 0.8 ** (k / 7), rtol=1e-6)
    np.testing.assert_allclose(
        _values(lambda s: tf.train.exponential_decay(0.5, s, 7, 0.8, staircase=True)),
        0.5 * 0.8 ** (k // 7), rtol=1e-6)


def test_inverse_time_and_polynomial_decay():
    k = np.arange(30)
    np.testing.assert_allclose(_values(lambda s: tf.train.inverse_time_decay(0.5, s, 5, 0.3)),
                               0.5 / (1 + 0.3 * k / 5), rtol=1e-6)
    want = (0.1 - 0.01) * (1 - np.minimum(k, 20) / 20) ** 2 + 0.01
    np.testing.assert_allclose(
        _values(lambda s: tf.train.polynomial_decay(0.1, s, 20, 0.01, power=2.0)), want,
        rtol=1e-5)
    horizon = 20 * np.maximum(np.ceil(k / 20), 1)
    want = (0.1 - 0.01) * (1 - k / horizon) + 0.01
    np.testing.assert_allclose(
        _values(lambda s: tf.train.polynomial_decay(0.1, s, 20, 0.01, cycle=True)), want,
        rtol=1e-5)


def test_piecewise_constant():
    got = _values(lambda s: tf.train.piecewise_constant(s, [3, 6], [1.0, 0.5, 0.1]), 9)
    np.testing.assert_array_equal(got, np.float32([1.0] * 4 + [0.5] * 3 + [0.1] * 2))
    with pytest.raises(ValueError, match="one more value than boundaries"):
        tf.train.piecewise_constant(tf.constant(1), [3, 6], [1.0, 0.5])


def test_an_optimizer_reads_its_scheduled_rate_on_every_run():
    gs = tf.train.get_or_create_global_step()
    lr = tf.train.exponential_decay(0.1, gs, 1, 0.5)            # halves every step
    w = tf.Variable(np.float32(0.0))
    train = tf.train.GradientDescentOptimizer(lr).minimize(-w, global_step=gs)  # grad -1
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(4):
            sess.run(train)
        np.testing.assert_allclose(sess.run(w), 0.1 * (1 + 0.5 + 0.25 + 0.125), rtol=1e-6)
        assert sess.run(gs) == 4


def test_placeholder_and_variable_hyperparameters():
    rate = tf.placeholder(tf.float32, [])
    momentum = tf.Variable(np.float32(0.5), trainable=False)
    w = tf.Variable(np.float32(0.0))
    train = tf.train.MomentumOptimizer(rate, momentum).minimize(-w)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train, {rate: 1.0})                # accum = 1, w = 1
        sess.run(momentum.assign(0.0))
        sess.run(train, {rate: 2.0})                # accum = 0*1 + 1, w = 1 + 2
        np.testing.assert_allclose(sess.run(w), 3.0)
        with pytest.raises(Exception, match="placeholder"):
            sess.run(train)                         # the rate must be fed


def test_a_schedule_without_a_global_step_is_an_error():
    with pytest.raises(ValueError, match="global_step is required"):
        tf.train.exponential_decay(0.1, None, 10, 0.5)
