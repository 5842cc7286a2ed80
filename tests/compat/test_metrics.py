"""tf.metrics streamed over three batches, against TensorFlow 2.21 (tf.compat.v1.metrics,
recorded by make_tf_losses_metrics_reference.py from the programs of
loss_metric_programs.py into tf_losses_metrics_reference.json),
plus their local variables, reset and collections."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

from . import loss_metric_programs as programs

REFERENCE = programs.recorded("metrics")


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def test_streamed_metrics_match_tensorflow_after_each_batch_and_at_the_end():
    p = programs.metric_placeholders(tf)
    made = programs.build_metrics(tf, p)
    assert sorted(made) == sorted(REFERENCE["values"])
    names = sorted(v.name for v in tf.local_variables())
    assert names == REFERENCE["local_variable_names"]
    assert tf.get_collection(tf.GraphKeys.METRIC_VARIABLES) == tf.local_variables()
    assert tf.global_variables() == []
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        for i, batch in enumerate(programs.METRIC_BATCHES):
            got = sess.run({k: u for k, (_, u) in made.items()}, programs.feed(p, batch))
            for key, updates in REFERENCE["updates"].items():
                np.testing.assert_allclose(got[key], updates[i], rtol=1e-5, atol=1e-6,
                                           err_msg=f"{key} after batch {i}")
        values = sess.run({k: v for k, (v, _) in made.items()})
        for key, expected in REFERENCE["values"].items():
            np.testing.assert_allclose(values[key], expected, rtol=1e-5, atol=1e-6,
                                       err_msg=key)


def test_local_variables_initializer_resets_the_stream():
    labels = tf.placeholder(tf.int32, [None])
    predictions = tf.placeholder(tf.int32, [None])
    accuracy, update = tf.metrics.accuracy(labels, predictions,
                                           metrics_collections=["my_metrics"],
                                           updates_collections=[tf.GraphKeys.UPDATE_OPS])
    assert tf.get_collection("my_metrics") == [accuracy]
    assert tf.get_collection(tf.GraphKeys.UPDATE_OPS) == [update]
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        assert float(sess.run(accuracy)) == 0.0          # nothing seen: 0, not NaN
        sess.run(update, {labels: [1, 2, 3, 4], predictions: [1, 2, 0, 0]})
        streamed = sess.run(update, {labels: [5, 6], predictions: [5, 6]})
        assert float(streamed) == pytest.approx(4 / 6)
        assert float(sess.run(accuracy)) == pytest.approx(4 / 6)   # reading does not update
        sess.run(tf.local_variables_initializer())
        assert float(sess.run(update, {labels: [1], predictions: [0]})) == 0.0


def test_labels_with_a_trailing_one_are_squeezed():
    # hand-derived: predictions [1, 0, 1] against labels [[1], [1], [1]] -> 2 of 3
    accuracy, update = tf.metrics.accuracy(np.array([[1], [1], [1]]), np.array([1, 0, 1]))
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        assert float(sess.run(update)) == pytest.approx(2 / 3)


def test_user_mistakes_are_clear_errors_naming_the_line():
    with pytest.raises(ValueError, match="incompatible") as err:
        tf.metrics.accuracy(np.zeros(3), np.zeros(4))
    assert "test_metrics.py" in str(err.value)
    with pytest.raises(ValueError, match="curve must be 'ROC' or 'PR'") as err:
        tf.metrics.auc([1], [0.5], curve="roc-ish")
    assert "test_metrics.py" in str(err.value)
    with pytest.raises(ValueError, match="num_thresholds must be > 1"):
        tf.metrics.auc([1], [0.5], num_thresholds=1)
