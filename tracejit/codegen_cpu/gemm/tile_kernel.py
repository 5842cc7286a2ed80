"""The register-tiled gemm as one runtime function per dtype, compiled once per process.

``tj_tile_gemm_f32(m, n, k, a, a_row, a_k, b, ldb, c, ldc, accumulate)`` computes
``C[i, j] (+)= sum_k A[i * a_row + k * a_k] * B[k * ldb + j]`` (``C[i, j]`` at
``c + i * ldc + j``) with tiles.py's scheme -- ``R x 4``-vector tiles whose
sums stay in registers through the ``k`` loop, no packing -- but every size and stride
is an argument, and the last column tile is masked at run time. Programs call it like
BLAS (``blas.call_gemm``, one row block per thread), so its code is compiled once per
process and kept in the compile cache, not once per matmul: copies of the tile code
in every gemm had made compiling the W4 step take 0.44 s instead of 0.25.

Only for hosts with AVX-512 (see ``lower_tilegemm.tile_gemm_available``).
"""

from __future__ import annotations

import threading

import llvmlite.binding as llvm
from llvmlite import ir

from ...ir import dtypes as dt
from ..host.cache import runtime_library
from ..loops.loops import c64, counted_loop
from ..loops.types import I1, I64, PTR, VOID, declare
from .tiles import MAX_VECTORS, VectorOps, rows_for, tile_block

__all__ = ["TILE_GEMM", "call_tile_gemm", "ensure_tile_gemm", "tile_gemm_module"]

TILE_GEMM = {dt.float32: "tj_tile_gemm_f32", dt.float64: "tj_tile_gemm_f64"}
VERSION = 1
SIGNATURE = ir.FunctionType(VOID, [I64, I64, I64, PTR, I64, I64, PTR, I64, PTR, I64, I64])


class _Kernel:
    def __init__(self, module: ir.Module, dtype):
        self.v = v = VectorOps(module, dtype)
        self.fn = ir.Function(module, SIGNATURE, TILE_GEMM[dtype])
        (self.m, self.n, self.k, self.a, self.a_row, self.a_k, self.bp, self.ldb, self.c,
         self.ldc, accumulate) = self.fn.args
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.accumulate = self.b.icmp_unsigned("!=", accumulate, c64(0))
        self.iota = ir.Constant(ir.VectorType(I64, v.lanes), list(range(v.lanes)))
        self.splat_i64 = lambda x: self.b.shuffle_vector(
            self.b.insert_element(ir.Constant(ir.VectorType(I64, v.lanes), ir.Undefined), x,
                                  ir.Constant(ir.IntType(32), 0)),
            ir.Constant(ir.VectorType(I64, v.lanes), ir.Undefined),
            ir.Constant(ir.VectorType(ir.IntType(32), v.lanes), [0] * v.lanes))

    def tile(self, rows: int, m0, n0, masks) -> None:
        """``rows x MAX_VECTORS`` vectors of C at (``m0``, ``n0``); ``masks`` per vector
        (None: whole vectors)."""
        v = self.v
        widths = [v.lanes if mask is None else mask for mask in masks]
        tile_block(self.b, v, rows, widths, m0, n0, self.k, self.a, self.a_row, self.a_k,
              self.bp, self.ldb, self.c, self.ldc, self.accumulate)

    def column(self, n0, masks) -> None:
        """Every row of the column tile at ``n0``: tiles of R rows, then single rows."""
        b = self.b
        rows = rows_for(MAX_VECTORS)
        full = b.udiv(self.m, c64(rows))
        counted_loop(b, c64(0), full, lambda t: self.tile(rows, b.mul(t, c64(rows)), n0, masks),
                     name="mt")
        counted_loop(b, b.mul(full, c64(rows)), self.m, lambda i: self.tile(1, i, n0, masks),
                     name="mr")

    def emit(self) -> None:
        b, v = self.b, self.v
        span = MAX_VECTORS * v.lanes
        whole = b.udiv(self.n, c64(span))
        counted_loop(b, c64(0), whole, lambda j: self.column(b.mul(j, c64(span)),
                                                             [None] * MAX_VECTORS), name="nt")
        n0 = b.mul(whole, c64(span))
        rest = b.sub(self.n, n0)
        with b.if_then(b.icmp_signed(">", rest, c64(0))):
            masks = []
            for j in range(MAX_VECTORS):
                left = b.sub(rest, c64(j * v.lanes))
                masks.append(b.icmp_signed("<", self.iota, self.splat_i64(left)))
            assert all(m.type == ir.VectorType(I1, v.lanes) for m in masks)
            self.column(n0, masks)
        b.ret_void()


def call_tile_gemm(b: ir.IRBuilder, dtype, m, n, k, a, a_row, a_k, bp, ldb, c, ldc, *,
                   accumulate: bool = False) -> None:
    """Emit a call of the kernel: ``C[i, j] (+)= sum_k A[i*a_row + k*a_k] * B[k*ldb + j]``
    (sizes and strides ints or i64 values)."""
    ensure_tile_gemm()
    kernel = declare(b.module, TILE_GEMM[dtype], SIGNATURE)
    b.call(kernel, [*(x if isinstance(x, ir.Value) else c64(x) for x in (m, n, k)), a,
                    *(x if isinstance(x, ir.Value) else c64(x) for x in (a_row, a_k)), bp,
                    c64(ldb) if isinstance(ldb, int) else ldb, c,
                    c64(ldc) if isinstance(ldc, int) else ldc, c64(int(accumulate))])


def tile_gemm_module(module: ir.Module) -> ir.Module:
    for dtype in TILE_GEMM:
        _Kernel(module, dtype).emit()
    return module


_LOCK = threading.Lock()
_LOADED: list = []


def ensure_tile_gemm() -> None:
    """Compile (or load from the compile cache) the kernels once per process and make
    their symbols visible to programs."""
    with _LOCK:
        if _LOADED:
            return
        engine, address = runtime_library(f"tj_tile_gemm v{VERSION}", tile_gemm_module)
        for name in TILE_GEMM.values():
            llvm.add_symbol(name, address(name))
        _LOADED.append(engine)
