"""TensorFlow 2 as its experts use it: ``tf.function`` with and without
``jit_compile=True`` (XLA), ``tf.Variable`` parameters updated by ``assign_sub`` inside
the function, ``GradientTape``; W9 with ``tf.keras.layers.LSTM``; W8 also as the TF1
original (``tf.compat.v1.Session``)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")     # keep TF's start-up chatter off stderr

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .harness import Case, Compile  # noqa: E402
from .workloads import (  # noqa: E402
    DROPOUT_KEEP,
    LEARNING_RATE,
    W8_LEARNING_RATE,
    W9_CLIP_NORM,
    W9_LEARNING_RATE,
)

GRAPH, XLA = "tf.function", "tf.function(jit_compile)"


def versions() -> dict:
    return {"tensorflow": tf.__version__,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads()}


def _mean(out) -> float:
    return float(np.mean(out.numpy(), dtype=np.float64))


def _function(fn, variant):
    return tf.function(fn, jit_compile=(variant == XLA))


def _variants(builder):
    return {GRAPH: lambda inp, size: builder(inp, size, GRAPH),
            XLA: lambda inp, size: builder(inp, size, XLA)}


def w1(inp, size, variant):
    fused = _function(lambda a, b, x: tf.tanh(a * x + b) * (1.0 / (1.0 + tf.exp(-x))) + x * x,
                      variant)
    a, b, x = (tf.constant(inp[k]) for k in "abx")
    return Case(lambda: fused(a, b, x), check=_mean)


def w2(inp, size, variant):
    reduction = _function(lambda x: tf.reduce_sum(x * x - 0.5 * x), variant)
    x = tf.constant(inp["x"])
    return Case(lambda: reduction(x), check=lambda out: float(out))


def w3(inp, size, variant):
    gemm = _function(tf.matmul, variant)
    a, b = tf.constant(inp["a"]), tf.constant(inp["b"])
    return Case(lambda: gemm(a, b), check=_mean)


def _xent(logits, y):
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))


def _mlp_trainer(inp, variant):
    params = [tf.Variable(p) for p in inp["params"]]
    x, y = tf.constant(inp["x"]), tf.constant(inp["y"])

    def step():
        with tf.GradientTape() as tape:
            w1_, b1, w2_, b2, w3_, b3 = params
            h = tf.nn.relu(x @ w1_ + b1)
            h = tf.nn.relu(h @ w2_ + b2)
            loss = _xent(h @ w3_ + b3, y)
        for p, g in zip(params, tape.gradient(loss, params), strict=True):
            p.assign_sub(LEARNING_RATE * g)
        return loss
    return _function(step, variant)


def w4(inp, size, variant):
    return Case(_mlp_trainer(inp, variant), check=float)


def w5(inp, size, variant):
    tf.random.set_seed(0)
    params = [tf.Variable(p) for p in inp["params"]]
    x, y = tf.constant(inp["x"]), tf.constant(inp["y"])

    def conv_relu_pool(h, w, b):
        h = tf.nn.relu(tf.nn.conv2d(h, w, strides=1, padding="SAME") + b)
        return tf.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME")

    def step():
        with tf.GradientTape() as tape:
            c1, cb1, c2, cb2, f1, fb1, f2, fb2 = params
            h = conv_relu_pool(conv_relu_pool(x, c1, cb1), c2, cb2)
            h = tf.nn.relu(tf.reshape(h, [-1, 7 * 7 * 64]) @ f1 + fb1)
            h = tf.nn.dropout(h, rate=1.0 - DROPOUT_KEEP)
            loss = _xent(h @ f2 + fb2, y)
        for p, g in zip(params, tape.gradient(loss, params), strict=True):
            p.assign_sub(LEARNING_RATE * g)
        return loss
    return Case(_function(step, variant), check=float)


def w6(inp, size, variant):
    add_one = _function(lambda x: x + 1.0, variant)
    x = tf.constant(inp["x"])
    return Case(lambda: add_one(x), check=lambda out: float(tf.reduce_sum(out)))


def w7(inp, size, variant):
    # NOTE: a new tf.function (and new variables) per repeat: nothing traced is reused.
    return Compile(lambda: _mlp_trainer(inp, variant))


def w8_session(inp, size):
    """The 2016 slides' program on TensorFlow's own TF1 API."""
    v1 = tf.compat.v1
    xs, ys = inp["x"], inp["y"]
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(shape=[None], dtype=tf.float32, name="x")
        y_label = v1.placeholder(shape=[None], dtype=tf.float32, name="y_label")
        W = v1.Variable(0.0, name="W")
        b = v1.Variable(0.0, name="b")
        loss = tf.reduce_mean(tf.square(W * x + b - y_label))
        train = v1.train.GradientDescentOptimizer(W8_LEARNING_RATE).minimize(loss)
        sess = v1.Session(graph=graph)
        sess.run(v1.global_variables_initializer())

    def run():
        for i in range(len(xs)):
            sess.run(train, feed_dict={x: xs[i], y_label: ys[i]})
        return sess.run(W)
    return Case(run, check=float, style="session")


def _lr_state():
    return tf.Variable(0.0), tf.Variable(0.0)


def _lr_update(w, b, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(w * x + b - y))
    gw, gb = tape.gradient(loss, [w, b])
    w.assign_sub(W8_LEARNING_RATE * gw)
    b.assign_sub(W8_LEARNING_RATE * gb)


def w8_step(inp, size, variant):
    w, b = _lr_state()
    step = _function(lambda x, y: _lr_update(w, b, x, y), variant)
    xs, ys = inp["x"], inp["y"]

    def run():
        for i in range(len(xs)):
            step(xs[i], ys[i])
        return w.numpy()
    return Case(run, check=float, style="step")


def w8_loop(inp, size, variant):
    w, b = _lr_state()
    xs, ys = tf.constant(inp["x"]), tf.constant(inp["y"])

    def loop():
        w.assign(0.0)
        b.assign(0.0)
        for i in tf.range(xs.shape[0]):     # AutoGraph: one compiled while loop
            _lr_update(w, b, xs[i], ys[i])
        return w.read_value()
    return Case(_function(loop, variant), check=float, style="loop")


def _keras_lstm(w, b, hidden):
    """A tf.keras LSTM layer holding our w_l, b_l (layout: workloads.lstm_lm_params).
    Keras keeps kernel [input, 4h] and recurrent_kernel [h, 4h], gates in our order
    i, f, c (our g), o; sigmoid and tanh as set here are the cell's exact activations.
    unit_forget_bias only shapes the bias initializer, which set_weights overrides."""
    layer = tf.keras.layers.LSTM(hidden, activation="tanh", recurrent_activation="sigmoid",
                                 unit_forget_bias=False, return_sequences=True)
    layer.build((None, None, hidden))
    layer.set_weights([w[:hidden], w[hidden:], b])
    return layer


def w9(inp, size, variant):
    emb, *cells, softmax_w, softmax_b = inp["params"]
    hidden = emb.shape[1]
    embedding = tf.Variable(emb)
    lstms = [_keras_lstm(w, b, hidden) for w, b in zip(cells[::2], cells[1::2], strict=True)]
    softmax_w, softmax_b = tf.Variable(softmax_w), tf.Variable(softmax_b)
    params = [embedding, *[v for layer in lstms for v in layer.trainable_variables],
              softmax_w, softmax_b]
    x, y = tf.constant(inp["x"]), tf.constant(inp["y"])      # [batch, seq]

    def step():
        with tf.GradientTape() as tape:
            h = tf.gather(embedding, x)                         # [batch, seq, hidden]
            for layer in lstms:
                h = layer(h)                                    # zero initial state
            logits = tf.matmul(tf.reshape(h, [-1, hidden]), softmax_w) + softmax_b
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.reshape(y, [-1]), logits=logits))
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, params), W9_CLIP_NORM)
        for p, g in zip(params, grads, strict=True):
            if isinstance(g, tf.IndexedSlices):     # the embedding's: only rows looked up
                p.scatter_sub(tf.IndexedSlices(W9_LEARNING_RATE * g.values, g.indices))
            else:
                p.assign_sub(W9_LEARNING_RATE * g)
        return loss
    return Case(_function(step, variant), check=float)


VARIANTS = {
    "W1": _variants(w1),
    "W2": _variants(w2),
    "W3": _variants(w3),
    "W4": _variants(w4),
    "W5": _variants(w5),
    "W6": _variants(w6),
    "W7": {GRAPH: lambda inp, size: w7(inp, size, GRAPH),
           XLA: lambda inp, size: w7(inp, size, XLA)},
    "W8": {"tf1 Session.run": w8_session,
           f"{GRAPH} step": lambda inp, size: w8_step(inp, size, GRAPH),
           f"{XLA} step": lambda inp, size: w8_step(inp, size, XLA),
           f"{XLA} loop": lambda inp, size: w8_loop(inp, size, XLA)},
    "W9": _variants(w9),
}
