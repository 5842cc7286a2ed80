"""numba as its experts use it: ``@njit(fastmath=True, parallel=True)`` loops with
``prange``, ``np.dot`` (BLAS) for the GEMMs, hand-written backward passes, in-place
updates. Tiny kernels (W6, W8's step) and the BLAS-bound MLP step use ``@njit`` without
``parallel``: a parallel region costs more than 16 additions, and its threads fight
BLAS's."""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from . import cnn_numpy
from .harness import Case, Compile
from .workloads import LEARNING_RATE, W8_LEARNING_RATE

F32 = np.float32
FAST = {"fastmath": True, "parallel": True}


def versions() -> dict:
    return {"numba": numba.__version__, "numpy": np.__version__,
            "threads": numba.config.NUMBA_NUM_THREADS}


def _mean(out) -> float:
    return float(np.mean(out, dtype=np.float64))


@njit(**FAST)
def _fused(a, b, x, y):
    for i in prange(x.shape[0]):
        xi = x[i]
        y[i] = math.tanh(a[i] * xi + b[i]) * (F32(1.0) / (F32(1.0) + math.exp(-xi))) + xi * xi


@njit(**FAST)
def _reduce(x):
    total = F32(0.0)
    for i in prange(x.shape[0]):
        xi = x[i]
        total += xi * xi - F32(0.5) * xi
    return total


@njit(fastmath=True)
def _gemm(a, b):
    # NOTE: every GEMM of this peer goes through numba's np.dot (SciPy's OpenBLAS): with
    # NumPy's OpenBLAS also busy in the process, each slowed the other down 20x here.
    return np.dot(np.ascontiguousarray(a), np.ascontiguousarray(b))


@njit(fastmath=True)
def _add_one(x, out):
    for i in range(x.shape[0]):
        out[i] = x[i] + F32(1.0)
    return out


def w1(inp, size):
    a, b, x = inp["a"], inp["b"], inp["x"]
    y = np.empty_like(x)

    def run():
        _fused(a, b, x, y)
        return y
    return Case(run, check=_mean)


def w2(inp, size):
    x = inp["x"]
    return Case(lambda: _reduce(x), check=float)


def w3(inp, size):
    a, b = inp["a"], inp["b"]
    return Case(lambda: _gemm(a, b), check=_mean, note="np.dot in njit (SciPy's BLAS)")


def _bias_relu(h, bias):
    """In place: h = max(h + bias, 0); returns h. (Compiled inside the step.)"""
    for i in prange(h.shape[0]):
        for j in range(h.shape[1]):
            v = h[i, j] + bias[j]
            h[i, j] = v if v > F32(0.0) else F32(0.0)
    return h


def _relu_backward(d, h):
    for i in prange(d.shape[0]):
        for j in range(d.shape[1]):
            if h[i, j] <= F32(0.0):
                d[i, j] = F32(0.0)
    return d


def _mlp_step(w1, b1, w2, b2, w3, b3, x, y, lr):
    n = x.shape[0]
    h1 = bias_relu(np.dot(x, w1), b1)
    h2 = bias_relu(np.dot(h1, w2), b2)
    logits = np.dot(h2, w3)
    dl = np.empty_like(logits)
    loss = 0.0
    for i in prange(n):         # softmax cross-entropy and its gradient, row by row
        m = -np.inf
        for j in range(logits.shape[1]):
            logits[i, j] += b3[j]
            m = max(m, logits[i, j])
        s = F32(0.0)
        dot = F32(0.0)
        for j in range(logits.shape[1]):
            e = math.exp(logits[i, j] - m)
            dl[i, j] = e
            s += e
            dot += y[i, j] * logits[i, j]
        loss += math.log(s) + m - dot
        for j in range(logits.shape[1]):
            dl[i, j] = (dl[i, j] / s - y[i, j]) / n
    gw3 = np.dot(np.ascontiguousarray(h2.T), dl)
    d2 = relu_backward(np.dot(dl, np.ascontiguousarray(w3.T)), h2)
    gw2 = np.dot(np.ascontiguousarray(h1.T), d2)
    d1 = relu_backward(np.dot(d2, np.ascontiguousarray(w2.T)), h1)
    gw1 = np.dot(np.ascontiguousarray(x.T), d1)
    b3 -= lr * dl.sum(axis=0)
    b2 -= lr * d2.sum(axis=0)
    b1 -= lr * d1.sum(axis=0)
    w3 -= lr * gw3
    w2 -= lr * gw2
    w1 -= lr * gw1
    return loss / n


# NOTE: the MLP step is compiled without parallel=True: BLAS already runs the GEMMs on
# both cores, and numba's OpenMP threads spinning against BLAS's made the step slower in
# every interleaved A/B run here (e.g. 52 ms against 3.2 ms at batch 128). prange is
# then a plain range.
STEP = {"fastmath": True}


def _compile_mlp_step():
    """A fresh dispatcher (W7 needs a cold compile each time)."""
    global bias_relu, relu_backward
    bias_relu = njit(**STEP)(_bias_relu)
    relu_backward = njit(**STEP)(_relu_backward)
    return njit(**STEP)(_mlp_step)


bias_relu = njit(**STEP)(_bias_relu)
relu_backward = njit(**STEP)(_relu_backward)
mlp_step = njit(**STEP)(_mlp_step)


def w4(inp, size):
    params = [p.copy() for p in inp["params"]]
    x, y, lr = inp["x"], inp["y"], F32(LEARNING_RATE)
    return Case(lambda: mlp_step(*params, x, y, lr), check=float)


def w7(inp, size):
    x, y, lr = inp["x"], inp["y"], F32(LEARNING_RATE)

    def fresh():
        step = _compile_mlp_step()
        params = [p.copy() for p in inp["params"]]
        return lambda: step(*params, x, y, lr)
    return Compile(fresh, note="njit step and its two helpers")


@njit(**FAST)
def _im2col(x):
    b, h, w, c = x.shape
    cols = np.zeros((b * h * w, 25 * c), np.float32)
    for n in prange(b):
        for i in range(h):
            for j in range(w):
                row = (n * h + i) * w + j
                for di in range(5):
                    for dj in range(5):
                        y, z = i + di - 2, j + dj - 2
                        if 0 <= y < h and 0 <= z < w:
                            base = (di * 5 + dj) * c
                            for k in range(c):
                                cols[row, base + k] = x[n, y, z, k]
    return cols


@njit(**FAST)
def _col2im(cols, shape):
    b, h, w, c = shape
    out = np.zeros((b, h, w, c), np.float32)
    for n in prange(b):
        for i in range(h):
            for j in range(w):
                row = (n * h + i) * w + j
                for di in range(5):
                    for dj in range(5):
                        y, z = i + di - 2, j + dj - 2
                        if 0 <= y < h and 0 <= z < w:
                            base = (di * 5 + dj) * c
                            for k in range(c):
                                out[n, y, z, k] += cols[row, base + k]
    return out


@njit(**FAST)
def _pool(x):
    b, h, w, c = x.shape
    out = np.empty((b, h // 2, w // 2, c), np.float32)
    for n in prange(b):
        for i in range(h // 2):
            for j in range(w // 2):
                for k in range(c):
                    out[n, i, j, k] = max(max(x[n, 2 * i, 2 * j, k], x[n, 2 * i, 2 * j + 1, k]),
                                          max(x[n, 2 * i + 1, 2 * j, k],
                                              x[n, 2 * i + 1, 2 * j + 1, k]))
    return out


@njit(**FAST)
def _pool_backward(dout, x, pooled):
    b, h, w, c = x.shape
    dx = np.zeros_like(x)
    for n in prange(b):
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    if x[n, i, j, k] == pooled[n, i // 2, j // 2, k]:
                        dx[n, i, j, k] = dout[n, i // 2, j // 2, k]
    return dx


def w5(inp, size):
    kernels = cnn_numpy.Kernels(_im2col, _col2im, _pool, _pool_backward, _gemm)
    net = cnn_numpy.CNN(inp["params"], inp["x"].shape[0], np.random.default_rng(0),
                        kernels=kernels)
    x, y = inp["x"], inp["y"]
    return Case(lambda: net.step(x, y), check=float,
                note="njit im2col/col2im/pooling/np.dot; the rest in NumPy")


def w6(inp, size):
    x = inp["x"]
    out = np.empty_like(x)
    return Case(lambda: _add_one(x, out), check=lambda o: float(o.sum()))


@njit(fastmath=True)
def _lr_step(w, b, x, y, lr):
    gw = F32(0.0)
    gb = F32(0.0)
    for i in range(x.shape[0]):
        err = w * x[i] + b - y[i]
        gw += err * x[i]
        gb += err
    scale = F32(2.0) / x.shape[0]
    return w - lr * scale * gw, b - lr * scale * gb


@njit(fastmath=True)
def _lr_loop(w, b, xs, ys, lr):
    for s in range(xs.shape[0]):
        w, b = _lr_step(w, b, xs[s], ys[s], lr)
    return w, b


def w8_step(inp, size):
    xs, ys, lr = inp["x"], inp["y"], F32(W8_LEARNING_RATE)
    state = [F32(0.0), F32(0.0)]

    def run():
        w, b = state
        for i in range(len(xs)):
            w, b = _lr_step(w, b, xs[i], ys[i], lr)
        state[:] = [w, b]
        return w
    return Case(run, check=float, style="step")


def w8_loop(inp, size):
    xs, ys, lr = inp["x"], inp["y"], F32(W8_LEARNING_RATE)
    return Case(lambda: _lr_loop(F32(0.0), F32(0.0), xs, ys, lr)[0], check=float, style="loop")


VARIANTS = {
    "W1": {"numba": w1},
    "W2": {"numba": w2},
    "W3": {"numba": w3},
    "W4": {"numba": w4},
    "W5": {"numba": w5},
    "W6": {"numba": w6},
    "W7": {"numba": w7},
    "W8": {"numba step": w8_step, "numba loop": w8_loop},
}
