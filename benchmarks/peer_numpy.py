"""NumPy as its experts write it: preallocated ``out=`` buffers, in-place updates, BLAS
through ``matmul``, and the backward passes written by hand."""

from __future__ import annotations

import numpy as np

from . import cnn_numpy
from .harness import Case
from .workloads import LEARNING_RATE, W8_LEARNING_RATE

F32 = np.float32


def versions() -> dict:
    return {"numpy": np.__version__}


def _mean(out) -> float:
    return float(np.mean(out, dtype=np.float64))


def w1(inp, size):
    a, b, x = inp["a"], inp["b"], inp["x"]
    y, t = np.empty_like(x), np.empty_like(x)

    def run():
        np.multiply(a, x, out=y)
        np.add(y, b, out=y)
        np.tanh(y, out=y)
        np.negative(x, out=t)
        np.exp(t, out=t)
        np.add(t, F32(1.0), out=t)
        np.divide(y, t, out=y)          # tanh(..) * 1/(1+exp(-x)) without a reciprocal pass
        np.multiply(x, x, out=t)
        np.add(y, t, out=y)
        return y
    return Case(run, check=_mean)


def w2(inp, size):
    x = inp["x"]
    t, u = np.empty_like(x), np.empty_like(x)

    def run():
        np.multiply(x, x, out=t)
        np.multiply(x, F32(0.5), out=u)
        np.subtract(t, u, out=t)
        return t.sum()
    return Case(run, check=float)


def w3(inp, size):
    a, b = inp["a"], inp["b"]
    c = np.empty_like(a)
    return Case(lambda: np.matmul(a, b, out=c), check=_mean)


class MLP:
    """784-512-512-10 MLP: forward, softmax cross-entropy, backward and SGD, all into
    buffers allocated once (reusing memory avoids first-touch page faults)."""

    def __init__(self, params, batch):
        self.params = [p.copy() for p in params]
        w1, _, w2, _, w3, _ = self.params
        self.h1 = np.empty((batch, w1.shape[1]), F32)
        self.h2 = np.empty((batch, w2.shape[1]), F32)
        self.logits = np.empty((batch, w3.shape[1]), F32)
        self.probs = np.empty_like(self.logits)
        self.d2 = np.empty_like(self.h2)
        self.d1 = np.empty_like(self.h1)
        self.grads = [np.empty_like(p) for p in self.params]

    def step(self, x, y):
        w1, b1, w2, b2, w3, b3 = self.params
        gw1, gb1, gw2, gb2, gw3, gb3 = self.grads
        h1, h2, logits, d1, d2 = self.h1, self.h2, self.logits, self.d1, self.d2
        probs = self.probs
        np.matmul(x, w1, out=h1)
        h1 += b1
        np.maximum(h1, 0, out=h1)
        np.matmul(h1, w2, out=h2)
        h2 += b2
        np.maximum(h2, 0, out=h2)
        np.matmul(h2, w3, out=logits)
        logits += b3
        # softmax cross-entropy; dlogits = (softmax - y) / batch
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=probs)
        total = probs.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - (y * logits).sum(axis=1)))
        probs /= total
        probs -= y
        probs *= F32(1.0 / x.shape[0])     # now d loss / d logits
        np.matmul(h2.T, probs, out=gw3)
        np.sum(probs, axis=0, out=gb3)
        np.matmul(probs, w3.T, out=d2)
        d2 *= h2 > 0
        np.matmul(h1.T, d2, out=gw2)
        np.sum(d2, axis=0, out=gb2)
        np.matmul(d2, w2.T, out=d1)
        d1 *= h1 > 0
        np.matmul(x.T, d1, out=gw1)
        np.sum(d1, axis=0, out=gb1)
        for p, g in zip(self.params, self.grads, strict=True):
            g *= F32(LEARNING_RATE)
            p -= g
        return loss


def w4(inp, size):
    mlp = MLP(inp["params"], inp["x"].shape[0])
    x, y = inp["x"], inp["y"]
    return Case(lambda: mlp.step(x, y), check=float)


def w5(inp, size):
    net = cnn_numpy.CNN(inp["params"], inp["x"].shape[0], np.random.default_rng(0))
    x, y = inp["x"], inp["y"]
    return Case(lambda: net.step(x, y), check=float)


def w6(inp, size):
    x = inp["x"]
    y = np.empty_like(x)
    return Case(lambda: np.add(x, F32(1.0), out=y), check=lambda out: float(out.sum()))


def w8(inp, size):
    """NumPy has no graph: the 'session' is a Python function per step."""
    xs, ys = inp["x"], inp["y"]
    err = np.empty_like(xs[0])
    lr = F32(W8_LEARNING_RATE)
    state = {"w": F32(0.0), "b": F32(0.0)}

    def run():
        w, b = state["w"], state["b"]
        for i in range(len(xs)):
            x = xs[i]
            np.multiply(x, w, out=err)
            np.add(err, b, out=err)
            np.subtract(err, ys[i], out=err)
            # d/dw mean(err^2) = 2 mean(err * x); d/db = 2 mean(err)
            gw = F32(2.0) * np.dot(err, x) / F32(err.size)
            gb = F32(2.0) * err.mean(dtype=F32)
            w, b = w - lr * gw, b - lr * gb
        state["w"], state["b"] = w, b
        return w
    return Case(run, check=float, style="step")


VARIANTS = {
    "W1": {"numpy": w1},
    "W2": {"numpy": w2},
    "W3": {"numpy": w3},
    "W4": {"numpy": w4},
    "W5": {"numpy": w5},
    "W6": {"numpy": w6},
    "W8": {"numpy step": w8},
}
MISSING = {"W7": ("n/a", "NumPy does not compile")}
