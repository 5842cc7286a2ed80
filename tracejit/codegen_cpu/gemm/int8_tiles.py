"""Register-tiled 8-bit integer products with int32 sums, as LLVM IR functions.

``C[i, j] = sum_k A[i, k] * B[k, j]`` for int8 or uint8 ``A`` and ``B`` (one dtype),
``C`` int32, every sum exact (int32 additions wrap, as the reference's result does).
Two layouts, each a *variant* of fixed vector width:

* **pairs** (``Variant.group == 2``): both operands widened to int16, ``k`` taken two at
  a time. Each int32 lane of a vector holds one column's two int16 values of B, and one
  row's two values of A are broadcast to every lane; the lane's step is
  ``acc += a0 * b0 + a1 * b1``: one ``pmaddwd`` on x86 (SSE2, AVX2, AVX-512BW; with
  VNNI LLVM folds it and the add into ``vpdpwssd``), called as the x86 intrinsic
  (``dot="x86"``) because from plain IR LLVM sees that A's lanes are a broadcast and
  computes it with 32-bit multiplies (``vpmulld``), three times slower. ``dot="generic"``
  is that plain IR (even/odd shuffles, sign extensions, multiplies): the portable kernel,
  for targets other than x86 (AArch64: widening multiplies).
* **quads** (``group == 4``, int8 only): bytes four at a time, the lane's step
  ``acc += a0*b0 + a1*b1 + a2*b2 + a3*b3`` -- one ``vpdpbusd`` (AVX-512 VNNI or
  AVX-VNNI; ``dot="vnni"``). That instruction multiplies *unsigned* bytes of A by signed bytes of B,
  so A is stored offset by 128 (``a ^ 0x80``) and ``128 * sum_k B[k, j]`` (computed when
  B is packed, kept after it) is taken off each sum. ``dot="generic"`` computes the
  same step in plain IR, so the layout, the offset and its correction are tested on any
  host; only the one instruction needs the hardware.

The same tiles serve **bfloat16** operands with float32 sums (``dtype`` bfloat16, pairs
only): a lane's step is ``acc += a0 * b0 + a1 * b1`` on bfloat16 pairs, one
``vdpbf16ps`` where the target has AVX512-BF16 (``dot="bf16"``), else (``generic``) each
pair widened to float32 by shifting its bits into place and two multiply-adds.

B is packed once per product (``pack``: columns in tiles of ``W = vectors * lanes``, for
each group of ``k`` the ``W`` columns' groups side by side, zeros past the edges), and
each tile of ``rows`` rows of A is packed into a small panel (a group of one row is one
int32, so the kernel broadcasts it with one load). The ``rows x vectors`` sums of a tile
stay in registers through the ``k`` loop; the last column tile's stores are masked,
rows past ``m`` are not stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ...ir import dtypes as dt
from ..loops.loops import c64, counted_loop
from ..loops.types import F32, I1, I8, I16, I32, I64, PTR, VOID, declare

__all__ = ["Variant", "TiledGemm", "emit_pack", "emit_gemm", "packed_bytes", "panel_bytes",
           "source_type", "groups_of", "BFloatType", "TILE_GROUPS"]

# groups of k in one AMX tile of A (16 rows of 64 bytes: 64 int8 or 32 bfloat16 values)
# and of B (its 16 rows): the k block of the tile variants
TILE_GROUPS = 16


@dataclass(frozen=True)
class Variant:
    """One kernel: its layout (``group`` 2: pairs, 4: quads), int32 lanes per vector, the
    tile (``rows`` x ``vectors`` vectors) and how a quad step is computed."""

    name: str
    group: int
    lanes: int
    rows: int
    vectors: int
    # the step: "generic" (plain IR), "x86" (int8 pairs: pmaddwd), "vnni" (quads:
    # vpdpbusd), "bf16" (bfloat16 pairs: vdpbf16ps); tile products (amx_tiles.py):
    # "amx" (AMX-INT8 / AMX-BF16), "amx-emulated" (the same tiles in plain IR)
    dot: str = "generic"
    operands: str = "int8"          # "int8" (int8/uint8, int32 sums) or "bfloat16"

    @property
    def width(self) -> int:
        """Columns per tile."""
        return self.vectors * self.lanes

    @property
    def tiles(self) -> bool:
        """An AMX tile product (amx_tiles.py): A and B's ``k`` in blocks of whole tiles."""
        return self.dot.startswith("amx")

    @property
    def k_block(self) -> int:
        """Groups of ``k`` the packed B holds in multiples of (zeros past ``k``)."""
        return TILE_GROUPS if self.tiles else 1

    @property
    def offset_a(self) -> bool:
        """Quads through vpdpbusd: A offset by 128, B's column corrections after it."""
        return self.group == 4 and not self.tiles

    def supports(self, dtype) -> bool:
        if self.operands == "bfloat16":
            return dtype is dt.bfloat16
        return dtype is dt.int8 or (dtype is dt.uint8 and not self.offset_a)


def _groups(k: int, v: Variant) -> int:
    blocks = -(-k // (v.group * v.k_block))
    return blocks * v.k_block


def groups_of(b: ir.IRBuilder, k, v: Variant):
    """The groups of ``k`` (an i64) the packed layouts hold: rounded up to the k block."""
    per_block = c64(v.group * v.k_block)
    return b.mul(b.udiv(b.add(k, c64(v.group * v.k_block - 1)), per_block), c64(v.k_block))


def packed_bytes(v: Variant, k: int, n: int) -> int:
    """Bytes of B packed for ``v`` (and, for quads, the column corrections after it)."""
    tiles = -(-n // v.width)
    data = tiles * _groups(k, v) * v.width * 4     # one int32 lane per column group
    return data + (tiles * v.width * 4 if v.offset_a else 0)


def panel_bytes(v: Variant, k: int) -> int:
    return _groups(k, v) * v.rows * 4


# ---- helpers ---------------------------------------------------------------------------------

def _gep(b, ptr, offset, ty):
    return b.gep(ptr, [offset], inbounds=True, source_etype=ty)


class BFloatType(ir.Type):
    """LLVM's ``bfloat`` (llvmlite's IR has no such type): vdpbf16ps's operands."""

    def __str__(self) -> str:
        return "bfloat"

    def __eq__(self, other) -> bool:
        return isinstance(other, BFloatType)

    def __hash__(self) -> int:
        return hash("bfloat")


def source_type(dtype):
    """How an element of A or B is read: 16 bits for bfloat16, else 8."""
    return I16 if dtype is dt.bfloat16 else I8


def _stored(b, x, v: Variant, dtype):
    """An element (or a small vector of them) of A or B as the packed layout holds it:
    8-bit integers widened to int16 for pairs (int8 signed, uint8 unsigned) or offset
    by 128 for quads (int8 -> uint8); bfloat16 bits as they are."""
    if dtype is dt.bfloat16:
        return x
    vector = isinstance(x.type, ir.VectorType)
    if v.offset_a:
        return b.xor(x, ir.Constant(x.type, [0x80] * x.type.count if vector else 0x80))
    wide = ir.VectorType(I16, x.type.count) if vector else I16
    return b.sext(x, wide) if dtype is dt.int8 else b.zext(x, wide)


def _shuffle(b, vec, indices):
    return b.shuffle_vector(vec, ir.Constant(vec.type, ir.Undefined),
                            ir.Constant(ir.VectorType(I32, len(indices)), indices))


def _splat(b, x, lanes):
    vt = ir.VectorType(x.type, lanes)
    one = b.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(I32, 0))
    return _shuffle(b, one, [0] * lanes)


def _element_type(v: Variant):
    return I16 if v.group == 2 else I8


def _sum_type(dtype):
    return F32 if dtype is dt.bfloat16 else I32


# ---- packing B -------------------------------------------------------------------------------

def emit_pack(module: ir.Module, name: str, v: Variant, dtype) -> ir.Function:
    """``void name(i64 k, i64 n, ptr b, i64 b_k, i64 b_j, ptr out)``: B[kk, j] at
    element ``kk * b_k + j * b_j`` of ``b`` packed into ``out`` (packed_bytes(v, k, n)
    bytes)."""
    fn = ir.Function(module, ir.FunctionType(VOID, [I64, I64, PTR, I64, I64, PTR]), name)
    k, n, src, b_k, b_j, out = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    et, g, w = _element_type(v), v.group, v.width
    groups = groups_of(b, k, v)
    tiles = b.udiv(b.add(n, c64(w - 1)), c64(w))
    total = b.alloca(I32)       # a column's sum (quads), in the entry block

    def tile(t):
        def group(kg):
            def column(jj):
                j = b.add(b.mul(t, c64(w)), jj)
                for q in range(g):
                    kk = b.add(b.mul(kg, c64(g)), c64(q))
                    ok = b.and_(b.icmp_signed("<", kk, k), b.icmp_signed("<", j, n))
                    at = b.add(b.mul(kk, b_k), b.mul(j, b_j))
                    # NOTE: the address is only formed where it is inside B.
                    at = b.select(ok, at, c64(0))
                    source = source_type(dtype)
                    x = b.load(_gep(b, src, at, source), typ=source)
                    x = x if g == 4 else _stored(b, x, v, dtype)      # bytes as they are
                    x = b.select(ok, x, ir.Constant(et, 0))
                    dst = b.add(b.mul(b.add(b.mul(t, groups), kg), c64(w * g)),
                                b.add(b.mul(jj, c64(g)), c64(q)))
                    b.store(x, _gep(b, out, dst, et))
            counted_loop(b, c64(0), c64(w), column, name="pj")
        counted_loop(b, c64(0), groups, group, name="pk")
    counted_loop(b, c64(0), tiles, tile, name="pt")

    if v.offset_a:
        # 128 * sum_k B[k, j] per (padded) column, after the data: what the offset of A
        # adds to each sum.
        corrections = _gep(b, out, b.mul(b.mul(tiles, groups), c64(w * g)), I8)

        def column_sum(j):
            b.store(ir.Constant(I32, 0), total)
            in_range = b.icmp_signed("<", j, n)

            def add(kk):
                at = b.select(in_range, b.add(b.mul(kk, b_k), b.mul(j, b_j)), c64(0))
                x = b.sext(b.load(_gep(b, src, at, I8), typ=I8), I32)
                x = b.select(in_range, x, ir.Constant(I32, 0))
                b.store(b.add(b.load(total, typ=I32), x), total)
            counted_loop(b, c64(0), k, add, name="ck")
            b.store(b.shl(b.load(total, typ=I32), ir.Constant(I32, 7)),
                    _gep(b, corrections, j, I32))
        counted_loop(b, c64(0), b.mul(tiles, c64(w)), column_sum, name="cj")
    b.ret_void()
    return fn


# ---- the product -----------------------------------------------------------------------------

class TiledGemm:
    """One gemm function for ``v``: a loop over tiles of ``rows`` rows of A (packed into
    a panel) and of ``width`` columns of B, each tile's sums in registers over ``k``.
    The tile variants (amx_tiles.py) keep this frame and its stores and replace the
    panel and the tile."""

    def __init__(self, module: ir.Module, name: str, v: Variant, dtype):
        self.v, self.dtype = v, dtype
        sig = ir.FunctionType(VOID, [I64, I64, I64, PTR, I64, I64, PTR, PTR, I64])
        self.fn = ir.Function(module, sig, name)
        (self.m, self.n, self.k, self.a, self.a_row, self.a_k, self.packed, self.c,
         self.ldc) = self.fn.args
        self.b = b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.sum = _sum_type(dtype)
        self.vt = ir.VectorType(self.sum, v.lanes)
        self.lane_bits = ir.VectorType(I32, v.lanes)      # a packed lane: one group
        self.groups = groups_of(b, self.k, v)
        self.tiles = b.udiv(b.add(self.n, c64(v.width - 1)), c64(v.width))
        alloc = declare(module, "aligned_alloc", ir.FunctionType(PTR, [I64, I64]))
        # NOTE: aligned_alloc wants a multiple of the alignment; one block at least.
        size = b.add(b.mul(b.udiv(b.mul(self.groups, c64(v.rows * 4)), c64(64)), c64(64)),
                     c64(64))
        self.panel = b.call(alloc, [c64(64), size])
        suffix = "f32" if self.sum is F32 else "i32"
        self.mstore = declare(module, f"llvm.masked.store.v{v.lanes}{suffix}.p0", ir.FunctionType(
            VOID, [self.vt, PTR, I32, ir.VectorType(I1, v.lanes)]))

    def emit(self) -> ir.Function:
        b, v = self.b, self.v
        row_tiles = b.udiv(b.add(self.m, c64(v.rows - 1)), c64(v.rows))

        def row_tile(t):
            i0 = b.mul(t, c64(v.rows))
            self._pack_panel(i0)
            self._ready()
            counted_loop(b, c64(0), self.tiles, lambda ct: self._tile(i0, ct), name="ct")
        counted_loop(b, c64(0), row_tiles, row_tile, name="rt")
        self._finish()
        free = declare(self.fn.module, "free", ir.FunctionType(VOID, [PTR]))
        b.call(free, [self.panel])
        b.ret_void()
        return self.fn

    def _ready(self) -> None:
        """Before a tile of rows' products (the tile variants load their configuration)."""

    def _finish(self) -> None:
        """After the last product (the tile variants release the tile state)."""

    def _pack_panel(self, i0) -> None:
        """The rows ``i0 .. i0 + rows`` of A as groups: panel[kg * rows + r] (int32).
        A whole tile of rows with contiguous ``k`` copies each row's whole groups as
        small vectors; what is left (the last partial group, the rows past ``m``, a
        strided A) goes element by element, zeros outside A."""
        b, v, g = self.b, self.v, self.v.group
        et, source = _element_type(v), source_type(self.dtype)
        whole = b.udiv(self.k, c64(g))
        fast = b.and_(b.icmp_signed("==", self.a_k, c64(1)),
                      b.icmp_signed("<=", b.add(i0, c64(v.rows)), self.m))
        with b.if_then(fast):
            for r in range(v.rows):
                row = _gep(b, self.a, b.mul(b.add(i0, c64(r)), self.a_row), source)

                def copy(kg, r=r, row=row):
                    x = b.load(_gep(b, row, b.mul(kg, c64(g)), source),
                               typ=ir.VectorType(source, g), align=1)
                    x = _stored(b, x, v, self.dtype)
                    dst = b.add(b.mul(kg, c64(v.rows)), c64(r))
                    b.store(x, _gep(b, self.panel, dst, I32), align=4)
                counted_loop(b, c64(0), whole, copy, name="pv")
        start = b.select(fast, whole, c64(0))

        def group(kg):
            for r in range(v.rows):
                i = b.add(i0, c64(r))
                for q in range(g):
                    kk = b.add(b.mul(kg, c64(g)), c64(q))
                    ok = b.and_(b.icmp_signed("<", i, self.m), b.icmp_signed("<", kk, self.k))
                    at = b.select(ok, b.add(b.mul(i, self.a_row), b.mul(kk, self.a_k)), c64(0))
                    x = _stored(b, b.load(_gep(b, self.a, at, source), typ=source), v,
                                self.dtype)
                    x = b.select(ok, x, ir.Constant(et, 0))
                    dst = b.add(b.mul(b.add(b.mul(kg, c64(v.rows)), c64(r)), c64(g)), c64(q))
                    b.store(x, _gep(b, self.panel, dst, et))
        counted_loop(b, start, self.groups, group, name="pa")

    def _dot(self, acc, a, bv):
        """``acc`` plus, per lane, the group of A (``a``, broadcast) times B's (``bv``)."""
        b, v = self.b, self.v
        lanes = v.lanes
        if v.dot == "vnni":
            fnty = ir.FunctionType(self.vt, [self.vt] * 3)
            fn = declare(b.module, f"llvm.x86.avx512.vpdpbusd.{lanes * 32}", fnty)
            return b.call(fn, [acc, a, bv])
        if v.dot == "bf16":
            pairs = ir.VectorType(BFloatType(), 2 * lanes)
            fn = declare(b.module, f"llvm.x86.avx512bf16.dpbf16ps.{lanes * 32}",
                         ir.FunctionType(self.vt, [self.vt, pairs, pairs]))
            return b.call(fn, [acc, b.bitcast(a, pairs), b.bitcast(bv, pairs)])
        if v.operands == "bfloat16":
            # a pair's first value is the lane's low 16 bits, its second the high ones: as
            # float32, the bits shifted up, and the bits with the low half cleared
            fma = declare(b.module, f"llvm.fmuladd.v{lanes}f32",
                          ir.FunctionType(self.vt, [self.vt] * 3))
            high = ir.Constant(self.lane_bits, [-0x10000] * lanes)    # 0xFFFF0000
            shift = ir.Constant(self.lane_bits, [16] * lanes)
            for part in (lambda x: b.shl(x, shift), lambda x: b.and_(x, high)):
                acc = b.call(fma, [b.bitcast(part(a), self.vt), b.bitcast(part(bv), self.vt),
                                   acc])
            return acc
        if v.dot == "x86":
            pairs = ir.VectorType(I16, 2 * lanes)
            name = {4: "llvm.x86.sse2.pmadd.wd", 8: "llvm.x86.avx2.pmadd.wd",
                    16: "llvm.x86.avx512.pmaddw.d.512"}[lanes]
            fn = declare(b.module, name, ir.FunctionType(self.vt, [pairs, pairs]))
            return b.add(acc, b.call(fn, [b.bitcast(a, pairs), b.bitcast(bv, pairs)]))
        et = _element_type(v)
        vec = ir.VectorType(et, lanes * v.group)
        av, bvv = b.bitcast(a, vec), b.bitcast(bv, vec)
        products = []
        for q in range(v.group):
            picks = [lane * v.group + q for lane in range(lanes)]
            x, y = _shuffle(b, av, picks), _shuffle(b, bvv, picks)
            if v.group == 2:
                x, y = b.sext(x, self.vt), b.sext(y, self.vt)
            else:
                x, y = b.zext(x, self.vt), b.sext(y, self.vt)
            products.append(b.mul(x, y))
        # NOTE: the group's sum first, then the accumulator: the shape LLVM's x86 backend
        # matches as (v)pmaddwd, and with VNNI folds with the add into vpdpwssd.
        while len(products) > 1:
            products = [b.add(products[i], products[i + 1])
                        for i in range(0, len(products), 2)]
        return b.add(acc, products[0])

    def _tile(self, i0, ct) -> None:
        b, v = self.b, self.v
        fn = self.fn
        pre = b.block
        loop = fn.append_basic_block("tile.k")
        done = fn.append_basic_block("tile.done")
        zero = ir.Constant(self.vt, [0.0 if self.sum is F32 else 0] * v.lanes)
        b.cbranch(b.icmp_signed(">", self.groups, c64(0)), loop, done)
        b.position_at_end(loop)
        kg = b.phi(I64, name="kg")
        kg.add_incoming(c64(0), pre)
        sums = [[b.phi(self.vt) for _ in range(v.vectors)] for _ in range(v.rows)]
        for row in sums:
            for s in row:
                s.add_incoming(zero, pre)
        base = b.mul(b.add(b.mul(ct, self.groups), kg), c64(v.width))     # int32 lanes
        cols = [b.load(_gep(b, self.packed, b.add(base, c64(j * v.lanes)), I32),
                       typ=self.lane_bits, align=4) for j in range(v.vectors)]
        new = []
        for r in range(v.rows):
            at = b.add(b.mul(kg, c64(v.rows)), c64(r))
            a = _splat(b, b.load(_gep(b, self.panel, at, I32), typ=I32), v.lanes)
            new.append([self._dot(s, a, col) for s, col in zip(sums[r], cols, strict=True)])
        nxt = b.add(kg, c64(1))
        kg.add_incoming(nxt, b.block)
        for row, vals in zip(sums, new, strict=True):
            for s, val in zip(row, vals, strict=True):
                s.add_incoming(val, b.block)
        b.cbranch(b.icmp_signed("<", nxt, self.groups), loop, done)
        b.position_at_end(done)
        totals = []
        for r in range(v.rows):
            row = []
            for j in range(v.vectors):
                total = b.phi(self.vt)
                total.add_incoming(zero, pre)
                total.add_incoming(new[r][j], loop)
                row.append(total)
            totals.append(row)
        self._store(i0, ct, totals)

    def _store(self, i0, ct, totals) -> None:
        b, v = self.b, self.v
        j0 = b.mul(ct, c64(v.width))
        if v.offset_a:
            tiles_data = b.mul(b.mul(self.tiles, self.groups), c64(v.width))
            corr_at = b.add(tiles_data, j0)
            corrections = [b.load(_gep(b, self.packed, b.add(corr_at, c64(j * v.lanes)),
                                       I32), typ=self.lane_bits, align=4)
                           for j in range(v.vectors)]
            totals = [[b.sub(t, corr) for t, corr in zip(row, corrections, strict=True)]
                      for row in totals]
        left = b.sub(self.n, j0)                # columns of this tile inside C (> 0)
        whole = b.icmp_signed(">=", left, c64(v.width))
        iota = ir.Constant(ir.VectorType(I64, v.lanes), list(range(v.lanes)))
        masks = [b.icmp_signed("<", iota, _splat(b, b.sub(left, c64(j * v.lanes)), v.lanes))
                 for j in range(v.vectors)]
        for r, row in enumerate(totals):
            i = b.add(i0, c64(r))
            with b.if_then(b.icmp_signed("<", i, self.m)):
                c_row = b.add(b.mul(i, self.ldc), j0)
                with b.if_else(whole) as (full, part):
                    with full:
                        for j, total in enumerate(row):
                            ptr = _gep(b, self.c, b.add(c_row, c64(j * v.lanes)), self.sum)
                            b.store(total, ptr, align=4)
                    with part:
                        for j, total in enumerate(row):
                            ptr = _gep(b, self.c, b.add(c_row, c64(j * v.lanes)), self.sum)
                            b.call(self.mstore, [total, ptr, ir.Constant(I32, 4), masks[j]])


def emit_gemm(module: ir.Module, name: str, v: Variant, dtype) -> ir.Function:
    """``void name(i64 m, i64 n, i64 k, ptr a, i64 a_row, i64 a_k, ptr packed, ptr c,
    i64 ldc)``: ``C[i, j]`` (at ``c + i * ldc + j``) = sum over ``kk`` of
    ``A[i * a_row + kk * a_k] * B[kk, j]``, B packed by :func:`emit_pack` for ``v``."""
    return TiledGemm(module, name, v, dtype).emit()
