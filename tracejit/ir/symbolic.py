"""Readable IR construction for gradient rules: ``Sym`` wraps a Var and emits ops through
a GraphBuilder when combined with Python operators.

Gradient rules live beside their ops in the op table (the IR layer), so they cannot use
the user-facing front end; this is the IR's own small, strictly typed equivalent.
Python numbers are lifted to 0-d constants of the other operand's dtype.

    def tanh_vjp(g, ins, outs, cts, params):
        (y,), (ct,) = outs, cts
        return (ct * (1 - y * y),)
"""

from __future__ import annotations

from collections.abc import Sequence

from .builder import GraphBuilder
from .core import Var
from .dtypes import DType
from .opdef import OpDef, get_op


class Sym:
    __slots__ = ("var", "g")

    def __init__(self, var: Var, g: SymBuilder):
        self.var = var
        self.g = g

    @property
    def shape(self) -> tuple[int, ...]:
        return self.var.shape

    @property
    def dtype(self) -> DType:
        return self.var.dtype

    @property
    def ndim(self) -> int:
        return len(self.var.shape)

    def _bin(self, name, other, reverse=False):
        other = self.g.lift(other, self.dtype)
        a, b = (other, self) if reverse else (self, other)
        return self.g.op(name, a, b)

    def __add__(self, o): return self._bin("add", o)
    def __radd__(self, o): return self._bin("add", o, True)
    def __sub__(self, o): return self._bin("sub", o)
    def __rsub__(self, o): return self._bin("sub", o, True)
    def __mul__(self, o): return self._bin("mul", o)
    def __rmul__(self, o): return self._bin("mul", o, True)
    def __truediv__(self, o): return self._bin("div", o)
    def __rtruediv__(self, o): return self._bin("div", o, True)
    def __neg__(self): return self.g.op("neg", self)
    def __gt__(self, o): return self._bin("greater", o)
    def __ge__(self, o): return self._bin("greater_equal", o)
    def __lt__(self, o): return self._bin("less", o)
    def __le__(self, o): return self._bin("less_equal", o)
    def __matmul__(self, o): return self.g.op("matmul", self, o)

    def eq(self, other) -> Sym:
        return self._bin("equal", other)

    def __repr__(self) -> str:
        return f"Sym({self.var.type})"


class SymBuilder:
    """Emits ops for Syms into one GraphBuilder."""

    def __init__(self, builder: GraphBuilder, meta=None):
        self.builder = builder
        self.meta = meta

    def wrap(self, var: Var | None) -> Sym | None:
        return None if var is None else Sym(var, self)

    def lift(self, value, dtype: DType) -> Sym:
        if isinstance(value, Sym):
            return value
        return self.op("fill", shape=(), value=value, dtype=dtype)

    def op(self, op: str | OpDef, *ins: Sym, **params) -> Sym:
        opdef = get_op(op) if isinstance(op, str) else op
        kwargs = {} if self.meta is None else {"meta": self.meta}
        out = self.builder.emit1(opdef, [s.var for s in ins], params, **kwargs)
        return Sym(out, self)

    # ---- shape helpers used by many rules -------------------------------------------------------

    def zeros(self, shape: Sequence[int], dtype: DType) -> Sym:
        return self.op("fill", shape=tuple(shape), value=0, dtype=dtype)

    def cast(self, x: Sym, dtype: DType) -> Sym:
        return x if x.dtype is dtype else self.op("cast", x, dtype=dtype)

    def select(self, cond: Sym, a, b) -> Sym:
        ref = a if isinstance(a, Sym) else b
        return self.op("select", cond, self.lift(a, ref.dtype), self.lift(b, ref.dtype))

    def reshape(self, x: Sym, shape: Sequence[int]) -> Sym:
        shape = tuple(shape)
        return x if x.shape == shape else self.op("reshape", x, shape=shape)

    def broadcast_to(self, x: Sym, shape: Sequence[int]) -> Sym:
        shape = tuple(shape)
        return x if x.shape == shape else self.op("broadcast_to", x, shape=shape)

    def sum_to_shape(self, x: Sym, shape: Sequence[int]) -> Sym:
        """Undo NumPy broadcasting: sum ``x`` over the axes that broadcasting added or
        stretched, so a gradient comes back in its input's shape."""
        shape = tuple(shape)
        if x.shape == shape:
            return x
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1)
        summed = self.op("sum", x, axes=axes, keepdims=False) if axes else x
        return self.reshape(summed, shape)

    def expand_reduced(self, x: Sym, axes: Sequence[int], keepdims: bool,
                       shape: Sequence[int]) -> Sym:
        """Broadcast a reduction's result (or its gradient) back over the reduced axes."""
        if not keepdims and axes:
            kept = [1 if i in axes else d for i, d in enumerate(shape)]
            x = self.reshape(x, kept)
        return self.broadcast_to(x, shape)
