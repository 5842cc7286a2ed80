"""The numbers of post-training quantization, in NumPy: ranges seen in calibration,
affine parameters of activations, symmetric per-channel weights.

Conventions (TensorFlow Lite's int8 scheme):

* an activation tensor is **affine**, per tensor: ``real = scale * (q - zero_point)``
  with ``q`` in [-128, 127]; its range always contains 0 (so zero padding and ReLU's
  zero are exact) and is stretched over the 256 levels;
* a weight tensor is **symmetric per output channel**: ``real = scale[c] * q`` with
  ``q`` in [-127, 127] (not -128: then ``-q`` is representable too, and the sums of a
  product are symmetric);
* rounding is to nearest, ties to even (``np.round``, the IR's ``round``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AffineParams", "RangeObserver", "activation_params", "quantize_weights",
           "METHODS"]

METHODS = ("minmax", "percentile")
QMIN, QMAX = -128, 127
WEIGHT_MAX = 127
SAMPLE_PER_BATCH = 1 << 18  # values of a tensor kept per batch for a percentile range


@dataclass(frozen=True)
class AffineParams:
    """``real = scale * (q - zero_point)``, ``q`` an int8."""

    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        q = np.round(np.asarray(x, np.float32) * np.float32(1.0 / self.scale))
        return np.clip(q + self.zero_point, QMIN, QMAX).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (q.astype(np.float32) - self.zero_point) * np.float32(self.scale)


def activation_params(lo: float, hi: float) -> AffineParams:
    """The affine int8 parameters covering [lo, hi] widened to hold 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"calibration saw a non-finite activation range [{lo}, {hi}]")
    if hi == lo:                    # all zeros: any scale represents them
        return AffineParams(1.0, 0)
    scale = (hi - lo) / (QMAX - QMIN)
    zero = int(np.clip(np.round(QMIN - lo / scale), QMIN, QMAX))
    return AffineParams(float(np.float32(scale)), zero)


def quantize_weights(w: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """``(q, scales)``: ``w`` as int8 in [-127, 127] with one scale per index of ``axis``
    (the output channels), ``w ~ q * scales`` (scales broadcast along ``axis``)."""
    w = np.asarray(w, np.float32)
    axis = axis % w.ndim
    others = tuple(a for a in range(w.ndim) if a != axis)
    amax = np.max(np.abs(w), axis=others, keepdims=True) if others else np.abs(w)
    scales = np.where(amax > 0, amax / WEIGHT_MAX, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scales), -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)
    return q, scales.reshape(-1)


class RangeObserver:
    """The range of one tensor over the calibration batches: the extremes
    (``minmax``), or the ``percentile`` (and 100 - percentile) of its values (of all of
    them, or of a uniform sample of SAMPLE_PER_BATCH values of a larger batch)."""

    def __init__(self, method: str = "minmax", percentile: float = 99.99, seed: int = 0):
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}; expected one of "
                             f"{', '.join(METHODS)}")
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        self.method, self.percentile = method, percentile
        self.lo, self.hi = np.inf, -np.inf
        self.samples: list[np.ndarray] = []
        self._rng = np.random.default_rng(seed)

    def observe(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32).reshape(-1)
        if x.size == 0:
            return
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        if self.method == "percentile":
            self.samples.append(x if x.size <= SAMPLE_PER_BATCH else
                                self._rng.choice(x, SAMPLE_PER_BATCH, replace=False))

    def range(self) -> tuple[float, float]:
        if not np.isfinite(self.lo):
            raise ValueError("calibration saw no values of this tensor (empty batches)")
        if self.method == "minmax":
            return self.lo, self.hi
        values = np.concatenate(self.samples)
        return (float(np.percentile(values, 100.0 - self.percentile)),
                float(np.percentile(values, self.percentile)))

    def params(self) -> AffineParams:
        return activation_params(*self.range())
