"""tracejit itself, with whatever executor is its default (``@tracejit.jit``); W8 also
through ``tracejit.compat.v1`` exactly as a TF1 tutorial would run it."""

from __future__ import annotations

import os

import numpy as np

import tracejit as tj
import tracejit.compat.v1 as tf1

from .harness import Case, Compile
from .workloads import (
    DROPOUT_KEEP,
    LEARNING_RATE,
    W8_LEARNING_RATE,
    W9_CLIP_NORM,
    W9_LEARNING_RATE,
)


def versions() -> dict:
    from tracejit.runtime.registry import default_device_name
    return {"tracejit": tj.__version__, "executor": default_device_name()}


def _mean(out) -> float:
    return float(np.mean(np.asarray(out), dtype=np.float64))


def w1(inp, size):
    @tj.jit
    def fused(a, b, x):
        return tj.tanh(a * x + b) * (1.0 / (1.0 + tj.exp(-x))) + x * x
    a, b, x = inp["a"], inp["b"], inp["x"]
    return Case(lambda: fused(a, b, x), check=_mean)


def w2(inp, size):
    @tj.jit
    def reduction(x):
        return tj.reduce_sum(x * x - 0.5 * x)
    x = inp["x"]
    return Case(lambda: reduction(x), check=lambda out: float(np.asarray(out)))


def w3(inp, size):
    gemm = tj.jit(lambda a, b: a @ b)
    a, b = inp["a"], inp["b"]
    return Case(lambda: gemm(a, b), check=_mean)


def w3_bf16(inp, size):
    """W3 on bfloat16 operands (float32 sums, a bfloat16 result): the operands are
    given in bfloat16, as a bf16 model holds them."""
    gemm = tj.jit(lambda a, b: a @ b)
    a, b = (inp[k].astype(tj.bfloat16.np_dtype) for k in ("a", "b"))
    return Case(lambda: gemm(a, b), check=_mean, note="operands in bfloat16",
                precision="bfloat16")


def mlp_loss(params, x, y):
    w1_, b1, w2_, b2, w3_, b3 = params
    h = tj.nn.relu(x @ w1_ + b1)
    h = tj.nn.relu(h @ w2_ + b2)
    logits = h @ w3_ + b3
    return tj.reduce_mean(tj.nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))


def _mlp_step():
    @tj.jit
    def step(params, x, y):
        loss, grads = tj.value_and_grad(mlp_loss)(params, x, y)
        return loss, [p - LEARNING_RATE * g for p, g in zip(params, grads, strict=True)]
    return step


def w4(inp, size):
    step = _mlp_step()
    state = {"params": list(inp["params"])}
    x, y = inp["x"], inp["y"]

    def run():
        loss, state["params"] = step(state["params"], x, y)
        return loss
    return Case(run, check=lambda loss: float(np.asarray(loss)))


def _conv_relu_pool(h, w, b):
    h = tj.nn.relu(tj.nn.conv2d(h, w, strides=1, padding="SAME") + b)
    return tj.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME")


def _w5_logits(params, x, training: bool):
    c1, cb1, c2, cb2, f1, fb1, f2, fb2 = params
    h = _conv_relu_pool(_conv_relu_pool(x, c1, cb1), c2, cb2)
    h = tj.nn.relu(tj.reshape(h, [-1, 7 * 7 * 64]) @ f1 + fb1)
    if training:
        h = tj.nn.dropout(h, rate=1.0 - DROPOUT_KEEP)
    return h @ f2 + fb2


def _w5_step(inp, policy: str, precision: str | None = None):
    tj.nn.set_dropout_seed(0)
    params = [tj.Variable(p, name=f"w5/p{i}") for i, p in enumerate(inp["params"])]
    x, y = inp["x"], inp["y"]

    @tj.jit
    def step(x, y):
        logits = tj.cast(_w5_logits(params, x, training=True), tj.float32)
        loss = tj.reduce_mean(tj.nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))
        for p, g in zip(params, tj.gradients(loss, params), strict=True):
            p.assign_sub(LEARNING_RATE * g)
        return loss

    def run():
        # NOTE: the policy is read while the step is traced (its first call)
        with tj.mixed_precision.autocast(policy):
            return step(x, y)
    return Case(run, check=lambda loss: float(np.asarray(loss)),
                precision=precision)


def w5(inp, size):
    """The TF tutorial's CNN step as a TF2 user would write it: Variables, the loss's
    gradients, ``assign_sub``, all in one jitted function (dropout's key is a captured
    variable, so every call draws a fresh mask without retracing)."""
    return _w5_step(inp, "float32")


def w5_bf16(inp, size):
    """W5 under the mixed_bfloat16 policy: convolutions and products on bfloat16
    operands with float32 sums, float32 weights and loss (tj.mixed_precision)."""
    return _w5_step(inp, "mixed_bfloat16", precision="bfloat16")


def _w10(inp, size, int8: bool):
    params = [tj.Variable(p, name=f"w10/p{i}") for i, p in enumerate(inp["params"])]
    x = inp["x"]

    def predict(images):
        return _w5_logits(params, images, training=False)
    # NOTE: calibrated on the timed batch itself: the figure is the int8 program's speed
    run = tj.quantize(predict, x) if int8 else tj.jit(predict)
    return Case(lambda: run(x), check=lambda out: float(np.mean(np.abs(np.asarray(out)))))


def w10_f32(inp, size):
    return _w10(inp, size, int8=False)


def w10_int8(inp, size):
    """W5's net for inference, quantized to int8 by tj.quantize (per-channel int8
    weights, affine int8 activations, int32 sums)."""
    return _w10(inp, size, int8=True)


def w6(inp, size):
    add_one = tj.jit(lambda x: x + 1.0)
    x = inp["x"]
    return Case(lambda: add_one(x), check=lambda out: float(np.sum(np.asarray(out))))


def w7(inp, size):
    params, x, y = list(inp["params"]), inp["x"], inp["y"]

    # NOTE: nothing compiled may be reused: a new JitFunction (an empty cache), the
    # executors' in-memory programs dropped, and the disk cache off for this process.
    os.environ["TRACEJIT_CACHE_DIR"] = "off"

    def fresh():
        tj.clear_caches()
        step = _mlp_step()
        return lambda: step(params, x, y)
    return Compile(fresh)


def w8_session(inp, size):
    """The 2016 slides' program, unchanged but for the import line (and zero initial
    values, so that every peer ends at the same W)."""
    xs, ys = inp["x"], inp["y"]
    graph = tf1.Graph()
    with graph.as_default():
        x = tf1.placeholder(shape=[None], dtype=tf1.float32, name="x")
        y_label = tf1.placeholder(shape=[None], dtype=tf1.float32, name="y_label")
        W = tf1.Variable(0.0, name="W")
        b = tf1.Variable(0.0, name="b")
        loss = tf1.reduce_mean(tf1.square(W * x + b - y_label))
        train = tf1.train.GradientDescentOptimizer(W8_LEARNING_RATE).minimize(loss)
        sess = tf1.Session()
        sess.run(tf1.global_variables_initializer())

    def run():
        for i in range(len(xs)):
            sess.run(train, feed_dict={x: xs[i], y_label: ys[i]})
        return sess.run(W)
    return Case(run, check=float, style="session")


def w8_jit(inp, size):
    """The idiomatic tracejit loop: a jitted step over (W, b), called once per batch."""
    def loss(params, x, y):
        w, b = params
        return tj.reduce_mean(tj.square(w * x + b - y))

    @tj.jit
    def step(params, x, y):
        grads = tj.grad(loss)(params, x, y)
        return [p - W8_LEARNING_RATE * g for p, g in zip(params, grads, strict=True)]
    xs, ys = inp["x"], inp["y"]
    state = {"params": [np.float32(0.0), np.float32(0.0)]}

    def run():
        params = state["params"]
        for i in range(len(xs)):
            params = step(params, xs[i], ys[i])
        state["params"] = params
        return params[0]
    return Case(run, check=lambda w: float(np.asarray(w)), style="step")


def w8_in_graph(inp, size):
    """The 1000 steps as one in-graph loop (``tj.scan`` over the batches): forward,
    gradient and update of every step in one native call."""
    def loss(params, x, y):
        w, b = params
        return tj.reduce_mean(tj.square(w * x + b - y))

    def step(params, batch):
        grads = tj.grad(loss)(params, *batch)
        return [p - W8_LEARNING_RATE * g for p, g in zip(params, grads, strict=True)], None

    @tj.jit
    def train(params, xs, ys):
        return tj.scan(step, params, (xs, ys))[0]
    xs, ys = inp["x"], inp["y"]
    state = {"params": [np.float32(0.0), np.float32(0.0)]}

    def run():
        state["params"] = train(state["params"], xs, ys)
        return state["params"][0]
    return Case(run, check=lambda w: float(np.asarray(w)), style="loop")


def lstm_lm_loss(params, x, y, layers: int):
    """W9's model (workloads.lstm_lm_params gives the layout): each layer's input
    projection for all steps is one matmul before its scan; the scan carries (h, c)."""
    emb, softmax_w, softmax_b = params[0], params[-2], params[-1]
    hidden = emb.shape[1]
    seq, batch = x.shape[1], x.shape[0]
    inputs = tj.reshape(tj.gather(emb, tj.reshape(tj.transpose(x), [-1]), axis=0),
                        [seq * batch, hidden])                       # time-major rows

    def cell(carry, projected, w_h):
        h, c = carry
        i, f, g, o = tj.split(projected + h @ w_h, 4, axis=1)
        c = tj.sigmoid(f) * c + tj.sigmoid(i) * tj.tanh(g)
        h = tj.sigmoid(o) * tj.tanh(c)
        return (h, c), h

    for layer in range(layers):
        w, b = params[1 + 2 * layer], params[2 + 2 * layer]
        w_x, w_h = w[:hidden], w[hidden:]
        projected = tj.reshape(inputs @ w_x + b, [seq, batch, 4 * hidden])
        zeros = tj.zeros([batch, hidden])
        _, hs = tj.scan(lambda carry, p, w_h=w_h: cell(carry, p, w_h), (zeros, zeros),
                        projected)
        inputs = tj.reshape(hs, [seq * batch, hidden])
    logits = inputs @ softmax_w + softmax_b
    labels = tj.reshape(tj.transpose(y), [-1])
    return tj.reduce_mean(tj.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))


def w9_step(layers: int):
    """The jitted training step: ``(params, x, y) -> (new params, loss)``."""
    @tj.jit
    def step(params, x, y):
        loss, grads = tj.value_and_grad(lambda p: lstm_lm_loss(p, x, y, layers))(params)
        norm = tj.sqrt(sum(tj.reduce_sum(tj.square(g)) for g in grads))
        scale = W9_CLIP_NORM / tj.maximum(norm, W9_CLIP_NORM)
        return [p - W9_LEARNING_RATE * scale * g for p, g in zip(params, grads, strict=True)], \
            loss
    return step


def w9(inp, size):
    """One PTB-style training step through ``tj.scan``: forward, backprop through time
    (the scan's gradient, over stacked residuals), global-norm clipping, SGD."""
    step = w9_step(size["layers"])
    state = {"params": [np.array(p) for p in inp["params"]]}
    x, y = inp["x"], inp["y"]

    def run():
        state["params"], loss = step(state["params"], x, y)
        return loss
    return Case(run, check=float, style="step")


def _tf1_gate_order(w: np.ndarray) -> np.ndarray:
    """W9's gate columns (i, f, g, o) in TensorFlow's LSTM order (i, j=g, f, o)."""
    i, f, g, o = np.split(w, 4, axis=-1)
    return np.concatenate([i, g, f, o], axis=-1)


def w9_tf1(inp, size):
    """The same step as TF1 tutorial code through ``tracejit.compat.v1``: an embedding
    lookup, ``tf.nn.dynamic_rnn`` over a ``MultiRNNCell`` of ``BasicLSTMCell``s
    (``forget_bias=0``; W9's weights loaded in TF's gate order), ``sequence_loss``,
    ``tf.gradients``, ``tf.clip_by_global_norm`` and SGD, one ``Session.run`` a step."""
    hidden, layers = size["hidden"], size["layers"]
    batch, seq = inp["x"].shape
    params = inp["params"]
    graph = tf1.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf1.int32, [batch, seq])
        y = tf1.placeholder(tf1.int32, [batch, seq])
        embedding = tf1.get_variable("embedding", initializer=params[0])
        cell = tf1.nn.rnn_cell.MultiRNNCell([tf1.nn.rnn_cell.BasicLSTMCell(
            hidden, forget_bias=0.0) for _ in range(layers)])
        outputs, _ = tf1.nn.dynamic_rnn(cell, tf1.nn.embedding_lookup(embedding, x),
                                        dtype=tf1.float32)
        softmax_w = tf1.get_variable("softmax_w", initializer=params[-2])
        softmax_b = tf1.get_variable("softmax_b", initializer=params[-1])
        logits = tf1.nn.xw_plus_b(tf1.reshape(outputs, [-1, hidden]), softmax_w, softmax_b)
        loss = tf1.contrib.seq2seq.sequence_loss(tf1.reshape(logits, [batch, seq, -1]), y,
                                                 tf1.ones([batch, seq]))
        tvars = tf1.trainable_variables()
        grads, _ = tf1.clip_by_global_norm(tf1.gradients(loss, tvars), W9_CLIP_NORM)
        train = tf1.train.GradientDescentOptimizer(W9_LEARNING_RATE).apply_gradients(
            zip(grads, tvars, strict=True))
        sess = tf1.Session()
        sess.run(tf1.global_variables_initializer())
        for layer in range(layers):
            scope = f"rnn/multi_rnn_cell/cell_{layer}/basic_lstm_cell/"
            for name, value in (("kernel", params[1 + 2 * layer]),
                                ("bias", params[2 + 2 * layer])):
                variable = next(v for v in tvars if v.op.name == scope + name)
                variable.load(_tf1_gate_order(value), sess)
    feed = {x: inp["x"], y: inp["y"]}

    def run():
        return sess.run([loss, train], feed)[0]
    return Case(run, check=float)


VARIANTS = {
    "W1": {"tracejit": w1},
    "W2": {"tracejit": w2},
    "W3": {"tracejit": w3, "tracejit bf16": w3_bf16},
    "W4": {"tracejit": w4},
    "W5": {"tracejit": w5, "tracejit bf16": w5_bf16},
    "W6": {"tracejit": w6},
    "W7": {"tracejit": w7},
    "W8": {"tracejit Session.run": w8_session, "tracejit jit step": w8_jit,
           "tracejit in-graph loop": w8_in_graph},
    "W9": {"tracejit": w9, "tracejit TF1 dynamic_rnn": w9_tf1},
    "W10": {"tracejit": w10_f32, "tracejit int8": w10_int8},
}
