"""JAX as its experts use it: pure functions under ``jax.jit``, ``value_and_grad``,
donated parameter buffers, ``lax`` convolutions, ``lax.scan`` over time for W9's LSTM,
and for W8 a ``lax.fori_loop`` too. Every timed call ends with ``block_until_ready``
(JAX dispatches asynchronously)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .harness import Case, Compile
from .workloads import (
    DROPOUT_KEEP,
    LEARNING_RATE,
    W8_LEARNING_RATE,
    W9_CLIP_NORM,
    W9_LEARNING_RATE,
)


def versions() -> dict:
    return {"jax": jax.__version__, "backend": jax.default_backend()}


def _mean(out) -> float:
    return float(np.mean(np.asarray(out), dtype=np.float64))


def _ready(out):
    return jax.block_until_ready(out)


def w1(inp, size):
    fused = jax.jit(lambda a, b, x: jnp.tanh(a * x + b) * (1.0 / (1.0 + jnp.exp(-x))) + x * x)
    a, b, x = (jax.device_put(inp[k]) for k in "abx")
    return Case(lambda: _ready(fused(a, b, x)), check=_mean)


def w2(inp, size):
    reduction = jax.jit(lambda x: jnp.sum(x * x - 0.5 * x))
    x = jax.device_put(inp["x"])
    return Case(lambda: _ready(reduction(x)), check=lambda out: float(out))


def w3(inp, size):
    gemm = jax.jit(jnp.matmul)
    a, b = jax.device_put(inp["a"]), jax.device_put(inp["b"])
    return Case(lambda: _ready(gemm(a, b)), check=_mean)


def _xent(logits, y):
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=-1))


def mlp_loss(params, x, y):
    w1_, b1, w2_, b2, w3_, b3 = params
    h = jax.nn.relu(x @ w1_ + b1)
    h = jax.nn.relu(h @ w2_ + b2)
    return _xent(h @ w3_ + b3, y)


def _mlp_step_fn():
    # NOTE: a new function object each time: JAX's tracing caches are keyed on it.
    def step(params, x, y):
        loss, grads = jax.value_and_grad(mlp_loss)(params, x, y)
        return loss, tuple(p - LEARNING_RATE * g for p, g in zip(params, grads, strict=True))
    return step


def _stateful(step, params, *args):
    """Run a (loss, params) -> (loss, new params) step repeatedly, keeping the state."""
    state = {"params": params}

    def run():
        loss, state["params"] = step(state["params"], *args)
        return _ready(loss)
    return run


def w4(inp, size):
    step = jax.jit(_mlp_step_fn(), donate_argnums=0)
    params = tuple(jax.device_put(p) for p in inp["params"])
    x, y = jax.device_put(inp["x"]), jax.device_put(inp["y"])
    return Case(_stateful(step, params, x, y), check=float)


def w7(inp, size):
    x, y = jax.device_put(inp["x"]), jax.device_put(inp["y"])

    def fresh():
        jax.clear_caches()
        step = jax.jit(_mlp_step_fn(), donate_argnums=0)
        run = _stateful(step, tuple(jax.device_put(p) for p in inp["params"]), x, y)
        return run
    return Compile(fresh)


def _conv_relu_pool(h, w, b):
    h = lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    h = jax.nn.relu(h + b)
    return lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def cnn_loss(params, x, y, key):
    c1, cb1, c2, cb2, f1, fb1, f2, fb2 = params
    h = _conv_relu_pool(_conv_relu_pool(x, c1, cb1), c2, cb2)
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ f1 + fb1)
    keep = jax.random.bernoulli(key, DROPOUT_KEEP, h.shape)
    h = jnp.where(keep, h / DROPOUT_KEEP, 0.0)
    return _xent(h @ f2 + fb2, y)


def _cnn_step(params, x, y, key):
    key, sub = jax.random.split(key)
    loss, grads = jax.value_and_grad(cnn_loss)(params, x, y, sub)
    return loss, tuple(p - LEARNING_RATE * g for p, g in zip(params, grads, strict=True)), key


def w5(inp, size):
    step = jax.jit(_cnn_step, donate_argnums=0)
    state = {"params": tuple(jax.device_put(p) for p in inp["params"]),
             "key": jax.random.PRNGKey(0)}
    x, y = jax.device_put(inp["x"]), jax.device_put(inp["y"])

    def run():
        loss, state["params"], state["key"] = step(state["params"], x, y, state["key"])
        return _ready(loss)
    return Case(run, check=float)


def w6(inp, size):
    add_one = jax.jit(lambda x: x + 1.0)
    x = jax.device_put(inp["x"])
    return Case(lambda: _ready(add_one(x)), check=lambda out: float(jnp.sum(out)))


def _lr_step(params, x, y):
    def loss(p):
        return jnp.mean(jnp.square(p[0] * x + p[1] - y))
    grads = jax.grad(loss)(params)
    return tuple(p - W8_LEARNING_RATE * g for p, g in zip(params, grads, strict=True))


def w8_step(inp, size):
    step = jax.jit(_lr_step)
    xs, ys = inp["x"], inp["y"]
    state = {"params": (jnp.float32(0.0), jnp.float32(0.0))}

    def run():
        params = state["params"]
        for i in range(len(xs)):
            params = step(params, xs[i], ys[i])
        state["params"] = _ready(params)
        return params[0]
    return Case(run, check=float, style="step")


@jax.jit
def _lr_loop(xs, ys):
    init = (jnp.float32(0.0), jnp.float32(0.0))
    return lax.fori_loop(0, xs.shape[0], lambda i, p: _lr_step(p, xs[i], ys[i]), init)


def w8_loop(inp, size):
    xs, ys = jax.device_put(inp["x"]), jax.device_put(inp["y"])
    return Case(lambda: _ready(_lr_loop(xs, ys))[0], check=float, style="loop")


def _lstm_layer(w, b, inputs):
    """One LSTM layer over time-major inputs [seq, batch, hidden]; returns every h."""
    hidden = w.shape[1] // 4
    w_x, w_h = w[:hidden], w[hidden:]
    z_x = inputs @ w_x + b                  # the input side of every step in one GEMM

    def cell(carry, z):
        h, c = carry
        i, f, g, o = jnp.split(z + h @ w_h, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h
    zeros = jnp.zeros((inputs.shape[1], hidden), inputs.dtype)
    _, hs = lax.scan(cell, (zeros, zeros), z_x)
    return hs


def lstm_lm_loss(params, x, y):
    """Layout and cell: workloads.lstm_lm_params. x, y: token ids [batch, seq]."""
    embedding, *cells, softmax_w, softmax_b = params
    h = jnp.take(embedding, x.T, axis=0)            # time-major [seq, batch, hidden]
    for w, b in zip(cells[::2], cells[1::2], strict=True):
        h = _lstm_layer(w, b, h)
    log_probs = jax.nn.log_softmax(h @ softmax_w + softmax_b)
    return -jnp.mean(jnp.take_along_axis(log_probs, y.T[..., None], axis=-1))


def _lstm_lm_step(params, x, y):
    loss, grads = jax.value_and_grad(lstm_lm_loss)(params, x, y)
    norm = jnp.sqrt(sum(jnp.sum(g * g) for g in grads))       # clip by the global norm
    factor = W9_LEARNING_RATE * W9_CLIP_NORM / jnp.maximum(norm, W9_CLIP_NORM)
    return loss, tuple(p - factor * g for p, g in zip(params, grads, strict=True))


def w9(inp, size):
    step = jax.jit(_lstm_lm_step, donate_argnums=0)
    params = tuple(jax.device_put(p) for p in inp["params"])
    x, y = jax.device_put(inp["x"]), jax.device_put(inp["y"])
    return Case(_stateful(step, params, x, y), check=float)


VARIANTS = {
    "W1": {"jax.jit": w1},
    "W2": {"jax.jit": w2},
    "W3": {"jax.jit": w3},
    "W4": {"jax.jit": w4},
    "W5": {"jax.jit": w5},
    "W6": {"jax.jit": w6},
    "W7": {"jax.jit": w7},
    "W8": {"jax.jit step": w8_step, "jax fori_loop": w8_loop},
    "W9": {"jax.jit": w9},
}
