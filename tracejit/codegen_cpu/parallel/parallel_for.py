"""Parallel-for from generated code: tracejit's thread pool (pool.py), no Python.

A kernel's outer loop runs over ``n`` *work items* (rows, or blocks of a long row).
:func:`emit_parallel_for` outlines the loop body into ``<name>.range(ctx, lo, hi, tid)``
and either calls it once for the whole range (small kernels: no thread ever wakes) or
hands it to ``tj_parallel_for``, which runs one contiguous share ``[n*t/T,
n*(t+1)/T)`` of the items per share ``t`` (``tid``) on the pool. Values the body needs from the
caller travel in a stack-allocated context struct (after inlining into the serial path,
LLVM's SROA turns them back into registers).

Its settings (threads, the work that makes a kernel parallel) are settings.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llvmlite import ir

from ..loops.types import I32, I64, PTR, VOID, declare
from .pool import PARALLEL_FOR, ensure_pool
from .settings import parallel_config, should_parallelize

__all__ = ["ensure_pool", "inside_parallel_body", "RANGE_SUFFIX", "emit_parallel_for"]

RANGE_SUFFIX = ".range"         # the functions emit_parallel_for runs per share


def inside_parallel_body(builder: ir.IRBuilder) -> bool:
    """Whether ``builder`` emits into a share of :func:`emit_parallel_for` (where the pool
    is taken: a nested parallel call runs serially)."""
    return builder.function.name.endswith(RANGE_SUFFIX)


def emit_parallel_for(builder: ir.IRBuilder, name: str, n_items: int, work: int,
                      captures: Sequence[ir.Value],
                      body: Callable[[ir.IRBuilder, ir.Value, ir.Value, ir.Value, list], None],
                      *, force_serial: bool = False) -> bool:
    """Run ``body(builder, lo, hi, tid, captured)`` over ``[0, n_items)``.

    ``body`` is emitted once, into a new function; ``captured`` are the values of
    ``captures`` inside it. With threading it runs once per share, on the pool, with that
    thread's share and ``tid`` = the thread number (< ``parallel_config().threads``);
    otherwise once with ``lo=0, hi=n_items, tid=0``. Returns whether it went parallel.
    """
    module = builder.module
    ctx_type = ir.LiteralStructType([c.type for c in captures])
    range_fn = ir.Function(module, ir.FunctionType(VOID, [PTR, I64, I64, I64]),
                           f"{name}{RANGE_SUFFIX}")
    range_fn.linkage = "internal"
    rb = ir.IRBuilder(range_fn.append_basic_block("entry"))
    ctx, lo, hi, tid = range_fn.args
    captured = [rb.load(rb.gep(ctx, [ir.Constant(I32, 0), ir.Constant(I32, i)],
                               inbounds=True, source_etype=ctx_type), typ=c.type)
                for i, c in enumerate(captures)]
    body(rb, lo, hi, tid, captured)
    if not rb.block.is_terminated:
        rb.ret_void()

    ctx_ptr = entry_alloca(builder, ctx_type)
    for i, c in enumerate(captures):
        builder.store(c, builder.gep(ctx_ptr, [ir.Constant(I32, 0), ir.Constant(I32, i)],
                                     inbounds=True, source_etype=ctx_type))
    parallel = not force_serial and should_parallelize(n_items, work)
    if not parallel:
        builder.call(range_fn, [ctx_ptr, ir.Constant(I64, 0), ir.Constant(I64, n_items),
                                ir.Constant(I64, 0)])
        return False

    ensure_pool()
    parallel_for = declare(module, PARALLEL_FOR, ir.FunctionType(VOID, [PTR, PTR, I64, I64]))
    shares = min(parallel_config().threads, n_items)
    builder.call(parallel_for, [range_fn, ctx_ptr, ir.Constant(I64, n_items),
                                ir.Constant(I64, shares)])
    return True


def entry_alloca(builder: ir.IRBuilder, ty: ir.Type, count: int | None = None,
                 name: str = "") -> ir.Value:
    """An ``alloca`` in the function's entry block (so SROA/mem2reg can promote it)."""
    fn = builder.function
    entry = fn.entry_basic_block
    saved = builder.block
    if entry.instructions:
        builder.position_before(entry.instructions[0])
    else:
        builder.position_at_end(entry)
    size = ir.Constant(I64, count) if count is not None else None
    slot = builder.alloca(ty, size=size, name=name)
    # NOTE: llvmlite types an alloca as a typed pointer; everything here uses opaque ones.
    slot.type = PTR
    builder.position_at_end(saved)
    return slot
