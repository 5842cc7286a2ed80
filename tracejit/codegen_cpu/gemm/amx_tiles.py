"""8-bit and bfloat16 products on Intel AMX tiles (AMX-INT8, AMX-BF16), as LLVM IR.

An AMX core has eight tile registers of 16 rows x 64 bytes and one instruction that
multiplies two of them into a third: ``tdpbssd`` (int8 x int8), ``tdpbuud`` (uint8 x
uint8) with int32 sums, ``tdpbf16ps`` (bfloat16 pairs) with float32 sums. One call does
16 x 16 x 64 byte products, where a VNNI vector instruction does 16 x 4.

The kernel keeps the frame of the vector kernels (int8_tiles.TiledGemm: tiles of rows
of A packed into a panel, B packed once, stores masked at the edges) with a tile of 32
rows x 32 columns: two tiles of A's rows (registers 0, 1), two of B's columns (2, 3) and
the four sums (4-7) that stay in registers through ``k``.

* **B** is packed as the quads/pairs are (int8_tiles.emit_pack): for each group of
  ``k`` (4 bytes, or 2 bfloat16), the 32 columns' groups side by side. Rows of 16 such
  groups of 16 columns are exactly a B tile, read with a stride of 128 bytes; ``k`` is
  padded with zeros to whole tiles (``Variant.k_block``). The bytes are stored as they
  are: AMX has signed and unsigned forms, so no offset or correction.
* **A**'s rows are copied into a panel of 32 rows, each ``k`` long and padded with zeros
  to the packed B's ``k``; rows past ``m`` are zeros. A tile of A is 16 of its rows,
  64 bytes at a time.
* Sums of a whole tile inside C go straight from the registers to C; at the edges they
  go to a 32 x 32 buffer and through the vector kernels' masked stores.

``dot="amx-emulated"`` computes the same tile instructions in plain IR on tiles kept in
memory: the layout, the padding and the edges are tested on any host; only the
instructions themselves need an AMX CPU (and Linux's permission for its tile state:
host/tile_state.py).
"""

from __future__ import annotations

from llvmlite import ir

from ...ir import dtypes as dt
from ..loops.loops import c64, counted_loop
from ..loops.types import F32, I8, I16, I32, I64, PTR, VOID, declare
from ..parallel.parallel_for import entry_alloca
from .int8_tiles import TILE_GROUPS, TiledGemm, Variant, source_type

__all__ = ["emit_amx_gemm", "TILE_ROWS", "ROW_BYTES"]

TILE_ROWS = 16                  # rows of a tile register
ROW_BYTES = 64                  # bytes of a tile row
A_TILES = (0, 1)                # the tile's two blocks of 16 rows of A
B_TILES = (2, 3)                # and two of 16 columns of B
SUM_TILES = ((4, 5), (6, 7))    # sums: [A tile][B tile]


_NOT_VOLATILE = ir.Constant(ir.IntType(1), 0)


def _byte_at(b, ptr, offset):
    return b.gep(ptr, [offset], inbounds=True, source_etype=I8)


def _memory_functions(module: ir.Module):
    """``(memcpy, memset)``: LLVM's intrinsics, called with a length in bytes and
    _NOT_VOLATILE."""
    flag = ir.IntType(1)
    return (declare(module, "llvm.memcpy.p0.p0.i64", ir.FunctionType(VOID, [PTR, PTR, I64, flag])),
            declare(module, "llvm.memset.p0.i64", ir.FunctionType(VOID, [PTR, I8, I64, flag])))


def _tile_configuration(module: ir.Module) -> ir.GlobalVariable:
    """The 64-byte operand of ``ldtilecfg``: palette 1, tiles 0-7 of 16 rows x 64 bytes."""
    found = module.globals.get("tj_amx_tile_configuration")
    if found is not None:
        return found
    config = [0] * 64
    config[0] = 1                               # palette 1
    for t in range(8):
        config[16 + 2 * t] = ROW_BYTES          # colsb[t], a little-endian u16
        config[48 + t] = TILE_ROWS              # rows[t]
    ty = ir.ArrayType(I8, 64)
    var = ir.GlobalVariable(module, ty, "tj_amx_tile_configuration")
    var.global_constant = True
    var.linkage = "internal"
    var.align = 64
    var.initializer = ir.Constant(ty, config)
    return var


class NativeTiles:
    """The tile instructions, as LLVM's x86 AMX intrinsics (registers by number)."""

    DOTS = {dt.int8: "llvm.x86.tdpbssd", dt.uint8: "llvm.x86.tdpbuud",
            dt.bfloat16: "llvm.x86.tdpbf16ps"}

    def __init__(self, b: ir.IRBuilder, dtype):
        self.b, self.dtype = b, dtype

    def _call(self, name: str, args) -> None:
        fn = declare(self.b.module, name, ir.FunctionType(VOID, [a.type for a in args]))
        self.b.call(fn, args)

    @staticmethod
    def _reg(t: int) -> ir.Constant:
        return ir.Constant(I8, t)

    def configure(self) -> None:
        self._call("llvm.x86.ldtilecfg", [_tile_configuration(self.b.module)])

    def release(self) -> None:
        self._call("llvm.x86.tilerelease", [])

    def zero(self, t: int) -> None:
        self._call("llvm.x86.tilezero", [self._reg(t)])

    def load(self, t: int, ptr, stride) -> None:
        self._call("llvm.x86.tileloadd64", [self._reg(t), ptr, stride])

    def store(self, t: int, ptr, stride) -> None:
        self._call("llvm.x86.tilestored64", [self._reg(t), ptr, stride])

    def dot(self, c: int, a: int, bt: int) -> None:
        self._call(self.DOTS[self.dtype], [self._reg(c), self._reg(a), self._reg(bt)])


class EmulatedTiles(NativeTiles):
    """The same instructions on eight tiles kept in memory, in plain IR: what each does,
    element by element (tests run the kernel's layout and edges on any host)."""

    def __init__(self, b: ir.IRBuilder, dtype):
        super().__init__(b, dtype)
        self.registers = entry_alloca(b, ir.ArrayType(I8, 8 * TILE_ROWS * ROW_BYTES))
        self.registers.align = 64
        self.total = entry_alloca(b, self._sum_type())
        self.memcpy, self.memset = _memory_functions(b.module)

    def _row(self, t: int, r) -> ir.Value:
        at = self.b.add(c64(t * TILE_ROWS * ROW_BYTES), self.b.mul(r, c64(ROW_BYTES)))
        return _byte_at(self.b, self.registers, at)

    def configure(self) -> None:
        pass

    def release(self) -> None:
        pass

    def zero(self, t: int) -> None:
        self.b.call(self.memset, [self._row(t, c64(0)), ir.Constant(I8, 0),
                                  c64(TILE_ROWS * ROW_BYTES), _NOT_VOLATILE])

    def _copy_rows(self, t: int, ptr, stride, into_tile: bool) -> None:
        b = self.b
        for r in range(TILE_ROWS):
            there = _byte_at(b, ptr, b.mul(c64(r), stride))
            here = self._row(t, c64(r))
            dst, src = (here, there) if into_tile else (there, here)
            b.call(self.memcpy, [dst, src, c64(ROW_BYTES), _NOT_VOLATILE])

    def load(self, t: int, ptr, stride) -> None:
        self._copy_rows(t, ptr, stride, True)

    def store(self, t: int, ptr, stride) -> None:
        self._copy_rows(t, ptr, stride, False)

    def _element(self, t: int, r, byte):
        """Element at byte ``byte`` of row ``r`` of tile ``t``, as the sums' type."""
        b = self.b
        ptr = _byte_at(b, self._row(t, r), byte)
        if self.dtype is dt.bfloat16:
            bits = b.zext(b.load(ptr, typ=I16), I32)
            return b.bitcast(b.shl(bits, ir.Constant(I32, 16)), F32)
        x = b.load(ptr, typ=I8)
        return b.sext(x, I32) if self.dtype is dt.int8 else b.zext(x, I32)

    def dot(self, c: int, a: int, bt: int) -> None:
        """``C[i, j] += sum over q, e of A[i, q*g + e] * B[q, j*g + e]``: a row of B
        holds 16 columns' groups of ``g`` values (4 bytes or 2 bfloat16)."""
        b, total = self.b, self.total
        floats = self.dtype is dt.bfloat16
        size = 2 if floats else 1
        g = 4 // size

        def row(i):
            def column(j):
                sum_at = _byte_at(b, self._row(c, i), b.mul(j, c64(4)))
                b.store(b.load(sum_at, typ=self._sum_type()), total)

                def group(q):
                    for e in range(g):
                        x = self._element(a, i, b.mul(b.add(b.mul(q, c64(g)), c64(e)),
                                                      c64(size)))
                        y = self._element(bt, q, b.mul(b.add(b.mul(j, c64(g)), c64(e)),
                                                       c64(size)))
                        acc = b.load(total, typ=self._sum_type())
                        acc = (b.fadd(acc, b.fmul(x, y)) if floats
                               else b.add(acc, b.mul(x, y)))
                        b.store(acc, total)
                counted_loop(b, c64(0), c64(TILE_GROUPS), group, name="eq")
                b.store(b.load(total, typ=self._sum_type()), sum_at)
            counted_loop(b, c64(0), c64(TILE_ROWS), column, name="ej")
        counted_loop(b, c64(0), c64(TILE_ROWS), row, name="ei")

    def _sum_type(self):
        return F32 if self.dtype is dt.bfloat16 else I32


class AmxGemm(TiledGemm):
    """TiledGemm with the tile of sums in AMX registers (the module docstring)."""

    def __init__(self, module: ir.Module, name: str, v: Variant, dtype):
        assert v.rows == len(A_TILES) * TILE_ROWS and v.width == len(B_TILES) * TILE_ROWS
        super().__init__(module, name, v, dtype)
        b = self.b
        self.ops = (NativeTiles if v.dot == "amx" else EmulatedTiles)(b, dtype)
        self.element_bytes = 2 if dtype is dt.bfloat16 else 1
        self.stride = b.mul(self.groups, c64(4))        # bytes of a panel row
        self.edge = entry_alloca(b, ir.ArrayType(I8, v.rows * v.width * 4))  # sums at edges
        self.edge.align = 64
        self.memcpy, self.memset = _memory_functions(module)

    def _ready(self) -> None:
        # NOTE: once per tile of rows, after packing calls libc: the configuration is
        # process state that a library call could in principle have changed.
        self.ops.configure()

    def _finish(self) -> None:
        self.ops.release()

    def _pack_panel(self, i0) -> None:
        """Rows ``i0 .. i0 + rows`` of A, each ``stride`` bytes: ``k`` elements, then
        zeros; rows past ``m`` all zeros."""
        b, v = self.b, self.v
        es = self.element_bytes
        b.call(self.memset, [self.panel, ir.Constant(I8, 0),
                             b.mul(c64(v.rows), self.stride), _NOT_VOLATILE])
        left = b.sub(self.m, i0)
        here = b.select(b.icmp_signed("<", left, c64(v.rows)), left, c64(v.rows))
        source = source_type(self.dtype)

        def a_row(r):
            return b.mul(b.add(i0, r), self.a_row)

        with b.if_else(b.icmp_signed("==", self.a_k, c64(1))) as (contiguous, strided):
            with contiguous:
                def copy(r):
                    src = b.gep(self.a, [a_row(r)], inbounds=True, source_etype=source)
                    dst = _byte_at(b, self.panel, b.mul(r, self.stride))
                    b.call(self.memcpy, [dst, src, b.mul(self.k, c64(es)), _NOT_VOLATILE])
                counted_loop(b, c64(0), here, copy, name="ar")
            with strided:
                def row(r):
                    def element(kk):
                        at = b.add(a_row(r), b.mul(kk, self.a_k))
                        x = b.load(b.gep(self.a, [at], inbounds=True, source_etype=source),
                                   typ=source)
                        dst = b.add(b.mul(r, self.stride), b.mul(kk, c64(es)))
                        b.store(x, _byte_at(b, self.panel, dst))
                    counted_loop(b, c64(0), self.k, element, name="ak")
                counted_loop(b, c64(0), here, row, name="as")

    def _tile(self, i0, ct) -> None:
        b, v, ops = self.b, self.v, self.ops
        for row in SUM_TILES:
            for t in row:
                ops.zero(t)
        b_stride = c64(v.width * 4)

        def block(kb):
            for r, t in enumerate(A_TILES):
                at = b.add(b.mul(c64(r * TILE_ROWS), self.stride), b.mul(kb, c64(ROW_BYTES)))
                ops.load(t, _byte_at(b, self.panel, at), self.stride)
            first = b.add(b.mul(ct, self.groups), b.mul(kb, c64(TILE_GROUPS)))
            for h, t in enumerate(B_TILES):
                at = b.mul(b.add(b.mul(first, c64(v.width)), c64(h * TILE_ROWS)), c64(4))
                ops.load(t, _byte_at(b, self.packed, at), b_stride)
            for r, a_t in enumerate(A_TILES):
                for h, b_t in enumerate(B_TILES):
                    ops.dot(SUM_TILES[r][h], a_t, b_t)
        blocks = b.udiv(self.groups, c64(TILE_GROUPS))
        counted_loop(b, c64(0), blocks, block, name="kb")

        j0 = b.mul(ct, c64(v.width))
        whole = b.and_(b.icmp_signed("<=", b.add(i0, c64(v.rows)), self.m),
                       b.icmp_signed("<=", b.add(j0, c64(v.width)), self.n))
        c_stride = b.mul(self.ldc, c64(4))
        with b.if_else(whole) as (inside, edge):
            with inside:
                for r, row in enumerate(SUM_TILES):
                    for h, t in enumerate(row):
                        first = b.add(b.mul(b.add(i0, c64(r * TILE_ROWS)), self.ldc),
                                      b.add(j0, c64(h * TILE_ROWS)))
                        ops.store(t, _byte_at(b, self.c, b.mul(first, c64(4))), c_stride)
            with edge:
                for r, row in enumerate(SUM_TILES):
                    for h, t in enumerate(row):
                        at = (r * TILE_ROWS * v.width + h * TILE_ROWS) * 4
                        ops.store(t, _byte_at(b, self.edge, c64(at)), c64(v.width * 4))
                totals = [[b.load(_byte_at(b, self.edge, c64((r * v.width + j * v.lanes) * 4)),
                                  typ=self.vt, align=4) for j in range(v.vectors)]
                          for r in range(v.rows)]
                self._store(i0, ct, totals)


def emit_amx_gemm(module: ir.Module, name: str, v: Variant, dtype) -> ir.Function:
    """The gemm function of a tile variant, with int8_tiles.emit_gemm's signature and
    meaning (B packed by int8_tiles.emit_pack for ``v``)."""
    return AmxGemm(module, name, v, dtype).emit()
