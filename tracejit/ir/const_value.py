"""ConstValue: a NumPy array as an op parameter (hashable, compared by content). Below
core.py and printer.py, which both need it."""

from __future__ import annotations

import numpy as np

__all__ = ["ConstValue"]


class ConstValue:
    """A NumPy array held as an op parameter; hashable and compared by content."""

    __slots__ = ("array", "_hash")

    def __init__(self, array: np.ndarray):
        # NOTE: np.ascontiguousarray would turn a 0-d array into 1-d.
        array = np.array(array, order="C", copy=True)
        array.setflags(write=False)
        self.array = array
        self._hash = hash((array.shape, array.dtype.str, array.tobytes()))

    def __eq__(self, other) -> bool:
        return (isinstance(other, ConstValue) and self._hash == other._hash
                and self.array.shape == other.array.shape
                and self.array.dtype == other.array.dtype
                and self.array.tobytes() == other.array.tobytes())

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"ConstValue({self.array.dtype}{list(self.array.shape)})"
