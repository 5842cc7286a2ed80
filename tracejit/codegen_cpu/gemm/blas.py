"""matmul: NumPy's bundled OpenBLAS from generated code, and generated loops.

The BLAS is the OpenBLAS NumPy loaded (openblas.py).

* float32/float64: ``cblas_?gemm`` row-major (on AVX-512 hosts, gemms with static
  sizes and an untransposed right operand may call the register-tiled kernel of
  tile_kernel.py instead, where it measured faster: choice.py); batched matmuls with
  broadcasting are a loop of gemm calls, or one tall gemm when the right operand has no
  batch; a large float32 gemm a program calls whole may go to oneDNN's sgemm instead,
  where it measured faster on the host (onednn.py);
* small float matmuls (``M*N*K <= SMALL_GEMM``) and every integer matmul: generated
  ``i, k, j`` loops (the ``j`` loop vectorizes), integers wrapping in their own type;
* float16/bfloat16: operands converted to float32 scratch, one float32 gemm, the
  result rounded once (what the reference does);
* int8_matmul (8-bit operands, int32 sums): the packed integer kernels of int8_gemm.py;
  a bfloat16 product may use their bfloat16 sibling (AVX512-BF16's vdpbf16ps) instead
  of float32 copies, where the host measured it faster.

One thread pool: inside a program OpenBLAS runs on the calling thread only (the entry
pins its thread count to 1 and restores it on return, :func:`pin_blas_threads`), and a
large gemm is split into row or column blocks across tracejit's own OpenMP threads
(:func:`call_gemm`). Two pools of spinning threads on the same cores starve each other:
an MLP step took 32 ms with both, 2.3 ms with either alone.

A ``matmul_epilogue`` kernel runs the gemm into its result buffer (an output of the
kernel when one has the result's size and type, else scratch) and then one elementwise
loop over the result for the epilogue.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llvmlite import ir

from ...ir import dtypes as dt
from ...ir.core import Graph
from ...ir.opdef import Tag
from ...ir.ops_linalg import INT8_MATMUL
from ..host.standalone import standalone
from ..kernels.elementwise_ops import fm
from ..loops.body import Leaf
from ..loops.loops import c64, counted_loop, each_batch_matrix, one_tall_product
from ..loops.pointwise import FnContext, convert_copy
from ..loops.types import F32, F64, I32, I64, PTR, VOID, compute_type, declare, load, store, zero
from ..parallel.parallel_for import RANGE_SUFFIX, emit_parallel_for, inside_parallel_body
from ..parallel.settings import parallel_config, should_parallelize
from .choice import threaded_gemm, use_tiles
from .int8_gemm import emit_int8_matmul, emit_packed_matmul
from .int8_kernels import choose_bf16_variant
from .onednn import call_onednn_sgemm
from .openblas import GEMM, GET_THREADS, SET_THREADS, blas_on_shared_pool, ensure_blas
from .own_gemm import call_own_gemm
from .tile_kernel import call_tile_gemm

__all__ = ["emit_matmul",
           "lower_matmul_body", "SMALL_GEMM", "call_gemm", "loops_gemm", "uses_blas",
           "pin_blas_threads"]

SMALL_GEMM = 8 * 8 * 8     # measured: OpenBLAS wins from 16^3 up (0.33 vs 1.06 us)
# Rows (or columns) per work item of a split gemm: whole register tiles of the kernel.
GEMM_BLOCK = 16
_ROW_MAJOR, _NO_TRANS = 101, 111
def _gemm_fn(module: ir.Module, dtype) -> ir.Function:
    ft = F32 if dtype is dt.float32 else F64
    fnty = ir.FunctionType(VOID, [I32, I32, I32, I64, I64, I64, ft, PTR, I64, PTR, I64, ft,
                                  PTR, I64])
    return declare(module, GEMM[dtype], fnty)


_TRANS = 112


def call_gemm(b: ir.IRBuilder, dtype, m, n, k, a, lda, trans_a, bp, ldb, trans_b, c, ldc,
              beta: float = 0.0) -> None:
    """``C = op(A) @ op(B) + beta*C`` through cblas (row-major; op = transpose or not).
    With static sizes and enough work it is split across the OpenMP threads: by blocks
    of C's rows (A's rows, C's rows), or of its columns when C is short and wide.
    Standalone code (host/standalone.py) calls the module's own gemm instead."""
    if standalone() is not None:
        call_own_gemm(b, dtype, m, n, k, a, lda, trans_a, bp, ldb, trans_b, c, ldc, beta)
        return
    ensure_blas()
    if not all(isinstance(x, int) for x in (m, n, k)):
        _gemm(b, dtype, m, n, k, a, lda, trans_a, bp, ldb, trans_b, c, ldc, beta)
        return
    threads = parallel_config().threads
    by_rows = m >= n or m >= GEMM_BLOCK * threads
    extent = m if by_rows else n
    n_items = -(-extent // GEMM_BLOCK)

    # NOTE: on some AVX-512 hosts the register-tiled kernel (tile_kernel.py) beats the
    # OpenBLAS kernels NumPy's build picks there, on others it loses: measured per host.
    # It reads B row-major only; one row block per thread is what gets timed.
    tiles = (not trans_b and beta in (0.0, 1.0) and by_rows
             and use_tiles(dtype, -(-m // threads), n, k, trans_a))

    def block(rb, lo, hi, _tid, captured):
        a_c, b_c, c_c = captured
        first = rb.mul(lo, c64(GEMM_BLOCK))
        last = rb.mul(hi, c64(GEMM_BLOCK))
        last = rb.select(rb.icmp_signed("<", last, c64(extent)), last, c64(extent))
        size = rb.sub(last, first)
        with rb.if_then(rb.icmp_signed(">", size, c64(0))):
            if by_rows and tiles:
                a_at = first if trans_a else rb.mul(first, c64(lda))
                call_tile_gemm(rb, dtype, size, n, k, _gep(rb, a_c, a_at, dtype),
                               1 if trans_a else lda, lda if trans_a else 1, b_c, ldb,
                               _gep(rb, c_c, rb.mul(first, c64(ldc)), dtype), ldc,
                               accumulate=beta != 0.0)
            elif by_rows:
                a_at = first if trans_a else rb.mul(first, c64(lda))
                _gemm(rb, dtype, size, n, k, _gep(rb, a_c, a_at, dtype), lda, trans_a,
                      b_c, ldb, trans_b, _gep(rb, c_c, rb.mul(first, c64(ldc)), dtype), ldc,
                      beta)
            else:
                b_at = rb.mul(first, c64(ldb)) if trans_b else first
                _gemm(rb, dtype, m, size, k, a_c, lda, trans_a,
                      _gep(rb, b_c, b_at, dtype), ldb, trans_b, _gep(rb, c_c, first, dtype), ldc,
                      beta)

    # NOTE: split into row blocks, each thread's OpenBLAS call packs all of B; OpenBLAS's
    # threaded driver packs it once, each thread a slice, and shares it (1024^3 on two
    # Intel cores: 6.4 against 6.8-6.9 ms). Its jobs run on our pool (blas_on_shared_pool),
    # so from a program's own thread -- not from inside a share -- it gets the pool.
    if (not tiles and threads > 1 and should_parallelize(n_items, m * n * k)
            and not inside_parallel_body(b) and blas_on_shared_pool()):
        if threaded_gemm(dtype, m, n, k, trans_a, trans_b, threads) == "onednn":
            call_onednn_sgemm(b, threads, m, n, k, a, lda, trans_a, bp, ldb, trans_b, c,
                              ldc, beta)
            return
        set_ = declare(b.module, SET_THREADS, ir.FunctionType(VOID, [I32]))
        b.call(set_, [ir.Constant(I32, threads)])
        _gemm(b, dtype, m, n, k, a, lda, trans_a, bp, ldb, trans_b, c, ldc, beta)
        b.call(set_, [ir.Constant(I32, 1)])   # as pin_blas_threads left it
        return
    emit_parallel_for(b, _unique(b.module, "gemm"), n_items, m * n * k, [a, bp, c], block)


def _unique(module: ir.Module, stem: str) -> str:
    k = 0
    while f"{stem}{k}{RANGE_SUFFIX}" in module.globals:
        k += 1
    return f"{stem}{k}"


def _gemm(b: ir.IRBuilder, dtype, m, n, k, a, lda, trans_a, bp, ldb, trans_b, c, ldc,
          beta: float) -> None:
    ft = F32 if dtype is dt.float32 else F64
    m, n, k = (x if isinstance(x, ir.Value) else c64(x) for x in (m, n, k))
    b.call(_gemm_fn(b.module, dtype),
           [ir.Constant(I32, _ROW_MAJOR), ir.Constant(I32, _TRANS if trans_a else _NO_TRANS),
            ir.Constant(I32, _TRANS if trans_b else _NO_TRANS),
            m, n, k, ir.Constant(ft, 1.0), a, c64(lda), bp, c64(ldb),
            ir.Constant(ft, beta), c, c64(ldc)])


def uses_blas(module: ir.Module) -> bool:
    return any(name in module.globals for name in GEMM.values())


def pin_blas_threads(at_entry: ir.IRBuilder, at_exit: ir.IRBuilder) -> None:
    """Emit ``saved = get_num_threads(); set_num_threads(1)`` at ``at_entry`` and
    ``set_num_threads(saved)`` at ``at_exit``: OpenBLAS keeps its own pool asleep while
    tracejit's threads run, and NumPy's matmul outside programs is untouched. (Programs
    run holding the GIL, so two never interleave these.)"""
    ensure_blas()
    module = at_entry.module
    get = declare(module, GET_THREADS, ir.FunctionType(I32, []))
    set_ = declare(module, SET_THREADS, ir.FunctionType(VOID, [I32]))
    saved = at_entry.call(get, [])
    at_entry.call(set_, [ir.Constant(I32, 1)])
    at_exit.call(set_, [saved])


def loops_gemm(ctx: FnContext, dtype, m, n, k, a, lda, trans_a, bp, ldb, trans_b, c, ldc,
               beta: float = 0.0) -> None:
    """The same by i, k, j loops (accumulating in C's own type; the j loop vectorizes
    when B is not transposed)."""

    b = ctx.builder
    ty = compute_type(dtype)
    flags = fm() if dtype.is_float else ()
    group = ctx.loops.group

    def row(i):
        c_row = b.mul(i, c64(ldc))
        if beta == 0.0:
            counted_loop(b, c64(0), c64(n),
                         lambda j: store(b, zero(ty), c, b.add(c_row, j), dtype, group),
                         parallel=ctx.loops, name="z")

        def step(kk):
            a_at = b.add(b.mul(kk, c64(lda)), i) if trans_a else b.add(b.mul(i, c64(lda)), kk)
            aik = load(b, a, a_at, dtype)

            def col(j):
                at = b.add(c_row, j)
                b_at = b.add(b.mul(j, c64(ldb)), kk) if trans_b else b.add(b.mul(kk, c64(ldb)), j)
                bkj = load(b, bp, b_at, dtype, group)
                prod = b.fmul(aik, bkj, flags=flags) if dtype.is_float else b.mul(aik, bkj)
                old = load(b, c, at, dtype, group)
                new = b.fadd(old, prod, flags=flags) if dtype.is_float else b.add(old, prod)
                store(b, new, c, at, dtype, group)

            counted_loop(b, c64(0), c64(n), col, parallel=ctx.loops, name="j")

        counted_loop(b, c64(0), c64(k), step, name="k")

    counted_loop(b, c64(0), c64(m), row, name="i")


def _gep(b, ptr, offset, dtype):
    return b.gep(ptr, [offset], inbounds=True, source_etype=compute_type(dtype))


def emit_matmul(ctx: FnContext, dtype, a, a_shape, bp, b_shape, c, c_shape,
                trans_a: bool = False, trans_b: bool = False) -> None:
    """``C = op(A) @ op(B)`` with np.matmul's batch broadcasting; the pointers hold
    ``dtype`` (float32/float64 or an integer type) elements, C-contiguous; ``op``
    swaps an operand's last two axes when its flag is set."""
    b = ctx.builder
    m, k = (a_shape[-1], a_shape[-2]) if trans_a else (a_shape[-2], a_shape[-1])
    n = b_shape[-2] if trans_b else b_shape[-1]
    lda, ldb = a_shape[-1], b_shape[-1]
    batch = tuple(c_shape[:-2])
    if m * n == 0 or math.prod(batch) == 0:
        return
    size = math.prod(c_shape)
    if k == 0:
        counted_loop(b, c64(0), c64(size),
                     lambda i: store(b, zero(compute_type(dtype)), c, i, dtype), name="z")
        return
    use_blas = dtype.is_float and m * n * k > SMALL_GEMM

    def gemm(mm, a_ptr, b_ptr, c_ptr):
        fn = call_gemm if use_blas else None
        if fn is not None:
            fn(b, dtype, mm, n, k, a_ptr, lda, trans_a, b_ptr, ldb, trans_b, c_ptr, n)
        else:
            loops_gemm(ctx, dtype, mm, n, k, a_ptr, lda, trans_a, b_ptr, ldb, trans_b, c_ptr, n)

    if one_tall_product(a_shape, b_shape, batch, trans_a):
        gemm(m * math.prod(batch), a, bp, c)      # one tall gemm
        return
    each_batch_matrix(b, a_shape, b_shape, batch, lambda t, a_off, b_off: gemm(
        m, _gep(b, a, a_off, dtype), _gep(b, bp, b_off, dtype),
        _gep(b, c, b.mul(t, c64(m * n)), dtype)))


def lower_matmul_body(ctx: FnContext, body: Graph, epilogue: Callable[..., None]) -> None:
    """A matmul_epilogue kernel (or a lone matmul as a one-equation body): the gemm, then
    ``epilogue(ctx, body, leaves=, skip=, extra=, shape=)`` -- the elementwise lowering --
    for the rest of the body, reading C where the body reads the product."""

    n_outs = len(body.outputs)
    (mm,) = [e for e in body.eqns if e.op.has(Tag.LINALG)]
    a, bv = mm.ins
    c = mm.outs[0]
    position = {}
    for i, v in enumerate(body.inputs):
        position.setdefault(id(v), n_outs + i)
    dtype = c.dtype
    compute = dt.float32 if dtype.is_half else dtype
    extra = {}
    a_ptr, b_ptr = ctx.ptrs(position[id(a)]), ctx.ptrs(position[id(bv)])
    trans_a, trans_b = mm.params.get("transpose_a", False), mm.params.get("transpose_b", False)
    # NOTE: a bfloat16 product may run a kernel of its own on the bfloat16 operands (the
    # host measured it faster than float32 copies and the float32 gemm: int8_kernels.py)
    bf16_kernel = None
    if dtype is dt.bfloat16 and mm.op is not INT8_MATMUL:
        k = a.shape[-2] if trans_a else a.shape[-1]
        bf16_kernel = choose_bf16_variant(c.type.size // c.shape[-1], c.shape[-1], k)
    if dtype.is_half and bf16_kernel is None:
        for key, var in (("A", a), ("B", bv)):
            scratch = ctx.malloc(var.type.size * 4)
            convert_copy(ctx, var.shape, position[id(var)], dtype, key, compute,
                          {key: scratch})
            if key == "A":
                a_ptr = scratch
            else:
                b_ptr = scratch
    c_key, skip = None, set()
    if not dtype.is_half:
        for j, out in enumerate(body.outputs):
            if out is c:
                c_key, skip = j, {j}
                break
        if c_key is None:
            for j, out in enumerate(body.outputs):
                if out.dtype is dtype and out.type.size == c.type.size:
                    c_key = j       # NOTE: scratch in an output; the epilogue reads C[i]
                    break           # before it stores output[i].
    if c_key is None:
        c_ptr = ctx.malloc(c.type.size * compute.itemsize)
        c_key = "C"
        extra["C"] = c_ptr
    else:
        c_ptr = ctx.ptrs(c_key)
    # NOTE: int8_matmul's operands are 8-bit, its product int32 (int8_gemm.py)
    if mm.op is INT8_MATMUL:
        emit_int8_matmul(ctx, a.dtype, a_ptr, a.shape, b_ptr, bv.shape, c_ptr, c.shape,
                         trans_a, trans_b)
    elif bf16_kernel is not None:
        emit_packed_matmul(ctx, bf16_kernel, dtype, a_ptr, a.shape, b_ptr, bv.shape, c_ptr,
                           c.shape, trans_a, trans_b)
    else:
        emit_matmul(ctx, compute, a_ptr, a.shape, b_ptr, bv.shape, c_ptr, c.shape, trans_a,
                    trans_b)
    leaves = {id(v): Leaf(position[id(v)], v.dtype) for v in body.inputs}
    leaves[id(c)] = Leaf(c_key, compute)
    epilogue(ctx, body, leaves=leaves, skip=skip, extra=extra, shape=c.shape)
