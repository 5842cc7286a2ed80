"""``tjq_pump``: a queue runner's loop in native code, beside the ring it drives
(queue_ring.py).

``slice_input_producer`` into ``batch``/``shuffle_batch`` makes a runner that takes an
index from a queue, gathers that row of each in-memory table and enqueues the rows.
Run from Python, even batched, each batch costs the runner tens of microseconds of
Python and several trips through the GIL, which the training step on the same cores
pays for; here the whole loop runs without the GIL until a queue closes.
"""

from __future__ import annotations

from llvmlite import ir

from ..loops.types import I32, I64, PTR
from .queue_ring import AVAILABLE, BAD_INDEX, OK, W_COLUMNS, RingEmitter

__all__ = ["emit_pump"]


# ---- pump(source, sink, tables, table_rows, index_bytes, limit, indices, rows,
#           deadline, info) -> status ---------------------------------------------------

def emit_pump(emitter: RingEmitter, take: ir.Function, put: ir.Function) -> None:
    """A queue runner's loop without Python: take up to ``limit`` indices from the
    one-column queue ``source`` (what is there, at least one), gather those rows of
    each table (one per column of ``sink``) into ``rows``, put them into ``sink``;
    again, until a queue closes (CLOSED: ``info`` 0 for the source, 1 for the sink),
    an index is outside ``[0, table_rows)`` (BAD_INDEX, the index in ``info``), or
    ``deadline`` passes (TIMEOUT)."""
    fn = ir.Function(emitter.module, ir.FunctionType(I64, [PTR, PTR, PTR, I64, I64, I64, PTR,
                                                        PTR, I64, PTR]), "tjq_pump")
    (source, sink, tables, table_rows, index_bytes, limit, indices, rows, deadline,
     info) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    got, moved = b.alloca(I64), b.alloca(I64)        # NOTE: here, not in the loop
    index_out = b.alloca(PTR)
    b.store(indices, index_out)
    loop, took, gathered, bad = (fn.append_basic_block(x)
                                 for x in ("loop", "took", "gathered", "bad"))
    b.branch(loop)

    b.position_at_end(loop)
    status = b.call(take, [source, index_out, limit, I64(AVAILABLE),
                           ir.Constant(PTR, None), deadline, got])
    source_failed = fn.append_basic_block("source_failed")
    b.cbranch(b.icmp_signed("==", status, I64(OK)), took, source_failed)
    b.position_at_end(source_failed)
    b.store(I64(0), info)
    b.ret(status)

    b.position_at_end(took)
    count = b.load(got, typ=I64)
    k, next_row = emitter.for_range(fn, b, count, "row")
    wide = b.load(b.gep(indices, [k], source_etype=I64), typ=I64)
    narrow = b.sext(b.load(b.gep(indices, [k], source_etype=I32), typ=I32), I64)
    index = b.select(b.icmp_signed("==", index_bytes, I64(8)), wide, narrow)
    inside = b.and_(b.icmp_signed(">=", index, I64(0)),
                    b.icmp_signed("<", index, table_rows))
    copy = fn.append_basic_block("copy")
    b.store(index, info)
    b.cbranch(inside, copy, bad)
    b.position_at_end(copy)
    c, next_col = emitter.for_range(fn, b, emitter.get(b, sink, W_COLUMNS), "table")
    _, row_bytes = emitter.column(b, sink, c)
    i8 = ir.IntType(8)
    table = b.load(b.gep(tables, [c], source_etype=PTR), typ=PTR)
    out = b.load(b.gep(rows, [c], source_etype=PTR), typ=PTR)
    b.call(emitter.memcpy, [b.gep(out, [b.mul(k, row_bytes)], source_etype=i8),
                         b.gep(table, [b.mul(index, row_bytes)], source_etype=i8),
                         row_bytes])
    next_col()
    next_row()
    b.branch(gathered)

    b.position_at_end(bad)
    b.ret(I64(BAD_INDEX))

    b.position_at_end(gathered)
    b.store(I64(0), moved)
    status = b.call(put, [sink, rows, count, deadline, moved])
    sink_failed = fn.append_basic_block("sink_failed")
    b.cbranch(b.icmp_signed("==", status, I64(OK)), loop, sink_failed)
    b.position_at_end(sink_failed)
    b.store(I64(1), info)
    b.ret(status)
