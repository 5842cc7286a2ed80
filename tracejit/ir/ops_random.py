"""Counter-based random bits: Threefry-2x32 with 20 rounds (Salmon et al., "Parallel
random numbers: as easy as 1, 2, 3", SC 2011), the generator JAX uses.

``random_bits[shape](key)`` is a pure function of its key: element ``i`` (row-major
flat index) is the first output word of ``threefry2x32(key, (i mod 2**32, i >> 32))``,
reinterpreted as int32. No state is read or written, so the op is not STATEFUL: it can
be folded, deduplicated and fused, and CPU and GPU backends produce the same bits.
Uniform floats, dropout masks and key splitting are built from it in the front end.
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from .core import TensorType
from .errors import DTypeError, ShapeError
from .opdef import ParamSpec, Tag, declare
from .ops_movement import shape_param

__all__ = ["RANDOM_BITS"]

_MASK = 0xFFFFFFFF
# Rotation constants R_32x2 of Threefry-2x32; round r uses THREEFRY_ROTATIONS[r % 8].
THREEFRY_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
# Key-schedule parity constant of Threefish (C240 of the Skein paper, 32-bit form).
THREEFRY_PARITY = 0x1BD11BDA


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(key: tuple[int, int], x0: np.ndarray, x1: np.ndarray):
    """Threefry-2x32-20 of the counter words ``(x0, x1)`` (uint32 arrays) under ``key``
    (two ints in [0, 2**32)); returns the two uint32 output words.

    All arithmetic is uint32 and wraps modulo 2**32. The key schedule is
    ``ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)``; after every 4 rounds, injection ``s``
    (1..5) adds ``ks[s % 3]`` to word 0 and ``ks[(s + 1) % 3] + s`` to word 1.
    """
    k0, k1 = (int(k) & _MASK for k in key)
    ks = (k0, k1, k0 ^ k1 ^ THREEFRY_PARITY)
    x0 = np.asarray(x0, dtype=np.uint32) + np.uint32(ks[0])
    x1 = np.asarray(x1, dtype=np.uint32) + np.uint32(ks[1])
    for r in range(20):
        x0 = x0 + x1
        x1 = _rotl(x1, THREEFRY_ROTATIONS[r % 8]) ^ x0
        if r % 4 == 3:
            s = r // 4 + 1
            # NOTE: the injected words are formed in Python ints and masked, so the
            # NumPy arrays only ever see uint32 + uint32 (which wraps silently).
            x0 = x0 + np.uint32(ks[s % 3])
            x1 = x1 + np.uint32((ks[(s + 1) % 3] + s) & _MASK)
    return x0, x1


def _random_bits_infer(types, params):
    (key,) = types
    if key.dtype is not dt.int32:
        raise DTypeError(f"expects an int32[2] key, got {key}", op="random_bits")
    if key.shape != (2,):
        raise ShapeError(f"expects an int32[2] key, got {key}", op="random_bits")
    return (TensorType(params["shape"], dt.int32),)


def _random_bits_impl(key, shape):
    k0, k1 = (int(k) for k in key.view(np.uint32))
    flat = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.uint64)
    lo = (flat & np.uint64(_MASK)).astype(np.uint32)
    hi = (flat >> np.uint64(32)).astype(np.uint32)
    word0, _ = threefry2x32((k0, k1), lo, hi)
    return word0.view(np.int32).reshape(shape)


RANDOM_BITS = declare(
    "random_bits", arity=1, infer=_random_bits_infer, impl=_random_bits_impl,
    params={"shape": ParamSpec(shape_param)}, tags={Tag.RANDOM},
    doc="random_bits[shape](key: i32[2]) -> i32[shape]: word 0 of "
        "threefry2x32(key, (i mod 2**32, i >> 32)) for each flat index i")
