"""Evaluating a kernel body at one point, as kernel source: the GPU's PointEval.

``PointEmitter.value(var, index)`` writes the statements that compute ``var``'s element
at ``index`` and returns the temporary that holds it (compute type, scalars.py). It

* follows index maps (reshape-like ops, ``broadcast_to``, ``transpose``, ``slice``,
  ``reverse``, ``tile``, ``stop_gradient``) and implicit broadcasting by transforming
  the index, never the data;
* loads *leaves* -- buffers the kernel reads: its inputs, constants of more than one
  element, a matmul's result in an epilogue -- at their flat index;
* generates ``fill``, ``iota``, one-element constants and ``random_bits`` (Threefry of
  the flat index) from the index alone;
* computes ELEMENTWISE ops through elementwise_ops.py; values the caller already has
  (reduction results in an epilogue) come from ``known``.

An :class:`Index` is a position in a shape, held as a flat (row-major) expression, or
per-axis expressions, or both; each form is derived from the other on demand, once.
Because the fusion rules keep every computed value of an elementwise kernel at the
domain's size and reshapes keep flat indices, the common case never leaves the flat
form: ``x[i] * y[i]``, with bias broadcasts as ``b[i % n]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..ir import ops
from ..ir.core import Graph, Var
from ..ir.dtypes import DType
from ..ir.opdef import Tag
from .elementwise_ops import ELEMENTWISE_RULES, emit_elementwise
from .scalars import convert_name, literal, load_expr, round_op_result
from .source import SourceWriter

__all__ = ["Index", "Leaf", "PointEmitter", "INDEX_MAP_RULES", "point_supported",
           "scalar_constant"]


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(shape))


def _strides(shape: Sequence[int]) -> list[int]:
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= n
    return out[::-1]


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def add(a: str, b: str) -> str:
    if a == "0":
        return b
    if b == "0":
        return a
    if _is_int(a) and _is_int(b):
        return str(int(a) + int(b))
    return f"({a} + {b})"


def mul(a: str, c: int) -> str:
    if c == 0 or a == "0":
        return "0"
    if c == 1:
        return a
    if _is_int(a):
        return str(int(a) * c)
    return f"({a} * {c})"


@dataclass
class Index:
    shape: tuple[int, ...]
    flat: str | None = None
    axes: tuple[str, ...] | None = None

    def key(self):
        return ("f", self.flat) if self.flat is not None else ("a", self.axes)


@dataclass(frozen=True)
class Leaf:
    """A buffer the kernel reads: its parameter name and dtype."""

    param: str
    dtype: DType


def scalar_constant(var_eqn) -> bool:
    return var_eqn.op is ops.CONSTANT and var_eqn.params["value"].array.size == 1


class PointEmitter:
    def __init__(self, writer: SourceWriter, body: Graph | None, leaves: dict[int, Leaf],
                 known: dict[int, str] | None = None):
        self.w = writer
        self.leaves = leaves
        self.known = dict(known or {})
        # NOTE: body None: only the index forms are used (a library kernel's offsets)
        self.producer = {id(v): e for e in body.eqns for v in e.outs} if body else {}
        self.memo: dict = {}

    # ---- index forms --------------------------------------------------------------------

    def bind(self, expr: str, stem: str = "t") -> str:
        if expr.isidentifier() or _is_int(expr):
            return expr
        key = ("expr", expr)
        if key not in self.memo:
            name = self.w.temp(stem)
            self.w.line(f"{name} = {expr}")
            self.memo[key] = name
        return self.memo[key]

    def flat(self, idx: Index) -> str:
        if idx.flat is None:
            terms = "0"
            for a, s, n in zip(idx.axes, _strides(idx.shape), idx.shape, strict=True):
                if n != 1:
                    terms = add(terms, mul(a, s))
            idx.flat = self.bind(terms, "f")
        return idx.flat

    def axes(self, idx: Index) -> tuple[str, ...]:
        if idx.axes is None:
            flat, shape = idx.flat, idx.shape
            big = [k for k, n in enumerate(shape) if n != 1]
            out = ["0"] * len(shape)
            for k, s in zip(range(len(shape)), _strides(shape), strict=True):
                if shape[k] == 1:
                    continue
                e = flat if s == 1 else f"({flat} // {s})"
                if k != big[0]:
                    e = f"({e} % {shape[k]})"
                out[k] = self.bind(e, "x")
            idx.axes = tuple(out)
        return idx.axes

    def broadcast(self, idx: Index, shape: tuple[int, ...]) -> Index:
        """The index of an operand of shape ``shape`` broadcast to ``idx.shape``."""
        if tuple(shape) == tuple(idx.shape):
            return idx
        if _prod(shape) == 1:
            return Index(tuple(shape), flat="0")
        rank, out = len(idx.shape), idx.shape
        padded = (1,) * (rank - len(shape)) + tuple(shape)
        kept = [k for k in range(rank) if padded[k] != 1]
        lo, hi = kept[0], kept[-1] + 1
        if idx.flat is not None and all(padded[k] == out[k] for k in range(lo, hi)):
            # one contiguous block of kept axes: (flat // inner) % size
            inner, size = _prod(out[hi:]), _prod(out[lo:hi])
            e = idx.flat if inner == 1 else f"({idx.flat} // {inner})"
            if lo != 0 and _prod(out[:lo]) != 1:
                e = f"({e} % {size})"
            return Index(tuple(shape), flat=self.bind(e, "f"))
        axes = self.axes(idx)
        return Index(tuple(shape), axes=tuple(axes[k + rank - len(shape)] if n != 1 else "0"
                                              for k, n in enumerate(shape)))

    # ---- values --------------------------------------------------------------------------

    def value(self, var: Var, idx: Index) -> str:
        if id(var) in self.known:
            return self.known[id(var)]
        key = (id(var), idx.key())
        if key in self.memo:
            return self.memo[key]
        leaf = self.leaves.get(id(var))
        if leaf is not None:
            result = self.bind(load_expr(leaf.param, self.flat(idx), leaf.dtype), "v")
        else:
            result = self._computed(var, idx)
        self.memo[key] = result
        return result

    def _computed(self, var: Var, idx: Index) -> str:
        eqn = self.producer.get(id(var))
        if eqn is None:
            raise KeyError(f"value {var} is neither a leaf nor computed in the body")
        rule = INDEX_MAP_RULES.get(eqn.op)
        if rule is not None:
            src = eqn.ins[0]
            return self.value(src, rule(self, idx, var, src, eqn.params))
        dtype = var.type.dtype
        if eqn.op is ops.CONSTANT:
            return literal(eqn.params["value"].array.reshape(-1)[0], dtype)
        if eqn.op is ops.FILL:
            return literal(eqn.params["value"], dtype)
        if eqn.op is ops.IOTA:
            axis = self.axes(idx)[eqn.params["dimension"]]
            return self.bind(f"{convert_name(dtype)}({axis})", "v")
        if eqn.op is ops.RANDOM_BITS:
            key = eqn.ins[0]
            k0 = self.value(key, Index((2,), flat="0"))
            k1 = self.value(key, Index((2,), flat="1"))
            f = self.flat(idx)
            return self.bind(f"I32(tj_threefry_word0({k0}, {k1}, {f} & 4294967295, "
                             f"{f} >> 32))", "v")
        if eqn.op in ELEMENTWISE_RULES:
            args = [self.value(v, self.broadcast(idx, v.shape)) for v in eqn.ins]
            expr = emit_elementwise(eqn.op, args, [v.type.dtype for v in eqn.ins], dtype,
                                    dict(eqn.params))
            if eqn.op is ops.STOP_GRADIENT:
                return expr
            return self.bind(round_op_result(expr, dtype), "v")
        raise NotImplementedError(f"op {eqn.op.name!r} inside a GPU kernel body")


def _same_flat(em, idx, var, src, p):
    return Index(src.shape, flat=em.flat(idx))


def _broadcast_to(em, idx, var, src, p):
    return em.broadcast(idx, src.shape)


def _transpose(em, idx, var, src, p):
    axes = em.axes(idx)
    moved = ["0"] * len(axes)
    for i, axis in enumerate(p["perm"]):
        moved[axis] = axes[i]
    return Index(src.shape, axes=tuple(moved))


def _slice(em, idx, var, src, p):
    return Index(src.shape, axes=tuple(
        add(mul(a, st), str(lo))
        for a, lo, st in zip(em.axes(idx), p["starts"], p["strides"], strict=True)))


def _reverse(em, idx, var, src, p):
    return Index(src.shape, axes=tuple(
        f"({n - 1} - {a})" if k in p["axes"] and n > 1 else a
        for k, (a, n) in enumerate(zip(em.axes(idx), src.shape, strict=True))))


def _tile(em, idx, var, src, p):
    return Index(src.shape, axes=tuple(
        "0" if n == 1 else (a if n == m else f"({a} % {n})")
        for a, n, m in zip(em.axes(idx), src.shape, var.shape, strict=True)))


# The GPU's rule for each op tagged INDEX_MAP: the index its input is read at.
INDEX_MAP_RULES = {ops.RESHAPE: _same_flat, ops.EXPAND_DIMS: _same_flat,
                   ops.SQUEEZE: _same_flat, ops.STOP_GRADIENT: _same_flat,
                   ops.BROADCAST_TO: _broadcast_to, ops.TRANSPOSE: _transpose,
                   ops.SLICE: _slice, ops.REVERSE: _reverse, ops.TILE: _tile}


def point_supported(op) -> bool:
    """Whether a body can compute ``op`` at a point."""
    return op in INDEX_MAP_RULES or op in ELEMENTWISE_RULES or op.has(Tag.CREATION) \
        or op is ops.RANDOM_BITS
