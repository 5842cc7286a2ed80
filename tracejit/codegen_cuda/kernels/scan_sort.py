"""``cumsum``/``cumprod`` and ``top_k``: one thread per line of the input, walking it.

``RULES[op](eqn, simulating) -> list[GeneratedKernel]`` (args relative to ``eqn``).

* ``cumsum``/``cumprod``: a thread per line along the axis keeps the running value in
  the compute type (halves in float32, rounded once per stored result; integers
  wrapped per step) and walks the line in order (from its end with ``reverse``), as
  the reference does, so the results are bit-identical. Lines are independent, so
  threads never share anything; a long single line is one thread's serial loop (a
  parallel prefix sum would be the next step for that shape).
* ``top_k``: a thread per row selects the k results one pass at a time: pass ``j``
  scans the row for the element first in the order (value, then index; NaN above every
  number) among those after pass ``j-1``'s choice. O(n k) reads per row, no scratch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ...ir.opdef import OpDef
from ..scalars import convert_name, literal, load_expr, store_expr
from ..source import Arg, GeneratedKernel, Param, SourceWriter
from .common import grid_stride_kernel

__all__ = ["RULES", "cumulative_kernels", "top_k_kernels"]


def _combine(acc: str, value: str, dtype: dt.DType, is_sum: bool) -> str:
    """``acc + value`` or ``acc * value`` in ``dtype``'s compute type, wrapping integers."""
    sign = "+" if is_sum else "*"
    if dtype.is_float or dtype.bits == 64:
        return f"{convert_name(dtype)}({acc} {sign} {value})"
    # NOTE: widened first, so the simulator's NumPy scalars wrap without an overflow
    # warning (a product of two 32-bit values fits in 64 bits); the GPU's truncating
    # conversion gives the same bits
    return f"{convert_name(dtype)}(I64({acc}) {sign} I64({value}))"


def cumulative_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    x = eqn.ins[0]
    p = eqn.params
    axis, dtype = p["axis"], x.type.dtype
    outer, n, inner = math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:])
    is_sum = eqn.op is ops.CUMSUM

    def body(w: SourceWriter) -> None:
        w.line(f"base = (i // {inner}) * {n * inner} + i % {inner}")
        w.line(f"acc = {literal(0 if is_sum else 1, dtype)}")
        w.line(f"for t in range({n}):")
        with w.indent():
            j = f"({n - 1} - t)" if p["reverse"] else "t"
            w.line(f"at = base + {j} * {inner}")
            w.line(f"new = {_combine('acc', load_expr('a0', 'at', dtype), dtype, is_sum)}")
            w.line(f"o0[at] = {store_expr('acc' if p['exclusive'] else 'new', dtype)}")
            w.line("acc = new")

    return [grid_stride_kernel(eqn.op.name, [Param("o0", dtype), Param("a0", dtype)],
                               [Arg("out", 0), Arg("in", 0)], outer * inner, simulating,
                               body, kind="movement")]


def _order_source(dtype: dt.DType, descending: bool) -> tuple[Callable, Callable]:
    """``(precedes, same)`` as source: ``a`` strictly before ``b`` by value, and equal in
    the order (NaN above every number, every NaN equal, -0.0 equal to 0.0)."""
    def above(a, b):
        if dtype.is_float:
            return f"(({a} != {a} and {b} == {b}) or {a} > {b})"
        return f"({a} > {b})"

    def same(a, b):
        if dtype.is_float:
            return f"({a} == {b} or ({a} != {a} and {b} != {b}))"
        return f"({a} == {b})"

    def precedes(a, b):
        return above(a, b) if descending else above(b, a)

    return precedes, same


def top_k_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    x = eqn.ins[0]
    k, descending = eqn.params["k"], eqn.params["descending"]
    dtype = x.type.dtype
    n = x.shape[-1]
    rows = math.prod(x.shape[:-1])
    precedes, same = _order_source(dtype, descending)
    zero = literal(0, dtype)

    def body(w: SourceWriter) -> None:
        w.line(f"pv = {zero}")
        w.line("pi = -1")
        w.line(f"for j in range({k}):")
        with w.indent():
            w.line(f"bv = {zero}")
            w.line("bi = -1")
            w.line(f"for q in range({n}):")
            with w.indent():
                w.line(f"v = {load_expr('a0', f'i * {n} + q', dtype)}")
                later = f"(j == 0 or {precedes('pv', 'v')} or ({same('v', 'pv')} and q > pi))"
                # NOTE: q grows, so among equal values the first one seen stays best
                w.line(f"if {later} and (bi < 0 or {precedes('v', 'bv')}):")
                with w.indent():
                    w.line("bv = v")
                    w.line("bi = q")
            w.line(f"o0[i * {k} + j] = {store_expr('bv', dtype)}")
            w.line(f"o1[i * {k} + j] = {convert_name(dt.int32)}(bi)")
            w.line("pv = bv")
            w.line("pi = bi")

    return [grid_stride_kernel("top_k", [Param("o0", dtype), Param("o1", dt.int32),
                                         Param("a0", dtype)],
                               [Arg("out", 0), Arg("out", 1), Arg("in", 0)],
                               rows if k else 0, simulating, body, kind="movement")]


RULES: dict[OpDef, Callable[[Eqn, bool], list[GeneratedKernel]]] = {
    ops.CUMSUM: cumulative_kernels,
    ops.CUMPROD: cumulative_kernels,
    ops.TOP_K: top_k_kernels,
}
