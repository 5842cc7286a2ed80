"""The packed kernels in generated code: B packed once, row blocks of A shared by threads.

``C = op(A) @ op(B)`` for int8 or uint8 operands and an int32 C (int8_matmul), or
bfloat16 operands and a float32 C (a bfloat16 matmul where the host's measurement chose
the kernel: blas.py), with np.matmul's batch broadcasting. The kernel (int8_kernels.py)
reads A through strides, so a transposed A costs nothing; B, transposed or not, is
packed into the kernel's layout once per distinct matrix (a right operand without
batch: once for the whole product). A product of enough work is cut into blocks of
``ROW_BLOCK`` rows of C that the threads share (tracejit's pool), each calling the
kernel on its rows.
"""

from __future__ import annotations

import math

from ..loops.loops import c64, each_batch_matrix, one_tall_product
from ..loops.pointwise import FnContext
from ..loops.types import I32
from ..parallel.parallel_for import emit_parallel_for, inside_parallel_body
from ..parallel.settings import should_parallelize
from .int8_kernels import choose_variant, emit_gemm_call, emit_pack_call
from .int8_tiles import Variant, packed_bytes, source_type

__all__ = ["emit_int8_matmul", "emit_packed_matmul", "emit_int8_rows", "ROW_BLOCK",
           "row_block"]

ROW_BLOCK = 48      # rows of C per work item, about: whole tiles of the kernel's rows


def row_block(v: Variant) -> int:
    """Rows of C per work item for ``v``: ROW_BLOCK rounded to its tiles (6 rows: 48,
    AMX's 32: 64)."""
    return v.rows * max(1, round(ROW_BLOCK / v.rows))


def _gep(b, ptr, offset, ty):
    return b.gep(ptr, [offset], inbounds=True, source_etype=ty)


def emit_int8_rows(ctx: FnContext, v: Variant, dtype, m: int, n: int, k: int, a, a_row: int,
                   a_k: int, packed, c, ldc: int, *, threads: bool = True) -> None:
    """``C[i, :] = A[i, :] @ B`` for ``i < m`` (B packed for ``v``), the rows split into
    blocks the threads share when the product is big enough."""
    b = ctx.builder
    block_rows = row_block(v)
    n_items = -(-m // block_rows)
    if not threads or inside_parallel_body(b) or not should_parallelize(n_items, m * n * k):
        emit_gemm_call(b, v, dtype, m, n, k, a, a_row, a_k, packed, c, ldc)
        return

    def block(rb, lo, hi, _tid, captured):
        a_c, p_c, c_c = captured
        first = rb.mul(lo, c64(block_rows))
        last = rb.mul(hi, c64(block_rows))
        last = rb.select(rb.icmp_signed("<", last, c64(m)), last, c64(m))
        with rb.if_then(rb.icmp_signed("<", first, last)):
            emit_gemm_call(rb, v, dtype, rb.sub(last, first), n, k,
                           _gep(rb, a_c, rb.mul(first, c64(a_row)), source_type(dtype)), a_row,
                           a_k, p_c,
                           _gep(rb, c_c, rb.mul(first, c64(ldc)), I32), ldc)

    emit_parallel_for(b, ctx.sub_name("i8gemm"), n_items, m * n * k, [a, packed, c], block)


def emit_int8_matmul(ctx: FnContext, dtype, a, a_shape, bp, b_shape, c, c_shape,
                     trans_a: bool = False, trans_b: bool = False) -> None:
    """``C = op(A) @ op(B)`` (int32 C; 8-bit ``dtype`` operands), C-contiguous buffers,
    with the kernel measured fastest for the problem's class."""
    emit_packed_matmul(ctx, None, dtype, a, a_shape, bp, b_shape, c, c_shape, trans_a,
                       trans_b)


def emit_packed_matmul(ctx: FnContext, v: Variant | None, dtype, a, a_shape, bp, b_shape, c,
                       c_shape, trans_a: bool = False, trans_b: bool = False) -> None:
    """``C = op(A) @ op(B)`` through kernel ``v`` (None: the one chosen for int8)."""
    b = ctx.builder
    m, k = (a_shape[-1], a_shape[-2]) if trans_a else (a_shape[-2], a_shape[-1])
    n = b_shape[-2] if trans_b else b_shape[-1]
    batch = tuple(c_shape[:-2])
    element = source_type(dtype)
    size = math.prod(c_shape)
    if size == 0:
        return
    lda, ldb = a_shape[-1], b_shape[-1]
    a_row, a_k = (1, lda) if trans_a else (lda, 1)
    b_k, b_j = (1, ldb) if trans_b else (ldb, 1)
    tall = one_tall_product(a_shape, b_shape, batch, trans_a)
    if v is None:
        v = choose_variant(dtype, m * math.prod(batch) if tall else m, n, k)
    packed = ctx.malloc(packed_bytes(v, k, n))
    b_batched = any(x != 1 for x in b_shape[:-2])
    if not b_batched:
        emit_pack_call(b, v, dtype, k, n, bp, b_k, b_j, packed)
    if tall:
        emit_int8_rows(ctx, v, dtype, m * math.prod(batch), n, k, a, a_row, a_k, packed, c, n)
        return

    def one(t, a_off, b_off):
        if b_batched:
            emit_pack_call(b, v, dtype, k, n, _gep(b, bp, b_off, element), b_k, b_j, packed)
        emit_int8_rows(ctx, v, dtype, m, n, k, _gep(b, a, a_off, element), a_row, a_k, packed,
                       _gep(b, c, b.mul(t, c64(m * n)), I32), n)

    each_batch_matrix(b, a_shape, b_shape, batch, one)
