"""TF1 layers: tf.contrib.layers and tf.layers variable naming, reuse, batch norm updates,
tf.nn.conv2d/max_pool with TF1 signatures, and a short CNN training run in a Session."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit
import tracejit.compat.v1 as tf

from . import reference as ref


@pytest.fixture(autouse=True)
def fresh_graph():
    with tf.Graph().as_default() as graph:
        yield graph


def names(variables):
    return [v.name for v in variables]


def test_contrib_layers_name_their_variables_like_tensorflow():
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    net = tf.contrib.layers.conv2d(x, 8, [3, 3])
    net = tf.contrib.layers.max_pool2d(net, [2, 2])
    net = tf.contrib.layers.conv2d(net, 16, 3, scope="conv_b")
    net = tf.contrib.layers.conv2d(net, 16, 3)
    net = tf.contrib.layers.flatten(net)
    net = tf.contrib.layers.fully_connected(net, 32)
    logits = tf.contrib.layers.linear(net, 10)
    assert names(tf.trainable_variables()) == [
        "Conv/weights:0", "Conv/biases:0", "conv_b/weights:0", "conv_b/biases:0",
        "Conv_1/weights:0", "Conv_1/biases:0", "fully_connected/weights:0",
        "fully_connected/biases:0", "fully_connected_1/weights:0",
        "fully_connected_1/biases:0"]
    assert net.shape.as_list() == [None, 32] and logits.shape.as_list() == [None, 10]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run(logits, {x: np.ones((3, 8, 8, 1))})
    assert out.shape == (3, 10)


def test_contrib_reuse_and_scopes_share_variables():
    x = tf.placeholder(tf.float32, [None, 4])
    a = tf.contrib.layers.fully_connected(x, 3, scope="fc")
    b = tf.contrib.layers.fully_connected(x, 3, scope="fc", reuse=True)
    with tf.variable_scope("tower"):
        tf.contrib.layers.fully_connected(x, 3)
    assert names(tf.trainable_variables()) == [
        "fc/weights:0", "fc/biases:0", "tower/fully_connected/weights:0",
        "tower/fully_connected/biases:0"]
    with pytest.raises(ValueError, match="already exists"):
        tf.contrib.layers.fully_connected(x, 3, scope="fc")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        va, vb = sess.run([a, b], {x: np.ones((2, 4))})
    np.testing.assert_array_equal(va, vb)


def test_tf_layers_names_and_shapes():
    x = tf.placeholder(tf.float32, [None, 9, 9, 2])
    h = tf.layers.conv2d(x, 4, 3, activation=tf.nn.relu)
    h = tf.layers.conv2d(h, 4, 3, strides=2, padding="same")
    h = tf.layers.max_pooling2d(h, 2, 2)
    h = tf.layers.average_pooling2d(h, 1, 1)
    h = tf.layers.batch_normalization(h, training=True)
    h = tf.layers.dropout(tf.layers.flatten(h), 0.5, training=True)
    y = tf.layers.dense(h, 3)
    assert names(tf.trainable_variables()) == [
        "conv2d/kernel:0", "conv2d/bias:0", "conv2d_1/kernel:0", "conv2d_1/bias:0",
        "batch_normalization/gamma:0", "batch_normalization/beta:0", "dense/kernel:0",
        "dense/bias:0"]
    assert "batch_normalization/moving_mean:0" in names(tf.global_variables())
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == 2
    assert y.shape.as_list() == [None, 3]


def test_tf_nn_conv2d_and_pools_with_tf1_signatures():
    rng = np.random.default_rng(0)
    x_in, w_in = rng.normal(size=(2, 6, 6, 3)), rng.normal(size=(3, 3, 3, 4))
    x = tf.placeholder(tf.float64, [None, 6, 6, 3])
    w = tf.constant(w_in)
    conv = tf.nn.conv2d(x, w, strides=[1, 2, 2, 1], padding="SAME")
    pooled = tf.nn.max_pool(conv, ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1], padding="VALID")
    mean, var = tf.nn.moments(pooled, [0, 1, 2])
    assert conv.shape.as_list() == [None, 3, 3, 4] and mean.shape.as_list() == [4]
    with tf.Session() as sess:
        got_conv, got_pool, got_var = sess.run([conv, pooled, var], {x: x_in})
    want = ref.conv2d(x_in, w_in, (2, 2), (0, 1, 0, 1))
    np.testing.assert_allclose(got_conv, want, rtol=1e-12)
    np.testing.assert_allclose(got_pool, ref.pool(want, (2, 2), (1, 1), (0,) * 4, "max"))
    np.testing.assert_allclose(got_var, got_pool.var((0, 1, 2)), rtol=1e-10)


@pytest.mark.parametrize("updates_collections", [tf.GraphKeys.UPDATE_OPS, None])
def test_contrib_batch_norm_updates_moving_averages(updates_collections):
    x_in = np.random.default_rng(1).normal(5.0, 2.0, size=(32, 3)).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 3])
    is_training = tf.placeholder_with_default(True, [])
    y = tf.contrib.layers.batch_norm(x, decay=0.9, is_training=is_training,
                                     updates_collections=updates_collections)
    assert names(tf.global_variables()) == ["BatchNorm/beta:0", "BatchNorm/moving_mean:0",
                                            "BatchNorm/moving_variance:0"]
    moving_mean = tf.global_variables()[1]
    updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run([y] + updates, {x: x_in})[0]
        np.testing.assert_allclose(out.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(sess.run(moving_mean), 0.1 * x_in.mean(0), rtol=1e-5)
        sess.run([y] + updates, {x: x_in, is_training: False})   # inference: no update
        np.testing.assert_allclose(sess.run(moving_mean), 0.1 * x_in.mean(0), rtol=1e-5)
    assert len(updates) == (2 if updates_collections else 0)


def test_contrib_dropout_changes_per_run_and_switches_off():
    x = tf.placeholder(tf.float32, [None, 50])
    is_training = tf.placeholder(tf.bool, [])
    y = tf.contrib.layers.dropout(x, keep_prob=0.5, is_training=is_training)
    ones = np.ones((20, 50), np.float32)
    with tf.Session() as sess:
        a, b = (sess.run(y, {x: ones, is_training: True}) for _ in range(2))
        off = sess.run(y, {x: ones, is_training: False})
    assert (a != b).any() and set(np.unique(a)) <= {0.0, 2.0}
    np.testing.assert_array_equal(off, ones)


def _bars(rng, n):
    """A 4-class toy task on 8×8 images: a horizontal or vertical bar, in the top-left or
    bottom-right half, plus noise."""
    labels = rng.integers(0, 4, n).astype(np.int32)
    images = rng.normal(0, 0.1, (n, 8, 8, 1)).astype(np.float32)
    for k, label in enumerate(labels):
        pos = rng.integers(0, 4) + (4 if label >= 2 else 0)
        if label % 2:
            images[k, :, pos, 0] += 1
        else:
            images[k, pos, :, 0] += 1
    return images, labels


def test_short_cnn_training_run_reaches_a_low_loss():
    tracejit.initializers.set_seed(0)
    tf.set_random_seed(0)
    rng = np.random.default_rng(0)
    images, labels = _bars(rng, 256)
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    y_label = tf.placeholder(tf.int32, [None])
    is_training = tf.placeholder_with_default(False, [])
    net = tf.contrib.layers.conv2d(x, 8, [3, 3])
    net = tf.contrib.layers.max_pool2d(net, [2, 2])
    net = tf.contrib.layers.conv2d(net, 16, [3, 3])
    net = tf.contrib.layers.max_pool2d(net, [2, 2])
    net = tf.contrib.layers.fully_connected(tf.contrib.layers.flatten(net), 32)
    net = tf.contrib.layers.dropout(net, keep_prob=0.8, is_training=is_training)
    logits = tf.contrib.layers.linear(net, 4)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y_label, logits=logits))
    train = tf.train.AdamOptimizer(0.01).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run(loss, {x: images, y_label: labels})
        for step in range(80):
            batch = slice(step % 8 * 32, step % 8 * 32 + 32)
            sess.run(train, {x: images[batch], y_label: labels[batch], is_training: True})
        last = sess.run(loss, {x: images, y_label: labels})
    assert first > 1.0 and last < 0.2, (first, last)


def test_tf_layers_batch_normalization_inference_and_switch():
    x_in = np.random.default_rng(2).normal(3.0, 2.0, size=(16, 4)).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 4])
    training = tf.placeholder_with_default(False, [])
    y = tf.layers.batch_normalization(x, momentum=0.5, training=training)
    frozen = tf.layers.batch_normalization(x, training=False)      # moving statistics only
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == 2    # none from `frozen`
    moving_mean = [v for v in tf.global_variables()
                   if v.name == "batch_normalization/moving_mean:0"][0]
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        step = tf.identity(y)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(frozen, {x: x_in}), x_in / np.sqrt(1 + 1e-3),
                                   rtol=1e-6)
        sess.run(step, {x: x_in})                                   # inference: no update
        np.testing.assert_array_equal(sess.run(moving_mean), 0)
        trained = sess.run(step, {x: x_in, training: True})
        np.testing.assert_allclose(trained.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(sess.run(moving_mean), 0.5 * x_in.mean(0), rtol=1e-5)
        inferred = sess.run(y, {x: x_in})
    np.testing.assert_allclose(inferred, (x_in - 0.5 * x_in.mean(0)) / np.sqrt(
        0.5 + 0.5 * x_in.var(0) + 1e-3), rtol=1e-5)


def test_dropout_switches_python_and_tensor():
    x = tf.placeholder(tf.float32, [None, 40])
    training = tf.placeholder(tf.bool, [])
    off = [tf.layers.dropout(x, 0.5),                               # TF's default: off
           tf.contrib.layers.dropout(x, 0.5, is_training=False),
           tf.layers.dropout(x, 0.5, training=training)]
    on = tf.contrib.layers.dropout(x, keep_prob=0.25, is_training=True)
    ones = np.ones((10, 40), np.float32)
    with tf.Session() as sess:
        a, b, c = sess.run(off, {x: ones, training: False})
        masked = sess.run(on, {x: ones})
        dropped = sess.run(off[2], {x: ones, training: True})
    for out in (a, b, c):
        np.testing.assert_array_equal(out, ones)
    assert set(np.unique(masked)) == {0.0, 4.0} and 0.6 < (masked == 0).mean() < 0.9
    assert set(np.unique(dropped)) == {0.0, 2.0}


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_layers_conv_dilation_and_data_format_match_the_reference(data_format):
    rng = np.random.default_rng(3)
    x_in = rng.normal(size=(2, 9, 8, 3))
    first = data_format == "NCHW"
    feed = x_in.transpose(0, 3, 1, 2) if first else x_in
    x = tf.placeholder(tf.float64, [None, *feed.shape[1:]])
    contrib = tf.contrib.layers.conv2d(x, 4, [3, 2], stride=[1, 2], rate=2,
                                       data_format=data_format, activation_fn=None)
    layers = tf.layers.conv2d(x, 2, 3, dilation_rate=(2, 1), padding="valid",
                              data_format="channels_first" if first else "channels_last")
    pooled = tf.contrib.layers.avg_pool2d(x, [3, 3], stride=2, padding="SAME",
                                          data_format=data_format)
    kernels = [v for v in tf.trainable_variables() if "weights" in v.name or "kernel" in v.name]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got_contrib, got_layers, got_pool, w1, w2 = sess.run(
            [contrib, layers, pooled, *kernels], {x: feed})
    back = (lambda a: a.transpose(0, 2, 3, 1)) if first else (lambda a: a)
    want = ref.conv2d(x_in, w1, (1, 2), (*ref.same_pads(9, 3, 1, 2),
                                         *ref.same_pads(8, 2, 2, 2)), (2, 2))
    np.testing.assert_allclose(back(got_contrib), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(back(got_layers), ref.conv2d(x_in, w2, dilations=(2, 1)),
                               rtol=1e-10, atol=1e-12)
    pads = (*ref.same_pads(9, 3, 2), *ref.same_pads(8, 3, 2))
    np.testing.assert_allclose(back(got_pool), ref.pool(x_in, (3, 3), (2, 2), pads, "avg"),
                               rtol=1e-12)


def test_contrib_batch_norm_channels_first():
    x_in = np.random.default_rng(4).normal(1.0, 3.0, size=(4, 3, 5, 5)).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 3, 5, 5])
    y = tf.contrib.layers.batch_norm(x, data_format="NCHW", updates_collections=None)
    assert tf.global_variables()[0].shape.as_list() == [3]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run(y, {x: x_in})
    np.testing.assert_allclose(out.mean((0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.var((0, 2, 3)), x_in.var((0, 2, 3)) / (
        x_in.var((0, 2, 3)) + 1e-3), rtol=1e-4)
