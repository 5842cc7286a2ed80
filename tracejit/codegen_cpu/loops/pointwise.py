"""The function being built, and the driver for pointwise loop nests.

:class:`FnContext` is one ``void name(ptr %buffers)`` function under construction: its
builder, the buffer pointers (loaded once), helpers for scratch memory and unique
names of outlined loop bodies.

:func:`pointwise` is the loop driver every elementwise-shaped lowering uses (fused
elementwise kernels, matmul epilogues, copies, movement ops): it plans the index
expressions (splitting loop dimensions on request), coalesces the domain, picks work
items and threading, and emits the nest, calling ``emit_point`` in the innermost loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from llvmlite import ir

from ..parallel.parallel_for import emit_parallel_for, entry_alloca
from ..parallel.settings import parallel_config, should_parallelize
from . import index as ix
from .body import Point
from .loops import Loops, block_size, c64, counted_loop, n_work_items, work_items
from .types import I64, PTR, VOID, convert, declare, load, store

__all__ = ["FnContext", "pointwise", "convert_copy", "MAX_REFINES", "PtrCache"]

MAX_REFINES = 24


class PtrCache:
    """Buffer pointers of a function, loaded from ``%buffers`` in its entry block on first
    use; extra pointers (scratch, the matmul result) are registered by key."""

    def __init__(self, builder: ir.IRBuilder, buffers: ir.Value, extra: dict | None = None):
        self.builder, self.buffers = builder, buffers
        self.cache: dict = dict(extra or {})

    def __call__(self, key) -> ir.Value:
        found = self.cache.get(key)
        if found is not None:
            return found
        b = self.builder
        entry = b.function.entry_basic_block
        if b.block is entry:
            # NOTE: not goto_block: it would return to the end of the entry block, past
            # its branch (code hoisted out of the loops is emitted here).
            ptr = self._load(key)
        else:
            # NOTE: through the function's own builder: llvmlite builders insert at a
            # cached position, so a second builder appending to one block corrupts it.
            with b.goto_block(entry):
                ptr = self._load(key)
        self.cache[key] = ptr
        return ptr

    def _load(self, key) -> ir.Value:
        b = self.builder
        slot = b.gep(self.buffers, [ir.Constant(I64, key)], inbounds=True, source_etype=PTR)
        return b.load(slot, typ=PTR)


class FnContext:
    def __init__(self, module: ir.Module, name: str):
        self.module, self.name = module, name
        self.fn = ir.Function(module, ir.FunctionType(VOID, [PTR]), name)
        self.fn.args[0].name = "buffers"
        self.builder = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.ptrs = PtrCache(self.builder, self.fn.args[0])
        self.loops = Loops(module)
        self._count = 0
        self._frees: list[ir.Value] = []

    def sub_name(self, tag: str) -> str:
        self._count += 1
        return f"{self.name}.{tag}{self._count}"

    def malloc(self, nbytes: int) -> ir.Value:
        """Heap scratch (64-byte aligned), freed when the function returns."""
        fn = declare(self.module, "aligned_alloc", ir.FunctionType(PTR, [I64, I64]))
        size = max(64, (nbytes + 63) // 64 * 64)
        ptr = self.builder.call(fn, [c64(64), c64(size)])
        self._frees.append(ptr)
        return ptr

    def finish(self) -> ir.Function:
        free = declare(self.module, "free", ir.FunctionType(VOID, [PTR]))
        for ptr in self._frees:
            self.builder.call(free, [ptr])
        self.builder.ret_void()
        return self.fn

    def memcpy(self, dst: ir.Value, src: ir.Value, nbytes: int) -> None:
        if nbytes:
            fn = declare(self.module, "llvm.memcpy.p0.p0.i64",
                          ir.FunctionType(VOID, [PTR, PTR, I64, ir.IntType(1)]))
            self.builder.call(fn, [dst, src, c64(nbytes), ir.Constant(ir.IntType(1), 0)])

    def alloca(self, ty: ir.Type, count: int | None = None) -> ir.Value:
        return entry_alloca(self.builder, ty, count)


def plan_domain(domain: ix.Domain, plan: Callable[[ix.Domain, bool], Sequence[ix.Expr]]):
    """Plan until no loop dimension needs splitting; returns (domain, expressions)."""
    for _ in range(MAX_REFINES):
        try:
            return domain, list(plan(domain, True))
        except ix.Refine as r:
            domain = domain.split(r.dim, r.sizes)
    return domain, list(plan(domain, False))


def pointwise(ctx: FnContext, tag: str, domain: ix.Domain,
              plan: Callable[[ix.Domain, bool], Sequence[ix.Expr]],
              emit_point: Callable[[Point, ix.Domain], None], *, weight: int = 1,
              serial: bool = False, extra: dict | None = None,
              inner_parallel: Callable[[ix.Dim, dict], bool] | None = None) -> None:
    """Emit ``for every point of domain: emit_point(point, planned_domain)``.

    ``plan(domain, refine)`` returns every index expression ``emit_point`` will emit at
    a point (the same ones, given the same domain). ``extra`` maps keys to pointers
    (values of the calling function) that ``point.ptrs`` must also resolve.
    ``inner_parallel(inner_dim, mapping)`` may veto marking the innermost loop
    independent (the default marks it)."""
    if domain.size == 0:
        return
    domain, exprs = plan_domain(domain, plan)
    final, mapping = ix.coalesce(domain, exprs)
    dims = final.dims
    outer, inner = list(dims[:-1]), (dims[-1] if dims else None)
    n_outer = math.prod(d.size for d in outer)
    work = domain.size * max(1, weight)
    threads = parallel_config().threads
    parallel = not serial and should_parallelize(n_outer * (inner.size if inner else 1), work)
    block = block_size(n_outer, inner.size, threads, parallel) if inner else 1
    n_items = n_work_items(outer, inner, block)
    extra = dict(extra or {})
    keys = list(extra)
    mark = inner is not None and (inner_parallel is None or inner_parallel(inner, mapping))

    def body(rb, lo, hi, tid, captured):
        ptrs = PtrCache(rb, captured[0], dict(zip(keys, captured[1:], strict=True)))
        env: dict[int, ir.Value] = {}

        def item(j0, j1):
            def at(j):
                if inner is not None:
                    env[inner.id] = j
                emit_point(Point(rb, env, mapping, ptrs, ctx.loops.group), domain)
            if inner is None:
                at(None)
            else:
                counted_loop(rb, j0, j1, at, parallel=ctx.loops if mark else None, name="j")

        work_items(rb, outer, inner, block, lo, hi, env, item)

    emit_parallel_for(ctx.builder, ctx.sub_name(tag), n_items, work,
                      [ctx.fn.args[0]] + [extra[k] for k in keys], body,
                      force_serial=not parallel)


def convert_copy(ctx: FnContext, shape, src_key, src_dtype, dst_key, dst_dtype, extra):
    """A kernel loop that copies buffer ``src_key`` into ``dst_key`` converting
    ``src_dtype`` to ``dst_dtype`` (halves to and from float32 scratch)."""
    def plan(dom, refine):
        return [ix.ravel(ix.domain_index(dom.dims, shape, dom, refine), shape)]

    def emit(point, dom):
        off = point.expr(ix.ravel(ix.domain_index(dom.dims, shape, dom, False), shape))
        value = load(point.builder, point.ptrs(src_key), off, src_dtype, point.group)
        value = convert(point.builder, value, src_dtype, dst_dtype)
        store(point.builder, value, point.ptrs(dst_key), off, dst_dtype, point.group)

    pointwise(ctx, "cvt", ix.Domain.of_shape(shape), plan, emit, extra=extra)
