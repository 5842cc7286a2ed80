"""W5's CNN (the TF tutorial net) written by hand for array libraries without autodiff
or convolutions: im2col + GEMM convolutions, 2x2 max pooling, and the backward pass.

NHWC activations and HWIO filters as in TensorFlow. The data-movement kernels and the
GEMM are swappable (``Kernels``) so that numba can plug in compiled loops and its own
BLAS (two OpenBLAS builds in one process slow each other down 20x).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

F32 = np.float32
K = 5           # filter size
PAD = K // 2    # SAME padding for stride 1


def im2col(x: np.ndarray) -> np.ndarray:
    """(B, H, W, C) -> (B*H*W, K*K*C) patches in (kh, kw, c) order, matching HWIO filters."""
    b, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
    view = np.lib.stride_tricks.sliding_window_view(padded, (K, K), axis=(1, 2))
    return np.ascontiguousarray(view.transpose(0, 1, 2, 4, 5, 3)).reshape(b * h * w, K * K * c)


def col2im(cols: np.ndarray, shape: tuple) -> np.ndarray:
    """The adjoint of im2col: scatter-add patch gradients back onto the image."""
    b, h, w, c = shape
    patches = cols.reshape(b, h, w, K, K, c)
    padded = np.zeros((b, h + 2 * PAD, w + 2 * PAD, c), F32)
    for i in range(K):
        for j in range(K):
            padded[:, i:i + h, j:j + w, :] += patches[:, :, :, i, j, :]
    return padded[:, PAD:PAD + h, PAD:PAD + w, :]


def pool(x: np.ndarray) -> np.ndarray:
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def pool_backward(dout: np.ndarray, x: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Route each pooled gradient to the input(s) that held the maximum."""
    b, h, w, c = x.shape
    windows = x.reshape(b, h // 2, 2, w // 2, 2, c)
    mask = windows == pooled[:, :, None, :, None, :]
    return (mask * dout[:, :, None, :, None, :]).reshape(b, h, w, c)


@dataclass(frozen=True)
class Kernels:
    im2col: Callable = im2col
    col2im: Callable = col2im
    pool: Callable = pool
    pool_backward: Callable = pool_backward
    matmul: Callable = np.matmul


class CNN:
    """conv5x5x32-relu-pool, conv5x5x64-relu-pool, fc1024-relu-dropout(0.5), fc10, softmax
    cross-entropy, SGD. ``step(x, y)`` updates the parameters in place, returns the loss."""

    def __init__(self, params, batch: int, rng: np.random.Generator, lr: float = 0.01,
                 kernels: Kernels = Kernels()):
        self.params = [p.copy() for p in params]
        self.rng, self.lr, self.k = rng, F32(lr), kernels

    def _conv(self, x, weights, bias):
        cols = self.k.im2col(x)
        z = self.k.matmul(cols, weights.reshape(-1, weights.shape[-1]))
        z += bias
        np.maximum(z, 0, out=z)
        return cols, z.reshape(*x.shape[:3], weights.shape[-1])

    def step(self, x, y) -> float:
        c1, cb1, c2, cb2, f1, fb1, f2, fb2 = self.params
        batch, mm = x.shape[0], self.k.matmul
        cols1, a1 = self._conv(x, c1, cb1)
        p1 = self.k.pool(a1)
        cols2, a2 = self._conv(p1, c2, cb2)
        p2 = self.k.pool(a2)
        flat = p2.reshape(batch, -1)
        h = mm(flat, f1)
        h += fb1
        np.maximum(h, 0, out=h)
        keep = (self.rng.random(h.shape, F32) < 0.5).astype(F32) * F32(2.0)   # inverted dropout
        hd = h * keep
        logits = mm(hd, f2)
        logits += fb2
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        total = probs.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - (y * logits).sum(axis=1)))
        probs /= total
        probs -= y
        probs *= F32(1.0 / batch)
        grads = [None] * 8
        grads[6], grads[7] = mm(hd.T, probs), probs.sum(axis=0)
        dh = mm(probs, f2.T)
        dh *= keep
        dh *= h > 0
        grads[4], grads[5] = mm(flat.T, dh), dh.sum(axis=0)
        dz2 = self.k.pool_backward(mm(dh, f1.T).reshape(p2.shape), a2, p2)
        dz2 *= a2 > 0
        dz2 = dz2.reshape(-1, c2.shape[-1])
        grads[2], grads[3] = mm(cols2.T, dz2).reshape(c2.shape), dz2.sum(axis=0)
        dp1 = self.k.col2im(mm(dz2, c2.reshape(-1, c2.shape[-1]).T), p1.shape)
        dz1 = self.k.pool_backward(np.ascontiguousarray(dp1), a1, p1)
        dz1 *= a1 > 0
        dz1 = dz1.reshape(-1, c1.shape[-1])
        grads[0], grads[1] = mm(cols1.T, dz1).reshape(c1.shape), dz1.sum(axis=0)
        for p, g in zip(self.params, grads, strict=True):
            p -= self.lr * g
        return loss
