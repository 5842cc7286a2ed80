"""Matrix products: cuBLAS on a GPU, a shared-memory tiled kernel everywhere else.

``matmul`` becomes a :class:`~..steps.GemmStep`. The program calls cuBLAS for float
types when the batch broadcast is expressible as strides (every batched product of
the graphs tracejit traces); integer products, odd broadcasts and the simulator use
the generated kernel: ``T x T`` output tiles per block, the operands staged through
shared memory ``T`` columns at a time, accumulators in float32 (halves), float64 or
int64 (wrapped once at the end, which equals wrapping each step). The simulator runs a
barrier-free thread-per-output kernel instead (same summation order, same bits), since
a simulated barrier switches every thread; tests run the tiled one there too.

A ``matmul_epilogue`` kernel is the product into scratch memory followed by one
elementwise kernel over the result (bias, activation, the optimizer's update), which
reads the product as a leaf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...ir import dtypes as dt
from ...ir.core import Eqn, Graph
from ...ir.opdef import Tag
from ..point import Index, PointEmitter
from ..scalars import load_expr, round_op_result, store_expr, type_name
from ..source import Arg, GeneratedKernel, Launch, Param, SourceWriter, kernel_source
from ..steps import GemmStep, KernelStep, Step
from .common import MAX_GRID, grid_stride_kernel, split_flat
from .elementwise import elementwise_kernel

__all__ = ["matmul_steps", "matmul_epilogue_steps", "tiled_matmul_kernel", "gemm_step",
           "GemmShape", "TILE", "SIM_TILE"]

TILE, SIM_TILE = 16, 4
# Whether the simulator runs the tiled kernel (tests set it) or the barrier-free one.
SIM_TILED = [False]


def _acc(dtype):
    if dtype.is_float:
        return dt.float64 if dtype is dt.float64 else dt.float32
    return dt.int64


@dataclass(frozen=True)
class GemmShape:
    """``out[b] = op(a[b]) @ op(b[b])``: sizes, transposes and batch shapes (the
    operands' batch shapes broadcast to ``batch_shape``)."""

    m: int
    n: int
    k: int
    transpose_a: bool = False
    transpose_b: bool = False
    batch_shape: tuple[int, ...] = ()
    a_batch: tuple[int, ...] = ()
    b_batch: tuple[int, ...] = ()

    @classmethod
    def of(cls, eqn: Eqn) -> GemmShape:
        a, b = eqn.ins
        out, p = eqn.outs[0], eqn.params
        ta, tb = p.get("transpose_a", False), p.get("transpose_b", False)
        return cls(out.shape[-2], out.shape[-1], a.shape[-2] if ta else a.shape[-1], ta, tb,
                   tuple(out.shape[:-2]), tuple(a.shape[:-2]), tuple(b.shape[:-2]))

    @property
    def batch(self) -> int:
        return math.prod(self.batch_shape)

    def stride(self, shape, matrix: int) -> int | None:
        """The batch stride of an operand, or None when its broadcast is partial."""
        if math.prod(shape) == 1:
            return 0
        padded = (1,) * (len(self.batch_shape) - len(shape)) + tuple(shape)
        return matrix if padded == self.batch_shape else None


def _offsets(w: SourceWriter, s: GemmShape) -> None:
    em = PointEmitter(w, None, {})
    batch = Index(s.batch_shape, flat="bt")
    a_off = em.flat(em.broadcast(batch, s.a_batch)) if s.a_batch else "0"
    b_off = em.flat(em.broadcast(batch, s.b_batch)) if s.b_batch else "0"
    w.line(f"oa = {a_off} * {s.m * s.k}")
    w.line(f"ob = {b_off} * {s.k * s.n}")


def _operand_at(s: GemmShape, i: str, j: str, k: str) -> tuple[str, str]:
    a_at = f"oa + ({k}) * {s.m} + {i}" if s.transpose_a else f"oa + {i} * {s.k} + {k}"
    b_at = f"ob + {j} * {s.k} + {k}" if s.transpose_b else f"ob + ({k}) * {s.n} + {j}"
    return a_at, b_at


def dot_matmul_kernel(s: GemmShape, dtype, out_dtype, args: list[Arg],
                      simulating: bool) -> GeneratedKernel:
    """A thread per output element, a serial dot product: no barriers, which is what the
    simulator runs fastest (each barrier switches every simulated thread). It sums in
    the tiled kernel's order (k ascending), so both give the same bits."""
    acc = _acc(dtype)
    conv = "F64" if acc is dt.float64 else "F32" if acc.is_float else "I64"
    params = [Param("c", out_dtype), Param("a", dtype), Param("b", dtype)]

    def dot(w: SourceWriter) -> None:
        split_flat(w, "f", [("bt", s.batch), ("i", s.m), ("j", s.n)])
        _offsets(w, s)
        w.line(f"acc = {conv}(0)")
        a_at, b_at = _operand_at(s, "i", "j", "q")
        w.line(f"for q in range({s.k}):")
        w.line(f"    acc = {conv}(acc + {conv}({load_expr('a', a_at, dtype)}) * "
               f"{conv}({load_expr('b', b_at, dtype)}))")
        value = round_op_result("acc", out_dtype) if out_dtype is not acc else "acc"
        w.line(f"c[f] = {store_expr(value, out_dtype)}")
    return grid_stride_kernel("matmul_dot", params, list(args), s.batch * s.m * s.n,
                              simulating, dot, kind="matmul", index="f")


def tiled_matmul_kernel(s: GemmShape, dtype, out_dtype, args: list[Arg],
                        simulating: bool) -> GeneratedKernel:
    """The generated product kernel; ``args`` are (out, a, b)."""
    if simulating and not SIM_TILED[0]:
        return dot_matmul_kernel(s, dtype, out_dtype, args, simulating)
    t = SIM_TILE if simulating else TILE
    acc = _acc(dtype)
    conv = "F64" if acc is dt.float64 else "F32" if acc.is_float else "I64"
    tiles_m, tiles_n = math.ceil(s.m / t), math.ceil(s.n / t)
    params = [Param("c", out_dtype), Param("a", dtype), Param("b", dtype)]
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
        _offsets(w, s)
        w.line(f"acc = {conv}(0)")
        w.line(f"for k0 in range(0, {s.k}, {t}):")
        with w.indent():
            ka, kb = "k0 + tx", "k0 + ty"
            a_at, _ = _operand_at(s, "i", "j", ka)
            _, b_at = _operand_at(s, "i", "j", kb)
            w.line(f"if i < {s.m} and {ka} < {s.k}:")
            w.line(f"    sa[ty, tx] = {load_expr('a', a_at, dtype)}")
            w.line("else:")
            w.line("    sa[ty, tx] = 0")
            w.line(f"if j < {s.n} and {kb} < {s.k}:")
            w.line(f"    sb[ty, tx] = {load_expr('b', b_at, dtype)}")
            w.line("else:")
            w.line("    sb[ty, tx] = 0")
            w.line("cuda.syncthreads()")
            w.line(f"for q in range({t}):")
            w.line(f"    acc = {conv}(acc + sa[ty, q] * sb[q, tx])")
            w.line("cuda.syncthreads()")
        w.line(f"if i < {s.m} and j < {s.n}:")
        value = round_op_result("acc", out_dtype) if out_dtype is not acc else "acc"
        w.line(f"    c[bt * {s.m * s.n} + i * {s.n} + j] = {store_expr(value, out_dtype)}")
        w.line("blk += cuda.gridDim.x")
    name, source = kernel_source("matmul", params, w.body())
    blocks = s.batch * tiles_m * tiles_n
    grid = 1 if simulating else max(1, min(MAX_GRID, blocks))
    return GeneratedKernel(name, source, params, list(args), Launch(grid, t * t),
                           kind="matmul")


def gemm_step(eqn: Eqn, s: GemmShape, a: Arg, b: Arg, out: Arg, dtype, out_dtype,
              simulating: bool) -> GemmStep:
    """A product as a step: cuBLAS on a GPU where it can, else the tiled kernel."""
    return GemmStep(eqn, a, b, out, s.m, s.n, s.k, s.batch,
                    s.stride(s.a_batch, s.m * s.k), s.stride(s.b_batch, s.k * s.n),
                    s.m * s.n, s.transpose_a, s.transpose_b,
                    tiled_matmul_kernel(s, dtype, out_dtype, [out, a, b], simulating),
                    dtype, out_dtype)


def matmul_steps(eqn: Eqn, simulating: bool) -> list[Step]:
    dtype = eqn.ins[0].type.dtype
    return [gemm_step(eqn, GemmShape.of(eqn), Arg("in", 0), Arg("in", 1), Arg("out", 0),
                      dtype, eqn.outs[0].type.dtype, simulating)]


def matmul_epilogue_steps(eqn: Eqn, body: Graph, simulating: bool) -> list[Step]:
    """The product of the body's one matmul into scratch, then the epilogue over it."""
    (mm,) = [e for e in body.eqns if e.op.has(Tag.LINALG)]
    position = {id(v): k for k, v in enumerate(body.inputs)}
    product = mm.outs[0]
    count = math.prod(product.shape)
    scratch = ("mm", count, product.type.dtype)
    # the matmul's operands are kernel inputs: named as the outer equation's
    a, b = (Arg("in", position[id(v)]) for v in mm.ins)
    gemm = gemm_step(eqn, GemmShape.of(mm), a, b, Arg("scratch", scratch),
                     mm.ins[0].type.dtype, product.type.dtype, simulating)
    epilogue = elementwise_kernel(body, simulating, stem="epilogue", extra_leaves={
        id(product): ("m0", Arg("scratch", scratch), product.type.dtype)})
    return [gemm, KernelStep(eqn, epilogue)]
