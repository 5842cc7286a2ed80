"""Random numbers from a counter-based generator, expressed as IR ops.

A key is an int32[2] tensor. ``random_bits`` hashes (key, element index) with
Threefry-2x32, so every backend produces the same bits for the same key, and
the transforms below are ordinary elementwise ops that fuse with their users.

>>> import tracejit
>>> k = tracejit.random.key(0)
>>> tracejit.random.uniform(k, (2,)).shape
(2,)
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes as dt
from ..ir import ops
from . import math_ops as m
from .array_ops import reshape
from .tracing import bind, to_tensor


def key(seed: int):
    """A key from an integer seed (its low and high 32 bits)."""
    seed = int(seed)
    words = np.array([(seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF], dtype=np.uint32)
    return to_tensor(words.view(np.int32))


PRNGKey = key


def bits(key, shape):
    """Raw 32 random bits per element, as int32."""
    return bind(ops.RANDOM_BITS, [to_tensor(key)], {"shape": tuple(shape)})


def split(key, num: int = 2):
    """``num`` new independent keys, shape [num, 2]."""
    return reshape(bits(key, (num * 2,)), (num, 2))


def fold_in(key, data: int):
    """A new key derived from ``key`` and a static integer.

    The key is offset by ``data`` (wrapping 32-bit arithmetic) before hashing, so the
    result is unrelated to the keys ``split`` derives from the same key (those hash the
    key itself at counters 0, 1, ...)."""
    def wrap32(value: int) -> int:
        return (value + 2**31) % 2**32 - 2**31

    offset = np.array([wrap32(int(data) * 0x9E3779B9), wrap32(0x7F4A7C15)], np.int32)
    return bits(m.add(to_tensor(key), offset), (2,))


def _unsigned(b, shift: int):
    """The unsigned value of 32-bit words, shifted right, as int64."""
    wide = m.cast(b, dt.int64)
    wide = m.mod(wide, 1 << 32)
    return m.floordiv(wide, 1 << shift) if shift else wide


def uniform(key, shape=(), dtype=dt.float32, minval=0.0, maxval=1.0):
    """Uniform in [minval, maxval). float32 has 24 random bits, float64 53, float16 11 and
    bfloat16 8."""
    dtype = dt.as_dtype(dtype)
    shape = tuple(shape)
    if dtype is dt.float64:
        words = bits(key, shape + (2,))
        hi = _unsigned(words[..., 0], 5)            # 27 bits
        lo = _unsigned(words[..., 1], 6)            # 26 bits
        unit = m.cast(hi * (1 << 26) + lo, dt.float64) * (1.0 / (1 << 53))
    else:
        # NOTE: only as many bits as the dtype's significand holds, so the cast below is
        # exact: 24 random bits rounded to float16 or bfloat16 could round up to 1.0.
        nbits = {dt.float16: 11, dt.bfloat16: 8}.get(dtype, 24)
        unit = m.cast(_unsigned(bits(key, shape), 32 - nbits), dt.float32) * (1.0 / (1 << nbits))
    unit = m.cast(unit, dtype) if unit.dtype is not dtype else unit
    if minval != 0.0 or maxval != 1.0:
        unit = unit * (maxval - minval) + minval
    return m.cast(unit, dtype)


def normal(key, shape=(), dtype=dt.float32, mean=0.0, stddev=1.0):
    """Standard normal samples by the Box-Muller transform."""
    dtype = dt.as_dtype(dtype)
    compute = dt.float64 if dtype is dt.float64 else dt.float32
    pair = uniform(key, tuple(shape) + (2,), compute)
    radius = m.sqrt(-2.0 * m.log(1.0 - pair[..., 0]))    # 1 - u lies in (0, 1]
    z = radius * m.cos((2 * math.pi) * pair[..., 1])
    if mean != 0.0 or stddev != 1.0:
        z = z * stddev + mean
    return m.cast(z, dtype)


def truncated_normal(key, shape=(), dtype=dt.float32, mean=0.0, stddev=1.0):
    """Normal samples with values beyond two standard deviations re-drawn
    (four rounds, then clipped), as TensorFlow's truncated_normal."""
    keys = split(key, 5)
    z = normal(keys[0], shape, dt.float32)
    for i in range(1, 5):
        z = m.where(m.abs(z) > 2.0, normal(keys[i], shape, dt.float32), z)
    z = m.clip_by_value(z, -2.0, 2.0)
    return m.cast(z * stddev + mean, dtype)


def bernoulli(key, p=0.5, shape=None):
    """True with probability ``p``."""
    p = to_tensor(p)
    shape = p.shape if shape is None else tuple(shape)
    return m.less(uniform(key, shape), p)
