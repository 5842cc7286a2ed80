"""TF1's partially known shapes: ``TensorShape`` and ``Dimension``."""

from __future__ import annotations

import numpy as np


class Dimension:
    """One dimension; ``value`` is an int or None (unknown). Compares with ints."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = None if value is None else int(value)

    def __int__(self):
        if self.value is None:
            raise TypeError("an unknown dimension (None) has no int value")
        return self.value

    __index__ = __int__

    def __eq__(self, other):
        other = other.value if isinstance(other, Dimension) else other
        if self.value is None or other is None:
            return None
        return self.value == other

    def __hash__(self):
        return hash(self.value)

    def _combine(self, other, fn):
        other = other.value if isinstance(other, Dimension) else other
        if self.value is None or other is None:
            return Dimension(None)
        return Dimension(fn(self.value, int(other)))

    def __mul__(self, o): return self._combine(o, lambda a, b: a * b)
    __rmul__ = __mul__
    def __add__(self, o): return self._combine(o, lambda a, b: a + b)
    __radd__ = __add__
    def __floordiv__(self, o): return self._combine(o, lambda a, b: a // b)

    def __repr__(self):
        return f"Dimension({self.value})"

    def __str__(self):
        return "?" if self.value is None else str(self.value)


class TensorShape:
    """A shape whose dimensions may be unknown (None)."""

    def __init__(self, dims):
        if isinstance(dims, TensorShape):
            dims = dims.dims
        if dims is None:          # unknown rank: the fed value decides
            self.dims = None
            return
        if isinstance(dims, (int, np.integer)):
            dims = (dims,)
        self.dims = tuple(d.value if isinstance(d, Dimension) else
                          (None if d is None or d == -1 else int(d)) for d in dims)

    @property
    def ndims(self) -> int | None:
        return None if self.dims is None else len(self.dims)

    rank = ndims

    @property
    def has_unknown(self) -> bool:
        return self.dims is None or any(d is None for d in self.dims)

    def probe(self, size: int) -> tuple[int, ...]:
        """A concrete stand-in shape: unknown dimensions become ``size``, unknown rank 0-d."""
        return () if self.dims is None else tuple(size if d is None else d for d in self.dims)

    def as_list(self) -> list:
        if self.dims is None:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self.dims)

    def is_fully_defined(self) -> bool:
        return not self.has_unknown

    def num_elements(self):  # noqa: D401
        if self.has_unknown:
            return None
        out = 1
        for d in self.dims:
            out *= d
        return out

    def is_compatible_with(self, other) -> bool:
        other = TensorShape(other)
        if self.dims is None or other.dims is None:
            return True
        return len(self.dims) == len(other.dims) and all(
            a is None or b is None or a == b for a, b in zip(self.dims, other.dims, strict=True))

    def merge_with(self, other) -> TensorShape:
        other = TensorShape(other)
        if self.dims is None or other.dims is None:
            return other if self.dims is None else self
        if not self.is_compatible_with(other):
            raise ValueError(f"Shapes {self} and {other} are not compatible")
        return TensorShape([a if a is not None else b
                            for a, b in zip(self.dims, other.dims, strict=True)])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return TensorShape(self.dims[index])
        return Dimension(self.dims[index])

    def __iter__(self):
        return iter(Dimension(d) for d in self.dims)

    def __len__(self):
        if self.dims is None:
            raise ValueError("Cannot take the length of a shape with unknown rank.")
        return len(self.dims)

    def __eq__(self, other):
        try:
            return self.dims == TensorShape(other).dims
        except (TypeError, ValueError):
            return NotImplemented

    def __hash__(self):
        return hash(self.dims)

    def __str__(self):
        if self.dims is None:
            return "<unknown>"
        inner = ", ".join("?" if d is None else str(d) for d in self.dims)
        return f"({inner}{',' if len(self.dims) == 1 else ''})"

    def __repr__(self):
        return f"TensorShape({list(self.dims)})"
