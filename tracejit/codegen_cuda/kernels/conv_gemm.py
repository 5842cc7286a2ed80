"""Convolutions as matrix products: im2col into scratch memory, then a GEMM (cuBLAS on
a GPU), the reference's own formulation (tracejit/ir/ops_nn.py), so the sums run in
the same order and a GPU spends its time in cuBLAS rather than in a direct loop.

* ``conv2d``: ``cols[n*oh*ow, kh*kw*c] = im2col(x)``; ``out = cols @ w[kh*kw*ci, co]``,
  written straight into the output (NHWC is that product's row-major layout);
* ``conv2d_backprop_filter``: ``dw = cols^T @ ct[n*oh*ow, co]``;
* ``conv2d_backprop_input``: ``cols = ct @ w^T`` into scratch, then col2im: each input
  element sums, in the reference's (i, j) order, the patch entries read from it.

Padding enters im2col as zeros (so ``0 * inf`` is NaN, as in the reference). Half
types keep their storage in ``cols`` (a copy, exact) and accumulate in float32 in the
product; ``backprop_input``'s intermediate would need float32 scratch for halves, and
scratch larger than ``COLS_LIMIT`` bytes is not worth it either: those cases keep the
direct kernels of nn.py.
"""

from __future__ import annotations

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ..scalars import load_expr, store_expr
from ..source import Arg, GeneratedKernel, Param, SourceWriter
from ..steps import KernelStep, Step
from . import nn
from .common import grid_stride_kernel, split_flat
from .matmul import GemmShape, gemm_step
from .nn import geometry

__all__ = ["STEP_RULES", "COLS_LIMIT"]

COLS_LIMIT = 1 << 30      # bytes of im2col scratch beyond which the direct kernel runs


class _Conv:
    """A convolution's geometry (nn.Geometry) and its product's sizes: ``rows`` patches
    of ``k`` elements, ``co`` filters."""

    def __init__(self, image, filter_shape, out_shape, params):
        self.g = geometry(image, filter_shape[:2], out_shape, params)
        self.co = filter_shape[3]
        self.rows = self.g.n * self.g.oh * self.g.ow
        self.k = self.g.kh * self.g.kw * self.g.c


def _im2col(c: _Conv, x_arg: Arg, x_dtype, scratch: tuple,
            simulating: bool) -> GeneratedKernel:
    """``cols[r, (i, j, ch)]`` = the image element patch ``r`` reads at window offset
    ``(i, j)``, channel ``ch``; zero over padding. A raw copy of the storage."""
    g = c.g

    def body(w: SourceWriter) -> None:
        split_flat(w, "f", [("b", g.n), ("oh", g.oh), ("ow", g.ow), ("i", g.kh),
                            ("j", g.kw), ("ch", g.c)])
        w.line(f"ih = oh * {g.sh} + i * {g.dh} - {g.pt}")
        w.line(f"iw = ow * {g.sw} + j * {g.dw} - {g.pl}")
        w.line(f"if 0 <= ih < {g.h} and 0 <= iw < {g.w}:")
        w.line(f"    cols[f] = x[((b * {g.h} + ih) * {g.w} + iw) * {g.c} + ch]")
        w.line("else:")
        w.line("    cols[f] = 0")
    return grid_stride_kernel("im2col", [Param("cols", x_dtype), Param("x", x_dtype)],
                              [Arg("scratch", scratch), x_arg], c.rows * c.k, simulating,
                              body, kind="nn", index="f")


def _col2im(c: _Conv, scratch: tuple, out_dtype, simulating: bool) -> GeneratedKernel:
    """Each input element sums the patch entries read from it, (i, j) row-major."""
    g = c.g
    acc = dt.float64 if out_dtype is dt.float64 else dt.float32
    conv = "F64" if acc is dt.float64 else "F32"

    def body(w: SourceWriter) -> None:
        split_flat(w, "f", [("b", g.n), ("y", g.h), ("x", g.w), ("ch", g.c)])
        w.line(f"acc = {conv}(0)")
        w.line(f"for i in range({g.kh}):")
        with w.indent():
            w.line(f"hp = y + {g.pt} - i * {g.dh}")
            w.line(f"for j in range({g.kw}):")
            with w.indent():
                w.line(f"wp = x + {g.pl} - j * {g.dw}")
                w.line(f"if hp >= 0 and wp >= 0 and hp % {g.sh} == 0 and wp % {g.sw} == 0:")
                with w.indent():
                    w.line(f"oh = hp // {g.sh}")
                    w.line(f"ow = wp // {g.sw}")
                    w.line(f"if oh < {g.oh} and ow < {g.ow}:")
                    w.line(f"    r = (b * {g.oh} + oh) * {g.ow} + ow")
                    at = f"r * {c.k} + (i * {g.kw} + j) * {g.c} + ch"
                    w.line(f"    acc = {conv}(acc + {load_expr('cols', at, acc)})")
        w.line(f"o0[f] = {store_expr('acc', out_dtype)}")
    return grid_stride_kernel("col2im", [Param("o0", out_dtype), Param("cols", acc)],
                              [Arg("out", 0), Arg("scratch", scratch)],
                              g.n * g.h * g.w * g.c, simulating, body, kind="nn", index="f")


def _too_big(c: _Conv, itemsize: int) -> bool:
    return c.rows * c.k * itemsize > COLS_LIMIT


def _direct(eqn: Eqn, simulating: bool) -> list[Step]:
    return [KernelStep(eqn, k) for k in nn.RULES[eqn.op](eqn, simulating)]


def _conv2d(eqn: Eqn, simulating: bool) -> list[Step]:
    x, wt = eqn.ins
    dtype = x.type.dtype
    c = _Conv(x.shape, wt.shape, eqn.outs[0].shape, eqn.params)
    if _too_big(c, dtype.itemsize) or 0 in (c.rows, c.k, c.co):
        return _direct(eqn, simulating)
    scratch = ("cols", c.rows * c.k, dtype)
    return [KernelStep(eqn, _im2col(c, Arg("in", 0), dtype, scratch, simulating)),
            gemm_step(eqn, GemmShape(c.rows, c.co, c.k), Arg("scratch", scratch),
                      Arg("in", 1), Arg("out", 0), dtype, dtype, simulating)]


def _backprop_filter(eqn: Eqn, simulating: bool) -> list[Step]:
    x, ct = eqn.ins
    dtype = x.type.dtype
    c = _Conv(x.shape, eqn.params["filter_shape"], ct.shape, eqn.params)
    if _too_big(c, dtype.itemsize) or 0 in (c.rows, c.k, c.co):
        return _direct(eqn, simulating)
    scratch = ("cols", c.rows * c.k, dtype)
    return [KernelStep(eqn, _im2col(c, Arg("in", 0), dtype, scratch, simulating)),
            gemm_step(eqn, GemmShape(c.k, c.co, c.rows, transpose_a=True),
                      Arg("scratch", scratch), Arg("in", 1), Arg("out", 0), dtype, dtype,
                      simulating)]


def _backprop_input(eqn: Eqn, simulating: bool) -> list[Step]:
    ct, wt = eqn.ins
    dtype = ct.type.dtype
    c = _Conv(eqn.params["input_shape"], wt.shape, ct.shape, eqn.params)
    if dtype not in (dt.float32, dt.float64) or _too_big(c, dtype.itemsize) or \
            0 in (c.rows, c.k, c.co):
        return _direct(eqn, simulating)
    scratch = ("cols", c.rows * c.k, dtype)
    return [gemm_step(eqn, GemmShape(c.rows, c.k, c.co, transpose_b=True), Arg("in", 0),
                      Arg("in", 1), Arg("scratch", scratch), dtype, dtype, simulating),
            KernelStep(eqn, _col2im(c, scratch, dtype, simulating))]


STEP_RULES = {ops.CONV2D: _conv2d, ops.CONV2D_BACKPROP_FILTER: _backprop_filter,
              ops.CONV2D_BACKPROP_INPUT: _backprop_input}


