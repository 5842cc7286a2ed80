"""A gemm emitted into the program's own module: standalone code's replacement for cblas.

``call_own_gemm`` has cblas's meaning (row-major ``C = op(A) @ op(B) + beta * C``) and
calls ``tj_own_gemm_<dtype>_<NN|NT|TN|TT>``, a function with run-time sizes defined
once per module (internal linkage: two libraries built ahead of time never clash), so
code built with ``standalone_code`` (host/standalone.py) links to no BLAS.

The loop orders keep the innermost loop on contiguous memory, where LLVM vectorizes it:

* ``B`` not transposed: ``i, k, j`` -- a row of C accumulates ``A[i, k] * B[k, :]``;
* ``B`` transposed: ``i, j, k`` -- a dot product of a row of ``op(A)`` and a row of
  ``B`` (a vectorized reduction under the ``reassoc`` fast-math flag).

No packing and no register tiles: the products of the small models one builds ahead of
time sit in cache, and the register-tiled code of tiles.py still serves convolutions
where the target has AVX-512.
"""

from __future__ import annotations

from llvmlite import ir

from ...ir import dtypes as dt
from ..kernels.elementwise_ops import fm
from ..loops.loops import c64, counted_loop
from ..loops.types import F32, F64, I64, PTR, VOID, compute_type, load, store, zero

__all__ = ["call_own_gemm"]


def _name(dtype, trans_a: bool, trans_b: bool) -> str:
    return f"tj_own_gemm_{dtype.name}_{'T' if trans_a else 'N'}{'T' if trans_b else 'N'}"


def _signature(dtype) -> ir.FunctionType:
    ft = F32 if dtype is dt.float32 else F64
    # m, n, k, a, lda, b, ldb, c, ldc, beta
    return ir.FunctionType(VOID, [I64, I64, I64, PTR, I64, PTR, I64, PTR, I64, ft])


def _define(module: ir.Module, dtype, trans_a: bool, trans_b: bool) -> ir.Function:
    name = _name(dtype, trans_a, trans_b)
    if name in module.globals:
        return module.globals[name]
    fn = ir.Function(module, _signature(dtype), name)
    fn.linkage = "internal"
    m, n, k, a, lda, bp, ldb, c, ldc, beta = fn.args
    for ptr in (a, bp, c):
        ptr.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ty = compute_type(dtype)
    flags = fm(dtype)
    acc = b.alloca(ty)          # a dot product's sum: in the entry block, so a register

    def a_at(i, kk):
        return b.add(b.mul(kk, lda), i) if trans_a else b.add(b.mul(i, lda), kk)

    def scale_row(c_row):
        """C[i, :] = beta * C[i, :] (zeros for beta == 0, never reading C: it may be
        uninitialized memory holding NaNs)."""
        is_zero = b.fcmp_ordered("==", beta, zero(ty))
        is_one = b.fcmp_ordered("==", beta, ir.Constant(ty, 1.0))
        with b.if_else(is_zero) as (then, otherwise):
            with then:
                counted_loop(b, c64(0), n, lambda j: store(b, zero(ty), c, b.add(c_row, j),
                                                           dtype), name="z")
            with otherwise:
                with b.if_then(b.not_(is_one)):
                    def scale(j):
                        at = b.add(c_row, j)
                        store(b, b.fmul(load(b, c, at, dtype), beta, flags=flags), c, at,
                              dtype)
                    counted_loop(b, c64(0), n, scale, name="s")

    def row_by_columns(i):
        c_row = b.mul(i, ldc)
        scale_row(c_row)

        def step(kk):
            aik = load(b, a, a_at(i, kk), dtype)
            b_row = b.mul(kk, ldb)

            def col(j):
                at = b.add(c_row, j)
                prod = b.fmul(aik, load(b, bp, b.add(b_row, j), dtype), flags=flags)
                store(b, b.fadd(load(b, c, at, dtype), prod, flags=flags), c, at, dtype)

            counted_loop(b, c64(0), n, col, name="j")

        counted_loop(b, c64(0), k, step, name="k")

    def row_by_dots(i):
        c_row = b.mul(i, ldc)
        keep = b.fcmp_ordered("!=", beta, zero(ty))

        def col(j):
            b_row = b.mul(j, ldb)
            b.store(zero(ty), acc)

            def step(kk):
                prod = b.fmul(load(b, a, a_at(i, kk), dtype),
                              load(b, bp, b.add(b_row, kk), dtype), flags=flags)
                b.store(b.fadd(b.load(acc), prod, flags=flags), acc)

            counted_loop(b, c64(0), k, step, name="k")
            at = b.add(c_row, j)
            with b.if_then(keep):       # C is read only when beta says so
                old = b.fmul(load(b, c, at, dtype), beta, flags=flags)
                b.store(b.fadd(b.load(acc), old, flags=flags), acc)
            store(b, b.load(acc), c, at, dtype)

        counted_loop(b, c64(0), n, col, name="j")

    counted_loop(b, c64(0), m, row_by_dots if trans_b else row_by_columns, name="i")
    b.ret_void()
    return fn


def call_own_gemm(b: ir.IRBuilder, dtype, m, n, k, a, lda, trans_a: bool, bp, ldb,
                  trans_b: bool, c, ldc, beta: float = 0.0) -> None:
    """Emit ``C = op(A) @ op(B) + beta * C`` (float32 or float64; sizes and leading
    dimensions ints or i64 values) as a call of the module's own gemm."""
    fn = _define(b.module, dtype, trans_a, trans_b)
    ft = F32 if dtype is dt.float32 else F64
    as_i64 = [x if isinstance(x, ir.Value) else c64(x) for x in (m, n, k, lda, ldb, ldc)]
    m, n, k, lda, ldb, ldc = as_i64
    b.call(fn, [m, n, k, a, lda, bp, ldb, c, ldc, ir.Constant(ft, beta)])
