"""Independent NumPy references for convolution and pooling: direct loops over output
pixels and window offsets, on small sizes, in float64."""

from __future__ import annotations

import math

import numpy as np


def same_pads(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME rule: out = ceil(size / stride), extra padding at the end."""
    out = math.ceil(size / stride)
    need = (out - 1) * stride + (k - 1) * dilation + 1
    total = max(need - size, 0)
    return total // 2, total - total // 2


def conv2d(x, w, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1)):
    """NHWC x, HWIO w; pads = (top, bottom, left, right)."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = strides, pads, dilations
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    r, s = i * sh + a * dh - pt, j * sw + b * dw - pl
                    if 0 <= r < h and 0 <= s < wd:
                        out[:, i, j, :] += x[:, r, s, :] @ w[a, b]
    return out


def pool(x, ksize, strides, pads, kind):
    """Max or mean over the window elements inside the image (padding ignored)."""
    n, h, wd, c = x.shape
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = ksize, strides, pads
    oh = (h + pt + pb - kh) // sh + 1
    ow = (wd + pl + pr - kw) // sw + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, s0 = i * sh - pt, j * sw - pl
            window = x[:, max(r0, 0):r0 + kh, max(s0, 0):s0 + kw, :]
            out[:, i, j, :] = window.max(axis=(1, 2)) if kind == "max" \
                else window.mean(axis=(1, 2))
    return out


def numeric_gradient(f, x, eps=1e-6):
    """Central differences of the scalar f at x (float64)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        grad[idx] = (f(hi) - f(lo)) / (2 * eps)
    return grad
