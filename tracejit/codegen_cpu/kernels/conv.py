"""Convolutions (NHWC images, HWIO filters): im2col and matrix products, threaded.

BLAS runs on one thread inside a program (see :mod:`.blas`), so a convolution brings
its own parallelism: its output pixels are cut into blocks, the blocks are shared by
the threads of :func:`.parallel.emit_parallel_for` (tracejit's pool), and each share
(``tid``) has its own im2col scratch. Each block's product is the register-tiled loop
of :mod:`.lower_tilegemm` on AVX-512 hosts (twice OpenBLAS's speed on this project's
machines; ``TILE_ELEMENTS`` of scratch, in L2), else a BLAS gemm (``IM2COL_ELEMENTS``):

* ``conv2d``: per block, unfold the windows (im2col) and multiply by the filter straight
  into the output rows of the block. Blocks write disjoint outputs. A 1x1, stride-1,
  unpadded convolution is a single gemm (split by :func:`.blas.call_gemm`);
* ``conv2d_backprop_input``: per block, ``cols = ct @ W^T`` (the tiles read a copy of
  ``W^T`` made once) and col2im adds the columns back into the zeroed input gradient.
  Windows of neighbouring pixels overlap, so two threads must never add into the same
  image: the threads share whole images when there are enough of them (``n`` a
  multiple of the threads, or at least four per thread); otherwise each thread adds
  into a zeroed private copy of the gradient and the copies are summed at the end;
* ``conv2d_backprop_filter``: per block, ``dW_t += cols^T @ ct`` into the thread's own
  partial filter gradient (thread 0's is the result), then the partials are summed;
* ``int8_conv2d``: as conv2d, with 8-bit im2col blocks (padding = ``pad_value``) and the
  packed integer kernels of :mod:`..gemm.int8_gemm` (int32 sums).

im2col and col2im move one window row (``kw * c`` contiguous elements) at a time when
it lies inside the image (no dilation), and element groups of ``c`` at the borders.
Pooling lives in :mod:`.lower_pool`.

Halves are converted to float32 scratch first and the results rounded once. Across
blocks and threads the convolutions sum in another order than the reference's one big
product: equal within rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ...ir import ops
from ..gemm.blas import call_gemm
from ..gemm.choice import use_tiles
from ..gemm.int8_gemm import emit_int8_rows
from ..gemm.int8_kernels import choose_variant, emit_gemm_call, emit_pack_call
from ..gemm.int8_tiles import packed_bytes
from ..gemm.tiles import emit_tile_gemm
from ..loops.loops import c64, counted_loop
from ..loops.types import I1, I8, I32, compute_type
from ..parallel.parallel_for import emit_parallel_for
from ..parallel.settings import parallel_config, should_parallelize
from .nhwc import (
    Geometry,
    elem,
    inside,
    memcpy,
    memset0,
    pixel,
    smin,
    tagged_load,
    tagged_store,
    with_float32,
)

__all__ = ["RULES", "IM2COL_ELEMENTS"]
# Elements of one thread's im2col block: 1 MiB of float32 (a Zen 5 core's L2) for BLAS,
# 256 KiB for the tiled products, which re-read the block once per tile of filter rows.
# NOTE: measured on W5's second layer (2 threads): BLAS ran within 2% from 2^17 to 2^20
# elements, the tiles within 3% from 2^14 to 2^18 (2^16 best for the filter gradient).
IM2COL_ELEMENTS = 1 << 18
TILE_ELEMENTS = 1 << 16
SUM_CHUNK = 4096        # elements per work item when partial results are summed


# ---- work split ---------------------------------------------------------------------------

def team_size(n_items: int, work: int) -> int:
    """The threads :func:`emit_parallel_for` will run ``n_items`` items on (1: serial).
    Kernels size per-thread scratch by it, so it must decide exactly as that does."""
    if not should_parallelize(n_items, work):
        return 1
    return min(parallel_config().threads, n_items)


@dataclass(frozen=True)
class _Blocks:
    block: int      # output pixels per block
    count: int      # blocks (the work items)
    team: int       # threads that run them


def _pixel_blocks(g: Geometry, work: int, tiles: bool) -> _Blocks:
    """Blocks of output pixels whose im2col fits ``IM2COL_ELEMENTS`` (``TILE_ELEMENTS``
    for the tiled products); with threads, a multiple of the team and of equal size, so
    that every thread gets the same work."""
    elements = TILE_ELEMENTS if tiles else IM2COL_ELEMENTS
    block = min(g.pixels, max(16, elements // max(1, g.k_cols)))
    count = -(-g.pixels // block)
    team = team_size(g.pixels, work)
    if team > 1:
        count = min(g.pixels, -(-max(count, team) // team) * team)
        block = -(-g.pixels // count)
        count = -(-g.pixels // block)
        team = min(team, count)
    return _Blocks(block, count, team)


def _run_blocks(ctx, tag: str, n_items: int, work: int, team: int, captures, body) -> None:
    went = emit_parallel_for(ctx.builder, ctx.sub_name(tag), n_items, work, captures, body,
                             force_serial=team == 1)
    assert went == (team > 1), "per-thread scratch was sized for another team"


def _each_block(b, block: int, first, last, step) -> None:
    """``step(p0, rows)`` for consecutive blocks of ``block`` pixels covering
    [first, last) (``first``/``last`` are i64 values; the last block may be short)."""
    count = b.udiv(b.add(b.sub(last, first), c64(block - 1)), c64(block))

    def one(t):
        p0 = b.add(first, b.mul(t, c64(block)))
        step(p0, smin(b, b.sub(last, p0), c64(block)))

    counted_loop(b, c64(0), count, one, name="blk")


def _own(b, tid, result, partials, size: int, ty):
    """Thread ``tid``'s accumulator: the result itself for thread 0, else its partial."""
    slot = b.select(b.icmp_signed(">", tid, c64(0)), b.sub(tid, c64(1)), c64(0))
    mine = elem(b, partials, b.mul(slot, c64(size)), ty)
    return b.select(b.icmp_signed("==", tid, c64(0)), result, mine)


def _sum_partials(ctx, result, partials, copies: int, size: int, ty) -> None:
    """``result += partials[0] + ... + partials[copies - 1]``, threads sharing chunks."""
    loops = ctx.loops
    n_items = -(-size // SUM_CHUNK)

    def run(rb, lo, hi, _tid, cap):
        dst, src = cap
        last = smin(rb, rb.mul(hi, c64(SUM_CHUNK)), c64(size))

        def at(i):
            d = elem(rb, dst, i, ty)
            total = tagged_load(rb, d, ty, loops)
            for t in range(copies):
                v = tagged_load(rb, elem(rb, src, rb.add(i, c64(t * size)), ty), ty, loops)
                total = rb.fadd(total, v)
            tagged_store(rb, total, d, loops)

        counted_loop(rb, rb.mul(lo, c64(SUM_CHUNK)), last, at, parallel=loops, name="sum")

    emit_parallel_for(ctx.builder, ctx.sub_name("sum"), n_items, size * copies,
                      [result, partials], run)


def _transpose(b, src, dst, rows: int, cols: int, ty) -> None:
    """``dst[j, i] = src[i, j]`` for a ``rows x cols`` matrix (small: a filter)."""
    def row(i):
        def col(j):
            v = b.load(elem(b, src, b.add(b.mul(i, c64(cols)), j), ty), typ=ty)
            b.store(v, elem(b, dst, b.add(b.mul(j, c64(rows)), i), ty))
        counted_loop(b, c64(0), c64(cols), col, name="tc")
    counted_loop(b, c64(0), c64(rows), row, name="tr")


# ---- im2col and col2im --------------------------------------------------------------------

def _window_rows(b, g: Geometry, p, row_op, elem_op):
    """For each window row i of output pixel p: ``row_op(i, src)`` when the whole row
    (``kw * c`` contiguous elements at image offset ``src``) is inside the image, else
    ``elem_op(k, ok, src)`` per window position (``src`` clamped when not ``ok``)."""
    nn, oy, ox = pixel(b, g, p)
    jx0 = b.sub(b.mul(ox, c64(g.sw)), c64(g.pl))
    # NOTE: only undilated rows are contiguous in the image.
    cols_in = b.and_(b.icmp_signed(">=", jx0, c64(0)),
                     b.icmp_signed("<", b.add(jx0, c64((g.kw - 1) * g.dw)), c64(g.w))) \
        if g.dw == 1 else ir.Constant(I1, 0)

    def row(i):
        iy = b.sub(b.add(b.mul(oy, c64(g.sh)), b.mul(i, c64(g.dh))), c64(g.pt))
        row_in = inside(b, iy, g.h)
        with b.if_else(b.and_(row_in, cols_in)) as (whole, border):
            with whole:
                row_op(i, b.mul(b.add(b.mul(b.add(b.mul(nn, c64(g.h)), iy), c64(g.w)), jx0),
                                c64(g.c)))
            with border:
                def position(j):
                    jx = b.add(jx0, b.mul(j, c64(g.dw)))
                    ok = b.and_(row_in, inside(b, jx, g.w))
                    cy = b.select(ok, iy, c64(0))
                    cx = b.select(ok, jx, c64(0))
                    src = b.mul(b.add(b.mul(b.add(b.mul(nn, c64(g.h)), cy), c64(g.w)), cx),
                                c64(g.c))
                    elem_op(b.add(b.mul(i, c64(g.kw)), j), ok, src)
                counted_loop(b, c64(0), c64(g.kw), position, name="wj")

    counted_loop(b, c64(0), c64(g.kh), row, name="wi")


def _im2col(b, g: Geometry, x, cols, p0, rows, ty, itemsize, fill: int = 0):
    """``cols[q, :]`` = the window of output pixel ``p0 + q`` for q < rows, ``fill``
    bytes (zeros) for padding, in (kh, kw, c) order like the HWIO filter."""
    row_elems = g.kw * g.c

    def pixel(q):
        base = b.mul(q, c64(g.k_cols))

        def row(i, src):
            dst = elem(b, cols, b.add(base, b.mul(i, c64(row_elems))), ty)
            memcpy(b, dst, elem(b, x, src, ty), row_elems * itemsize)

        def position(k, ok, src):
            dst = elem(b, cols, b.add(base, b.mul(k, c64(g.c))), ty)
            with b.if_else(ok) as (then, otherwise):
                with then:
                    memcpy(b, dst, elem(b, x, src, ty), g.c * itemsize)
                with otherwise:
                    memset0(b, dst, g.c * itemsize, fill)

        _window_rows(b, g, b.add(p0, q), row, position)

    counted_loop(b, c64(0), rows, pixel, name="px")


def _col2im(b, g: Geometry, cols, dx, p0, rows, ty, loops):
    """The transpose of :func:`_im2col`: ``dx`` += each column at its window position,
    pixel by pixel (the caller makes sure no other thread adds into the same images)."""
    row_elems = g.kw * g.c

    def add(n, at, src):
        def one(e):
            d = elem(b, dx, b.add(src, e), ty)
            v = tagged_load(b, elem(b, cols, b.add(at, e), ty), ty, loops)
            tagged_store(b, b.fadd(tagged_load(b, d, ty, loops), v), d, loops)
        counted_loop(b, c64(0), c64(n), one, parallel=loops, name="e")

    def pixel(q):
        base = b.mul(q, c64(g.k_cols))

        def position(k, ok, src):
            with b.if_then(ok):
                add(g.c, b.add(base, b.mul(k, c64(g.c))), src)

        _window_rows(b, g, b.add(p0, q),
                     lambda i, src: add(row_elems, b.add(base, b.mul(i, c64(row_elems))), src),
                     position)

    counted_loop(b, c64(0), rows, pixel, name="px")


# ---- the three convolutions ---------------------------------------------------------------

def _conv2d(ctx, eqn):
    def body(ctx, ins, outs, dtype):
        x, w = ins
        (out,) = outs
        g = Geometry(eqn.ins[0].shape, eqn.ins[1].shape[:2], eqn.outs[0].shape[1:3],
                      eqn.params)
        co, k_cols = eqn.ins[1].shape[3], g.k_cols
        ty, isz = compute_type(dtype), dtype.itemsize
        b = ctx.builder
        if g.pixels * co == 0:
            return
        if k_cols == 0:
            memset0(b, out, g.pixels * co * isz)
            return
        if g.pointwise:
            call_gemm(b, dtype, g.pixels, co, g.c, x, g.c, False, w, co, False, out, co)
            return
        work = g.pixels * k_cols * co
        rows = _pixel_blocks(g, work, True).block
        tiles = use_tiles(dtype, rows, co, k_cols, False)
        plan = _pixel_blocks(g, work, tiles)
        scratch = ctx.malloc(plan.team * plan.block * k_cols * isz)

        def run(rb, lo, hi, tid, cap):
            xp, wp, op, sp = cap
            cols = elem(rb, sp, rb.mul(tid, c64(plan.block * k_cols)), ty)

            def step(p0, rows):
                _im2col(rb, g, xp, cols, p0, rows, ty, isz)
                dst = elem(rb, op, rb.mul(p0, c64(co)), ty)
                if tiles:
                    emit_tile_gemm(rb, dtype, rows, co, k_cols, cols, k_cols, 1, wp, co, dst, co)
                else:
                    call_gemm(rb, dtype, rows, co, k_cols, cols, k_cols, False, wp, co, False,
                              dst, co)

            _each_block(rb, plan.block, rb.mul(lo, c64(plan.block)),
                        smin(rb, rb.mul(hi, c64(plan.block)), c64(g.pixels)), step)

        _run_blocks(ctx, "conv", plan.count, work, plan.team, [x, w, out, scratch], run)

    with_float32(ctx, eqn, body)


def _conv2d_backprop_input(ctx, eqn):
    def body(ctx, ins, outs, dtype):
        ct, w = ins
        (dx,) = outs
        g = Geometry(eqn.params["input_shape"], eqn.ins[1].shape[:2], eqn.ins[0].shape[1:3],
                      eqn.params)
        co, k_cols = eqn.ins[1].shape[3], g.k_cols
        ty, isz = compute_type(dtype), dtype.itemsize
        size = g.n * g.h * g.w * g.c
        b = ctx.builder
        memset0(b, dx, size * isz)
        if g.pixels * k_cols == 0 or co == 0:
            return
        if g.pointwise:
            call_gemm(b, dtype, g.pixels, g.c, co, ct, co, False, w, co, True, dx, g.c)
            return
        work = g.pixels * k_cols * co
        rows = _pixel_blocks(g, work, True).block
        tiles = use_tiles(dtype, rows, k_cols, co, False)
        plan = _pixel_blocks(g, work, tiles)
        by_image = team_size(g.n, work)
        if by_image > 1 and (g.n % by_image == 0 or g.n >= 4 * by_image):
            # NOTE: whole images per thread: col2im never adds across an image's edge.
            plan, per_item, copies = _Blocks(plan.block, g.n, by_image), g.oh * g.ow, 0
        else:
            # NOTE: blocks may share images: each thread adds into its own copy.
            per_item, copies = plan.block, plan.team - 1
        partials = ctx.malloc(max(1, copies) * size * isz)
        if copies:
            memset0(b, partials, copies * size * isz)
        scratch = ctx.malloc(plan.team * plan.block * k_cols * isz)
        loops = ctx.loops
        if tiles:
            # NOTE: the tiles read B by rows: W^T ([co, k_cols]) is copied once.
            wt = ctx.malloc(k_cols * co * isz)
            _transpose(b, w, wt, k_cols, co, ty)
        else:
            wt = w

        def run(rb, lo, hi, tid, cap):
            ctp, wp, dxp, pp, sp = cap
            cols = elem(rb, sp, rb.mul(tid, c64(plan.block * k_cols)), ty)
            dst = _own(rb, tid, dxp, pp, size, ty) if copies else dxp

            def step(p0, rows):
                src = elem(rb, ctp, rb.mul(p0, c64(co)), ty)
                if tiles:
                    emit_tile_gemm(rb, dtype, rows, k_cols, co, src, co, 1, wp, k_cols, cols,
                                   k_cols)
                else:
                    call_gemm(rb, dtype, rows, k_cols, co, src, co, False, wp, co, True, cols,
                              k_cols)
                _col2im(rb, g, cols, dst, p0, rows, ty, loops)

            _each_block(rb, plan.block, rb.mul(lo, c64(per_item)),
                        smin(rb, rb.mul(hi, c64(per_item)), c64(g.pixels)), step)

        _run_blocks(ctx, "convdx", plan.count, work, plan.team, [ct, wt, dx, partials, scratch],
                    run)
        if copies:
            _sum_partials(ctx, dx, partials, copies, size, ty)

    with_float32(ctx, eqn, body)


def _conv2d_backprop_filter(ctx, eqn):
    def body(ctx, ins, outs, dtype):
        x, ct = ins
        (dw,) = outs
        g = Geometry(eqn.ins[0].shape, eqn.params["filter_shape"][:2], eqn.ins[1].shape[1:3],
                      eqn.params)
        co, k_cols = eqn.params["filter_shape"][3], g.k_cols
        ty, isz = compute_type(dtype), dtype.itemsize
        size = k_cols * co
        b = ctx.builder
        memset0(b, dw, size * isz)
        if g.pixels == 0 or size == 0:
            return
        if g.pointwise:
            call_gemm(b, dtype, g.c, co, g.pixels, x, g.c, True, ct, co, False, dw, co)
            return
        work = g.pixels * k_cols * co
        rows = _pixel_blocks(g, work, True).block
        tiles = use_tiles(dtype, k_cols, co, rows, True)
        plan = _pixel_blocks(g, work, tiles)
        copies = plan.team - 1
        partials = ctx.malloc(max(1, copies) * size * isz)
        if copies:
            memset0(b, partials, copies * size * isz)
        scratch = ctx.malloc(plan.team * plan.block * k_cols * isz)

        def run(rb, lo, hi, tid, cap):
            xp, ctp, dwp, pp, sp = cap
            cols = elem(rb, sp, rb.mul(tid, c64(plan.block * k_cols)), ty)
            dst = _own(rb, tid, dwp, pp, size, ty) if copies else dwp

            def step(p0, rows):
                _im2col(rb, g, xp, cols, p0, rows, ty, isz)
                src = elem(rb, ctp, rb.mul(p0, c64(co)), ty)
                if tiles:
                    # NOTE: A = cols^T: row i of A is column i of the block (stride 1 along
                    # i, k_cols along k).
                    emit_tile_gemm(rb, dtype, k_cols, co, rows, cols, 1, k_cols, src, co, dst,
                                   co, accumulate=True)
                else:
                    call_gemm(rb, dtype, k_cols, co, rows, cols, k_cols, True, src, co, False,
                              dst, co, beta=1.0)

            _each_block(rb, plan.block, rb.mul(lo, c64(plan.block)),
                        smin(rb, rb.mul(hi, c64(plan.block)), c64(g.pixels)), step)

        _run_blocks(ctx, "convdw", plan.count, work, plan.team, [x, ct, dw, partials, scratch],
                    run)
        if copies:
            _sum_partials(ctx, dw, partials, copies, size, ty)

    with_float32(ctx, eqn, body)


def _int8_conv2d(ctx, eqn):
    """int8_conv2d: the filter packed once for the 8-bit kernel (int8_gemm.py), then per
    block of output pixels im2col (padding holds ``pad_value``) and the integer product
    straight into the int32 output rows."""
    x, w = (ctx.ptrs(1 + i) for i in range(2))
    out = ctx.ptrs(0)
    dtype = eqn.ins[0].dtype
    g = Geometry(eqn.ins[0].shape, eqn.ins[1].shape[:2], eqn.outs[0].shape[1:3], eqn.params)
    co, k_cols = eqn.ins[1].shape[3], g.k_cols
    b = ctx.builder
    if g.pixels * co == 0:
        return
    v = choose_variant(dtype, g.pixels, co, k_cols)
    packed = ctx.malloc(packed_bytes(v, k_cols, co))
    emit_pack_call(b, v, dtype, k_cols, co, w, co, 1, packed)
    if g.pointwise:
        emit_int8_rows(ctx, v, dtype, g.pixels, co, g.c, x, g.c, 1, packed, out, co)
        return
    work = g.pixels * k_cols * co
    # NOTE: TILE_ELEMENTS bytes of im2col per block: a quarter of the float32 tiles' L2
    # share, the panels of A and the packed filter beside it.
    plan = _pixel_blocks(g, work, True)
    scratch = ctx.malloc(plan.team * plan.block * k_cols)
    fill = eqn.params["pad_value"]

    def run(rb, lo, hi, tid, cap):
        xp, pp, op, sp = cap
        cols = elem(rb, sp, rb.mul(tid, c64(plan.block * k_cols)), I8)

        def step(p0, rows):
            _im2col(rb, g, xp, cols, p0, rows, I8, 1, fill)
            emit_gemm_call(rb, v, dtype, rows, co, k_cols, cols, k_cols, 1, pp,
                           elem(rb, op, rb.mul(p0, c64(co)), I32), co)

        _each_block(rb, plan.block, rb.mul(lo, c64(plan.block)),
                    smin(rb, rb.mul(hi, c64(plan.block)), c64(g.pixels)), step)

    _run_blocks(ctx, "i8conv", plan.count, work, plan.team, [x, packed, out, scratch], run)


# This module's kernel rules, keyed by op (lower_kernels.KERNEL_RULES joins them).
RULES = {ops.CONV2D: _conv2d, ops.CONV2D_BACKPROP_INPUT: _conv2d_backprop_input,
         ops.CONV2D_BACKPROP_FILTER: _conv2d_backprop_filter, ops.INT8_CONV2D: _int8_conv2d}
