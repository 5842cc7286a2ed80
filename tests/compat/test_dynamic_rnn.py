"""tf.nn.dynamic_rnn, tf.nn.static_rnn, their bidirectional forms, tf.reverse_sequence
and tf.sequence_mask in a TF1 graph.

The programs compared with TensorFlow 2.21 are in rnn_programs.py (values recorded in
rnn_tf_reference.json by record_rnn_reference.py, see test_rnn_cells.py); the other
expectations are derived by hand in each test, gradients also by finite differences.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.compat.v1 import rnn as rnn_module

from .rnn_programs import PROGRAMS, fixed, numeric_gradient
from .test_rnn_cells import assert_matches_tensorflow

rnn = tf.nn.rnn_cell
SEQUENCE_PROGRAMS = sorted(name for name in PROGRAMS if not name.startswith("cell_"))


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


@pytest.mark.parametrize("name", SEQUENCE_PROGRAMS)
def test_sequence_program_matches_tensorflow(name):
    assert_matches_tensorflow(name)


def test_module_docstring_runs():
    assert doctest.testmod(rnn_module).failed == 0


def init_fixed(sess):
    sess.run(tf.global_variables_initializer())
    for k, v in enumerate(tf.trainable_variables()):
        sess.run(v.assign(fixed(v.shape.as_list(), k + 1.0).astype(v.dtype.np_dtype)))


# ---- what sequence_length means ---------------------------------------------------------------

def test_past_its_length_an_examples_outputs_are_zero_and_its_state_is_carried():
    # hand-derived from the cell run step by step: the dynamic_rnn outputs equal the
    # cell's up to each example's length, then zeros; the final state is the state at
    # the length (the initial state for length 0)
    x = tf.placeholder(tf.float32, [3, 4, 2])
    cell = rnn.GRUCell(3)
    outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=[4, 2, 0], dtype=tf.float32)
    steps, h = [], cell.zero_state(3, tf.float32)
    for t in range(4):
        out, h = cell(x[:, t], h)
        steps.append(h)
    value = fixed((3, 4, 2), 0.3)
    with tf.Session() as sess:
        init_fixed(sess)
        got_out, got_state, per_step = sess.run([outputs, state, steps], {x: value})
    for b, length in enumerate([4, 2, 0]):
        for t in range(4):
            want = per_step[t][b] if t < length else np.zeros(3)
            np.testing.assert_allclose(got_out[b, t], want, rtol=1e-5, atol=1e-7)
        want_state = per_step[length - 1][b] if length else np.zeros(3)
        np.testing.assert_allclose(got_state[b], want_state, rtol=1e-5, atol=1e-7)


def test_unknown_batch_and_time_sizes_take_the_fed_shape():
    x = tf.placeholder(tf.float32, [None, None, 3])
    lengths = tf.placeholder(tf.int32, [None])
    outputs, state = tf.nn.dynamic_rnn(rnn.BasicLSTMCell(4), x, sequence_length=lengths,
                                       dtype=tf.float32)
    assert outputs.shape.as_list() == [None, None, 4]
    assert state.h.shape.as_list() == [None, 4]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for batch, steps in [(2, 5), (3, 2)]:
            out, st = sess.run([outputs, state], {x: np.ones((batch, steps, 3), np.float32),
                                                  lengths: [steps] * batch})
            assert out.shape == (batch, steps, 4) and st.c.shape == (batch, 4)
            np.testing.assert_allclose(out[:, -1], st.h, rtol=1e-6)


def test_dynamic_and_static_rnn_agree_and_the_loop_is_one_op():
    x = tf.placeholder(tf.float32, [2, 5, 3])
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(4), rnn.GRUCell(3)])
    dyn_out, dyn_state = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
    with tf.variable_scope("rnn", reuse=True):
        static_out, static_state = tf.nn.static_rnn(cell, tf.unstack(x, axis=1),
                                                    dtype=tf.float32)
    assert len(tf.trainable_variables()) == 6
    loops = [op for op in tf.get_default_graph().get_operations() if op.type == "While"]
    assert len(loops) == 1
    value = fixed((2, 5, 3), 0.7)
    with tf.Session() as sess:
        init_fixed(sess)
        a, b, c, d = sess.run([dyn_out, tf.stack(static_out, 1), dyn_state[1],
                               static_state[1]], {x: value})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(c, d, rtol=1e-5, atol=1e-7)


def test_dynamic_rnn_gradients_with_lengths_match_finite_differences():
    x = tf.placeholder(tf.float64, [2, 4, 2])
    cell = rnn.BasicLSTMCell(3, dtype=tf.float64)
    outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=[4, 2], dtype=tf.float64)
    weights = tf.constant(fixed((2, 4, 3), 5.0).astype(np.float64))
    loss = tf.reduce_sum(outputs * weights) + tf.reduce_sum(state.c * state.h)
    variables = tf.trainable_variables()
    grads = tf.gradients(loss, [x] + variables)
    value = fixed((2, 4, 2), 0.9).astype(np.float64)
    with tf.Session() as sess:
        init_fixed(sess)
        got = sess.run(grads, {x: value})
        numeric = numeric_gradient(sess, loss, x, value)
        kernel = variables[0]
        base = sess.run(kernel)
        numeric_kernel = np.zeros_like(base)
        for idx in [(0, 0), (2, 5), (4, 11)]:      # a few entries of the i, j, o blocks
            for sign in (1, -1):
                moved = base.copy()
                moved[idx] += sign * 1e-6
                kernel.load(moved, sess)
                numeric_kernel[idx] += sign * sess.run(loss, {x: value}) / 2e-6
        kernel.load(base, sess)
    np.testing.assert_allclose(got[0], numeric, rtol=1e-6, atol=1e-9)
    for idx in [(0, 0), (2, 5), (4, 11)]:
        np.testing.assert_allclose(got[1][idx], numeric_kernel[idx], rtol=1e-6, atol=1e-9)
    assert not got[0][1, 2:].any()        # steps past the second example's length


def test_training_a_dynamic_rnn_lowers_its_loss():
    # copy the first step's input to the last output: learnable only through the state
    rng = np.random.default_rng(0)
    x = tf.placeholder(tf.float32, [16, 4, 2])
    outputs, _ = tf.nn.dynamic_rnn(rnn.GRUCell(8), x, dtype=tf.float32)
    prediction = tf.layers.dense(outputs[:, -1], 2)
    loss = tf.reduce_mean(tf.square(prediction - x[:, 0]))
    train = tf.train.AdamOptimizer(0.05).minimize(loss)
    data = rng.standard_normal((16, 4, 2)).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run(loss, {x: data})
        for _ in range(60):
            sess.run(train, {x: data})
        last = sess.run(loss, {x: data})
    assert last < 0.2 * first


# ---- bidirectional, reverse_sequence, sequence_mask ------------------------------------------

def test_reverse_sequence_reverses_each_example_within_its_length():
    # hand-derived
    x = tf.placeholder(tf.float32, [3, 4])
    batch_major = tf.reverse_sequence(x, [4, 2, 0], seq_axis=1, batch_axis=0)
    time_major = tf.reverse_sequence(tf.transpose(x), [4, 2, 0], seq_axis=0, batch_axis=1)
    want = [[3, 2, 1, 0], [5, 4, 6, 7], [8, 9, 10, 11]]
    g = tf.gradients(tf.reduce_sum(batch_major * tf.constant(fixed((3, 4), 1.0))), x)[0]
    with tf.Session() as sess:
        a, b, grad = sess.run([batch_major, time_major, g],
                              {x: np.arange(12, dtype=np.float32).reshape(3, 4)})
    assert a.tolist() == want and b.T.tolist() == want
    # the gradient is the weights reversed the same way
    weights = fixed((3, 4), 1.0)
    np.testing.assert_allclose(grad, [weights[0, ::-1], [*weights[1, 1::-1], *weights[1, 2:]],
                                      weights[2]], rtol=1e-6)


def test_sequence_mask():
    # hand-derived
    with tf.Session() as sess:
        a, b = sess.run([tf.sequence_mask([1, 3, 0], 4), tf.sequence_mask([[2], [1]],
                                                                           dtype=tf.float32)])
    assert a.tolist() == [[True, False, False, False], [True, True, True, False],
                          [False, False, False, False]]
    assert b.tolist() == [[[1.0, 1.0]], [[1.0, 0.0]]]


# ---- mistakes --------------------------------------------------------------------------------

def test_mistakes_are_clear_errors():
    cell = rnn.GRUCell(2)
    with pytest.raises(ValueError, match="you must give a dtype"):
        tf.nn.dynamic_rnn(cell, tf.zeros([2, 3, 4]))
    with pytest.raises(ValueError, match="must have rank at least 3"):
        tf.nn.dynamic_rnn(cell, tf.zeros([2, 3]), dtype=tf.float32)
    with pytest.raises(ValueError, match="depth of inputs"):
        tf.nn.dynamic_rnn(cell, tf.placeholder(tf.float32, [2, 3, None]), dtype=tf.float32)
    with pytest.raises(ValueError, match="sequence_length must be a vector"):
        tf.nn.dynamic_rnn(cell, tf.zeros([2, 3, 4]), sequence_length=[[1, 2]],
                          dtype=tf.float32)
    with pytest.raises(TypeError, match="is not an RNNCell"):
        tf.nn.dynamic_rnn(lambda x, s: (x, s), tf.zeros([2, 3, 4]), dtype=tf.float32)
    with pytest.raises(TypeError, match="inputs must be a sequence"):
        tf.nn.static_rnn(cell, tf.zeros([2, 3, 4]), dtype=tf.float32)
    with pytest.raises(ValueError, match="inputs must not be empty"):
        tf.nn.static_rnn(cell, [], dtype=tf.float32)


# ---- sequence losses (hand-derived with NumPy) ---------------------------------------------------

def _crossent(logits, targets):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]


def test_sequence_loss_reductions():
    logits = fixed((2, 3, 5), 2.0) * 4
    targets = np.array([[1, 4, 0], [2, 2, 3]], np.int32)
    weights = np.array([[1.0, 0.5, 0.0], [1.0, 1.0, 2.0]], np.float32)
    ce = _crossent(logits.astype(np.float64), targets) * weights
    loss = tf.contrib.seq2seq.sequence_loss
    cases = {
        (True, True, False, False): ce.sum() / weights.sum(),
        (False, True, False, False): ce.sum(0) / weights.sum(0),
        (True, False, False, False): ce.sum(1) / weights.sum(1),
        (False, False, False, False): ce,
        (False, False, True, True): ce.sum() / (weights != 0).sum(),
        (False, False, True, False): ce.sum(1) / (weights != 0).sum(1),
    }
    fetches = {key: loss(logits, targets, weights, *key) for key in cases}
    with tf.Session() as sess:
        got = sess.run(fetches)
    for key, want in cases.items():
        np.testing.assert_allclose(got[key], want, rtol=1e-5, err_msg=str(key))
    with pytest.raises(ValueError, match="cannot be set to True at same time"):
        loss(logits, targets, weights, True, True, True, False)
    with pytest.raises(ValueError, match="Logits must be a"):
        loss(logits[0], targets, weights)


def test_legacy_sequence_loss_by_example_and_xw_plus_b():
    x = fixed((4, 3), 1.0)
    w, b = fixed((3, 5), 2.0), fixed((5,), 3.0)
    logits = [tf.nn.xw_plus_b(x, w, b), tf.nn.xw_plus_b(x * 2.0, w, b)]
    targets = [np.array([0, 1, 2, 3], np.int32), np.array([4, 4, 0, 1], np.int32)]
    weights = [np.ones(4, np.float32), np.array([1.0, 0.0, 1.0, 1.0], np.float32)]
    per_example = tf.contrib.legacy_seq2seq.sequence_loss_by_example(logits, targets, weights)
    total = tf.contrib.legacy_seq2seq.sequence_loss(logits, targets, weights)
    with tf.Session() as sess:
        got_logits, got_example, got_total = sess.run([logits[0], per_example, total])
    np.testing.assert_allclose(got_logits, x @ w + b, rtol=1e-5)
    ces = [_crossent(x.astype(np.float64) @ w + b, targets[0]) * weights[0],
           _crossent(2.0 * x.astype(np.float64) @ w + b, targets[1]) * weights[1]]
    want = (ces[0] + ces[1]) / (weights[0] + weights[1] + 1e-12)
    np.testing.assert_allclose(got_example, want, rtol=1e-5)
    np.testing.assert_allclose(got_total, want.sum() / 4, rtol=1e-5)
