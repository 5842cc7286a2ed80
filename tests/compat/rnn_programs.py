"""Small recurrent-network programs written against the TF1 API, run both by TensorFlow
2.21 (``record_rnn_reference.py`` writes ``rnn_tf_reference.json``) and by tracejit
(test_rnn_cells.py, test_dynamic_rnn.py), which compare the two.

Each program builds cells on the input ``x`` [BATCH, TIME, DEPTH] and returns the
tensors to compare (outputs, states). The runner makes a scalar loss of all of them
(each weighted by fixed numbers), sets every trainable variable to fixed numbers (so
randomly initialized weights do not matter and every gate's block differs), and
fetches the tensors, the loss's gradients with respect to ``x`` and to every variable,
and the variables' names.
"""

from __future__ import annotations

import numpy as np

BATCH, TIME, DEPTH = 2, 3, 3
PROGRAMS = {}
# programs whose variables keep the values their initializers give (checked too)
KEEP_INITIAL = {"cell_lstm_initializer"}


def program(fn):
    PROGRAMS[fn.__name__] = fn
    return fn


def fixed(shape, salt: float) -> np.ndarray:
    """Deterministic numbers in [-0.5, 0.5] of ``shape``."""
    n = int(np.prod(shape, dtype=np.int64))
    return (0.5 * np.sin(np.arange(n) * 0.7 + salt * 1.3)).reshape(shape).astype(np.float32)


def two_steps(tf, cell, x):
    state = cell.zero_state(BATCH, tf.float32)
    out1, state = cell(x[:, 0], state)
    out2, state = cell(x[:, 1], state)
    return {"out1": out1, "out2": out2, "state": state}


# ---- single cells, called directly ---------------------------------------------------------

@program
def cell_basic_rnn(tf, x):
    return two_steps(tf, tf.nn.rnn_cell.BasicRNNCell(4), x)


@program
def cell_basic_lstm(tf, x):
    return two_steps(tf, tf.nn.rnn_cell.BasicLSTMCell(4, forget_bias=0.5), x)


@program
def cell_basic_lstm_concat_state(tf, x):
    return two_steps(tf, tf.nn.rnn_cell.BasicLSTMCell(4, state_is_tuple=False), x)


@program
def cell_lstm_peepholes_projection(tf, x):
    cell = tf.nn.rnn_cell.LSTMCell(4, use_peepholes=True, cell_clip=0.4, num_proj=3,
                                   proj_clip=0.3, forget_bias=0.7)
    return two_steps(tf, cell, x)


@program
def cell_lstm_initializer(tf, x):
    cell = tf.nn.rnn_cell.LSTMCell(4, initializer=tf.constant_initializer(0.1))
    return two_steps(tf, cell, x)


@program
def cell_gru(tf, x):
    return two_steps(tf, tf.nn.rnn_cell.GRUCell(4), x)


@program
def cell_multi(tf, x):
    cell = tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.BasicLSTMCell(4),
                                        tf.nn.rnn_cell.GRUCell(3)])
    return two_steps(tf, cell, x)


@program
def cell_wrappers(tf, x):
    rnn = tf.nn.rnn_cell
    cell = rnn.MultiRNNCell([
        rnn.DropoutWrapper(rnn.BasicLSTMCell(4), input_keep_prob=1.0, output_keep_prob=1.0),
        rnn.ResidualWrapper(rnn.GRUCell(4))])
    return two_steps(tf, cell, x)


@program
def cell_two_in_one_scope(tf, x):
    # the second cell made in the same scope is basic_rnn_cell_1
    a, b = tf.nn.rnn_cell.BasicRNNCell(2), tf.nn.rnn_cell.BasicRNNCell(2)
    out_a, _ = a(x[:, 0], a.zero_state(BATCH, tf.float32))
    out_b, _ = b(x[:, 1], b.zero_state(BATCH, tf.float32))
    with tf.variable_scope("named"):
        c = tf.nn.rnn_cell.GRUCell(2)
        out_c, _ = c(x[:, 2], c.zero_state(BATCH, tf.float32), scope="given")
    return {"a": out_a, "b": out_b, "c": out_c}


# ---- whole sequences -----------------------------------------------------------------------

@program
def dynamic_lstm_lengths(tf, x):
    cell = tf.nn.rnn_cell.BasicLSTMCell(4)
    outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=[3, 1], dtype=tf.float32)
    return {"outputs": outputs, "state": state}


@program
def dynamic_lstm_time_major_initial_state(tf, x):
    cell = tf.nn.rnn_cell.LSTMCell(4, num_proj=3)
    start = tf.nn.rnn_cell.LSTMStateTuple(tf.tanh(x[:, 0, :1] * tf.ones([1, 4])),
                                          tf.tanh(x[:, 1]))
    outputs, state = tf.nn.dynamic_rnn(cell, tf.transpose(x, [1, 0, 2]), initial_state=start,
                                       time_major=True)
    return {"outputs": outputs, "state": state}


@program
def dynamic_multi_gru_scope(tf, x):
    cell = tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.GRUCell(4), tf.nn.rnn_cell.GRUCell(4)])
    outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=[2, 0], dtype=tf.float32,
                                       scope="encoder")
    return {"outputs": outputs, "state": state}


@program
def static_lstm_lengths(tf, x):
    cell = tf.nn.rnn_cell.BasicLSTMCell(4)
    outputs, state = tf.nn.static_rnn(cell, tf.unstack(x, axis=1), sequence_length=[3, 1],
                                      dtype=tf.float32)
    return {"outputs": outputs, "state": state}


@program
def bidirectional_dynamic(tf, x):
    outputs, states = tf.nn.bidirectional_dynamic_rnn(
        tf.nn.rnn_cell.LSTMCell(3), tf.nn.rnn_cell.GRUCell(2), x, sequence_length=[3, 2],
        dtype=tf.float32)
    return {"outputs": outputs, "states": states}


@program
def static_bidirectional(tf, x):
    outputs, fw, bw = tf.nn.static_bidirectional_rnn(
        tf.nn.rnn_cell.BasicLSTMCell(3), tf.nn.rnn_cell.BasicLSTMCell(3),
        tf.unstack(x, axis=1), sequence_length=[2, 3], dtype=tf.float32)
    return {"outputs": outputs, "fw": fw, "bw": bw}


def numeric_gradient(sess, loss, x, value: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the fetched scalar ``loss`` in the fed ``x`` at ``value``."""
    out = np.zeros_like(value)
    for idx in np.ndindex(value.shape):
        up, down = value.copy(), value.copy()
        up[idx] += eps
        down[idx] -= eps
        out[idx] = (sess.run(loss, {x: up}) - sess.run(loss, {x: down})) / (2 * eps)
    return out


# ---- the runner ----------------------------------------------------------------------------

def flatten(value, prefix: str, out: dict) -> None:
    """Name each tensor of a nested structure: ``state.1.c``, ``outputs.0``."""
    if isinstance(value, dict):
        for key in sorted(value):
            flatten(value[key], f"{prefix}{key}.", out)
    elif isinstance(value, (list, tuple)):
        fields = getattr(type(value), "_fields", None)
        for k, item in enumerate(value):
            flatten(item, f"{prefix}{fields[k] if fields else k}.", out)
    else:
        out[prefix.rstrip(".")] = value


def run_program(tf, name: str) -> dict:
    """The program's tensors, gradients, variable names (and initial values where kept),
    as plain lists."""
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [BATCH, TIME, DEPTH], name="x")
        tensors: dict = {}
        flatten(PROGRAMS[name](tf, x), "", tensors)
        loss = 0.0
        for k, key in enumerate(sorted(tensors)):
            shape = tensors[key].shape.as_list()
            loss = loss + tf.reduce_sum(tensors[key] * tf.constant(fixed(shape, 10.0 + k)))
        variables = tf.trainable_variables()
        grads = tf.gradients(loss, [x] + variables)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            result = {"names": [v.name for v in variables]}
            if name in KEEP_INITIAL:
                result["initial"] = [sess.run(v).tolist() for v in variables]
            else:
                for k, v in enumerate(variables):
                    sess.run(v.assign(fixed(v.shape.as_list(), k + 1.0)))
            keys = sorted(tensors)
            values = sess.run([tensors[k] for k in keys] + grads,
                              {x: fixed((BATCH, TIME, DEPTH), 0.1)})
        result["tensors"] = {k: np.asarray(v).tolist()
                             for k, v in zip(keys, values[:len(keys)], strict=True)}
        result["grads"] = [np.asarray(g).tolist() for g in values[len(keys):]]
        return result
