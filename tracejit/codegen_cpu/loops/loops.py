"""Loops in LLVM IR: counted loops, loop nests over a Domain, work items, index exprs.

Innermost loops whose iterations are independent are marked with
``llvm.loop.parallel_accesses`` over an access group that every element load and
store of a kernel carries. That is what lets LLVM vectorize them without runtime alias
checks, which matters when the memory plan runs a kernel in place (an output aliasing
an operand that is read at the same index: a runtime check would see the overlap and
fall back to the scalar loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from llvmlite import ir
from llvmlite.ir.values import MDValue

from .index import Affine, Dim, Expr, strides
from .types import I64

__all__ = ["Loops", "emit_expr", "counted_loop", "work_items", "block_size",
           "each_batch_matrix", "one_tall_product"]


class _DistinctMD(MDValue):
    def descr(self, buf):
        buf.append("distinct ")
        super().descr(buf)


def _distinct(module: ir.Module, operands) -> MDValue:
    md = _DistinctMD(module, [], name=str(len(module.metadata)))
    md.operands = tuple(operands)
    return md


class Loops:
    """Per-module metadata for parallel loops (one access group per module)."""

    def __init__(self, module: ir.Module):
        self.module = module
        cached = getattr(module, "_tracejit_access_group", None)
        if cached is None:
            cached = _distinct(module, [])
            module._tracejit_access_group = cached
        self.group = cached

    def keep_rolled(self, branch) -> None:
        """No unrolling of this loop (``llvm.loop.unroll.disable``): LLVM then vectorizes
        it rather than fully unrolling a short trip count into scalar code first."""
        module = self.module
        loop = _distinct(module, [])
        loop.operands = (loop, module.add_metadata(
            [ir.MetaDataString(module, "llvm.loop.unroll.disable")]))
        branch.set_metadata("llvm.loop", loop)

    def mark_parallel(self, branch) -> None:
        module = self.module
        par = module.add_metadata([ir.MetaDataString(module, "llvm.loop.parallel_accesses"),
                                   self.group])
        loop = _distinct(module, [])
        loop.operands = (loop, par)
        branch.set_metadata("llvm.loop", loop)


def c64(value: int) -> ir.Constant:
    return ir.Constant(I64, int(value))


def emit_expr(builder: ir.IRBuilder, e: Expr, env: dict[int, ir.Value]) -> ir.Value:
    """An index expression as an i64 value; ``env`` maps dim ids to loop variables."""
    if isinstance(e, Affine):
        out = None
        for k, c in e.terms:
            term = env[k] if c == 1 else builder.mul(env[k], c64(c), flags=["nsw"])
            out = term if out is None else builder.add(out, term, flags=["nsw"])
        if out is None:
            return c64(e.const)
        return builder.add(out, c64(e.const), flags=["nsw"]) if e.const else out
    a = emit_expr(builder, e.a, env)
    if e.op == "add":
        return builder.add(a, emit_expr(builder, e.arg, env), flags=["nsw"])
    if e.op == "mul":
        return builder.mul(a, c64(e.arg), flags=["nsw"])
    # NOTE: index expressions are never negative, so unsigned division is exact.
    if e.op == "div":
        return builder.udiv(a, c64(e.arg))
    return builder.urem(a, c64(e.arg))


def counted_loop(builder: ir.IRBuilder, start: ir.Value, stop: ir.Value,
                 body: Callable[[ir.Value], None], *, parallel: Loops | None = None,
                 name: str = "i", rolled: Loops | None = None) -> None:
    """``for i in range(start, stop): body(i)`` (no trips when ``stop <= start``); the
    builder ends positioned after the loop. ``parallel`` marks the iterations independent;
    ``rolled`` keeps the loop from being unrolled (see Loops.keep_rolled)."""
    pre = builder.block
    fn = builder.function
    head = fn.append_basic_block(f"{name}.head")
    loop = fn.append_basic_block(f"{name}.body")
    done = fn.append_basic_block(f"{name}.done")
    if isinstance(start, int):
        start = c64(start)
    if isinstance(stop, int):
        stop = c64(stop)
    builder.cbranch(builder.icmp_signed("<", start, stop), head, done)
    builder.position_at_end(head)
    i = builder.phi(I64, name=name)
    i.add_incoming(start, pre)
    builder.branch(loop)
    builder.position_at_end(loop)
    body(i)
    nxt = builder.add(i, c64(1), flags=["nsw", "nuw"])
    latch = builder.block
    br = builder.cbranch(builder.icmp_signed("<", nxt, stop), head, done)
    i.add_incoming(nxt, latch)
    if parallel is not None:
        parallel.mark_parallel(br)
    elif rolled is not None:
        rolled.keep_rolled(br)
    builder.position_at_end(done)


def one_tall_product(a_shape, b_shape, batch, trans_a: bool) -> bool:
    """Whether a batched product is one tall one: B has no batch, A's batch is the
    result's, A is not transposed (its matrices stacked are one matrix of more rows)."""
    pad = len(batch)
    a_batch = (1,) * (pad - len(a_shape[:-2])) + tuple(a_shape[:-2])
    return all(x == 1 for x in b_shape[:-2]) and a_batch == tuple(batch) and not trans_a


def each_batch_matrix(builder: ir.IRBuilder, a_shape, b_shape, batch,
                      body: Callable[[ir.Value, ir.Value, ir.Value], None]) -> None:
    """``body(t, a_offset, b_offset)`` for each matrix ``t`` of a batched product whose
    result has batch shape ``batch``: the element offsets of the operands' matrices,
    their batch axes broadcast as np.matmul does (size-1 or missing axes repeat)."""
    pad = len(batch)
    a_batch = (1,) * (pad - len(a_shape[:-2])) + tuple(a_shape[:-2])
    b_batch = (1,) * (pad - len(b_shape[:-2])) + tuple(b_shape[:-2])
    a_size, b_size = a_shape[-1] * a_shape[-2], b_shape[-1] * b_shape[-2]
    a_strides = [0 if x == 1 else s * a_size for x, s in zip(a_batch, strides(a_batch),
                                                            strict=True)]
    b_strides = [0 if x == 1 else s * b_size for x, s in zip(b_batch, strides(b_batch),
                                                            strict=True)]

    def one(t):
        a_off, b_off, rem = c64(0), c64(0), t
        for axis in reversed(range(pad)):
            i = builder.urem(rem, c64(batch[axis]))
            rem = builder.udiv(rem, c64(batch[axis]))
            if a_strides[axis]:
                a_off = builder.add(a_off, builder.mul(i, c64(a_strides[axis])))
            if b_strides[axis]:
                b_off = builder.add(b_off, builder.mul(i, c64(b_strides[axis])))
        body(t, a_off, b_off)

    counted_loop(builder, c64(0), c64(math.prod(batch)), one, name="batch")


def nest(builder: ir.IRBuilder, dims: Sequence[Dim], env: dict[int, ir.Value],
         body: Callable[[], None], *, parallel: Loops | None = None) -> None:
    """Loops over ``dims`` (outermost first) binding ``env[dim.id]``; the innermost one is
    marked parallel when ``parallel`` is given."""
    if not dims:
        body()
        return
    head, rest = dims[0], dims[1:]

    def inner(i):
        env[head.id] = i
        nest(builder, rest, env, body, parallel=parallel)

    counted_loop(builder, c64(0), c64(head.size), inner,
                 parallel=parallel if not rest else None, name=f"d{head.id}")


def block_size(outer: int, inner: int, threads: int, parallel: bool) -> int:
    """How many elements of the innermost dimension one work item covers: whole rows
    unless there are too few rows to share among the threads."""
    if not parallel or outer >= 8 * threads or inner <= 1024:
        return inner
    pieces = math.ceil(8 * threads / outer)
    size = math.ceil(inner / pieces)
    return min(inner, max(1024, (size + 63) // 64 * 64))


def work_items(builder: ir.IRBuilder, outer: Sequence[Dim], inner: Dim | None, block: int,
               lo: ir.Value, hi: ir.Value, env: dict[int, ir.Value],
               body: Callable[[ir.Value, ir.Value], None]) -> None:
    """For each work item ``w`` in ``[lo, hi)``: bind the outer dims from ``w`` and call
    ``body(j0, j1)`` with the item's range of the inner dim (``[0, 1)`` if none).

    Items enumerate ``outer`` row-major, then blocks of ``block`` along ``inner``."""
    n_blocks = math.ceil(inner.size / block) if inner is not None else 1

    def item(w):
        row = w
        if n_blocks > 1:
            row = builder.udiv(w, c64(n_blocks))
            blk = builder.urem(w, c64(n_blocks))
            j0 = builder.mul(blk, c64(block))
            j1 = builder.add(j0, c64(block))
            j1 = builder.select(builder.icmp_signed("<", j1, c64(inner.size)), j1,
                                c64(inner.size))
        else:
            j0, j1 = c64(0), c64(inner.size if inner is not None else 1)
        rem = row
        for i, d in enumerate(reversed(outer)):
            last = i == len(outer) - 1
            env[d.id] = rem if last else builder.urem(rem, c64(d.size))
            if not last:
                rem = builder.udiv(rem, c64(d.size))
        body(j0, j1)

    counted_loop(builder, lo, hi, item, name="w")


def n_work_items(outer: Sequence[Dim], inner: Dim | None, block: int) -> int:
    n = math.prod(d.size for d in outer)
    return n * (math.ceil(inner.size / block) if inner is not None else 1)
