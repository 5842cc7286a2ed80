"""tf.losses against TensorFlow 2.21 (tf.compat.v1.losses, recorded by
make_tf_losses_metrics_reference.py from the programs of loss_metric_programs.py into
tf_losses_metrics_reference.json), plus the loss collections, gradients and errors."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

from . import loss_metric_programs as programs
from .loss_metric_programs import ELEMENT_WEIGHTS, LABELS, PREDICTIONS

REFERENCE = programs.recorded("losses")


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def test_every_loss_weighting_and_reduction_matches_tensorflow():
    built = programs.build_losses(tf)
    assert sorted(built) == sorted(REFERENCE)
    with tf.Session() as sess:
        got = sess.run(built)
    for key, expected in REFERENCE.items():
        np.testing.assert_allclose(got[key], expected, rtol=2e-6, atol=1e-6, err_msg=key)
    # every loss went to the LOSSES collection, in order
    assert tf.losses.get_losses() == list(built.values())


def test_default_reduction_divides_by_the_nonzero_weights():
    # hand-derived: squared errors of the weighted rows 0, 2, 3 (weights 1, 2, 0.5):
    # row sums 4.5, 2.25, 7.5 -> (4.5 + 2 * 2.25 + 0.5 * 7.5) / 9 nonzero-weighted elements
    loss = tf.losses.mean_squared_error(LABELS, PREDICTIONS,
                                        ELEMENT_WEIGHTS["batch"])
    with tf.Session() as sess:
        assert float(sess.run(loss)) == pytest.approx(12.75 / 9, rel=1e-6)


def test_losses_on_placeholders_train_and_have_gradients():
    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.placeholder(tf.float32, [None, 3])
    w = tf.Variable(np.zeros((3, 3), np.float32))
    loss = tf.losses.huber_loss(y, tf.matmul(x, w), delta=0.75)
    grad = tf.gradients(loss, w)[0]
    feed = {x: PREDICTIONS, y: LABELS}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        analytic = sess.run(grad, feed)
        numeric = np.zeros((3, 3))
        for i in range(3):
            for j in range(3):
                step = np.zeros((3, 3), np.float32)
                step[i, j] = 1e-2
                w.load(step, sess)
                up = sess.run(loss, feed)
                w.load(-step, sess)
                down = sess.run(loss, feed)
                numeric[i, j] = (up - down) / 2e-2
        np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-4)


def test_total_loss_adds_the_regularization_losses():
    w = tf.get_variable("w", initializer=np.array([1.0, -2.0], np.float32),
                        regularizer=tf.contrib.layers.l2_regularizer(0.5))
    data = tf.losses.absolute_difference([0.0, 0.0], w)
    tf.losses.add_loss(tf.constant(10.0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        # |1| + |-2| over 2 -> 1.5; l2: 0.5 * (1 + 4) / 2 = 1.25; + the added 10
        assert float(sess.run(tf.losses.get_regularization_loss())) == pytest.approx(1.25)
        assert len(tf.losses.get_regularization_losses()) == 1
        assert float(sess.run(tf.losses.get_total_loss())) == pytest.approx(12.75)
        assert float(sess.run(tf.losses.get_total_loss(False))) == pytest.approx(11.5)
    assert tf.losses.get_losses() == [data, tf.get_collection(tf.GraphKeys.LOSSES)[1]]


def test_a_loss_can_stay_out_of_the_collection_and_sum_over_the_batch():
    loss = tf.losses.mean_squared_error([[1.0, 2.0]], [[2.0, 2.0]], loss_collection=None,
                                        reduction=tf.losses.Reduction.SUM_OVER_BATCH_SIZE)
    assert tf.losses.get_losses() == []
    with tf.Session() as sess:
        assert float(sess.run(loss)) == 0.5
    assert tf.losses.get_regularization_loss().dtype == tf.float32


def test_user_mistakes_are_clear_errors_naming_the_line():
    with pytest.raises(ValueError, match=r"Shapes .* incompatible") as err:
        tf.losses.mean_squared_error(np.zeros((2, 2)), np.zeros((2, 3)))
    assert "test_losses.py" in str(err.value)
    with pytest.raises(ValueError, match=r"weights of shape \[2\] cannot be broadcast") as err:
        tf.losses.mean_squared_error(np.zeros((2, 3)), np.zeros((2, 3)),
                                     weights=np.ones(2, np.float32))
    assert "test_losses.py" in str(err.value)
    with pytest.raises(ValueError, match="reduction must be one of"):
        tf.losses.log_loss([1.0], [0.5], reduction="average")
    with pytest.raises(ValueError, match="No losses to sum"):
        tf.losses.get_total_loss()
