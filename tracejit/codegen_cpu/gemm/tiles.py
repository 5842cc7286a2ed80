"""Register-tiled matrix products in generated code: convolution blocks and matmuls.

``C[m, n] (+)= sum_k A[m * a_row + k * a_k] * B[k * ldb + n]`` for ``m < M, n < N``:
``N`` (the columns) is cut into tiles of up to four vectors, ``M`` into tiles of ``R``
rows, and each ``R x 4`` tile keeps its sums in registers through the whole ``k``
loop: per ``k`` it loads four vectors of ``B`` and broadcasts ``R`` elements of ``A``
(``R * 4`` fused multiply-adds). No packing: a convolution block's operands already
sit in cache (the filter, an im2col block, a block of the cotangent), and the strides
cover the transposed operand a filter gradient needs.

Why not BLAS: the OpenBLAS NumPy bundles picks its AVX2 (Haswell) kernels on this
project's machines (AMD Zen 5, whose AVX-512 units are full width), so its sgemm peaks
at about 110 GFLOP/s per core; this loop, with AVX-512 vectors, ran a W5 conv block
(654 x 800 @ 800 x 64) at 240 (OpenBLAS's AVX-512 SkylakeX kernels, when forced: 205).

It exists only where the host has AVX-512 (32 vector registers of 64 bytes), for
float32 and float64, in the convolutions; matmuls use the same scheme compiled once per
process with run-time sizes (tile_kernel.py). Whether a product uses it or OpenBLAS is
measured per host and problem class (choice.py): on Intel Emerald Rapids OpenBLAS's
SkylakeX kernels won by 2-3x. ``TRACEJIT_GEMM=blas|tiles`` forces the choice.
Convolutions keep code specialized to their sizes (the channel counts fill whole
vectors, the strides are constants): through the run-time kernel the W5 step compiled
in 1.3 s instead of 1.55 but ran 1-4 ms slower (18.4-21.9 ms against 17.6-20.9).
``R`` is what fits: ``R * nv`` accumulators, ``nv`` vectors of ``B`` and a
broadcast in 31 registers (6 rows for 4 vectors, 14 for 2). The last vector of a
column tile is masked when ``N`` is not a multiple of the vector.
"""

from __future__ import annotations

from llvmlite import ir

from ...ir import dtypes as dt
from ..loops.loops import c64, counted_loop
from ..loops.types import I1, I32, PTR, compute_type, declare

__all__ = ["tile_gemm_exists", "emit_tile_gemm", "TILE_ROWS"]

VECTOR_BYTES = 64
REGISTERS = 32
MAX_VECTORS = 4         # columns per tile: 4 vectors (64 float32)
TILE_ROWS = 6           # rows per tile with 4 vectors: 24 sums + 4 + 1 registers


def tile_gemm_exists(dtype) -> bool:
    """Whether the register-tiled loop can compute products of ``dtype`` (their compute
    type) here: float32 and float64 where the compile target has AVX-512. Whether it is *used*
    is measured (gemm_choice.use_tiles)."""
    if dtype not in (dt.float32, dt.float64):
        return False
    from ..host.standalone import standalone
    from ..host.target import target_vector_isa
    code = standalone()
    return (code.vector_isa if code is not None else target_vector_isa()) == "avx512"


def rows_for(nv: int) -> int:
    # NOTE: one register stays free for the broadcast, one for the compiler's use.
    return min(16, (REGISTERS - 2 - nv) // nv)


class VectorOps:
    """The vector type of one dtype and the intrinsics on it."""

    def __init__(self, module, dtype):
        self.ty = compute_type(dtype)
        self.lanes = VECTOR_BYTES // dtype.itemsize
        self.vt = ir.VectorType(self.ty, self.lanes)
        suffix = f"v{self.lanes}f{dtype.itemsize * 8}"
        self.mask_t = ir.VectorType(I1, self.lanes)
        self.fma = declare(module, f"llvm.fma.{suffix}",
                            ir.FunctionType(self.vt, [self.vt, self.vt, self.vt]))
        self.mload = declare(module, f"llvm.masked.load.{suffix}.p0",
                              ir.FunctionType(self.vt, [PTR, I32, self.mask_t, self.vt]))
        self.mstore = declare(module, f"llvm.masked.store.{suffix}.p0",
                               ir.FunctionType(ir.VoidType(), [self.vt, PTR, I32, self.mask_t]))
        self.zero = ir.Constant(self.vt, [0.0] * self.lanes)
        self.align = dtype.itemsize

    def mask(self, count: int):
        return ir.Constant(self.mask_t, [int(i < count) for i in range(self.lanes)])

    def _mask_of(self, count):
        """``count``: how many leading lanes (an int), or an ``<lanes x i1>`` mask."""
        return count if isinstance(count, ir.Value) else self.mask(count)

    def load(self, b, ptr, count):
        if isinstance(count, int) and count == self.lanes:
            return b.load(ptr, typ=self.vt, align=self.align)
        return b.call(self.mload, [ptr, ir.Constant(I32, self.align), self._mask_of(count),
                                   self.zero])

    def store(self, b, value, ptr, count):
        if isinstance(count, int) and count == self.lanes:
            b.store(value, ptr, align=self.align)
        else:
            b.call(self.mstore, [value, ptr, ir.Constant(I32, self.align),
                                 self._mask_of(count)])

    def splat(self, b, x):
        one = b.insert_element(ir.Constant(self.vt, ir.Undefined), x, ir.Constant(I32, 0))
        return b.shuffle_vector(one, ir.Constant(self.vt, ir.Undefined),
                                ir.Constant(ir.VectorType(I32, self.lanes), [0] * self.lanes))


def _gep(b, ptr, offset, ty):
    return b.gep(ptr, [offset], inbounds=True, source_etype=ty)


def _i64(x):
    return x if isinstance(x, ir.Value) else c64(x)


def tile_block(b, v: VectorOps, rows: int, widths: list, m0, n0, k, a, a_row, a_k, bp, ldb, c, ldc,
          accumulate) -> None:
    """One ``rows x len(widths)`` vector tile at row ``m0``, column ``n0`` (i64 values;
    ``widths``: the elements of each vector, only the last may be short, or run-time
    lane masks). Strides are ints or i64 values; ``accumulate`` a bool or an i1 value."""
    a_row, a_k, ldb, ldc = (_i64(x) for x in (a_row, a_k, ldb, ldc))
    fn = b.function
    pre = b.block
    loop = fn.append_basic_block("tile.k")
    done = fn.append_basic_block("tile.done")
    k = k if isinstance(k, ir.Value) else c64(k)
    b.cbranch(b.icmp_signed(">", k, c64(0)), loop, done)
    b.position_at_end(loop)
    kk = b.phi(ir.IntType(64), name="k")
    kk.add_incoming(c64(0), pre)
    sums = [[b.phi(v.vt) for _ in widths] for _ in range(rows)]
    for row in sums:
        for s in row:
            s.add_incoming(v.zero, pre)
    b_row = _gep(b, bp, b.add(b.mul(kk, ldb), n0), v.ty)
    cols = [v.load(b, _gep(b, b_row, c64(j * v.lanes), v.ty), w) for j, w in enumerate(widths)]
    a_at = b.add(b.mul(m0, a_row), b.mul(kk, a_k))
    new = []
    for r in range(rows):
        x = v.splat(b, b.load(_gep(b, a, b.add(a_at, b.mul(c64(r), a_row)), v.ty), typ=v.ty))
        new.append([b.call(v.fma, [x, col, s]) for col, s in zip(cols, sums[r], strict=True)])
    nxt = b.add(kk, c64(1))
    kk.add_incoming(nxt, b.block)
    for row, vals in zip(sums, new, strict=True):
        for s, val in zip(row, vals, strict=True):
            s.add_incoming(val, b.block)
    b.cbranch(b.icmp_signed("<", nxt, k), loop, done)
    b.position_at_end(done)
    totals = []
    for r in range(rows):
        for j in range(len(widths)):
            total = b.phi(v.vt)
            total.add_incoming(v.zero, pre)
            total.add_incoming(new[r][j], loop)
            totals.append(total)
    c_at = b.add(b.mul(m0, ldc), n0)
    for i, total in enumerate(totals):
        r, j = divmod(i, len(widths))
        ptr = _gep(b, c, b.add(c_at, b.add(b.mul(c64(r), ldc), c64(j * v.lanes))), v.ty)
        if isinstance(accumulate, ir.Value):
            # NOTE: C is read either way (valid memory); only accumulate adds it.
            old = v.load(b, ptr, widths[j])
            total = b.fadd(total, b.select(accumulate, old, v.zero))
        elif accumulate:
            total = b.fadd(total, v.load(b, ptr, widths[j]))
        v.store(b, total, ptr, widths[j])


def emit_tile_gemm(b: ir.IRBuilder, dtype, m, n: int, k, a, a_row: int, a_k: int, bp,
                   ldb: int, c, ldc: int, *, accumulate: bool = False) -> None:
    """``C[i, j] (+)= sum_k A[i * a_row + k * a_k] * B[k * ldb + j]``, ``C[i, j]`` at
    ``c + i * ldc + j``, for ``i < m``, ``j < n`` (``m`` and ``k`` are ints or i64
    values; ``n`` and the strides are ints). Without ``accumulate`` C is overwritten."""
    v = VectorOps(b.module, dtype)
    m = m if isinstance(m, ir.Value) else c64(m)
    span = MAX_VECTORS * v.lanes
    # NOTE: the column tiles of full width run in a loop, the narrower last one after it:
    # two copies of the tile code, not one per column tile (compile time).
    if n >= span:
        counted_loop(b, c64(0), c64(n // span), lambda j: _column(
            b, v, m, [v.lanes] * MAX_VECTORS, b.mul(j, c64(span)), k, a, a_row, a_k, bp, ldb,
            c, ldc, accumulate), name="nt")
    if n % span:
        width = n % span
        widths = [min(v.lanes, width - j) for j in range(0, width, v.lanes)]
        _column(b, v, m, widths, c64(n - width), k, a, a_row, a_k, bp, ldb, c, ldc,
                accumulate)


def _column(b, v: VectorOps, m, widths: list[int], n0, k, a, a_row, a_k, bp, ldb, c, ldc,
            accumulate) -> None:
    """All the rows of the column tile at ``n0``: whole tiles of ``R`` rows, then the
    last ``m % R`` rows as tiles of 8, 4, 2 and 1 rows (at most four)."""
    rows = rows_for(len(widths))

    def tile(r, m0):
        tile_block(b, v, r, widths, m0, n0, k, a, a_row, a_k, bp, ldb, c, ldc, accumulate)

    full = b.udiv(m, c64(rows))
    counted_loop(b, c64(0), full, lambda t: tile(rows, b.mul(t, c64(rows))), name="mt")
    at = b.mul(full, c64(rows))
    rest = b.sub(m, at)
    for r in (8, 4, 2, 1):
        if r >= rows:
            continue
        hit = b.icmp_unsigned("!=", b.and_(rest, c64(r)), c64(0))
        with b.if_then(hit):
            tile(r, at)
        at = b.add(at, b.select(hit, c64(r), c64(0)))
