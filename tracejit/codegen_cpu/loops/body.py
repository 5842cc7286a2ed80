"""Evaluating a kernel body at one point of its loop nest.

:class:`PointEval` walks a body graph on demand: ``value(var, index)`` is the element
of ``var`` at ``index`` (a tuple of index expressions over ``var``'s shape). It

* follows index maps (``reshape``, ``expand_dims``, ``squeeze``, ``broadcast_to``,
  ``transpose``, ``slice``, ``reverse``, ``tile``, ``stop_gradient``) and implicit
  broadcasting by transforming the index, never the data;
* loads *leaves*: kernel inputs (and the matmul result of a ``matmul_epilogue``
  kernel), small constants (a private global array), ``fill`` and ``iota``
  (computed from the index), ``random_bits`` (Threefry-2x32-20 of the flat index);
* computes ELEMENTWISE ops through :mod:`lower_ops`; values already known at this
  point (reduction results in an epilogue) come from ``known``.

It runs twice over the same body with the same domain: in *plan* mode it only records
the index expressions it would emit (and may raise ``Refine`` to split a loop
dimension), so the caller can coalesce the domain; in *emit* mode it emits LLVM IR
through a :class:`Point` (builder, loop variables, buffer pointers). Results are
memoized per (value, index), so a value read twice at one point is computed once.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.const_value import ConstValue
from ...ir.core import Eqn, Graph, Var
from ...ir.opdef import Tag
from ...ir.ops_random import THREEFRY_PARITY, THREEFRY_ROTATIONS
from ..kernels.elementwise_ops import emit_elementwise, emits_blocks, supported_elementwise
from . import index as ix
from .loops import emit_expr
from .types import I32, I64, const, convert, load, load_raw, raw_type, store, store_raw

__all__ = ["PointEval", "Point", "INDEX_MAP_RULES", "is_generator", "body_supported"]



def _through_reshape(walk, index, var, src, p):
    return ix.reshape_index(index, var.shape, src.shape, walk.domain, walk.refine)


def _through_broadcast(walk, index, var, src, p):
    return ix.broadcast_index(index, var.shape, src.shape)


def _through_transpose(walk, index, var, src, p):
    moved = [None] * len(index)
    for i, axis in enumerate(p["perm"]):
        moved[axis] = index[i]
    return tuple(moved)


def _through_slice(walk, index, var, src, p):
    return tuple(ix.add(ix.scale(e, st), ix.constant(lo))
                 for e, lo, st in zip(index, p["starts"], p["strides"], strict=True))


def _through_reverse(walk, index, var, src, p):
    return tuple(ix.add(ix.constant(n - 1), ix.scale(e, -1)) if a in p["axes"] else e
                 for a, (e, n) in enumerate(zip(index, src.shape, strict=True)))


def _through_tile(walk, index, var, src, p):
    return tuple(e if n == 1 else ix.mod(e, n, walk.domain, walk.refine)
                 for e, n in zip(index, src.shape, strict=True))


# The CPU's rule for each op tagged INDEX_MAP: the index its input is read at, given
# the index of its output (a test checks the table covers the tag).
INDEX_MAP_RULES = {ops.RESHAPE: _through_reshape, ops.EXPAND_DIMS: _through_reshape,
                   ops.SQUEEZE: _through_reshape, ops.BROADCAST_TO: _through_broadcast,
                   ops.TRANSPOSE: _through_transpose, ops.SLICE: _through_slice,
                   ops.REVERSE: _through_reverse, ops.TILE: _through_tile,
                   ops.STOP_GRADIENT: lambda walk, index, var, src, p: index}


def is_generator(op) -> bool:
    """Ops a body evaluates at each point from its index alone (constants, iota, fill,
    counter-based random bits)."""
    return op.has(Tag.CREATION) or op.has(Tag.RANDOM)


def body_supported(body: Graph) -> str | None:
    """Why a body cannot be evaluated pointwise (None if it can)."""
    for eqn in body.eqns:
        name = eqn.op.name
        if eqn.op in INDEX_MAP_RULES or is_generator(eqn.op) or eqn.op.has(Tag.REDUCE) \
                or eqn.op.has(Tag.LINALG) or supported_elementwise(eqn.op):
            continue
        return f"op {name!r} inside a kernel body"
    return None


class Point:
    """What emit mode needs: the builder, the loop variables and buffer pointers."""

    def __init__(self, builder: ir.IRBuilder, env: dict[int, ir.Value], mapping: dict,
                 ptrs, group):
        self.builder, self.env, self.mapping, self.ptrs, self.group = (
            builder, env, mapping, ptrs, group)

    def expr(self, e: ix.Expr) -> ir.Value:
        return emit_expr(self.builder, ix.substitute(e, self.mapping), self.env)


class Leaf:
    """A buffer-backed leaf: ``key`` names the pointer; ``storage`` its element type in
    memory (a matmul result of a half kernel sits in float32 scratch)."""

    def __init__(self, key, storage: dt.DType):
        self.key, self.storage = key, storage


class PointEval:
    def __init__(self, body: Graph, domain: ix.Domain, leaves: dict[int, Leaf], *,
                 point: Point | None = None, refine: bool = False,
                 known: dict[int, ir.Value] | None = None):
        self.body, self.domain, self.leaves = body, domain, leaves
        self.point, self.refine = point, refine
        self.known = known or {}
        self.producer: dict[int, Eqn] = {id(v): e for e in body.eqns for v in e.outs}
        self.exprs: list[ix.Expr] = []
        self.memo: dict = {}

    # ---- index expressions ----------------------------------------------------------

    def expr(self, e: ix.Expr):
        if self.point is None:
            self.exprs.append(e)
            return None
        return self.point.expr(e)

    def at(self, dims, shape) -> tuple:
        """The position in ``shape`` of the current point of ``dims``."""
        return ix.domain_index(dims, shape, self.domain, self.refine)

    def follow(self, var: Var, index: tuple) -> tuple[Var, tuple]:
        """Through index maps to the value they read, with the index transformed."""
        while True:
            eqn = self.producer.get(id(var))
            rule = INDEX_MAP_RULES.get(eqn.op) if eqn is not None else None
            if rule is None:
                return var, index
            src = eqn.ins[0]
            index = rule(self, index, var, src, eqn.params)
            var = src

    # ---- values ---------------------------------------------------------------------

    def value(self, var: Var, index: tuple):
        var, index = self.follow(var, index)
        key = (id(var), index)
        if key in self.memo:
            return self.memo[key]
        b = self.point.builder if self.point is not None else None
        entry = b.function.entry_basic_block if b is not None else None
        # NOTE: not when already there: goto_block returns to the *end* of the block it
        # left, which for the entry block is past its branch into the loops.
        if b is not None and b.block is not entry and self._invariant(var, index):
            # NOTE: the same at every point (a broadcast scalar and what is computed
            # from it): computed once in the function's entry block. Left in the loop,
            # a floordiv of such a value sent LLVM's loop vectorizer into a loop that
            # never ended. Reading an input before the loop also reads it before any
            # store of an in-place kernel, as the program means.
            with b.goto_block(entry):
                result = self._compute(var, index)
        else:
            result = self._compute(var, index)
        self.memo[key] = result
        return result

    def _invariant(self, var: Var, index: tuple) -> bool:
        """Whether ``var`` at ``index`` (already followed) reads no loop variable and no
        value computed inside the loops (a reduction's state)."""
        if any(ix.expr_dims(e) for e in index) or id(var) in self.known:
            return False
        if id(var) in self.leaves:
            return True
        eqn = self.producer.get(id(var))
        if eqn is None or eqn.op.has(Tag.REDUCE) or eqn.op.has(Tag.LINALG):
            return False
        if is_generator(eqn.op):
            return True
        if emits_blocks(eqn):
            return False
        for x in eqn.ins:
            src, at = self.follow(x, ix.broadcast_index(index, var.shape, x.shape))
            if not self._invariant(src, at):
                return False
        return True

    def _compute(self, var: Var, index: tuple):
        b = self.point.builder if self.point else None
        if id(var) in self.known:
            return self.known[id(var)]
        leaf = self.leaves.get(id(var))
        if leaf is not None:
            offset = self.expr(ix.ravel(index, var.shape))
            if b is None:
                return None
            value = load(b, self.point.ptrs(leaf.key), offset, leaf.storage, self.point.group)
            return convert(b, value, leaf.storage, var.dtype)
        eqn = self.producer.get(id(var))
        if eqn is None:
            raise KeyError(f"{var} is neither an input nor computed in the body")
        op = eqn.op
        if op is ops.CONSTANT:
            return self._constant(eqn, var, index, raw=False)
        if op is ops.FILL:
            return None if b is None else const(var.dtype, eqn.params["value"])
        if op is ops.IOTA:
            e = self.expr(index[eqn.params["dimension"]])
            return None if b is None else convert(b, e, dt.int64, var.dtype)
        if op is ops.RANDOM_BITS:
            return self._random_bits(eqn, var, index)
        if op.has(Tag.REDUCE) or op.has(Tag.LINALG):
            raise KeyError(f"{op.name} result read where it is not known")
        args = [self.value(x, ix.broadcast_index(index, var.shape, x.shape)) for x in eqn.ins]
        if b is None:
            return None
        return emit_elementwise(b, eqn, args)

    def raw(self, var: Var, index: tuple):
        """The element's bits when ``var`` is an index map of a buffer or a constant (so a
        copy keeps NaN payloads); None when it must be computed."""
        var, index = self.follow(var, index)
        leaf = self.leaves.get(id(var))
        if leaf is not None and leaf.storage is var.dtype:
            offset = self.expr(ix.ravel(index, var.shape))
            if self.point is None:
                return "raw"
            return load_raw(self.point.builder, self.point.ptrs(leaf.key), offset, var.dtype,
                            self.point.group)
        eqn = self.producer.get(id(var))
        if eqn is not None and eqn.op is ops.CONSTANT:
            return self._constant(eqn, var, index, raw=True)
        return None

    def store(self, var: Var, key, index: tuple, dtype: dt.DType) -> None:
        """Store ``var`` at ``index`` (a position in ``var``'s shape) into buffer ``key``."""
        self.store_all([(var, key, index, dtype)])

    def store_all(self, items) -> None:
        """Store each ``(var, key, index, dtype)``: every value is loaded and computed
        before the first store.

        NOTE: an output may share its buffer with an input the kernel reads at the same
        flat index (in-place planning), or hold a matmul result the epilogue reads. Two
        reads of one element can be different index expressions (through a reshape), so
        memoization does not merge them; storing only after every read keeps a store
        from feeding a later load of the same iteration."""
        ready = []
        for var, key, index, dtype in items:
            bits = self.raw(var, index)
            offset = self.expr(ix.ravel(index, var.shape))
            if bits is not None:
                ready.append((True, bits, key, offset, dtype))
            else:
                ready.append((False, self.value(var, index), key, offset, dtype))
        if self.point is None:
            return
        for is_raw, value, key, offset, dtype in ready:
            emit = store_raw if is_raw else store
            emit(self.point.builder, value, self.point.ptrs(key), offset, dtype,
                 self.point.group)

    # ---- generators -----------------------------------------------------------------

    def _constant(self, eqn: Eqn, var: Var, index: tuple, raw: bool):
        array = eqn.params["value"].array
        dtype = var.dtype
        flat = np.ascontiguousarray(array).reshape(-1)
        bits = flat.view(np.dtype(f"u{dtype.itemsize}"))
        uniform = flat.size <= 1 or bool((bits == bits[0]).all())
        b = self.point.builder if self.point else None
        if uniform:
            if b is None:
                return None
            if raw:
                return ir.Constant(raw_type(dtype), int(bits[0]))
            return const(dtype, flat[0])
        offset = self.expr(ix.ravel(index, var.shape))
        if b is None:
            return "raw" if raw else None
        table = _global_array(b.module, array, dtype)
        if raw:
            return load_raw(b, table, offset, dtype)
        return load(b, table, offset, dtype)

    def _random_bits(self, eqn: Eqn, var: Var, index: tuple):
        (key,) = eqn.ins
        k0 = self.value(key, (ix.constant(0),))
        k1 = self.value(key, (ix.constant(1),))
        counter = self.expr(ix.ravel(index, var.shape))
        if self.point is None:
            return None
        return threefry_word0(self.point.builder, k0, k1, counter)


def _global_array(module: ir.Module, array: np.ndarray, dtype: dt.DType) -> ir.GlobalVariable:
    """A private constant global holding ``array``'s bytes (one per distinct array)."""
    cache = getattr(module, "_tracejit_constants", None)
    if cache is None:
        cache = module._tracejit_constants = {}
    cv = ConstValue(array)
    found = cache.get(cv)
    if found is not None:
        return found
    data = np.ascontiguousarray(array).tobytes()
    ty = ir.ArrayType(ir.IntType(8), len(data))
    gv = ir.GlobalVariable(module, ty, name=module.get_unique_name("tracejit.const"))
    gv.linkage = "private"
    gv.global_constant = True
    gv.align = max(16, dtype.itemsize)
    gv.initializer = ir.Constant(ty, bytearray(data))
    cache[cv] = gv
    return gv


def _rotl(b, x, r: int):
    return b.or_(b.shl(x, ir.Constant(I32, r)), b.lshr(x, ir.Constant(I32, 32 - r)))


def threefry_word0(b: ir.IRBuilder, k0, k1, counter) -> ir.Value:
    """Word 0 of Threefry-2x32-20 of (counter mod 2**32, counter >> 32) under (k0, k1),
    as ``tracejit.ir.ops_random.threefry2x32`` computes it (i32 values wrap)."""
    ks = (k0, k1, b.xor(b.xor(k0, k1), ir.Constant(I32, THREEFRY_PARITY)))
    x0 = b.add(b.trunc(counter, I32), ks[0])
    x1 = b.add(b.trunc(b.lshr(counter, ir.Constant(I64, 32)), I32), ks[1])
    for r in range(20):
        x0 = b.add(x0, x1)
        x1 = b.xor(_rotl(b, x1, THREEFRY_ROTATIONS[r % 8]), x0)
        if r % 4 == 3:
            s = r // 4 + 1
            x0 = b.add(x0, ks[s % 3])
            x1 = b.add(x1, b.add(ks[(s + 1) % 3], ir.Constant(I32, s)))
    return x0

