"""tf.RegisterGradient and Graph.gradient_override_map: the straight-through estimator,
guided backprop, a clipped gradient, a two-input op, a py_func given a gradient. The
gradients were recorded from TensorFlow 2.21 (tf.compat.v1, eager execution off) on the
same program."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tracejit.compat.v1 as tf

X = [-1.5, 0.3, 2.0]
W = [1.0, -2.0, 3.0]
_names = itertools.count()


def unique(name: str) -> str:
    """Registrations are process-wide, as TensorFlow's: a name per test."""
    return f"{name}_{next(_names)}"


def run(make):
    with tf.Graph().as_default():
        out = make()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return [np.asarray(v).tolist() for v in sess.run(out)]


def test_straight_through_sign_and_round():
    ste = unique("STE")
    tf.RegisterGradient(ste)(lambda op, grad: grad)

    def make():
        g = tf.get_default_graph()
        x = tf.Variable(X)
        w = tf.constant(W)
        doubled = x * 2.0
        with g.gradient_override_map({"Sign": "Identity", "Round": ste}):
            s, r = tf.sign(x), tf.round(doubled)
        assert s.op.type == "Sign" and r.op.type == "Round"
        plain = tf.sign(x)
        return [s, r, tf.gradients(tf.reduce_sum(s * w), x)[0],
                tf.gradients(tf.reduce_sum(r * w), x)[0],
                tf.gradients(tf.reduce_sum(plain * w), x)[0]]
    s, r, gs, gr, gp = run(make)
    assert s == [-1.0, 1.0, 1.0] and r == [-3.0, 1.0, 4.0]
    assert gs == [1.0, -2.0, 3.0] and gr == [2.0, -4.0, 6.0]
    assert gp == [0.0, 0.0, 0.0]            # outside the map: sign's own gradient


def test_guided_relu_and_a_clipped_square():
    guided, clipped = unique("GuidedRelu"), unique("ClippedSquare")

    @tf.RegisterGradient(guided)
    def _guided(op, grad):
        return tf.where(0. < grad, grad * tf.cast(op.outputs[0] > 0., tf.float32),
                        tf.zeros_like(grad))

    @tf.RegisterGradient(clipped)
    def _clipped(op, grad):
        return tf.clip_by_value(grad * 2.0 * op.inputs[0], -1.0, 1.0)

    def make():
        x = tf.Variable(X)
        w = tf.constant(W)
        with tf.get_default_graph().gradient_override_map({"Relu": guided,
                                                           "Square": clipped}):
            h, q = tf.nn.relu(x), tf.square(x)
        return [tf.gradients(tf.reduce_sum(h * w), x)[0],
                tf.gradients(tf.reduce_sum(q * w), x)[0]]
    gh, gq = run(make)
    assert gh == [0.0, 0.0, 3.0]
    assert gq == [-1.0, -1.0, 1.0]


def test_an_op_of_two_inputs_and_tensorflows_type_names():
    swap, ident = unique("SwapMul"), unique("MatMulGrad")

    @tf.RegisterGradient(swap)
    def _swap(op, grad):
        a, b = op.inputs
        return [grad * a, grad * b * 10.0]

    tf.RegisterGradient(ident)(lambda op, grad: [tf.ones_like(op.inputs[0]),
                                                 tf.ones_like(op.inputs[1])])

    def make():
        g = tf.get_default_graph()
        x, w = tf.Variable(X), tf.constant(W)
        with g.gradient_override_map({"Mul": swap}):
            m = tf.multiply(x, w)
        a = tf.Variable([[1.0, 2.0]])
        with g.gradient_override_map({"MatMul": ident}):     # tf.matmul's TF type
            p = tf.matmul(a, tf.constant([[3.0], [4.0]]))
        return [m, *tf.gradients(tf.reduce_sum(m), [x, w]), tf.gradients(p, a)[0]]
    m, gx, gw, ga = run(make)
    assert m == pytest.approx([-1.5, -0.6, 6.0])
    assert gx == pytest.approx([-1.5, 0.3, 2.0]) and gw == [10.0, -20.0, 30.0]
    assert ga == [[1.0, 1.0]]


def test_a_py_func_given_a_gradient():
    name = unique("PyFuncGrad")
    tf.RegisterGradient(name)(lambda op, grad: grad * 2.0 * op.inputs[0])

    def make():
        x, w = tf.Variable(X), tf.constant(W)
        with tf.get_default_graph().gradient_override_map({"PyFunc": name}):
            y = tf.py_func(lambda a: (a * a).astype(np.float32), [x], tf.float32)
        return [y, tf.gradients(tf.reduce_sum(y * w), x)[0]]
    y, gy = run(make)
    assert y == pytest.approx([2.25, 0.09, 4.0])
    assert gy == pytest.approx([-3.0, -1.2, 12.0])


def test_an_overridden_gradient_trains_with_an_optimizer():
    name = unique("STE")
    tf.RegisterGradient(name)(lambda op, grad: grad)
    with tf.Graph().as_default() as g:
        w = tf.Variable([0.4, -0.6])
        with g.gradient_override_map({"Round": name}):
            quantized = tf.round(w)
        loss = tf.reduce_sum(quantized * tf.constant([1.0, 2.0]))
        first = tf.gradients(loss, w)[0]            # a second tf.gradients reuses it
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            assert sess.run(first).tolist() == [1.0, 2.0]
            sess.run(train)
            assert sess.run(w).tolist() == pytest.approx([0.3, -0.8])


def test_not_differentiable_and_mistakes():
    none = unique("NoGrad")
    tf.NotDifferentiable(none)
    with tf.Graph().as_default() as g:
        x = tf.Variable(X)
        with g.gradient_override_map({"Sign": none}):
            s = tf.sign(x)
        assert tf.gradients(tf.reduce_sum(s), x) == [None]
        with pytest.raises(KeyError, match="Registering two gradient with name"):
            tf.RegisterGradient(none)(lambda op, grad: grad)
        with g.gradient_override_map({"Sign": "NoSuchGradient"}):
            z = tf.sign(x)
        with pytest.raises(LookupError, match="No gradient defined for operation 'Sign_1' "
                                              r"\(op type: Sign\)"):
            tf.gradients(z, x)
        with pytest.raises(TypeError, match="mapping strings to strings"):
            with g.gradient_override_map({"Sign": 3}):
                pass
        wrong = unique("Wrong")
        tf.RegisterGradient(wrong)(lambda op, grad: [grad, grad])
        with g.gradient_override_map({"Sign": wrong}):
            t = tf.sign(x)
        with pytest.raises(ValueError, match="returned 2 gradients for the op's 1 inputs"):
            tf.gradients(t, x)
