"""tf.contrib.framework.arg_scope, the contrib regularizers, and variable_scope's
initializer / regularizer / custom_getter / partitioner. Partition counts, part names and
the order of nested custom getters were recorded from TensorFlow 2.21
(tf.compat.v1) on the same calls; penalties are derived by hand."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

slim = tf.contrib.slim


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


# ---- arg_scope --------------------------------------------------------------------------------

def test_arg_scope_gives_defaults_that_an_explicit_argument_overrides():
    x = tf.placeholder(tf.float32, [None, 6, 6, 2])
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=None,
                        weights_initializer=tf.ones_initializer()):
        with slim.arg_scope([slim.conv2d], padding="VALID", stride=1) as saved:
            valid = slim.conv2d(x, 3, [3, 3])
            same = slim.conv2d(x, 3, [3, 3], padding="SAME")
        flat = slim.fully_connected(slim.flatten(valid), 2)
    outside = slim.conv2d(x, 3, [3, 3])          # SAME padding, relu: the defaults again
    assert valid.shape.as_list() == [None, 4, 4, 3]
    assert same.shape.as_list() == [None, 6, 6, 3]
    assert outside.shape.as_list() == [None, 6, 6, 3]
    with slim.arg_scope(saved):                  # a saved scope enters again
        again = slim.conv2d(x, 1, [3, 3])
    assert again.shape.as_list() == [None, 4, 4, 1]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        ones = np.ones((1, 6, 6, 2), np.float32)
        # ones kernels, no activation: every VALID output is 3 * 3 * 2 = 18, and the
        # dense layer sums 4 * 4 * 3 of them
        out_valid, out_flat = sess.run([valid, flat], {x: ones})
        np.testing.assert_allclose(out_valid, 18.0)
        np.testing.assert_allclose(out_flat, 18.0 * 48)
        relu = sess.run(outside, {x: -ones})                    # relu outside the scope
        assert relu.min() == 0.0 and (relu == 0.0).any()


def test_arg_scope_on_a_users_function_and_its_errors():
    @tf.contrib.framework.add_arg_scope
    def scaled(x, factor=1, offset=0):
        return x * factor + offset

    def plain(x, factor=1):
        return x * factor

    with tf.contrib.framework.arg_scope([scaled], factor=10):
        with tf.contrib.framework.arg_scope([scaled], offset=1):
            assert scaled(2) == 21
            assert scaled(2, factor=3) == 7
        assert scaled(2) == 20
    assert scaled(2) == 2
    assert tf.contrib.framework.has_arg_scope(scaled)
    assert not tf.contrib.framework.has_arg_scope(plain)
    assert tf.contrib.framework.arg_scoped_arguments(scaled) == ["factor", "offset"]
    with pytest.raises(ValueError, match="plain is not decorated with @add_arg_scope"):
        with tf.contrib.framework.arg_scope([plain], factor=2):
            pass
    with pytest.raises(TypeError, match="list/tuple or reused scope"):
        with tf.contrib.framework.arg_scope(scaled, factor=2):
            pass


def test_pooling_functions_have_separate_arg_scopes():
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    with slim.arg_scope([slim.max_pool2d], stride=1, padding="SAME"):
        assert slim.max_pool2d(x, [2, 2]).shape.as_list() == [None, 8, 8, 1]
        assert slim.avg_pool2d(x, [2, 2]).shape.as_list() == [None, 4, 4, 1]


def test_repeat_and_stack_name_their_scopes_as_slim():
    x = tf.placeholder(tf.float32, [None, 4, 4, 1])
    y = slim.repeat(x, 2, slim.conv2d, 2, [3, 3])
    slim.stack(y, slim.conv2d, [(3, [1, 1]), (1, [1, 1])], scope="head")
    assert [v.op.name for v in tf.trainable_variables()] == [
        "Repeat/conv2d_1/weights", "Repeat/conv2d_1/biases",
        "Repeat/conv2d_2/weights", "Repeat/conv2d_2/biases",
        "head/head_1/weights", "head/head_1/biases", "head/head_2/weights",
        "head/head_2/biases"]
    slim.repeat(x, 1, slim.conv2d, 2, [3, 3])            # a second Repeat: Repeat_1
    assert tf.trainable_variables()[-1].op.name == "Repeat_1/conv2d_1/biases"


# ---- regularizers -----------------------------------------------------------------------------

def test_regularizer_penalties():
    w = tf.constant([[3.0, -4.0], [1.0, 0.0]])
    layers = tf.contrib.layers
    penalties = [layers.l1_regularizer(0.5)(w),                 # 0.5 * 8
                 layers.l2_regularizer(0.5)(w),                 # 0.5 * 26 / 2
                 layers.l1_l2_regularizer(0.5, 0.1)(w),         # 4 + 1.3
                 layers.sum_regularizer([layers.l1_regularizer(1.0), None,
                                         layers.l1_regularizer(2.0)])(w)]   # 8 + 16
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(penalties), [4.0, 6.5, 5.3, 24.0], rtol=1e-6)
    assert layers.l1_regularizer(0.0)(w) is None
    with pytest.raises(ValueError, match="scale cannot be an integer"):
        layers.l2_regularizer(1)
    with pytest.raises(ValueError, match="less than 0"):
        layers.l1_regularizer(-0.5)


def test_apply_regularization_sums_over_the_weights_collection():
    a = tf.Variable([1.0, -1.0])
    b = tf.Variable([2.0])
    with pytest.raises(ValueError, match="No weights to regularize"):
        tf.contrib.layers.apply_regularization(tf.contrib.layers.l1_regularizer(1.0))
    tf.add_to_collection(tf.GraphKeys.WEIGHTS, a)
    tf.add_to_collection(tf.GraphKeys.WEIGHTS, b)
    total = tf.contrib.layers.apply_regularization(tf.contrib.layers.l1_regularizer(1.0))
    assert tf.losses.get_regularization_losses() == [total]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert float(sess.run(total)) == 4.0


# ---- variable_scope ---------------------------------------------------------------------------

def test_scope_initializer_and_regularizer_reach_get_variable_and_layers():
    x = tf.placeholder(tf.float32, [None, 2])
    with tf.variable_scope("r", initializer=tf.constant_initializer(0.5),
                           regularizer=tf.contrib.layers.l1_regularizer(1.0)):
        v = tf.get_variable("v", [2])
        with tf.variable_scope("inner"):
            u = tf.get_variable("u", [3], initializer=tf.ones_initializer())
        y = tf.layers.dense(x, 1, bias_initializer=tf.constant_initializer(2.0))
    with tf.variable_scope("r", reuse=True):
        assert tf.get_variable("v", [2]) is v             # reuse adds no penalty
    names = [loss.op.name for loss in tf.losses.get_regularization_losses()]
    assert names == ["r/v/Regularizer/l1_regularizer", "r/inner/u/Regularizer/l1_regularizer",
                     "r/dense/kernel/Regularizer/l1_regularizer",
                     "r/dense/bias/Regularizer/l1_regularizer"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(v), [0.5, 0.5])
        # penalty: |v| 1 + |u| 3 + |kernel| 2 * 0.5 + |bias| 2
        assert float(sess.run(tf.losses.get_regularization_loss())) == pytest.approx(7.0)
        np.testing.assert_allclose(sess.run(y, {x: [[1.0, 1.0]]}), [[3.0]])
    assert u.op.name == "r/inner/u"


def test_nested_custom_getters_run_inner_first_with_the_full_name():
    calls = []

    def outer(getter, name, *args, **kwargs):
        calls.append(("outer", name))
        return getter(name, *args, **kwargs)

    def inner(getter, name, *args, **kwargs):
        calls.append(("inner", name, kwargs["dtype"], kwargs["reuse"]))
        kwargs["initializer"] = tf.constant_initializer(4.0)        # a getter may change it
        return getter(name, *args, **kwargs)

    with tf.variable_scope("a", custom_getter=outer):
        with tf.variable_scope("b", custom_getter=inner):
            v = tf.get_variable("v", [1])
    assert calls == [("inner", "a/b/v", tf.float32, None), ("outer", "a/b/v")]
    assert v.name == "a/b/v:0"
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(v).tolist() == [4.0]
    with pytest.raises(ValueError, match="custom_getter must be callable"):
        with tf.variable_scope("c", custom_getter=3):
            pass


def test_a_custom_getter_can_return_a_transformed_variable():
    def doubled(getter, name, *args, **kwargs):
        return getter(name, *args, **kwargs) * 2.0

    with tf.variable_scope("s", custom_getter=doubled):
        w = tf.get_variable("w", initializer=np.float32(3.0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert float(sess.run(w)) == 6.0
    assert [v.name for v in tf.global_variables()] == ["s/w:0"]


def test_partitioners_cut_as_tensorflow():
    shape = tf.TensorShape
    assert tf.fixed_size_partitioner(3)(shape=shape([5, 2]), dtype=tf.float32) == [3, 1]
    assert tf.fixed_size_partitioner(4, axis=1)(shape=shape([5, 2]), dtype=tf.float32) == \
        [1, 2]
    minmax = tf.min_max_variable_partitioner
    assert minmax(8, min_slice_size=64)(shape=shape([10, 20]), dtype=tf.float32) == [8, 1]
    assert minmax(3, min_slice_size=64)(shape=shape([10, 20]), dtype=tf.float32) == [3, 1]
    by_size = tf.variable_axis_size_partitioner
    assert by_size(100)(shape=shape([10, 6]), dtype=tf.float32) == [3, 1]
    assert by_size(100, max_shards=2)(shape=shape([10, 6]), dtype=tf.float32) == [2, 1]
    assert by_size(10)(shape=shape([10, 6]), dtype=tf.float64) == [10, 1]


def test_a_partitioned_variable_is_its_parts_and_trains_through_them():
    w = tf.get_variable("w", [7, 3], initializer=tf.constant_initializer(2.0),
                        partitioner=tf.fixed_size_partitioner(3))
    assert [(v.name, v.shape.as_list()) for v in w] == [
        ("w/part_0:0", [3, 3]), ("w/part_1:0", [2, 3]), ("w/part_2:0", [2, 3])]
    assert [v.name for v in tf.trainable_variables()] == [v.name for v in w]
    assert w.name == "w" and w.get_shape().as_list() == [7, 3]
    x = tf.placeholder(tf.float32, [None, 7])
    y = tf.matmul(x, w)
    loss = tf.reduce_sum(y)
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        feed = {x: np.ones((2, 7), np.float32)}
        assert sess.run(y, feed).tolist() == [[14.0] * 3] * 2          # as TensorFlow
        sess.run(step, feed)
        # d loss / d w = 2 everywhere: 2 - 0.5 * 2 = 1 in every part
        assert all((sess.run(v) == 1.0).all() for v in w)
    with tf.variable_scope("", reuse=True):
        assert tf.get_variable("w") is w
