"""TF1 graph semantics: fetch structures, pruning, feeding, errors, caching."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import tracejit.compat.v1 as tf


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def test_fetch_structures_and_names():
    a = tf.constant(2.0, name="a")
    b = tf.constant([1.0, 2.0], name="b")
    c = a * b
    Pair = collections.namedtuple("Pair", "first second")
    with tf.Session() as sess:
        out = sess.run({"c": c, "pair": Pair(a, [b, "a:0"]), "t": (c,)})
    np.testing.assert_allclose(out["c"], [2.0, 4.0])
    assert isinstance(out["pair"], Pair) and float(out["pair"].first) == 2.0
    np.testing.assert_allclose(out["pair"].second[1], 2.0)
    assert isinstance(out["t"], tuple)
    assert isinstance(out["c"], np.ndarray)


def test_unknown_dimensions_take_fed_shapes_and_compile_once_per_shape():
    x = tf.placeholder(tf.float32, shape=[None, 3], name="x")
    y = tf.reduce_sum(x * 2.0, axis=1)
    assert y.shape.as_list() == [None]
    assert tf.reshape(x, [-1]).shape.as_list() == [None]
    with tf.Session() as sess:
        for n in (4, 4, 5, 4):
            assert sess.run(y, {x: np.ones((n, 3))}).shape == (n,)
        (plan,) = sess._plans.values()
        assert len(plan.program.compile_log) == 2


def test_only_what_fetches_need_runs():
    v = tf.Variable(1.0, name="v")
    bump = v.assign_add(10.0)
    doubled = v * 2.0
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(doubled) == 2.0          # bump is not needed: it must not run
        assert sess.run(v) == 1.0
        sess.run(bump)
        assert sess.run(v) == 11.0


def test_feeding_an_intermediate_cuts_the_graph():
    x = tf.placeholder(tf.float32, shape=[2], name="x")
    hidden = x * 3.0
    out = hidden + 1.0
    with tf.Session() as sess:
        # x is not fed: hidden is, so x is not needed.
        np.testing.assert_allclose(sess.run(out, {hidden: [1.0, 2.0]}), [2.0, 3.0])
        np.testing.assert_allclose(sess.run(out, {x: [1.0, 2.0]}), [4.0, 7.0])


def test_missing_placeholder_names_it_and_the_fetch():
    x = tf.placeholder(tf.float32, shape=[None], name="images")
    loss = tf.reduce_mean(x, name="loss")
    with tf.Session() as sess:
        with pytest.raises(tf.InvalidArgumentError, match=r"'images:0'.*fetch 'loss:0'"):
            sess.run(loss)


def test_bad_feed_raises_and_changes_no_variable():
    x = tf.placeholder(tf.float32, shape=[None, 2], name="x")
    v = tf.Variable(np.zeros(2, np.float32), name="v")
    step = v.assign_add(tf.reduce_sum(x, axis=0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        with pytest.raises(ValueError, match=r"Cannot feed value of shape \(3,\) for Tensor "
                                             r"'x:0', which has shape '\(\?, 2\)'"):
            sess.run(step, {x: np.ones(3)})
        with pytest.raises(TypeError, match="Cannot feed value"):
            sess.run(step, {x: [["a", "b"]]})
        np.testing.assert_array_equal(sess.run(v), [0.0, 0.0])
        sess.run(step, {x: np.ones((2, 2))})
        np.testing.assert_array_equal(sess.run(v), [2.0, 2.0])


def test_uninitialized_variable_is_an_error():
    v = tf.Variable(3.0, name="weights")
    with tf.Session() as sess:
        with pytest.raises(tf.FailedPreconditionError, match="uninitialized value weights"):
            sess.run(v + 1.0)
        sess.run(v.initializer)
        assert sess.run(v + 1.0) == 4.0


def test_get_variable_scopes_and_reuse():
    with tf.variable_scope("layer1"):
        w = tf.get_variable("w", shape=[3, 4])
        assert w.name == "layer1/w:0"
        with pytest.raises(ValueError, match="already exists"):
            tf.get_variable("w", shape=[3, 4])
    with tf.variable_scope("layer1", reuse=True):
        assert tf.get_variable("w", shape=[3, 4]) is w
        with pytest.raises(ValueError, match="does not exist"):
            tf.get_variable("missing", shape=[1])
    with tf.variable_scope("layer1", reuse=tf.AUTO_REUSE):
        assert tf.get_variable("w", shape=[3, 4]) is w
        assert tf.get_variable("fresh", shape=[2]).name == "layer1/fresh:0"
    limit = np.sqrt(6.0 / 7.0)     # glorot uniform, TF's default for get_variable
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        value = sess.run(w)
    assert value.shape == (3, 4) and np.all(np.abs(value) <= limit)
    assert set(v.name for v in tf.trainable_variables()) == {"layer1/w:0", "layer1/fresh:0"}


def test_name_scopes_and_lookup():
    with tf.name_scope("outer"):
        with tf.name_scope("inner"):
            c = tf.constant(1.0, name="c")
        d = tf.add(c, c, name="d")
    assert c.name == "outer/inner/c:0" and d.name == "outer/d:0"
    assert tf.get_default_graph().get_tensor_by_name("outer/d:0") is d
    assert tf.constant(0.0).name == "Const:0" and tf.constant(0.0).name == "Const_1:0"


def test_control_dependencies_run_first():
    v = tf.Variable(0.0, name="v")
    bump = v.assign(5.0)
    with tf.control_dependencies([bump]):
        after = tf.identity(tf.constant(1.0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(after)
        assert sess.run(v) == 5.0


def test_device_scopes_are_recorded_and_checked():
    with tf.device("/cpu:0"):
        a = tf.constant(1.0)
    with tf.device("/job:worker/task:1/gpu:0"):
        b = a + 1.0
    assert a.device == "/device:CPU:0"
    assert b.device == "/job:worker/task:1/device:GPU:0"
    with pytest.raises(ValueError, match="bad device string '/tpu:0'"):
        with tf.device("/tpu:0"):
            pass


def test_random_ops_change_every_run_and_seed_reproduces():
    tf.set_random_seed(7)
    r = tf.random_normal([1000], stddev=2.0)
    with tf.Session() as sess:
        first, second = sess.run(r), sess.run(r)
    assert not np.array_equal(first, second)
    assert abs(first.std() - 2.0) < 0.3
    tf.reset_default_graph()
    tf.set_random_seed(7)
    r = tf.random_normal([1000], stddev=2.0)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(r), first)


def test_eval_and_interactive_session():
    sess = tf.InteractiveSession()
    try:
        assert (tf.constant(3.0) * 2.0).eval() == 6.0
    finally:
        sess.close()


def test_tensor_misuse_errors():
    x = tf.placeholder(tf.float32, shape=[2])
    with pytest.raises(TypeError, match="Python bool"):
        if x:
            pass
    with pytest.raises(ValueError, match=r"add: shapes \[2\] and \[3\]"):
        x + np.ones(3, np.float32)


def test_tf_gradients_is_always_a_list_as_in_tf1():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [2, 3])
        w = tf.Variable(np.ones((3, 2), np.float32))
        y = tf.reduce_sum(tf.matmul(x, w) ** 2)
        by_one = tf.gradients(y, x)
        by_list = tf.gradients(y, [x, w])
        assert isinstance(by_one, list) and len(by_one) == 1 and len(by_list) == 2
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            feed = np.arange(6, dtype=np.float32).reshape(2, 3)
            dx, (dx2, dw) = sess.run([by_one[0], by_list], {x: feed})
    z = feed @ np.ones((3, 2), np.float32)
    np.testing.assert_allclose(dx, 2 * z @ np.ones((2, 3), np.float32))
    np.testing.assert_allclose(dx2, dx)
    np.testing.assert_allclose(dw, 2 * feed.T @ z)


def test_a_feed_key_that_is_not_a_tensor_of_the_graph_is_a_clear_error():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [])
        y = x * 2.0
        with tf.Session() as sess:
            assert sess.run(y, {"Placeholder:0": 2.0}) == 4.0        # by name
            with pytest.raises(TypeError, match="Cannot interpret feed_dict key 'nope:0'"):
                sess.run(y, {"nope:0": 1.0})
            with pytest.raises(TypeError, match="Cannot interpret feed_dict key 3"):
                sess.run(y, {3: 1.0})
            with pytest.raises(TypeError, match="it is an Operation"):
                sess.run(y, {y.op: 1.0})
            assert sess.run(y, {x: 3.0}) == 6.0                      # the session goes on
