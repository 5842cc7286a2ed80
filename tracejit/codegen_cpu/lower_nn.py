"""Convolution and pooling (NHWC images, HWIO filters): im2col + BLAS, window loops.

* ``conv2d``: blocks of output pixels are unfolded (im2col) into a scratch matrix of at
  most ``IM2COL_ELEMENTS`` elements, which stays in cache, and multiplied by the
  filter with one gemm per block straight into the output. A 1x1, stride-1, unpadded
  convolution is a single gemm;
* ``conv2d_backprop_input``: per block, ``cols = ct @ W^T`` (one gemm) then col2im adds
  the columns back into the zeroed input gradient;
* ``conv2d_backprop_filter``: per block, ``dW += cols^T @ ct`` (gemm with beta = 1);
* ``max_pool2d``/``avg_pool2d``: for each output pixel, the window's positions inside
  the image, each a vectorized loop over channels (threads share the pixels);
* ``max_pool2d_select``/``max_pool2d_backprop``: the same walk keeps the first
  maximum per channel (the first NaN wins; a padding position only ever counts as the
  window's first, exactly as the reference's ``_first_max``), and reads or adds at it;
* ``avg_pool2d_backprop``: each window's cotangent divided by its count and added to
  every image position of the window.

Pooling lives in :mod:`.lower_pool`; its gradients (and col2im within one block) add
windows back offset by offset, as the references do, so their sums match exactly.
Halves are converted to float32 scratch first and the results rounded once. Across
im2col blocks the convolution gradients sum in another order than the reference's one
big product: equal within rounding.
"""

from __future__ import annotations

import math

from llvmlite import ir

from ..ir import dtypes as dt
from ..ir.core import Eqn
from .blas import _convert_copy, call_gemm
from .lower_loops import c64, counted_loop
from .lower_pointwise import FnContext
from .lower_types import I1, I8, I64, PTR, VOID, compute_type

__all__ = ["lower_nn", "NN_OPS", "IM2COL_ELEMENTS"]

NN_OPS = ("conv2d", "conv2d_backprop_input", "conv2d_backprop_filter", "max_pool2d",
          "avg_pool2d", "max_pool2d_select", "max_pool2d_backprop", "avg_pool2d_backprop")
IM2COL_ELEMENTS = 1 << 19


class _Geometry:
    """Image ``[n, h, w, c]``, windows ``kh x kw``, output ``[n, oh, ow, .]``."""

    def __init__(self, image, window, out_hw, params):
        self.n, self.h, self.w, self.c = image
        self.kh, self.kw = window
        self.oh, self.ow = out_hw
        self.sh, self.sw = params["strides"]
        self.pt, _, self.pl, _ = params["pads"]
        self.dh, self.dw = params.get("dilations", (1, 1))
        self.pixels = self.n * self.oh * self.ow

    @property
    def pointwise(self) -> bool:
        """A 1x1 window, stride 1, no padding: a convolution is one matrix product."""
        return (self.kh, self.kw, self.sh, self.sw, self.pt, self.pl) == (1, 1, 1, 1, 0, 0) \
            and (self.oh, self.ow) == (self.h, self.w)


def _elem(b, ptr, offset, ty):
    return b.gep(ptr, [offset], inbounds=True, source_etype=ty)


def _declare(module, name, fnty):
    try:
        return module.get_global(name)
    except KeyError:
        return ir.Function(module, fnty, name)


def _memset0(b, ptr, nbytes):
    fn = _declare(b.module, "llvm.memset.p0.i64", ir.FunctionType(VOID, [PTR, I8, I64, I1]))
    b.call(fn, [ptr, ir.Constant(I8, 0), nbytes if isinstance(nbytes, ir.Value)
                else c64(nbytes), ir.Constant(I1, 0)])


def _memcpy(b, dst, src, nbytes):
    fn = _declare(b.module, "llvm.memcpy.p0.p0.i64", ir.FunctionType(VOID, [PTR, PTR, I64, I1]))
    b.call(fn, [dst, src, c64(nbytes), ir.Constant(I1, 0)])


def _pixel(b, g: _Geometry, p):
    """(image index, output row, output column) of flat output pixel ``p``."""
    ox = b.urem(p, c64(g.ow))
    t = b.udiv(p, c64(g.ow))
    return b.udiv(t, c64(g.oh)), b.urem(t, c64(g.oh)), ox


def _position(b, g: _Geometry, p, i, j):
    """(inside the image, flat offset of channel 0) of window position (i, j) of output
    pixel p; the offset is clamped into the image when the position is padding."""
    nn, oy, ox = _pixel(b, g, p)
    iy = b.sub(b.add(b.mul(oy, c64(g.sh)), b.mul(i, c64(g.dh))), c64(g.pt))
    jx = b.sub(b.add(b.mul(ox, c64(g.sw)), b.mul(j, c64(g.dw))), c64(g.pl))
    ok = b.and_(b.and_(b.icmp_signed(">=", iy, c64(0)), b.icmp_signed("<", iy, c64(g.h))),
                b.and_(b.icmp_signed(">=", jx, c64(0)), b.icmp_signed("<", jx, c64(g.w))))
    cy = b.select(ok, iy, c64(0))
    cx = b.select(ok, jx, c64(0))
    return ok, b.mul(b.add(b.mul(b.add(b.mul(nn, c64(g.h)), cy), c64(g.w)), cx), c64(g.c))


def _offsets(b, g: _Geometry, visit):
    """``visit(i, j, k)`` for each window offset, k = i * kw + j (row-major)."""
    counted_loop(b, c64(0), c64(g.kh), lambda i: counted_loop(
        b, c64(0), c64(g.kw), lambda j: visit(i, j, b.add(b.mul(i, c64(g.kw)), j)),
        name="wj"), name="wi")


def _window_walk(b, g: _Geometry, p, visit):
    """For each window position of pixel p, in row-major order: ``visit(k, valid, src)``
    (see :func:`_position`)."""
    def at(i, j, k):
        ok, src = _position(b, g, p, i, j)
        visit(k, ok, src)
    _offsets(b, g, at)


def _offset_major_walk(b, g: _Geometry, p0, p1, visit):
    """``visit(p, k, valid, src)`` for every window offset k, then every pixel p in
    [p0, p1): the order in which the references add windows back (col2im, pooling
    gradients), so sums match them exactly."""
    def at(i, j, k):
        def pixel(p):
            ok, src = _position(b, g, p, i, j)
            visit(p, k, ok, src)
        counted_loop(b, p0, p1, pixel, name="px")
    _offsets(b, g, at)


def _with_f32(ctx: FnContext, eqn: Eqn, body) -> None:
    """Run ``body(ctx, in_ptrs, out_ptrs, dtype)`` in float32/float64; halves go through
    float32 scratch copies of every operand and result."""
    n_outs = len(eqn.outs)
    dtype = eqn.outs[0].dtype
    if not dtype.is_half:
        body(ctx, [ctx.ptrs(n_outs + i) for i in range(len(eqn.ins))],
             [ctx.ptrs(j) for j in range(n_outs)], dtype)
        return
    ins = []
    for i, v in enumerate(eqn.ins):
        scratch = ctx.malloc(v.type.size * 4)
        _convert_copy(ctx, v.shape, n_outs + i, v.dtype, "s", dt.float32, {"s": scratch})
        ins.append(scratch)
    outs = [ctx.malloc(v.type.size * 4) for v in eqn.outs]
    body(ctx, ins, outs, dt.float32)
    for j, v in enumerate(eqn.outs):
        _convert_copy(ctx, v.shape, "s", dt.float32, j, v.dtype, {"s": outs[j]})


# ---- convolutions -------------------------------------------------------------------------

def _conv_geometry(eqn: Eqn, image, filt, out):
    return _Geometry(image, filt[:2], out[1:3], eqn.params)


def _blocks(ctx, g: _Geometry, k_cols: int, ty, step):
    """Run ``step(p0, rows, cols)`` over blocks of output pixels with an im2col scratch."""
    block = max(16, min(g.pixels, IM2COL_ELEMENTS // max(1, k_cols)))
    cols = ctx.malloc(block * k_cols * (8 if ty == compute_type(dt.float64) else 4))
    b = ctx.builder
    n_blocks = math.ceil(g.pixels / block)

    def one(t):
        p0 = b.mul(t, c64(block))
        rest = b.sub(c64(g.pixels), p0)
        rows = b.select(b.icmp_signed("<", rest, c64(block)), rest, c64(block))
        step(p0, rows, cols)

    counted_loop(b, c64(0), c64(n_blocks), one, name="blk")


def _im2col(ctx, g: _Geometry, x, cols, p0, rows, ty, itemsize):
    b = ctx.builder
    k_cols = g.kh * g.kw * g.c

    def pixel(q):
        base = b.mul(q, c64(k_cols))

        def visit(k, ok, src):
            dst = _elem(b, cols, b.add(base, b.mul(k, c64(g.c))), ty)
            with b.if_else(ok) as (then, otherwise):
                with then:
                    _memcpy(b, dst, _elem(b, x, src, ty), g.c * itemsize)
                with otherwise:
                    _memset0(b, dst, g.c * itemsize)

        _window_walk(b, g, b.add(p0, q), visit)

    counted_loop(b, c64(0), rows, pixel, name="px")


def _conv2d(ctx, eqn):
    def body(ctx, ins, outs, dtype):
        x, w = ins
        (out,) = outs
        g = _conv_geometry(eqn, eqn.ins[0].shape, eqn.ins[1].shape, eqn.outs[0].shape)
        co = eqn.ins[1].shape[3]
        k_cols = g.kh * g.kw * g.c
        ty = compute_type(dtype)
        b = ctx.builder
        if g.pixels * co == 0:
            return
        if k_cols == 0:
            _memset0(b, out, g.pixels * co * dtype.itemsize)
            return
        if g.pointwise:
            call_gemm(b, dtype, g.pixels, co, g.c, x, g.c, False, w, co, False, out, co)
            return

        def step(p0, rows, cols):
            _im2col(ctx, g, x, cols, p0, rows, ty, dtype.itemsize)
            call_gemm(b, dtype, rows, co, k_cols, cols, k_cols, False, w, co, False,
                      _elem(b, out, b.mul(p0, c64(co)), ty), co)

        _blocks(ctx, g, k_cols, ty, step)

    _with_f32(ctx, eqn, body)


def _conv2d_backprop_input(ctx, eqn):
    def body(ctx, ins, outs, dtype):
        ct, w = ins
        (dx,) = outs
        g = _conv_geometry(eqn, eqn.params["input_shape"], eqn.ins[1].shape,
                           eqn.ins[0].shape)
        co = eqn.ins[1].shape[3]
        k_cols = g.kh * g.kw * g.c
        ty = compute_type(dtype)
        b = ctx.builder
        _memset0(b, dx, g.n * g.h * g.w * g.c * dtype.itemsize)
        if g.pixels * k_cols == 0 or co == 0:
            return
        if g.pointwise:
            call_gemm(b, dtype, g.pixels, g.c, co, ct, co, False, w, co, True, dx, g.c)
            return

        def step(p0, rows, cols):
            call_gemm(b, dtype, rows, k_cols, co, _elem(b, ct, b.mul(p0, c64(co)), ty), co,
                      False, w, co, True, cols, k_cols)

            def visit(p, k, ok, src):
                at = b.add(b.mul(b.sub(p, p0), c64(k_cols)), b.mul(k, c64(g.c)))
                with b.if_then(ok):
                    def add(cc):
                        d = _elem(b, dx, b.add(src, cc), ty)
                        v = b.load(_elem(b, cols, b.add(at, cc), ty), typ=ty)
                        b.store(b.fadd(b.load(d, typ=ty), v), d)
                    counted_loop(b, c64(0), c64(g.c), add, name="c")

            _offset_major_walk(b, g, p0, b.add(p0, rows), visit)

        _blocks(ctx, g, k_cols, ty, step)

    _with_f32(ctx, eqn, body)


def _conv2d_backprop_filter(ctx, eqn):
    def body(ctx, ins, outs, dtype):
        x, ct = ins
        (dw,) = outs
        g = _conv_geometry(eqn, eqn.ins[0].shape, eqn.params["filter_shape"],
                           eqn.ins[1].shape)
        co = eqn.params["filter_shape"][3]
        k_cols = g.kh * g.kw * g.c
        ty = compute_type(dtype)
        b = ctx.builder
        _memset0(b, dw, k_cols * co * dtype.itemsize)
        if g.pixels == 0 or k_cols * co == 0:
            return
        if g.pointwise:
            call_gemm(b, dtype, g.c, co, g.pixels, x, g.c, True, ct, co, False, dw, co)
            return

        def step(p0, rows, cols):
            _im2col(ctx, g, x, cols, p0, rows, ty, dtype.itemsize)
            call_gemm(b, dtype, k_cols, co, rows, cols, k_cols, True,
                      _elem(b, ct, b.mul(p0, c64(co)), ty), co, False, dw, co, beta=1.0)

        _blocks(ctx, g, k_cols, ty, step)

    _with_f32(ctx, eqn, body)


def lower_nn(ctx: FnContext, eqn: Eqn) -> None:
    name = eqn.op.name
    if name == "conv2d":
        _conv2d(ctx, eqn)
    elif name == "conv2d_backprop_input":
        _conv2d_backprop_input(ctx, eqn)
    elif name == "conv2d_backprop_filter":
        _conv2d_backprop_filter(ctx, eqn)
    else:
        from .lower_pool import lower_pool
        lower_pool(ctx, eqn)
