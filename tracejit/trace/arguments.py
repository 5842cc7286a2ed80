"""A jitted call's arguments: the cache key of each leaf and the value its program gets.

A leaf's key is ``(shape, dtype, weak)``: NumPy arrays and scalars by their shape and
native-order dtype, tracejit Arrays by their value (a DeviceArray resident on a GPU by
its device value, without downloading it), Python numbers as weak full-precision
scalars. The program's value is the array itself where it can be (no copy), a
DeviceArray's resident device value, or a native-order copy.
"""

from __future__ import annotations

import numpy as np

from .values import Array, DeviceArray

__all__ = ["leaf_key", "native_dtype", "raw_value"]

# NOTE: Python numbers are passed at full precision (float64, int64) and weakly typed, so
# they take the type of the arrays they meet without losing digits; a result that is
# still weak when it leaves the function gets the default type (float32, int32).
_WEAK_FLOAT = ((), np.dtype(np.float64), True)
_WEAK_INT = ((), np.dtype(np.int64), True)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_WEAK_BOOL = ((), np.dtype(np.bool_), True)


def leaf_key(leaf) -> tuple:
    """(shape, NumPy dtype, weak) of an argument leaf; raises TypeError for non-tensors."""
    kind = type(leaf)
    if kind is np.ndarray:
        return (leaf.shape, leaf.dtype, False)
    if kind is Array:
        return (leaf.value.shape, leaf.value.dtype, leaf.weak)
    if kind is DeviceArray:
        return leaf.jit_key()
    if kind is float:
        return _WEAK_FLOAT
    if kind is int:
        if not _INT64_MIN <= leaf <= _INT64_MAX:
            raise TypeError("int out of range")
        return _WEAK_INT
    if kind is bool:
        return _WEAK_BOOL
    if isinstance(leaf, np.generic):
        return ((), native_dtype(leaf.dtype), False)
    if isinstance(leaf, np.ndarray):      # np.memmap and other ndarray subclasses
        return (leaf.shape, native_dtype(leaf.dtype), False)
    if isinstance(leaf, Array):           # another Array subclass
        return (leaf.value.shape, leaf.value.dtype, leaf.weak)
    raise TypeError(kind.__name__)


def native_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` in this machine's byte order (a ``>f4`` array computes as ``float32``)."""
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def raw_value(leaf, key) -> np.ndarray:
    kind = type(leaf)
    if kind is np.ndarray and key[1].isnative:
        return leaf
    if kind is Array:
        return leaf.value
    if kind is DeviceArray:
        return leaf.jit_argument()
    # NOTE: byte-swapped arrays and ndarray subclasses (memmap) become plain native
    # arrays here, so compiled code only ever sees the layout it was built for.
    return np.asarray(leaf, dtype=native_dtype(key[1]))
