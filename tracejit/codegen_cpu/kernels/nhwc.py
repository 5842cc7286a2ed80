"""NHWC images for the convolution and pooling kernels: the geometry of a windowed op
over ``[n, h, w, c]`` images, pixel arithmetic, memory helpers, and float32 scratch for
half-precision operands (conv.py, pool.py)."""

from __future__ import annotations

from llvmlite import ir

from ...ir import dtypes as dt
from ...ir.core import Eqn
from ..loops.loops import c64
from ..loops.pointwise import FnContext, convert_copy
from ..loops.types import I1, I8, I64, PTR, VOID, declare

__all__ = ["Geometry", "elem", "memset0", "memcpy", "tagged_load", "tagged_store", "smin",
           "pixel", "inside", "with_float32"]


class Geometry:
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

    @property
    def k_cols(self) -> int:
        return self.kh * self.kw * self.c


def elem(b, ptr, offset, ty):
    return b.gep(ptr, [offset], inbounds=True, source_etype=ty)


def memset0(b, ptr, nbytes, byte: int = 0):
    """``nbytes`` bytes at ``ptr`` set to ``byte`` (zero unless given)."""
    fn = declare(b.module, "llvm.memset.p0.i64", ir.FunctionType(VOID, [PTR, I8, I64, I1]))
    b.call(fn, [ptr, ir.Constant(I8, byte & 0xFF), nbytes if isinstance(nbytes, ir.Value)
                else c64(nbytes), ir.Constant(I1, 0)])


def memcpy(b, dst, src, nbytes):
    fn = declare(b.module, "llvm.memcpy.p0.p0.i64", ir.FunctionType(VOID, [PTR, PTR, I64, I1]))
    b.call(fn, [dst, src, c64(nbytes), ir.Constant(I1, 0)])


def tagged_load(b, ptr, ty, loops):
    """A load in a loop marked parallel (it vectorizes without runtime alias checks)."""
    instr = b.load(ptr, typ=ty)
    instr.set_metadata("llvm.access.group", loops.group)
    return instr


def tagged_store(b, value, ptr, loops):
    b.store(value, ptr).set_metadata("llvm.access.group", loops.group)


def smin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def pixel(b, g: Geometry, p):
    """(image index, output row, output column) of flat output pixel ``p``."""
    ox = b.urem(p, c64(g.ow))
    t = b.udiv(p, c64(g.ow))
    return b.udiv(t, c64(g.oh)), b.urem(t, c64(g.oh)), ox


def inside(b, v, size):
    return b.and_(b.icmp_signed(">=", v, c64(0)), b.icmp_signed("<", v, c64(size)))


def with_float32(ctx: FnContext, eqn: Eqn, body) -> None:
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
        convert_copy(ctx, v.shape, n_outs + i, v.dtype, "s", dt.float32, {"s": scratch})
        ins.append(scratch)
    outs = [ctx.malloc(v.type.size * 4) for v in eqn.outs]
    body(ctx, ins, outs, dt.float32)
    for j, v in enumerate(eqn.outs):
        convert_copy(ctx, v.shape, "s", dt.float32, j, v.dtype, {"s": outs[j]})
