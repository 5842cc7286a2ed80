"""NumPy as its experts write it: preallocated ``out=`` buffers, in-place updates, BLAS
through ``matmul``, and the backward passes written by hand."""

from __future__ import annotations

import numpy as np

from . import cnn_numpy
from .harness import Case
from .workloads import LEARNING_RATE, W8_LEARNING_RATE, W9_CLIP_NORM, W9_LEARNING_RATE

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


class LSTMLM:
    """W9's step by hand (layout and cell: ``workloads.lstm_lm_params``). Time-major
    buffers; each layer's input GEMM runs over all steps at once, only ``h @ w_hh`` is per
    step. Gates are activated in one pass as ``a = s*tanh(s*z) + off`` (s = 1/2, off = 1/2
    for the sigmoid gates i, f, o: sigmoid(z) = tanh(z/2)/2 + 1/2; s = 1, off = 0 for g),
    whose derivative is ``s*s - (a - off)**2`` for all four."""

    def __init__(self, params, x, y, layers):
        self.params = [p.copy() for p in params]
        self.grads = [np.empty_like(p) for p in self.params]
        self.layers = layers
        batch, seq = x.shape
        self.x, self.y = x.T.reshape(-1), y.T.reshape(-1)      # time-major [seq*batch]
        h = self.hidden = params[0].shape[1]
        self.scale = np.repeat(np.array([0.5, 0.5, 1.0, 0.5], F32), h)
        self.offset = np.repeat(np.array([0.5, 0.5, 0.0, 0.5], F32), h)
        self.emb = np.empty((seq, batch, h), F32)
        # per layer: activated gates, c and h with step 0 = the zero state, tanh(c)
        self.acts = [np.empty((seq, batch, 4 * h), F32) for _ in range(layers)]
        self.c = [np.zeros((seq + 1, batch, h), F32) for _ in range(layers)]
        self.h = [np.zeros((seq + 1, batch, h), F32) for _ in range(layers)]
        self.tc = [np.empty((seq, batch, h), F32) for _ in range(layers)]
        self.dz = np.empty((seq, batch, 4 * h), F32)
        self.deriv = np.empty_like(self.dz)
        self.dh = [np.empty((seq, batch, h), F32) for _ in range(layers + 1)]

    def _forward_layer(self, layer, inputs):
        hd = self.hidden
        w, b = self.params[1 + 2 * layer], self.params[2 + 2 * layer]
        acts, c, h, tc = self.acts[layer], self.c[layer], self.h[layer], self.tc[layer]
        seq, batch = inputs.shape[:2]
        np.matmul(inputs.reshape(seq * batch, hd), w[:hd], out=acts.reshape(seq * batch, -1))
        acts += b
        for t in range(seq):
            a = acts[t]
            a += h[t] @ w[hd:]
            a *= self.scale
            np.tanh(a, out=a)
            a *= self.scale
            a += self.offset
            np.multiply(a[:, hd:2 * hd], c[t], out=c[t + 1])
            c[t + 1] += a[:, :hd] * a[:, 2 * hd:3 * hd]
            np.tanh(c[t + 1], out=tc[t])
            np.multiply(a[:, 3 * hd:], tc[t], out=h[t + 1])
        return h[1:]

    def _backward_layer(self, layer, inputs, dh_out, dinputs):
        """dh_out: d loss / d h[1:] (overwritten); writes d loss / d inputs to dinputs."""
        hd = self.hidden
        w = self.params[1 + 2 * layer]
        gw, gb = self.grads[1 + 2 * layer], self.grads[2 + 2 * layer]
        acts, c, h, tc = self.acts[layer], self.c[layer], self.h[layer], self.tc[layer]
        dz, deriv = self.dz, self.deriv
        np.subtract(acts, self.offset, out=deriv)
        np.square(deriv, out=deriv)
        np.subtract(self.scale * self.scale, deriv, out=deriv)
        dc = np.zeros_like(c[0])
        for t in reversed(range(len(dz))):
            a, d, dh = acts[t], dz[t], dh_out[t]
            if t + 1 < len(dz):
                dh += dz[t + 1] @ w[hd:].T
            np.multiply(dh, tc[t], out=d[:, 3 * hd:])                    # d o
            dc += dh * a[:, 3 * hd:] * (1.0 - tc[t] * tc[t])
            np.multiply(dc, a[:, 2 * hd:3 * hd], out=d[:, :hd])         # d i = dc * g
            np.multiply(dc, c[t], out=d[:, hd:2 * hd])                   # d f = dc * c_prev
            np.multiply(dc, a[:, :hd], out=d[:, 2 * hd:3 * hd])         # d g = dc * i
            dc *= a[:, hd:2 * hd]
            d *= deriv[t]
        flat = dz.reshape(-1, 4 * hd)
        np.matmul(inputs.reshape(-1, hd).T, flat, out=gw[:hd])
        np.matmul(h[:-1].reshape(-1, hd).T, flat, out=gw[hd:])
        np.sum(flat, axis=0, out=gb)
        np.matmul(flat, w[:hd].T, out=dinputs.reshape(-1, hd))

    def step(self):
        emb, sw, sb = self.params[0], self.params[-2], self.params[-1]
        np.take(emb, self.x, axis=0, out=self.emb.reshape(-1, self.hidden))
        inputs = [self.emb]
        for layer in range(self.layers):
            inputs.append(self._forward_layer(layer, inputs[-1]))
        top = inputs[-1].reshape(-1, self.hidden)
        logits = top @ sw
        logits += sb
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        total = probs.sum(axis=1)
        rows = np.arange(len(self.y))
        loss = float(np.mean(np.log(total) - logits[rows, self.y], dtype=np.float64))
        probs /= total[:, None]
        probs[rows, self.y] -= 1.0
        probs *= F32(1.0 / len(self.y))     # d loss / d logits
        np.matmul(top.T, probs, out=self.grads[-2])
        np.sum(probs, axis=0, out=self.grads[-1])
        np.matmul(probs, sw.T, out=self.dh[-1].reshape(-1, self.hidden))
        for layer in reversed(range(self.layers)):
            self._backward_layer(layer, inputs[layer], self.dh[layer + 1], self.dh[layer])
        self.grads[0].fill(0.0)
        np.add.at(self.grads[0], self.x, self.dh[0].reshape(-1, self.hidden))
        norm = np.sqrt(sum(float(np.vdot(g, g)) for g in self.grads))
        factor = F32(W9_LEARNING_RATE * W9_CLIP_NORM / max(norm, W9_CLIP_NORM))
        for p, g in zip(self.params, self.grads, strict=True):
            g *= factor
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


def w9(inp, size):
    lm = LSTMLM(inp["params"], inp["x"], inp["y"], size["layers"])
    return Case(lm.step, check=float)


VARIANTS = {
    "W1": {"numpy": w1},
    "W2": {"numpy": w2},
    "W3": {"numpy": w3},
    "W4": {"numpy": w4},
    "W5": {"numpy": w5},
    "W6": {"numpy": w6},
    "W8": {"numpy step": w8},
    "W9": {"numpy": w9},
}
MISSING = {"W7": ("n/a", "NumPy does not compile")}
