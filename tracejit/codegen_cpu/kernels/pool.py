"""Pooling over NHWC images (conventions as in :mod:`.lower_nn`).

* ``max_pool2d``/``avg_pool2d``: for each output pixel, the window's positions inside
  the image, each a vectorized loop over channels (threads share the pixels);
* ``max_pool2d_select``/``max_pool2d_backprop``: the same walk keeps the first
  maximum per channel (the first NaN wins; a padding position only ever counts as the
  window's first, exactly as the reference's ``_first_max``), and reads or adds at it;
* ``avg_pool2d_backprop``: each window's cotangent divided by its count and added to
  every image position of the window.

The gradients add windows back offset by offset, as the references do, so their sums
match them bit for bit. Threads share *bands* of the gradient that no other band's
windows reach: single output rows when the windows do not overlap vertically
(``stride >= window``, W5's 2x2 pooling), else whole images. Each thread zeroes its own
band and adds into it in the reference's order.
"""

from __future__ import annotations

from llvmlite import ir

from ...ir import ops
from ...ir.core import Eqn
from ..loops.loops import c64, counted_loop
from ..loops.types import I32, compute_type
from ..parallel.parallel_for import emit_parallel_for, entry_alloca
from .elementwise_ops import emit_max
from .nhwc import Geometry, elem, inside, memset0, pixel, tagged_load, tagged_store, with_float32

__all__ = ["RULES"]


# ---- pooling --------------------------------------------------------------------------------

def _position(b, g: Geometry, p, i, j):
    """(inside the image, flat offset of channel 0) of window position (i, j) of output
    pixel p; the offset is clamped into the image when the position is padding."""
    nn, oy, ox = pixel(b, g, p)
    iy = b.sub(b.add(b.mul(oy, c64(g.sh)), b.mul(i, c64(g.dh))), c64(g.pt))
    jx = b.sub(b.add(b.mul(ox, c64(g.sw)), b.mul(j, c64(g.dw))), c64(g.pl))
    ok = b.and_(inside(b, iy, g.h), inside(b, jx, g.w))
    cy = b.select(ok, iy, c64(0))
    cx = b.select(ok, jx, c64(0))
    return ok, b.mul(b.add(b.mul(b.add(b.mul(nn, c64(g.h)), cy), c64(g.w)), cx), c64(g.c))


def _offsets(b, g: Geometry, visit):
    """``visit(i, j, k)`` for each window offset, k = i * kw + j (row-major)."""
    counted_loop(b, c64(0), c64(g.kh), lambda i: counted_loop(
        b, c64(0), c64(g.kw), lambda j: visit(i, j, b.add(b.mul(i, c64(g.kw)), j)),
        name="wj"), name="wi")


def _window_walk(b, g: Geometry, p, visit):
    """For each window position of pixel p, in row-major order: ``visit(k, valid, src)``
    (see :func:`_position`)."""
    def at(i, j, k):
        ok, src = _position(b, g, p, i, j)
        visit(k, ok, src)
    _offsets(b, g, at)


def _offset_major_walk(b, g: Geometry, p0, p1, visit):
    """``visit(p, k, valid, src)`` for every window offset k, then every pixel p in
    [p0, p1): the order in which the references add windows back, so sums match them
    exactly."""
    def at(i, j, k):
        def pixel(p):
            ok, src = _position(b, g, p, i, j)
            visit(p, k, ok, src)
        counted_loop(b, p0, p1, pixel, name="px")
    _offsets(b, g, at)



def _pool_geometry(eqn: Eqn, image, pooled):
    return Geometry(image, eqn.params["ksize"], pooled[1:3], eqn.params)


def _pool_forward(ctx, eqn, kind: str):
    """max_pool2d, avg_pool2d and max_pool2d_select: one result per pixel and channel."""
    def body(ctx, ins, outs, dtype):
        (out,) = outs
        x = ins[0]
        g = _pool_geometry(eqn, eqn.ins[0].shape, eqn.outs[0].shape)
        ty = compute_type(dtype)
        if g.pixels * g.c == 0:
            return
        loops = ctx.loops
        work = g.pixels * g.c * g.kh * g.kw

        def run(rb, lo, hi, tid, cap):
            xp, op = cap[0], cap[1]
            gp = cap[2] if kind == "select" else None
            acc = entry_alloca(rb, ty, g.c)
            sel = entry_alloca(rb, ty, g.c) if kind == "select" else None
            count = entry_alloca(rb, ty)
            init = ir.Constant(ty, float("-inf") if kind != "avg" else 0.0)

            def pixel(p):
                def start(cc):
                    tagged_store(rb, init, elem(rb, acc, cc, ty), loops)
                    if sel is not None:
                        tagged_store(rb, ir.Constant(ty, 0.0), elem(rb, sel, cc, ty), loops)
                counted_loop(rb, c64(0), c64(g.c), start, parallel=loops, name="c0")
                rb.store(ir.Constant(ty, 0.0), count)

                def visit(k, ok, src):
                    first = rb.icmp_signed("==", k, c64(0))
                    with rb.if_then(ok):
                        rb.store(rb.fadd(rb.load(count, typ=ty), ir.Constant(ty, 1.0)), count)

                        def chan(cc):
                            a = elem(rb, acc, cc, ty)
                            v = tagged_load(rb, elem(rb, xp, rb.add(src, cc), ty), ty, loops)
                            old = tagged_load(rb, a, ty, loops)
                            if kind == "max":
                                new = emit_max(rb, old, v, dtype)
                            elif kind == "avg":
                                new = rb.fadd(old, v)
                            else:
                                better = rb.or_(first, _better(rb, v, old))
                                new = rb.select(better, v, old)
                                s = elem(rb, sel, cc, ty)
                                gv = tagged_load(rb, elem(rb, gp, rb.add(src, cc), ty), ty,
                                                  loops)
                                tagged_store(rb, rb.select(better, gv,
                                                            tagged_load(rb, s, ty, loops)),
                                              s, loops)
                            tagged_store(rb, new, a, loops)

                        counted_loop(rb, c64(0), c64(g.c), chan, parallel=loops, name="c")

                _window_walk(rb, g, p, visit)
                n = rb.load(count, typ=ty)
                base = rb.mul(p, c64(g.c))

                def finish(cc):
                    src = sel if kind == "select" else acc
                    v = tagged_load(rb, elem(rb, src, cc, ty), ty, loops)
                    if kind == "avg":
                        v = rb.fdiv(v, n)
                    tagged_store(rb, v, elem(rb, op, rb.add(base, cc), ty), loops)

                counted_loop(rb, c64(0), c64(g.c), finish, parallel=loops, name="c1")

            counted_loop(rb, lo, hi, pixel, name="p")

        caps = [x, out] + ([ins[1]] if kind == "select" else [])
        emit_parallel_for(ctx.builder, ctx.sub_name("pool"), g.pixels, work, caps, run)

    with_float32(ctx, eqn, body)


def _better(b, v, best):
    """v replaces the running maximum: strictly greater, or the first NaN."""
    return b.or_(b.fcmp_ordered(">", v, best),
                 b.and_(b.fcmp_unordered("uno", v, v), b.fcmp_ordered("ord", best, best)))


class _Bands:
    """Work items of a pooling gradient: ``rows`` output rows of one image each, and
    the slice of the input gradient that only their windows add into."""

    def __init__(self, g: Geometry, ty, itemsize: int):
        # NOTE: windows of different output rows share no input row when the stride is
        # at least the window; otherwise only whole images are independent.
        self.g, self.ty, self.itemsize = g, ty, itemsize
        self.rows = 1 if g.sh >= g.kh else g.oh
        self.per_image = g.oh // self.rows
        self.count = g.n * self.per_image

    def pixel(self, b, item):
        """The first output pixel of ``item``."""
        return b.mul(item, c64(self.rows * self.g.ow))

    def start(self, b, item):
        """Flat offset of the first input-gradient element of ``item``'s band: its first
        window row (its image's row 0 for an image's first band)."""
        g = self.g
        nn = b.udiv(item, c64(self.per_image))
        oy = b.mul(b.urem(item, c64(self.per_image)), c64(self.rows))
        top = b.sub(b.mul(oy, c64(g.sh)), c64(g.pt))
        top = b.select(b.icmp_signed("<", top, c64(0)), c64(0), top)
        top = b.select(b.icmp_signed(">", top, c64(g.h)), c64(g.h), top)
        top = b.select(b.icmp_signed("==", oy, c64(0)), c64(0), top)
        return b.mul(b.add(b.mul(nn, c64(g.h)), top), c64(g.w * g.c))

    def run(self, ctx, tag, work, captures, body):
        """``body(b, p0, p1, tid, captured)`` over each thread's pixels [p0, p1), after
        zeroing the thread's part of the gradient (``captured[0]``)."""
        ty = self.ty

        def run(rb, lo, hi, tid, cap):
            first, last = self.start(rb, lo), self.start(rb, hi)     # the last: the end
            memset0(rb, elem(rb, cap[0], first, ty),
                     rb.mul(rb.sub(last, first), c64(self.itemsize)))
            body(rb, self.pixel(rb, lo), self.pixel(rb, hi), tid, cap)

        emit_parallel_for(ctx.builder, ctx.sub_name(tag), self.count, work, captures, run)


def _max_pool2d_backprop(ctx, eqn):
    """Two passes per band: the first maximum's window offset per pixel and channel
    (scratch), then each window offset's cotangents added back, offset by offset, as the
    reference does (so the sums match it exactly)."""
    def body(ctx, ins, outs, dtype):
        x, ct = ins
        (dx,) = outs
        g = _pool_geometry(eqn, eqn.ins[0].shape, eqn.ins[1].shape)
        ty = compute_type(dtype)
        if g.pixels * g.c == 0:
            memset0(ctx.builder, dx, g.n * g.h * g.w * g.c * dtype.itemsize)
            return
        where = ctx.malloc(g.pixels * g.c * 4)
        loops = ctx.loops
        bands = _Bands(g, ty, dtype.itemsize)

        def run(b, p0, p1, tid, cap):
            dxp, xp, ctp, wp = cap
            best = entry_alloca(b, ty, g.c)

            def pixel(p):
                base = b.mul(p, c64(g.c))

                def start(cc):
                    tagged_store(b, ir.Constant(ty, float("-inf")), elem(b, best, cc, ty),
                                  loops)
                    tagged_store(b, ir.Constant(I32, 0), elem(b, wp, b.add(base, cc), I32),
                                  loops)
                counted_loop(b, c64(0), c64(g.c), start, parallel=loops, name="c0")

                def visit(k, ok, src):
                    first = b.icmp_signed("==", k, c64(0))
                    k32 = b.trunc(k, I32)
                    with b.if_then(ok):
                        def chan(cc):
                            v = tagged_load(b, elem(b, xp, b.add(src, cc), ty), ty, loops)
                            bp = elem(b, best, cc, ty)
                            wq = elem(b, wp, b.add(base, cc), I32)
                            old = tagged_load(b, bp, ty, loops)
                            better = b.or_(first, _better(b, v, old))
                            tagged_store(b, b.select(better, v, old), bp, loops)
                            tagged_store(b, b.select(better, k32, tagged_load(b, wq, I32, loops)),
                                          wq, loops)
                        counted_loop(b, c64(0), c64(g.c), chan, parallel=loops, name="c")

                _window_walk(b, g, p, visit)

            counted_loop(b, p0, p1, pixel, name="p")

            def add_back(p, k, ok, src):
                base = b.mul(p, c64(g.c))
                k32 = b.trunc(k, I32)
                with b.if_then(ok):
                    def chan(cc):
                        hit = b.icmp_signed("==", tagged_load(
                            b, elem(b, wp, b.add(base, cc), I32), I32, loops), k32)
                        d = elem(b, dxp, b.add(src, cc), ty)
                        v = tagged_load(b, elem(b, ctp, b.add(base, cc), ty), ty, loops)
                        old = tagged_load(b, d, ty, loops)
                        tagged_store(b, b.select(hit, b.fadd(old, v), old), d, loops)
                    counted_loop(b, c64(0), c64(g.c), chan, parallel=loops, name="c")

            _offset_major_walk(b, g, p0, p1, add_back)

        bands.run(ctx, "poolbp", g.pixels * g.c * g.kh * g.kw, [dx, x, ct, where], run)

    with_float32(ctx, eqn, body)


def _avg_pool2d_backprop(ctx, eqn):
    """Window counts per pixel first, then the shares added back offset by offset (the
    reference's order), band by band."""
    def body(ctx, ins, outs, dtype):
        (ct,) = ins
        (dx,) = outs
        g = _pool_geometry(eqn, eqn.params["input_shape"], eqn.ins[0].shape)
        ty = compute_type(dtype)
        if g.pixels * g.c == 0:
            memset0(ctx.builder, dx, g.n * g.h * g.w * g.c * dtype.itemsize)
            return
        counts = ctx.malloc(g.pixels * 8)
        loops = ctx.loops
        bands = _Bands(g, ty, dtype.itemsize)

        def run(b, p0, p1, tid, cap):
            dxp, ctp, cp = cap

            def pixel(p):
                slot = elem(b, cp, p, ty)
                b.store(ir.Constant(ty, 0.0), slot)

                def tally(k, ok, src):
                    with b.if_then(ok):
                        b.store(b.fadd(b.load(slot, typ=ty), ir.Constant(ty, 1.0)), slot)

                _window_walk(b, g, p, tally)

            counted_loop(b, p0, p1, pixel, name="p")

            def add_back(p, k, ok, src):
                base = b.mul(p, c64(g.c))
                n = b.load(elem(b, cp, p, ty), typ=ty)
                with b.if_then(ok):
                    def chan(cc):
                        share = b.fdiv(tagged_load(b, elem(b, ctp, b.add(base, cc), ty), ty,
                                                    loops), n)
                        d = elem(b, dxp, b.add(src, cc), ty)
                        tagged_store(b, b.fadd(tagged_load(b, d, ty, loops), share), d, loops)
                    counted_loop(b, c64(0), c64(g.c), chan, parallel=loops, name="c")

            _offset_major_walk(b, g, p0, p1, add_back)

        bands.run(ctx, "poolbp", g.pixels * g.c * g.kh * g.kw, [dx, ct, counts], run)

    with_float32(ctx, eqn, body)


# This module's kernel rules, keyed by op (lower_kernels.KERNEL_RULES joins them).
RULES = {
    ops.MAX_POOL2D: lambda ctx, eqn: _pool_forward(ctx, eqn, "max"),
    ops.AVG_POOL2D: lambda ctx, eqn: _pool_forward(ctx, eqn, "avg"),
    ops.MAX_POOL2D_SELECT: lambda ctx, eqn: _pool_forward(ctx, eqn, "select"),
    ops.MAX_POOL2D_BACKPROP: _max_pool2d_backprop,
    ops.AVG_POOL2D_BACKPROP: _avg_pool2d_backprop,
}
