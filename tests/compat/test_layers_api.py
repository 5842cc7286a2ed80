"""tf.layers' classes and the 1-D/3-D/transposed/depthwise convolutions. The tf.nn ops'
values and gradients were recorded from TensorFlow 2.21 (make_tf_conv_reference.py on
conv_programs.py); layer names, variable lists and loss lists were recorded from
TensorFlow 2.21's tf.compat.v1.layers on the same calls; other values are derived by
hand as noted."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

from . import conv_programs


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def test_nn_convolutions_and_pooling_match_tensorflow_with_gradients():
    reference = conv_programs.recorded()
    fetches, feed = conv_programs.build(tf)
    assert sorted(fetches) == sorted(reference)
    with tf.Session() as sess:
        got = sess.run(fetches, feed)
    for key, (value, gradients) in got.items():
        np.testing.assert_allclose(value, reference[key]["value"], rtol=1e-4, atol=1e-4,
                                   err_msg=key)
        assert len(gradients) == len(reference[key]["gradients"])
        for i, (grad, expected) in enumerate(zip(gradients, reference[key]["gradients"],
                                                 strict=True)):
            np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-4,
                                       err_msg=f"{key} gradient {i}")


def test_a_layer_object_builds_once_and_is_numbered_like_tensorflow():
    x = tf.placeholder(tf.float32, [None, 4])
    dense = tf.layers.Dense(3)
    first, second = dense(x), dense(x * 2.0)
    assert dense.built and dense.scope_name == "dense"
    assert [v.name for v in dense.variables] == ["dense/kernel:0", "dense/bias:0"]
    tf.layers.dense(x, 2)                                 # the functional form: dense_1
    named, named_again = tf.layers.Dense(2, name="fc"), tf.layers.Dense(2, name="fc")
    named(x)
    named_again(x)
    assert (named.name, named.scope_name) == ("fc", "fc")
    assert (named_again.name, named_again.scope_name) == ("fc", "fc_1")
    with tf.variable_scope("outer"):
        inner = tf.layers.Dense(2)
        inner(x)
    assert inner.scope_name == "outer/dense"
    assert [v.name for v in tf.global_variables()] == [
        "dense/kernel:0", "dense/bias:0", "dense_1/kernel:0", "dense_1/bias:0",
        "fc/kernel:0", "fc/bias:0", "fc_1/kernel:0", "fc_1/bias:0",
        "outer/dense/kernel:0", "outer/dense/bias:0"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        a, b = sess.run([first, second], {x: np.ones((1, 4), np.float32)})
        kernel, bias = sess.run(dense.variables)
        np.testing.assert_allclose(a, kernel.sum(0, keepdims=True) + bias, rtol=1e-6)
        np.testing.assert_allclose(b, 2 * kernel.sum(0, keepdims=True) + bias, rtol=1e-6)


def test_layer_losses_from_kernel_bias_and_activity_regularizers():
    x = tf.placeholder(tf.float32, [None, 2])
    layer = tf.layers.Dense(
        2, kernel_initializer=tf.ones_initializer(),
        bias_initializer=tf.constant_initializer(0.5),
        kernel_regularizer=tf.contrib.layers.l1_regularizer(0.1),
        bias_regularizer=tf.contrib.layers.l2_regularizer(1.0),
        activity_regularizer=tf.contrib.layers.l1_regularizer(1.0))
    layer(x)
    assert len(layer.losses) == 3
    assert tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES) == layer.losses
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        # hand-derived: |kernel| 4 * 0.1; bias 0.5 * (0.25 + 0.25); activity: outputs of
        # [[1, 1], [2, 2], [0, 0]] with ones and 0.5 bias are 2.5, 4.5, 0.5 (twice each),
        # sum 15, divided by the batch of 3
        values = sess.run(layer.losses, {x: [[1, 1], [2, 2], [0, 0]]})
        np.testing.assert_allclose(values, [0.4, 0.25, 5.0], rtol=1e-6)


def test_batch_normalization_layer_weights_updates_and_moving_statistics():
    x = tf.placeholder(tf.float32, [None, 2])
    bn = tf.layers.BatchNormalization(momentum=0.5)
    y = bn(x, training=True)
    assert [v.name for v in bn.trainable_weights] == ["batch_normalization/gamma:0",
                                                      "batch_normalization/beta:0"]
    assert [v.name for v in bn.non_trainable_weights] == [
        "batch_normalization/moving_mean:0", "batch_normalization/moving_variance:0"]
    assert bn.updates == tf.get_collection(tf.GraphKeys.UPDATE_OPS) and len(bn.updates) == 2
    inference = bn(x, training=False)
    assert len(bn.variables) == 4                          # the second call made none
    data = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run([y] + bn.updates, {x: data})[0]
        # hand-derived: batch mean [2, 4], variance [1, 4]; eps 1e-3
        np.testing.assert_allclose(out, [[-1 / np.sqrt(1.001), -2 / np.sqrt(4.001)],
                                         [1 / np.sqrt(1.001), 2 / np.sqrt(4.001)]], rtol=1e-5)
        # moving = 0.5 * moving + 0.5 * batch: mean [1, 2], variance [1, 2.5]
        np.testing.assert_allclose(sess.run(bn.non_trainable_weights),
                                   [[1.0, 2.0], [1.0, 2.5]], rtol=1e-6)
        np.testing.assert_allclose(sess.run(inference, {x: [[1.0, 2.0]]}),
                                   [[0.0, 0.0]], atol=1e-6)


def test_convolution_layers_match_the_nn_ops_on_their_kernels():
    signal = tf.placeholder(tf.float32, [None, 9, 2])
    volume = tf.placeholder(tf.float32, [None, 4, 5, 6, 2])
    image = tf.placeholder(tf.float32, [None, 5, 6, 2])
    c1, c3 = tf.layers.Conv1D(3, 3, padding="same"), tf.layers.Conv3D(4, [2, 3, 2], strides=2)
    t = tf.layers.Conv2DTranspose(3, 3, strides=2, padding="same")
    tv = tf.layers.Conv2DTranspose(3, [3, 2], strides=[2, 1], padding="valid")
    outs = [c1(signal), c3(volume), t(image), tv(image)]
    assert [o.shape.as_list() for o in outs] == [[None, 9, 3], [None, 2, 2, 3, 4],
                                                 [None, 10, 12, 3], [None, 11, 7, 3]]
    assert t.name == "conv2d_transpose" and tv.scope_name == "conv2d_transpose_1"
    assert t.kernel.shape.as_list() == [3, 3, 3, 2]         # [kh, kw, filters, in]
    expected = [
        tf.nn.conv1d(signal, c1.kernel, 1, "SAME") + c1.bias,
        tf.nn.conv3d(volume, c3.kernel, [1, 2, 2, 2, 1], "VALID") + c3.bias,
        tf.nn.conv2d_transpose(image, t.kernel, [2, 10, 12, 3], 2, "SAME") + t.bias,
        tf.nn.conv2d_transpose(image, tv.kernel, [2, 11, 7, 3], [2, 1], "VALID") + tv.bias]
    rng = np.random.RandomState(0)
    feed = {p: rng.randn(2, *p.shape.as_list()[1:]).astype(np.float32)
            for p in (signal, volume, image)}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run([b.assign(np.arange(b.shape.as_list()[0], dtype=np.float32)) for b in
                  (c1.bias, c3.bias, t.bias, tv.bias)])
        for got, want in zip(sess.run(outs, feed), sess.run(expected, feed), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_functional_and_class_pooling_dropout_and_flatten():
    signal = tf.placeholder(tf.float32, [None, 8, 1])
    volume = tf.placeholder(tf.float32, [None, 4, 4, 4, 1])
    pooled = [tf.layers.max_pooling1d(signal, 2, 2), tf.layers.AveragePooling1D(4, 4)(signal),
              tf.layers.max_pooling3d(volume, 2, 2),
              tf.layers.average_pooling3d(volume, 4, 1),
              tf.layers.MaxPooling2D(2, 2)(tf.reshape(signal, [-1, 2, 4, 1]))]
    flat = tf.layers.Flatten()(volume)
    training = tf.placeholder(tf.bool, [])
    dropped = tf.layers.Dropout(0.5, seed=3)(signal, training=training)
    values = np.arange(8, dtype=np.float32).reshape(1, 8, 1)
    cube = np.arange(64, dtype=np.float32).reshape(1, 4, 4, 4, 1)
    with tf.Session() as sess:
        got = sess.run(pooled + [flat], {signal: values, volume: cube})
        # hand-derived: pairs' maxima 1, 3, 5, 7; means of fours 1.5, 5.5; the 2x2x2
        # maxima of a 4x4x4 ramp sit at offsets (1, 1, 1): 21, 23, 29, 31, 53, ...
        assert got[0].ravel().tolist() == [1, 3, 5, 7]
        assert got[1].ravel().tolist() == [1.5, 5.5]
        assert got[2].ravel().tolist() == [21, 23, 29, 31, 53, 55, 61, 63]
        assert got[3].ravel().tolist() == [31.5]
        assert got[4].ravel().tolist() == [5, 7]
        assert got[5].shape == (1, 64)
        np.testing.assert_array_equal(sess.run(dropped, {signal: values, training: False}),
                                      values)
        kept = sess.run(dropped, {signal: values + 1, training: True}).ravel()
        assert set(kept.tolist()) <= set((2 * (values.ravel() + 1)).tolist()) | {0.0}


def test_user_mistakes_in_layers_are_clear_errors():
    with pytest.raises(ValueError, match="channel dimension .* must be known") as err:
        tf.layers.Conv1D(2, 3)(tf.placeholder(tf.float32, [None, 5, None]))
    assert "test_layers_api.py" in str(err.value)
    with pytest.raises(ValueError, match="padding must be 'SAME' or 'VALID'"):
        tf.nn.conv3d(tf.zeros([1, 2, 2, 2, 1]), tf.zeros([1, 1, 1, 1, 1]), 1, "FULL")
    with pytest.raises(ValueError, match=r"filter must be \[height, width, 3, multiplier\]"):
        tf.nn.depthwise_conv2d(tf.zeros([1, 4, 4, 3]), tf.zeros([2, 2, 2, 1]), 1, "SAME")
