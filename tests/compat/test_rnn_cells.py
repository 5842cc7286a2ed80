"""tf.nn.rnn_cell in a TF1 graph: every cell's outputs, states, gradients and variable
names against TensorFlow 2.21, and the cells' scoping, wrappers and mistakes.

The programs are in rnn_programs.py; rnn_tf_reference.json holds what TensorFlow 2.21's
``tensorflow.compat.v1`` (``disable_v2_behavior``, legacy Keras cells) printed for them
(record_rnn_reference.py). Names marked "TF" were printed by TensorFlow for the same
program. Gradients are also checked against finite differences. TensorFlow is not
needed here.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.compat.v1 import rnn_cell, rnn_cell_wrappers

from .rnn_programs import BATCH, DEPTH, PROGRAMS, TIME, fixed, numeric_gradient, run_program

REFERENCE = json.loads((Path(__file__).parent / "rnn_tf_reference.json").read_text())
CELL_PROGRAMS = sorted(name for name in PROGRAMS if name.startswith("cell_"))
rnn = tf.nn.rnn_cell


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def assert_matches_tensorflow(name: str) -> None:
    got, want = run_program(tf, name), REFERENCE[name]
    assert got["names"] == want["names"]
    assert sorted(got["tensors"]) == sorted(want["tensors"])
    for key, value in want["tensors"].items():
        np.testing.assert_allclose(got["tensors"][key], value, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: {key}")
    for k, (g, w) in enumerate(zip(got["grads"], want["grads"], strict=True)):
        what = "x" if k == 0 else want["names"][k - 1]
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: gradient for {what}")
    for k, (g, w) in enumerate(zip(got.get("initial", []), want.get("initial", []),
                                   strict=True)):
        np.testing.assert_allclose(g, w, rtol=1e-6, err_msg=f"{name}: initial value {k}")


@pytest.mark.parametrize("name", CELL_PROGRAMS)
def test_cell_matches_tensorflow(name):
    assert_matches_tensorflow(name)


def test_module_docstrings_run():
    assert doctest.testmod(rnn_cell).failed == 0
    assert doctest.testmod(rnn_cell_wrappers).failed == 0


# ---- sizes, zero states, aliases -------------------------------------------------------------

def test_state_and_output_sizes_are_tensorflows():
    assert rnn.BasicLSTMCell(4).state_size == rnn.LSTMStateTuple(4, 4)
    assert rnn.BasicLSTMCell(4, state_is_tuple=False).state_size == 8
    assert rnn.LSTMCell(4, num_proj=3).state_size == (4, 3)
    assert rnn.LSTMCell(4, num_proj=3).output_size == 3
    assert rnn.GRUCell(5).state_size == 5 and rnn.BasicRNNCell(2).output_size == 2
    multi = rnn.MultiRNNCell([rnn.BasicLSTMCell(4), rnn.GRUCell(3)])
    assert multi.state_size == (rnn.LSTMStateTuple(4, 4), 3) and multi.output_size == 3
    assert rnn.MultiRNNCell([rnn.GRUCell(2), rnn.GRUCell(3)],
                            state_is_tuple=False).state_size == 5
    assert rnn.DropoutWrapper(rnn.GRUCell(3)).state_size == 3


def test_zero_state_has_the_state_structure_for_a_static_or_fed_batch():
    cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(4), rnn.GRUCell(3)])
    state = cell.zero_state(2, tf.float32)
    assert isinstance(state[0], rnn.LSTMStateTuple)
    assert state[0].c.shape.as_list() == [2, 4] and state[1].shape.as_list() == [2, 3]
    x = tf.placeholder(tf.float32, [None, 5])
    fed = cell.zero_state(tf.shape(x)[0], tf.float32)
    assert fed[1].shape.as_list() == [None, 3]
    with tf.Session() as sess:
        value = sess.run(fed, {x: np.ones((6, 5), np.float32)})
    assert value[0].h.shape == (6, 4) and not value[1].any()


def test_contrib_rnn_has_the_same_cells():
    for name in ("BasicLSTMCell", "LSTMCell", "GRUCell", "MultiRNNCell", "DropoutWrapper",
                 "LSTMStateTuple", "BasicRNNCell", "ResidualWrapper"):
        assert getattr(tf.contrib.rnn, name) is getattr(rnn, name)
    assert tf.contrib.rnn.static_rnn is tf.nn.static_rnn


# ---- variable scoping (what TensorFlow names the variables) ---------------------------------

def names():
    return [v.name for v in tf.trainable_variables()]


def test_the_ptb_tutorial_builds_its_model_twice_with_one_set_of_variables():
    # TF: the four names below, and no more after the second (reuse=True) model
    for training in (True, False):
        with tf.variable_scope("Model", reuse=None if training else True):
            cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(4, reuse=not training)
                                     for _ in range(2)])
            state = cell.zero_state(2, tf.float32)
            with tf.variable_scope("RNN"):
                for t in range(2):
                    if t > 0:
                        tf.get_variable_scope().reuse_variables()
                    _, state = cell(tf.zeros([2, 3]), state)
    assert names() == [f"Model/RNN/multi_rnn_cell/cell_{k}/basic_lstm_cell/{v}:0"
                       for k in range(2) for v in ("kernel", "bias")]


def test_a_model_function_called_again_with_reuse_shares_its_variables():
    # TF: Model/rnn/multi_rnn_cell/cell_{0,1}/basic_lstm_cell/{kernel,bias}
    for reuse in (None, True):
        with tf.variable_scope("Model", reuse=reuse):
            cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(4) for _ in range(2)])
            tf.nn.dynamic_rnn(cell, tf.zeros([2, 3, 3]), dtype=tf.float32)
    assert names() == [f"Model/rnn/multi_rnn_cell/cell_{k}/basic_lstm_cell/{v}:0"
                       for k in range(2) for v in ("kernel", "bias")]


def test_two_cells_in_one_scope_get_two_names_and_a_new_entry_reuses_the_first():
    # TF: s/gru_cell, s/gru_cell_1; the third cell (reuse=True scope) finds s/gru_cell
    x = tf.zeros([2, 3])
    with tf.variable_scope("s"):
        a, b = rnn.GRUCell(2), rnn.GRUCell(2)
        a(x, a.zero_state(2, tf.float32))
        b(x, b.zero_state(2, tf.float32))
    with tf.variable_scope("s", reuse=True):
        c = rnn.GRUCell(2)
        c(x, c.zero_state(2, tf.float32))
    assert [n.split("/")[1] for n in names()] == ["gru_cell"] * 4 + ["gru_cell_1"] * 4


def test_a_cell_keeps_the_scope_of_its_first_call_and_tf_layers_count_apart():
    # TF: p/gru_cell only; dense, gru_cell, dense_1
    x = tf.zeros([2, 3])
    cell = rnn.GRUCell(2)
    with tf.variable_scope("p"):
        cell(x, cell.zero_state(2, tf.float32))
    with tf.variable_scope("q"):
        cell(x, cell.zero_state(2, tf.float32))
    assert {n.split("/")[0] for n in names()} == {"p"}
    tf.reset_default_graph()
    x = tf.zeros([2, 3])
    tf.layers.dense(x, 2)
    other = rnn.GRUCell(2)
    other(x, other.zero_state(2, tf.float32))
    tf.layers.dense(x, 2)
    assert [n.split("/")[0] for n in names()] == ["dense"] * 2 + ["gru_cell"] * 4 + \
        ["dense_1"] * 2


def test_a_second_dynamic_rnn_in_the_same_scope_is_tensorflows_error():
    # TF: ValueError "Variable rnn/basic_lstm_cell/kernel already exists, disallowed."
    tf.nn.dynamic_rnn(rnn.BasicLSTMCell(4), tf.zeros([2, 3, 3]), dtype=tf.float32)
    with pytest.raises(ValueError, match="Variable rnn/basic_lstm_cell/kernel already "
                                         "exists, disallowed"):
        tf.nn.dynamic_rnn(rnn.BasicLSTMCell(4), tf.zeros([2, 3, 3]), dtype=tf.float32)


# ---- mistakes --------------------------------------------------------------------------------

def test_mistakes_are_clear_errors():
    with pytest.raises(ValueError, match="Expected inputs.shape\\[-1\\] to be known"):
        cell = rnn.GRUCell(2)
        cell(tf.placeholder(tf.float32, [2, None]), cell.zero_state(2, tf.float32))
    with pytest.raises(ValueError, match="Must specify at least one cell"):
        rnn.MultiRNNCell([])
    with pytest.raises(ValueError, match="state_is_tuple is not set"):
        rnn.MultiRNNCell([rnn.BasicLSTMCell(2)], state_is_tuple=False)
    with pytest.raises(ValueError, match="must be between 0 and 1"):
        rnn.DropoutWrapper(rnn.GRUCell(2), output_keep_prob=1.5)
    with pytest.raises(ValueError, match="dtype must be provided"):
        rnn.DropoutWrapper(rnn.GRUCell(2), variational_recurrent=True)
    with pytest.raises(ValueError, match="ResidualWrapper"):
        cell = rnn.ResidualWrapper(rnn.GRUCell(2))
        cell(tf.zeros([2, 3]), cell.zero_state(2, tf.float32))


# ---- dropout ---------------------------------------------------------------------------------

def test_dropout_wrapper_drops_outputs_and_state_but_not_an_lstms_memory():
    # hand-derived: with kernel and bias all ones and inputs zero, every gate is
    # sigmoid(1) and the new input tanh(1); dropped units are 0, kept ones scaled by 2
    cell = rnn.DropoutWrapper(rnn.BasicLSTMCell(200, forget_bias=0.0), output_keep_prob=0.5,
                              state_keep_prob=0.5, seed=3)
    out, state = cell(tf.zeros([4, 1]), cell.zero_state(4, tf.float32))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for v in tf.trainable_variables():
            sess.run(v.assign(np.ones(v.shape.as_list(), np.float32)))
        got_out, got_state = sess.run([out, state])
    sig, c = 1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(-1.0)) * np.tanh(1.0)
    h = np.tanh(c) * sig
    np.testing.assert_allclose(got_state.c, c, rtol=1e-5)        # memory: never dropped
    for value in (got_out, got_state.h):
        kept = value != 0
        assert 0.4 < kept.mean() < 0.6
        np.testing.assert_allclose(value[kept], 2 * h, rtol=1e-5)


def test_variational_dropout_uses_one_mask_for_every_step_and_example():
    cell = rnn.DropoutWrapper(rnn.BasicRNNCell(300, activation=tf.identity),
                              output_keep_prob=0.5, variational_recurrent=True,
                              dtype=tf.float32, seed=1)
    x = tf.ones([3, 4, 1])
    outputs, _ = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for v in tf.trainable_variables():
            sess.run(v.assign(np.full(v.shape.as_list(), 0.001, np.float32)))
        first, second = sess.run(outputs), sess.run(outputs)
    mask = first != 0
    assert (mask == mask[:1, :1]).all()        # the same units at every step and example
    assert 0.35 < mask.mean() < 0.65
    assert (mask != (second != 0)).any()        # a new mask on the next run


def test_keep_probabilities_may_be_fed():
    keep = tf.placeholder_with_default(1.0, [])
    cell = rnn.DropoutWrapper(rnn.GRUCell(50), input_keep_prob=keep)
    out, _ = cell(tf.ones([8, 20]), cell.zero_state(8, tf.float32))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        full, dropped = sess.run(out), sess.run(out, {keep: 0.3})
    assert not np.allclose(full, dropped)


# ---- gradients against finite differences -----------------------------------------------------

def test_lstm_gradients_match_finite_differences():
    x = tf.placeholder(tf.float64, [BATCH, TIME, DEPTH])
    cell = rnn.LSTMCell(3, use_peepholes=True, num_proj=2, forget_bias=0.5, dtype=tf.float64)
    state = cell.zero_state(BATCH, tf.float64)
    outputs = []
    for t in range(TIME):
        out, state = cell(x[:, t], state)
        outputs.append(out)
    weights = tf.constant(fixed((TIME, BATCH, 2), 3.0).astype(np.float64))
    loss = tf.reduce_sum(tf.stack(outputs) * weights) + tf.reduce_sum(state.c)
    grad = tf.gradients(loss, x)[0]
    value = fixed((BATCH, TIME, DEPTH), 0.4).astype(np.float64)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for k, v in enumerate(tf.trainable_variables()):
            sess.run(v.assign(fixed(v.shape.as_list(), k + 1.0).astype(np.float64)))
        got = sess.run(grad, {x: value})
        numeric = numeric_gradient(sess, loss, x, value)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-9)
