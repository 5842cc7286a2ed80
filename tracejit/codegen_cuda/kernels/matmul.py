"""Matrix products: cuBLAS on a GPU, a shared-memory tiled kernel everywhere else.

``matmul`` becomes a :class:`~..steps.GemmStep`. The program calls cuBLAS for float
types when the batch broadcast is expressible as strides (every batched product of
the graphs tracejit traces); integer products, odd broadcasts and the simulator use
the generated kernel: ``T x T`` output tiles per block, the operands staged through
shared memory ``T`` columns at a time, accumulators in float32 (halves), float64 or
int64 (wrapped once at the end, which equals wrapping each step).

A ``matmul_epilogue`` kernel is the product into scratch memory followed by one
elementwise kernel over the result (bias, activation, the optimizer's update), which
reads the product as a leaf.
"""

from __future__ import annotations

import math

from ...ir import dtypes as dt
from ...ir.core import Eqn, Graph
from ...ir.opdef import Tag
from ..point import Index, PointEmitter
from ..scalars import load_expr, round_op_result, store_expr, type_name
from ..source import Arg, GeneratedKernel, Launch, Param, SourceWriter, kernel_source
from ..steps import GemmStep, KernelStep, Step
from .common import MAX_GRID
from .elementwise import elementwise_kernel

__all__ = ["matmul_steps", "matmul_epilogue_steps", "tiled_matmul_kernel", "TILE",
           "SIM_TILE"]

TILE, SIM_TILE = 16, 4


def _acc(dtype):
    if dtype.is_float:
        return dt.float64 if dtype is dt.float64 else dt.float32
    return dt.int64


class _Shape:
    def __init__(self, a, b, out, p):
        ta, tb = p.get("transpose_a", False), p.get("transpose_b", False)
        self.ta, self.tb = ta, tb
        self.m, self.n = out.shape[-2], out.shape[-1]
        self.k = a.shape[-2] if ta else a.shape[-1]
        self.batch_shape = tuple(out.shape[:-2])
        self.batch = math.prod(self.batch_shape)
        self.a_batch, self.b_batch = tuple(a.shape[:-2]), tuple(b.shape[:-2])

    def stride(self, shape, matrix: int) -> int | None:
        """The batch stride of an operand, or None when its broadcast is partial."""
        size = math.prod(shape)
        if size == 1:
            return 0
        padded = (1,) * (len(self.batch_shape) - len(shape)) + tuple(shape)
        return matrix if padded == self.batch_shape else None


def tiled_matmul_kernel(eqn: Eqn, simulating: bool, out_arg: Arg,
                        out_dtype) -> GeneratedKernel:
    a, b = eqn.ins
    out = eqn.outs[0]
    s = _Shape(a, b, out, eqn.params)
    t = SIM_TILE if simulating else TILE
    dtype = a.type.dtype
    acc = _acc(dtype)
    tiles_m, tiles_n = math.ceil(s.m / t), math.ceil(s.n / t)
    params = [Param("c", out_dtype), Param("a", dtype), Param("b", dtype)]
    args = [out_arg, Arg("in", 0), Arg("in", 1)]
    w = SourceWriter()
    w.depth = 1
    w.line(f"sa = cuda.shared.array(({t}, {t}), {type_name(acc)})")
    w.line(f"sb = cuda.shared.array(({t}, {t}), {type_name(acc)})")
    w.line(f"tx = cuda.threadIdx.x % {t}")
    w.line(f"ty = cuda.threadIdx.x // {t}")
    w.line("blk = cuda.blockIdx.x")
    w.line(f"while blk < {s.batch * tiles_m * tiles_n}:")
    with w.indent():
        w.line(f"bt = blk // {tiles_m * tiles_n}")
        w.line(f"rem = blk % {tiles_m * tiles_n}")
        w.line(f"i = (rem // {tiles_n}) * {t} + ty")
        w.line(f"j = (rem % {tiles_n}) * {t} + tx")
        em = PointEmitter(w, None, {})
        batch = Index(s.batch_shape, flat="bt")
        a_off = em.flat(em.broadcast(batch, s.a_batch)) if s.a_batch else "0"
        b_off = em.flat(em.broadcast(batch, s.b_batch)) if s.b_batch else "0"
        w.line(f"oa = {a_off} * {s.m * s.k}")
        w.line(f"ob = {b_off} * {s.k * s.n}")
        w.line(f"acc = {'F64' if acc is dt.float64 else 'F32' if acc.is_float else 'I64'}(0)")
        w.line(f"for k0 in range(0, {s.k}, {t}):")
        with w.indent():
            ka, kb = "k0 + tx", "k0 + ty"
            a_at = f"oa + ({ka}) * {s.m} + i" if s.ta else f"oa + i * {s.k} + {ka}"
            b_at = f"ob + j * {s.k} + {kb}" if s.tb else f"ob + ({kb}) * {s.n} + j"
            zero = "0"
            w.line(f"if i < {s.m} and {ka} < {s.k}:")
            w.line(f"    sa[ty, tx] = {load_expr('a', a_at, dtype)}")
            w.line("else:")
            w.line(f"    sa[ty, tx] = {zero}")
            w.line(f"if j < {s.n} and {kb} < {s.k}:")
            w.line(f"    sb[ty, tx] = {load_expr('b', b_at, dtype)}")
            w.line("else:")
            w.line(f"    sb[ty, tx] = {zero}")
            w.line("cuda.syncthreads()")
            w.line(f"for q in range({t}):")
            conv = "F64" if acc is dt.float64 else "F32" if acc.is_float else "I64"
            w.line(f"    acc = {conv}(acc + sa[ty, q] * sb[q, tx])")
            w.line("cuda.syncthreads()")
        w.line(f"if i < {s.m} and j < {s.n}:")
        value = round_op_result("acc", out_dtype) if out_dtype is not acc else "acc"
        w.line(f"    c[bt * {s.m * s.n} + i * {s.n} + j] = {store_expr(value, out_dtype)}")
        w.line("blk += cuda.gridDim.x")
    name, source = kernel_source("matmul", params, w.body())
    blocks = s.batch * tiles_m * tiles_n
    grid = 1 if simulating else max(1, min(MAX_GRID, blocks))
    return GeneratedKernel(name, source, params, args, Launch(grid, t * t), kind="matmul")


def _gemm(eqn: Eqn, simulating: bool, out_arg: Arg, scratch=None) -> GemmStep:
    a, b = eqn.ins
    out = eqn.outs[0]
    s = _Shape(a, b, out, eqn.params)
    return GemmStep(eqn, Arg("in", 0), Arg("in", 1), out_arg, s.m, s.n, s.k, s.batch,
                    s.stride(s.a_batch, s.m * s.k), s.stride(s.b_batch, s.k * s.n),
                    s.m * s.n, s.ta, s.tb,
                    tiled_matmul_kernel(eqn, simulating, out_arg, out.type.dtype),
                    scratch_out=scratch)


def matmul_steps(eqn: Eqn, simulating: bool) -> list[Step]:
    return [_gemm(eqn, simulating, Arg("out", 0))]


def matmul_epilogue_steps(eqn: Eqn, body: Graph, simulating: bool) -> list[Step]:
    """The product of the body's one matmul into scratch, then the epilogue over it."""
    (mm,) = [e for e in body.eqns if e.op.has(Tag.LINALG)]
    position = {id(v): k for k, v in enumerate(body.inputs)}
    product = mm.outs[0]
    count = math.prod(product.shape)
    scratch = ("mm", count, product.type.dtype)
    inner = Eqn(mm.op, mm.ins, mm.outs, mm.params)
    gemm = _gemm(inner, simulating, Arg("scratch", scratch), scratch)
    # the matmul's operands are kernel inputs: name them as the outer equation's
    gemm.a, gemm.b = (Arg("in", position[id(v)]) for v in mm.ins)
    gemm.fallback.args[1:3] = [gemm.a, gemm.b]
    gemm.eqn = eqn
    epilogue = elementwise_kernel(body, simulating, stem="epilogue", extra_leaves={
        id(product): ("m0", Arg("scratch", scratch), product.type.dtype)})
    return [gemm, KernelStep(eqn, epilogue)]
