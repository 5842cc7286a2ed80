"""Movement ops that are not index maps: gather, scatter_add, one_hot, pad, concat,
stack, custom_vjp.

Copies move raw bits (an integer of the element's size), so NaN payloads and -0.0
survive, as the references require. Indices are normalized as the references do:
a negative index wraps once (``i + n``), then anything out of range is clamped to
``[0, n-1]`` (gather, scatter_add); one_hot matches no position for out-of-range
indices. ``scatter_add`` accumulates in index order in the operand's compute type
(halves in a float32 scratch, rounded once at the end), exactly like ``np.add.at``.
"""

from __future__ import annotations

import math

from llvmlite import ir

from ...ir import GraphBuilder, ops
from ...ir import dtypes as dt
from ...ir.core import Eqn
from ...ir.opdef import get_op
from ..loops import index as ix
from ..loops.pointwise import FnContext, convert_copy, pointwise
from ..loops.types import I64, convert, load, load_raw, store, store_raw
from .elementwise import lower_elementwise_body

__all__ = ["RULES", "lower_gather", "lower_scatter_add", "lower_one_hot", "lower_pad",
           "lower_concat", "lower_stack", "lower_custom_vjp"]


def _position(dom, shape, refine):
    return ix.domain_index(dom.dims, shape, dom, refine)


def copy_box(ctx: FnContext, src_key, src_shape, dst_key, dst_shape, dtype, place) -> None:
    """Copy every element of ``src`` (shape ``src_shape``) to ``dst`` at
    ``place(position in src) -> position in dst``."""
    def exprs(dom, refine):
        at = _position(dom, src_shape, refine)
        return ix.ravel(at, src_shape), ix.ravel(place(at), dst_shape)

    def plan(dom, refine):
        return list(exprs(dom, refine))

    def emit(point, dom):
        read, write = (point.expr(e) for e in exprs(dom, False))
        bits = load_raw(point.builder, point.ptrs(src_key), read, dtype, point.group)
        store_raw(point.builder, bits, point.ptrs(dst_key), write, dtype, point.group)

    pointwise(ctx, "copy", ix.Domain.of_shape(src_shape), plan, emit)


def fill_box(ctx: FnContext, value_key, dst_key, shape, dtype) -> None:
    """Every element of ``dst`` = the 0-d buffer ``value_key``'s bits."""
    def plan(dom, refine):
        return [ix.ravel(_position(dom, shape, refine), shape)]

    def emit(point, dom):
        bits = load_raw(point.builder, point.ptrs(value_key), ir.Constant(I64, 0), dtype)
        off = point.expr(ix.ravel(_position(dom, shape, False), shape))
        store_raw(point.builder, bits, point.ptrs(dst_key), off, dtype, point.group)

    pointwise(ctx, "fill", ix.Domain.of_shape(shape), plan, emit)


def lower_concat(ctx: FnContext, eqn: Eqn) -> None:
    axis = eqn.params["axis"]
    out = eqn.outs[0]
    offset = 0
    for i, x in enumerate(eqn.ins):
        shift = offset

        def place(at, shift=shift):
            return tuple(ix.add(e, ix.constant(shift)) if a == axis else e
                         for a, e in enumerate(at))

        copy_box(ctx, 1 + i, x.shape, 0, out.shape, out.dtype, place)
        offset += x.shape[axis]


def lower_stack(ctx: FnContext, eqn: Eqn) -> None:
    axis = eqn.params["axis"]
    out = eqn.outs[0]
    for i, x in enumerate(eqn.ins):
        def place(at, i=i):
            return tuple(at[:axis]) + (ix.constant(i),) + tuple(at[axis:])

        copy_box(ctx, 1 + i, x.shape, 0, out.shape, out.dtype, place)


def lower_pad(ctx: FnContext, eqn: Eqn) -> None:
    x, _ = eqn.ins
    out = eqn.outs[0]
    low = eqn.params["low"]
    # NOTE: two passes (fill everything, copy the interior) keep both loops simple and
    # vectorizable; padding is rare and cheap next to the kernels around it.
    if any(lo or hi for lo, hi in zip(low, eqn.params["high"], strict=True)):
        fill_box(ctx, 2, 0, out.shape, out.dtype)

    def place(at):
        return tuple(ix.add(e, ix.constant(lo)) for e, lo in zip(at, low, strict=True))

    copy_box(ctx, 1, x.shape, 0, out.shape, out.dtype, place)


def lower_custom_vjp(ctx: FnContext, eqn: Eqn) -> None:
    count = eqn.params["num_outputs"]
    n_ins = len(eqn.ins)
    for j, var in enumerate(eqn.outs):
        src = len(eqn.outs) + n_ins - count + j
        ctx.memcpy(ctx.ptrs(j), ctx.ptrs(src), var.type.size * var.dtype.itemsize)


def lower_one_hot(ctx: FnContext, eqn: Eqn) -> None:
    """one_hot as the body ``select(expand_dims(cast(i, int64)) == iota, on, off)``."""

    idx, on, off = eqn.ins
    out = eqn.outs[0]
    p = eqn.params
    at = len(idx.shape) if p["axis"] == -1 else p["axis"]
    b = GraphBuilder("one_hot")
    i, v_on, v_off = (b.add_input(v.type) for v in eqn.ins)
    wide = b.emit1(get_op("cast"), [i], {"dtype": dt.int64})
    wide = b.emit1(get_op("expand_dims"), [wide], {"axes": (at,)})
    ramp = b.emit1(get_op("iota"), [], {"shape": out.shape, "dimension": at,
                                        "dtype": dt.int64})
    hot = b.emit1(get_op("equal"), [wide, ramp])
    body = b.build([b.emit1(get_op("select"), [hot, v_on, v_off])], stage="body")
    lower_elementwise_body(ctx, body)


def _normalized_index(b: ir.IRBuilder, raw: ir.Value, dtype: dt.DType, n: int) -> ir.Value:
    """The reference's index rule: wrap a negative index once, then clamp to [0, n-1]."""
    i = convert(b, raw, dtype, dt.int64)
    zero = ir.Constant(I64, 0)
    i = b.select(b.icmp_signed("<", i, zero), b.add(i, ir.Constant(I64, n)), i)
    i = b.select(b.icmp_signed("<", i, zero), zero, i)
    top = ir.Constant(I64, max(n - 1, 0))
    return b.select(b.icmp_signed(">", i, top), top, i)


def _split(shape, axis, k):
    """(pre, idx, post) parts of a gather-like shape with k index axes at ``axis``."""
    return shape[:axis], shape[axis:axis + k], shape[axis + k:]


def _indexed_exprs(shape, axis: int, index_rank: int, n: int, post_size: int):
    """For gather's output (scatter_add's updates), a point of ``shape`` as (the flat
    offset of its row in the indexed operand without the axis, its position in the
    indices, its own flat position): the three index expressions both loops need."""
    pre, ishape, post = _split(shape, axis, index_rank)

    def exprs(dom, refine):
        at = _position(dom, shape, refine)
        p, j, q = _split(at, axis, index_rank)
        base = ix.add(ix.scale(ix.ravel(p, pre), n * post_size), ix.ravel(q, post))
        return base, ix.ravel(j, ishape), ix.ravel(at, shape)
    return exprs


def lower_gather(ctx: FnContext, eqn: Eqn) -> None:
    x, idx = eqn.ins
    out = eqn.outs[0]
    axis = eqn.params["axis"]
    n = x.shape[axis]
    post_size = math.prod(x.shape[axis + 1:])
    exprs = _indexed_exprs(out.shape, axis, len(idx.shape), n, post_size)

    def emit(point, dom):
        b = point.builder
        base, where, dst = (point.expr(e) for e in exprs(dom, False))
        k = _normalized_index(b, load(b, point.ptrs(2), where, idx.dtype), idx.dtype, n)
        src = b.add(base, b.mul(k, ir.Constant(I64, post_size)))
        bits = load_raw(b, point.ptrs(1), src, x.dtype, point.group)
        store_raw(b, bits, point.ptrs(0), dst, x.dtype, point.group)

    pointwise(ctx, "gather", ix.Domain.of_shape(out.shape), lambda d, r: list(exprs(d, r)),
              emit)


def lower_scatter_add(ctx: FnContext, eqn: Eqn) -> None:
    operand, idx, updates = eqn.ins
    out = eqn.outs[0]
    axis = eqn.params["axis"]
    n = operand.shape[axis]
    post_size = math.prod(operand.shape[axis + 1:])
    dtype = out.dtype
    acc_dtype = dt.float32 if dtype.is_half else dtype
    extra = {}
    if dtype.is_half:
        extra["acc"] = ctx.malloc(out.type.size * 4)
        acc_key = "acc"
        _convert(ctx, out.shape, 1, dtype, acc_key, acc_dtype, extra)
    else:
        acc_key = 0
        ctx.memcpy(ctx.ptrs(0), ctx.ptrs(1), out.type.size * dtype.itemsize)
    exprs = _indexed_exprs(updates.shape, axis, len(idx.shape), n, post_size)

    def emit(point, dom):
        b = point.builder
        base, where, src = (point.expr(e) for e in exprs(dom, False))
        k = _normalized_index(b, load(b, point.ptrs(2), where, idx.dtype), idx.dtype, n)
        dst = b.add(base, b.mul(k, ir.Constant(I64, post_size)))
        acc = point.ptrs(acc_key)
        update = convert(b, load(b, point.ptrs(3), src, dtype, point.group), dtype, acc_dtype)
        old = load(b, acc, dst, acc_dtype, point.group)
        # NOTE: bools accumulate as the reference's np.add.at does: True + True is True.
        new = (b.fadd(old, update) if acc_dtype.is_float else b.or_(old, update)
               if acc_dtype.is_bool else b.add(old, update))
        store(b, new, acc, dst, acc_dtype, point.group)

    def inner_parallel(inner, mapping):
        # NOTE: two index positions may name the same row, so only a loop within one
        # row (the trailing axes) has independent iterations.
        _, where, _ = exprs_final
        return inner.id not in ix.expr_dims(ix.substitute(where, mapping))

    domain = ix.Domain.of_shape(updates.shape)
    exprs_final = None

    def plan(dom, refine):
        nonlocal exprs_final
        exprs_final = exprs(dom, refine)
        return list(exprs_final)

    pointwise(ctx, "scatter", domain, plan, emit, serial=True, extra=extra,
              inner_parallel=inner_parallel)
    if dtype.is_half:
        _convert(ctx, out.shape, acc_key, acc_dtype, 0, dtype, extra)


def _convert(ctx, shape, src_key, src_dtype, dst_key, dst_dtype, extra) -> None:
    convert_copy(ctx, shape, src_key, src_dtype, dst_key, dst_dtype, extra)


# This module's kernel rules, keyed by op (lower_kernels.KERNEL_RULES joins them).
RULES = {ops.GATHER: lower_gather, ops.SCATTER_ADD: lower_scatter_add,
         ops.ONE_HOT: lower_one_hot, ops.PAD: lower_pad, ops.CONCAT: lower_concat,
         ops.STACK: lower_stack, ops.CUSTOM_VJP: lower_custom_vjp}
