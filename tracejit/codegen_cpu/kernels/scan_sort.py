"""Ops that walk a whole line of their input per output: ``cumsum``/``cumprod`` (a
running sum or product along an axis) and ``top_k`` (the first k of a sorted row).

Both are a parallel loop over the lines (every position of the other axes) with a
sequential loop inside, so threads split the lines and nothing is shared.

* ``cumsum``/``cumprod`` keep the running value in the compute type (halves in float32,
  each output rounded once when stored; integers wrap) and add or multiply in order,
  without fast-math flags, so the bits are the reference's.
* ``top_k`` selects: pass ``j`` scans the row for the element that comes first in the
  order among those after pass ``j-1``'s choice (by value, then by index). That is
  ``k`` reads of the row (O(n k)), no scratch memory, and branch-free selects; cheap for
  the small ``k`` of top-k, quadratic for a full sort of a long row.
"""

from __future__ import annotations

import math

from llvmlite import ir

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ..loops import index as ix
from ..loops.loops import c64, counted_loop
from ..loops.pointwise import FnContext, pointwise
from ..loops.types import I64, compute_type, const, is_signed, load, store
from ..parallel.parallel_for import entry_alloca

__all__ = ["RULES", "lower_cumulative", "lower_top_k"]


def _lines(shape, axis: int):
    """(outer, n, inner): a tensor as lines of ``n`` elements ``inner`` apart."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _each_line(ctx: FnContext, tag: str, outer: int, n: int, inner: int, emit_line) -> None:
    """``emit_line(point, start)`` for the offset of every line's first element."""
    grid = (outer, inner)

    def start(dom, refine):
        o, r = ix.domain_index(dom.dims, grid, dom, refine)
        return ix.add(ix.scale(o, n * inner), r)

    pointwise(ctx, tag, ix.Domain.of_shape(grid), lambda dom, refine: [start(dom, refine)],
              lambda point, dom: emit_line(point, point.expr(start(dom, False))),
              weight=max(n, 1))


def lower_cumulative(ctx: FnContext, eqn: Eqn) -> None:
    x = eqn.ins[0]
    p = eqn.params
    dtype = x.dtype
    outer, n, inner = _lines(x.shape, p["axis"])
    is_sum = eqn.op is ops.CUMSUM
    ty = compute_type(dtype)

    def combine(b: ir.IRBuilder, acc, value):
        if dtype.is_float:
            return b.fadd(acc, value) if is_sum else b.fmul(acc, value)
        return b.add(acc, value) if is_sum else b.mul(acc, value)

    def emit_line(point, start):
        b = point.builder
        acc = entry_alloca(b, ty)
        b.store(const(dtype, 0 if is_sum else 1), acc)

        def step(t):
            j = b.sub(c64(n - 1), t) if p["reverse"] else t
            at = b.add(start, b.mul(j, c64(inner)))
            before = b.load(acc, typ=ty)
            after = combine(b, before, load(b, point.ptrs(1), at, dtype))
            b.store(after, acc)
            store(b, before if p["exclusive"] else after, point.ptrs(0), at, dtype)

        counted_loop(b, c64(0), c64(n), step, name="t")

    _each_line(ctx, "scan", outer, n, inner, emit_line)


def _ordering(b: ir.IRBuilder, dtype: dt.DType, descending: bool):
    """``(precedes, same)`` on compute-type values: whether ``a`` comes strictly before
    ``b`` by value in the order, and whether they are equal in it (NaN above every
    number, every NaN equal, -0.0 equal to 0.0)."""
    if dtype.is_float:
        def nan(v):
            return b.fcmp_unordered("uno", v, v)

        def above(a, c):    # a > c with NaN the largest
            return b.or_(b.and_(nan(a), b.not_(nan(c))), b.fcmp_ordered(">", a, c))

        def same(a, c):
            return b.or_(b.fcmp_ordered("==", a, c), b.and_(nan(a), nan(c)))
    else:
        compare = b.icmp_signed if is_signed(dtype) else b.icmp_unsigned

        def above(a, c):
            return compare(">", a, c)

        def same(a, c):
            return compare("==", a, c)

    def precedes(a, c):
        return above(a, c) if descending else above(c, a)

    return precedes, same


def lower_top_k(ctx: FnContext, eqn: Eqn) -> None:
    x = eqn.ins[0]
    k, descending = eqn.params["k"], eqn.params["descending"]
    dtype = x.dtype
    n = x.shape[-1]
    rows = math.prod(x.shape[:-1])
    ty = compute_type(dtype)
    if k == 0:
        return

    def emit_row(point, start):
        b = point.builder
        precedes, same = _ordering(b, dtype, descending)
        best_v, best_i = entry_alloca(b, ty), entry_alloca(b, I64)
        prev_v, prev_i = entry_alloca(b, ty), entry_alloca(b, I64)
        row_out = b.mul(b.udiv(start, c64(n)), c64(k))

        def select_pass(j):
            b.store(const(dtype, 0), best_v)
            b.store(c64(-1), best_i)
            first = b.icmp_signed("==", j, c64(0))
            pv, pi = b.load(prev_v, typ=ty), b.load(prev_i, typ=I64)

            def consider(i):
                v = load(b, point.ptrs(2), b.add(start, i), dtype)
                later = b.or_(precedes(pv, v),
                              b.and_(same(v, pv), b.icmp_signed(">", i, pi)))
                bv, bi = b.load(best_v, typ=ty), b.load(best_i, typ=I64)
                # NOTE: i grows, so among equal values the first one seen stays best
                better = b.or_(b.icmp_signed("<", bi, c64(0)), precedes(v, bv))
                take = b.and_(b.or_(first, later), better)
                b.store(b.select(take, v, bv), best_v)
                b.store(b.select(take, i, bi), best_i)

            counted_loop(b, c64(0), c64(n), consider, name="i")
            bv, bi = b.load(best_v, typ=ty), b.load(best_i, typ=I64)
            at = b.add(row_out, j)
            store(b, bv, point.ptrs(0), at, dtype)
            store(b, b.trunc(bi, ir.IntType(32)), point.ptrs(1), at, dt.int32)
            b.store(bv, prev_v)
            b.store(bi, prev_i)

        counted_loop(b, c64(0), c64(k), select_pass, name="j")

    _each_line(ctx, "top_k", rows, n, 1, emit_row)


RULES = {ops.CUMSUM: lower_cumulative, ops.CUMPROD: lower_cumulative, ops.TOP_K: lower_top_k}
