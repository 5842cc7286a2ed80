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
from ..source import Arg, GeneratedKernel, Param, SourceWriter, kernel_source
from ..steps import KernelStep, Step
from . import nn
from .common import launch_1d
from .matmul import GemmShape, gemm_step

__all__ = ["STEP_RULES", "COLS_LIMIT"]

COLS_LIMIT = 1 << 30      # bytes of im2col scratch beyond which the direct kernel runs


class _Conv:
    def __init__(self, x_shape, w_shape, params):
        self.n, self.h, self.w, self.c = x_shape
        self.kh, self.kw, _, self.co = w_shape
        (self.sh, self.sw), (self.pt, _, self.pl, _), (self.dh, self.dw) = (
            params["strides"], params["pads"], params["dilations"])

    def out_hw(self, out_shape):
        self.oh, self.ow = out_shape[1], out_shape[2]
        self.rows = self.n * self.oh * self.ow
        self.k = self.kh * self.kw * self.c
        return self


def _im2col(c: _Conv, x_arg: Arg, x_dtype, scratch: tuple,
            simulating: bool) -> GeneratedKernel:
    total = c.rows * c.k
    params = [Param("cols", x_dtype), Param("x", x_dtype), Param("total")]
    w = SourceWriter()
    w.depth = 1
    w.line("f = cuda.grid(1)")
    w.line("step = cuda.gridsize(1)")
    w.line("while f < total:")
    with w.indent():
        w.line(f"r = f // {c.k}")
        w.line(f"q = f % {c.k}")
        w.line(f"ch = q % {c.c}")
        w.line(f"j = (q // {c.c}) % {c.kw}")
        w.line(f"i = q // {c.c * c.kw}")
        w.line(f"ow = r % {c.ow}")
        w.line(f"oh = (r // {c.ow}) % {c.oh}")
        w.line(f"b = r // {c.ow * c.oh}")
        w.line(f"ih = oh * {c.sh} + i * {c.dh} - {c.pt}")
        w.line(f"iw = ow * {c.sw} + j * {c.dw} - {c.pl}")
        w.line(f"if 0 <= ih < {c.h} and 0 <= iw < {c.w}:")
        w.line(f"    cols[f] = x[((b * {c.h} + ih) * {c.w} + iw) * {c.c} + ch]")
        w.line("else:")
        w.line("    cols[f] = 0")
        w.line("f += step")
    name, source = kernel_source("im2col", params, w.body())
    return GeneratedKernel(name, source, params,
                           [Arg("scratch", scratch), x_arg, Arg("int", total)],
                           launch_1d(total, simulating), kind="nn")


def _col2im(c: _Conv, scratch: tuple, out_dtype, simulating: bool) -> GeneratedKernel:
    """Each input element sums the patch entries read from it, (i, j) row-major."""
    total = c.n * c.h * c.w * c.c
    acc = dt.float64 if out_dtype is dt.float64 else dt.float32
    conv = "F64" if acc is dt.float64 else "F32"
    params = [Param("o0", out_dtype), Param("cols", acc), Param("total")]
    w = SourceWriter()
    w.depth = 1
    w.line("f = cuda.grid(1)")
    w.line("step = cuda.gridsize(1)")
    w.line("while f < total:")
    with w.indent():
        w.line(f"ch = f % {c.c}")
        w.line(f"x = (f // {c.c}) % {c.w}")
        w.line(f"y = (f // {c.c * c.w}) % {c.h}")
        w.line(f"b = f // {c.c * c.w * c.h}")
        w.line(f"acc = {conv}(0)")
        w.line(f"for i in range({c.kh}):")
        with w.indent():
            w.line(f"hp = y + {c.pt} - i * {c.dh}")
            w.line(f"for j in range({c.kw}):")
            with w.indent():
                w.line(f"wp = x + {c.pl} - j * {c.dw}")
                w.line(f"if hp >= 0 and wp >= 0 and hp % {c.sh} == 0 and wp % {c.sw} == 0:")
                with w.indent():
                    w.line(f"oh = hp // {c.sh}")
                    w.line(f"ow = wp // {c.sw}")
                    w.line(f"if oh < {c.oh} and ow < {c.ow}:")
                    w.line(f"    r = (b * {c.oh} + oh) * {c.ow} + ow")
                    at = f"r * {c.k} + (i * {c.kw} + j) * {c.c} + ch"
                    w.line(f"    acc = {conv}(acc + {load_expr('cols', at, acc)})")
        w.line(f"o0[f] = {store_expr('acc', out_dtype)}")
        w.line("f += step")
    name, source = kernel_source("col2im", params, w.body())
    return GeneratedKernel(name, source, params,
                           [Arg("out", 0), Arg("scratch", scratch), Arg("int", total)],
                           launch_1d(total, simulating), kind="nn")


def _too_big(c: _Conv, itemsize: int) -> bool:
    return c.rows * c.k * itemsize > COLS_LIMIT


def _direct(eqn: Eqn, simulating: bool) -> list[Step]:
    return [KernelStep(eqn, k) for k in nn.RULES[eqn.op](eqn, simulating)]


def _conv2d(eqn: Eqn, simulating: bool) -> list[Step]:
    x, wt = eqn.ins
    dtype = x.type.dtype
    c = _Conv(x.shape, wt.shape, eqn.params).out_hw(eqn.outs[0].shape)
    if _too_big(c, dtype.itemsize) or 0 in (c.rows, c.k, c.co):
        return _direct(eqn, simulating)
    scratch = ("cols", c.rows * c.k, dtype)
    return [KernelStep(eqn, _im2col(c, Arg("in", 0), dtype, scratch, simulating)),
            gemm_step(eqn, GemmShape(c.rows, c.co, c.k), Arg("scratch", scratch),
                      Arg("in", 1), Arg("out", 0), dtype, dtype, simulating)]


def _backprop_filter(eqn: Eqn, simulating: bool) -> list[Step]:
    x, ct = eqn.ins
    dtype = x.type.dtype
    c = _Conv(x.shape, eqn.params["filter_shape"], eqn.params).out_hw(ct.shape)
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
    c = _Conv(eqn.params["input_shape"], wt.shape, eqn.params).out_hw(ct.shape)
    if dtype not in (dt.float32, dt.float64) or _too_big(c, dtype.itemsize) or \
            0 in (c.rows, c.k, c.co):
        return _direct(eqn, simulating)
    scratch = ("cols", c.rows * c.k, dtype)
    return [gemm_step(eqn, GemmShape(c.rows, c.k, c.co, transpose_b=True), Arg("in", 0),
                      Arg("in", 1), Arg("scratch", scratch), dtype, dtype, simulating),
            KernelStep(eqn, _col2im(c, scratch, dtype, simulating))]


STEP_RULES = {ops.CONV2D: _conv2d, ops.CONV2D_BACKPROP_FILTER: _backprop_filter,
              ops.CONV2D_BACKPROP_INPUT: _backprop_input}


