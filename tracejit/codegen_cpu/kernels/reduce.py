"""Reduction kernels: a prologue, reductions over common axes, an epilogue.

The loop domain is the reductions' input shape, each dimension *kept* or *reduced*.
Accumulators have the input's compute type (integers wrap in their own type, halves
accumulate in float32 and round once); float sums and products carry the fast-math
flags (``reassoc`` lets LLVM vectorize them). Three loop structures:

* **inner** (the innermost dimension is reduced): for each kept point, a scalar
  accumulator runs over the reduced dims; then the epilogue for that point. Threads
  share the kept points. Rows longer than ``RCHUNK`` are summed chunk by chunk into
  fresh accumulators that are then merged (much less rounding error in float sums);
* **split** (inner, but the whole reduction has one output point): threads share the
  reduced range, each keeps a partial per reduction, the caller combines the partials
  in thread order and runs the epilogue;
* **outer** (the innermost dimension is kept, e.g. a column sum): for a block of up to
  ``ACC_BLOCK`` contiguous kept elements, accumulator arrays on the stack; the reduced
  dims loop outside a vectorized loop over the block; then the epilogue over the block.

``argmax``/``argmin`` keep (best value, index) and replace it only on a strictly
better value or the first NaN, so the first extreme (or first NaN) wins. What each
reduction computes per element is reducers.py's.
"""

from __future__ import annotations

import math

from llvmlite import ir

from ...ir.core import Eqn, Graph
from ...ir.opdef import Tag
from ..host.vector_choice import in_short_loops
from ..loops import index as ix
from ..loops.body import Point, PointEval
from ..loops.loops import Loops, block_size, c64, counted_loop, n_work_items, nest, work_items
from ..loops.pointwise import FnContext, PtrCache, plan_domain, pointwise
from ..parallel.parallel_for import emit_parallel_for, entry_alloca
from ..parallel.settings import parallel_config, should_parallelize
from .elementwise import body_weight, input_leaves
from .reducers import Reducer

__all__ = ["lower_reduction_body", "ACC_BLOCK"]

ACC_BLOCK = 512
RCHUNK = 4096


def _axes(eqn: Eqn) -> tuple[int, ...]:
    return tuple(eqn.params["axes"]) if "axes" in eqn.params else (eqn.params["axis"],)


class _Slots:
    """Accumulator state kept in stack slots (promoted to registers by SROA)."""

    def __init__(self, builder, reducers: list[Reducer], count: int | None = None):
        self.reducers = reducers
        self.slots = [[entry_alloca(builder, ty, count) for ty in r.types] for r in reducers]

    @classmethod
    def wrap(cls, reducers: list[Reducer], slots: list[list]) -> _Slots:
        self = cls.__new__(cls)
        self.reducers, self.slots = reducers, slots
        return self

    def ptr(self, b, r, s, k):
        ty = self.reducers[r].types[s]
        return self.slots[r][s] if k is None else b.gep(self.slots[r][s], [k], inbounds=True,
                                                        source_etype=ty)

    def init(self, b, k=None, group=None):
        for r, red in enumerate(self.reducers):
            for s, value in enumerate(red.init()):
                _store(b, value, self.ptr(b, r, s, k), group)

    def read(self, b, r, k=None, group=None) -> list:
        return [_load(b, self.ptr(b, r, s, k), ty, group)
                for s, ty in enumerate(self.reducers[r].types)]

    def write(self, b, r, state, k=None, group=None):
        for s, value in enumerate(state):
            _store(b, value, self.ptr(b, r, s, k), group)


def _load(b, ptr, ty, group):
    instr = b.load(ptr, typ=ty)
    if group is not None:
        instr.set_metadata("llvm.access.group", group)
    return instr


def _store(b, value, ptr, group):
    instr = b.store(value, ptr)
    if group is not None:
        instr.set_metadata("llvm.access.group", group)


class _Body:
    """The reduction kernel's body split into prologue and epilogue."""

    def __init__(self, body: Graph):
        self.body = body
        n_outs = len(body.outputs)
        self.leaves = input_leaves(body, n_outs)
        self.reducers = [Reducer(e) for e in body.eqns if e.op.has(Tag.REDUCE)]
        first = self.reducers[0].eqn
        self.s_in = first.ins[0].shape
        self.axes = _axes(first)
        post: set[int] = set()
        for e in body.eqns:
            if e.op.has(Tag.REDUCE) or any(id(v) in post for v in e.ins):
                post.update(id(v) for v in e.outs)
        self.pre_outs = [(j, v) for j, v in enumerate(body.outputs) if id(v) not in post]
        self.post_outs = [(j, v) for j, v in enumerate(body.outputs) if id(v) in post]

    def prologue(self, ev: PointEval, dims) -> list:
        """Reduction operands (and argmax positions) at this point; side outputs stored."""
        index = ev.at(dims, self.s_in)
        values = []
        for red in self.reducers:
            x = ev.value(red.eqn.ins[0], index)
            pos = ev.expr(index[red.eqn.params["axis"]]) if red.is_arg else None
            values.append((x, pos))
        ev.store_all([(v, j, ev.at(dims, v.shape), v.dtype) for j, v in self.pre_outs])
        return values

    def epilogue(self, ev: PointEval, kept) -> None:
        ev.store_all([(v, j, ev.at(kept, v.shape), v.dtype) for j, v in self.post_outs])

    def known(self, b, states) -> dict:
        if b is None:
            return {id(r.eqn.outs[0]): None for r in self.reducers}
        return {id(r.eqn.outs[0]): r.finalize(b, s) for r, s in zip(self.reducers, states,
                                                                    strict=True)}


def lower_reduction_body(ctx: FnContext, body: Graph) -> None:
    kb = _Body(body)
    s_in, axes = kb.s_in, kb.axes
    d_out = kb.reducers[0].eqn.outs[0].type.size
    if d_out == 0:
        return
    if math.prod(s_in) == 0:
        _empty(ctx, kb)
        return
    roles = ["r" if a in axes else "k" for a in range(len(s_in))]

    def plan(dom, refine):
        pre = PointEval(body, dom, kb.leaves, refine=refine)
        kb.prologue(pre, dom.dims)
        post = PointEval(body, dom, kb.leaves, refine=refine, known=kb.known(None, None))
        kb.epilogue(post, dom.select("k"))
        return pre.exprs + post.exprs

    domain, exprs = plan_domain(ix.Domain.of_shape(s_in, roles), plan)
    if _operands_invariant(kb, domain):
        _broadcast_reduction(ctx, kb)
        return
    final, mapping = ix.coalesce(domain, exprs)
    dims = final.dims
    work = math.prod(s_in) * body_weight(body)
    if dims and dims[-1].role == "k" and dims[-1].size >= 8:
        _outer(ctx, kb, domain, final, mapping, work)
    else:
        _inner(ctx, kb, domain, final, mapping, work)


def _point(rb, env, mapping, ptrs, ctx):
    return Point(rb, env, mapping, ptrs, ctx.loops.group)


def _accumulate(kb, rb, slots, values, k=None, group=None):
    for r, (x, pos) in enumerate(values):
        state = slots.read(rb, r, k, group)
        slots.write(rb, r, kb.reducers[r].combine(rb, state, x, pos), k, group)


def _merge(rb, kb, into: _Slots, other: _Slots) -> None:
    for r, red in enumerate(kb.reducers):
        state, loc = into.read(rb, r), other.read(rb, r)
        into.write(rb, r, red.combine(rb, state, loc[0], loc[1] if len(loc) > 1 else None))


def _sweep(rb, kb, slots: _Slots, j0, j1, at) -> None:
    """Accumulate ``at(j)`` for j in [j0, j1) into ``slots``: in chunks of ``RCHUNK``,
    each summed into fresh accumulators and then merged, so a long float sum adds
    partial sums of similar size (about 60x less rounding error than one running sum
    per vector lane over 16M elements)."""
    rolled = Loops(rb.module) if in_short_loops() else None

    def plain(into, lo, hi):
        counted_loop(rb, lo, hi, lambda j: _accumulate(kb, rb, into, at(j)), name="r",
                     rolled=rolled)

    if isinstance(j1, ir.Constant) and isinstance(j0, ir.Constant) \
            and j1.constant - j0.constant <= RCHUNK:
        plain(slots, j0, j1)
        return
    local = _Slots(rb, kb.reducers)
    n = rb.sub(j1, j0)
    chunks = rb.udiv(rb.add(n, c64(RCHUNK - 1)), c64(RCHUNK))

    def chunk(t):
        lo = rb.add(j0, rb.mul(t, c64(RCHUNK)))
        hi = rb.add(lo, c64(RCHUNK))
        hi = rb.select(rb.icmp_signed("<", hi, j1), hi, j1)
        local.init(rb)
        plain(local, lo, hi)
        _merge(rb, kb, slots, local)

    counted_loop(rb, c64(0), chunks, chunk, name="chunk")


def _inner(ctx, kb: _Body, domain, final, mapping, work) -> None:
    kept, reduced = final.select("k"), final.select("r")
    n_kept = math.prod(d.size for d in kept)
    body = kb.body
    threads = parallel_config().threads
    split = n_kept == 1 and bool(reduced) and should_parallelize(math.prod(
        d.size for d in reduced), work)
    if not split:
        def run(rb, lo, hi, tid, captured):
            ptrs = PtrCache(rb, captured[0])
            env: dict = {}
            slots = _Slots(rb, kb.reducers)

            def item(j0, j1):
                slots.init(rb)

                def at(j):
                    if j is not None:
                        env[reduced[-1].id] = j
                    ev = PointEval(body, domain, kb.leaves, point=_point(rb, env, mapping, ptrs,
                                                                         ctx))
                    return kb.prologue(ev, domain.dims)

                if reduced:
                    nest(rb, reduced[:-1], env,
                         lambda: _sweep(rb, kb, slots, c64(0), c64(reduced[-1].size), at))
                else:
                    _accumulate(kb, rb, slots, at(None))
                states = [slots.read(rb, r) for r in range(len(kb.reducers))]
                ev = PointEval(body, domain, kb.leaves, known=kb.known(rb, states),
                               point=_point(rb, env, mapping, ptrs, ctx))
                kb.epilogue(ev, domain.select("k"))

            work_items(rb, kept, None, 1, lo, hi, env, item)

        emit_parallel_for(ctx.builder, ctx.sub_name("red"), n_kept, work, [ctx.fn.args[0]],
                          run)
        return

    outer, inner = reduced[:-1], reduced[-1]
    block = block_size(math.prod(d.size for d in outer), inner.size, threads, True)
    n_items = n_work_items(outer, inner, block)
    b = ctx.builder
    partials = _Slots(b, kb.reducers, threads)
    for t in range(threads):
        partials.init(b, c64(t))

    def run_split(rb, lo, hi, tid, captured):
        ptrs = PtrCache(rb, captured[0])
        # NOTE: the partial slots travel flattened; regroup them per reducer.
        it = iter(captured[1:])
        out = _Slots.wrap(kb.reducers, [[next(it) for _ in r.types] for r in kb.reducers])
        env: dict = {}
        slots = _Slots(rb, kb.reducers)
        slots.init(rb)

        def at(j):
            env[inner.id] = j
            ev = PointEval(body, domain, kb.leaves, point=_point(rb, env, mapping, ptrs, ctx))
            return kb.prologue(ev, domain.dims)

        def item(j0, j1):
            _sweep(rb, kb, slots, j0, j1, at)

        work_items(rb, outer, inner, block, lo, hi, env, item)
        for r in range(len(kb.reducers)):
            out.write(rb, r, slots.read(rb, r), tid)

    caps = [ctx.fn.args[0]] + [p for ps in partials.slots for p in ps]
    emit_parallel_for(b, ctx.sub_name("split"), n_items, work, caps, run_split)
    states = []
    for r, red in enumerate(kb.reducers):
        state = partials.read(b, r, c64(0))
        for t in range(1, threads):
            nxt = partials.read(b, r, c64(t))
            state = red.combine(b, state, nxt[0], nxt[1] if len(nxt) > 1 else None)
        states.append(state)
    ev = PointEval(body, domain, kb.leaves, known=kb.known(b, states),
                   point=_point(b, {}, mapping, ctx.ptrs, ctx))
    kb.epilogue(ev, domain.select("k"))


def _outer(ctx, kb: _Body, domain, final, mapping, work) -> None:
    kept, reduced = final.select("k"), final.select("r")
    inner, outer = kept[-1], kept[:-1]
    n_outer = math.prod(d.size for d in outer)
    threads = parallel_config().threads
    parallel = should_parallelize(n_outer * math.ceil(inner.size / ACC_BLOCK), work)
    block = min(ACC_BLOCK, block_size(n_outer, inner.size, threads, parallel))
    n_items = n_work_items(outer, inner, block)
    body = kb.body
    loops = ctx.loops

    def run(rb, lo, hi, tid, captured):
        ptrs = PtrCache(rb, captured[0])
        env: dict = {}
        slots = _Slots(rb, kb.reducers, block)
        group = loops.group

        def item(j0, j1):
            n = rb.sub(j1, j0)
            counted_loop(rb, c64(0), n, lambda k: slots.init(rb, k, group), parallel=loops,
                         name="init")

            def reduce_point():
                def at(k):
                    env[inner.id] = rb.add(j0, k)
                    ev = PointEval(body, domain, kb.leaves,
                                   point=_point(rb, env, mapping, ptrs, ctx))
                    _accumulate(kb, rb, slots, kb.prologue(ev, domain.dims), k, group)
                counted_loop(rb, c64(0), n, at, parallel=loops, name="k")

            nest(rb, reduced, env, reduce_point)

            def finish(k):
                env[inner.id] = rb.add(j0, k)
                states = [slots.read(rb, r, k, group) for r in range(len(kb.reducers))]
                ev = PointEval(body, domain, kb.leaves, known=kb.known(rb, states),
                               point=_point(rb, env, mapping, ptrs, ctx))
                kb.epilogue(ev, domain.select("k"))
            counted_loop(rb, c64(0), n, finish, parallel=loops, name="fin")

        work_items(rb, outer, inner, block, lo, hi, env, item)

    emit_parallel_for(ctx.builder, ctx.sub_name("colred"), n_items, work, [ctx.fn.args[0]],
                      run, force_serial=not parallel)


def _operands_invariant(kb: _Body, domain: ix.Domain) -> bool:
    """Whether no reduction operand depends on a reduced loop dimension: every operand
    is a broadcast along the reduced axes, so each kept point reduces n equal values."""
    reduced = {d.id for d in domain.select("r")}
    if not reduced:
        return False
    ev = PointEval(kb.body, domain, kb.leaves)
    index = ev.at(domain.dims, kb.s_in)
    for red in kb.reducers:
        ev.value(red.eqn.ins[0], index)
    return not any(ix.expr_dims(e) & reduced for e in ev.exprs)


def _broadcast_reduction(ctx, kb: _Body) -> None:
    """Reductions whose operands do not vary along the reduced axes: one evaluation per
    kept point, combined in closed form (:meth:`Reducer.repeat`); side outputs are an
    elementwise loop of their own.

    NOTE: besides saving the loop, this keeps a loop shape out of LLVM that its loop
    vectorizer (LLVM 22, with interleaving) never finishes on: a loop-invariant float
    ``floordiv``/``mod`` stored as a side output and fed to the reduction (issue 10)."""
    body, s_in, axes = kb.body, kb.s_in, kb.axes
    n = math.prod(s_in[a] for a in axes)
    kept_shape = [size for a, size in enumerate(s_in) if a not in axes]
    if kb.pre_outs:
        def side_outputs(dom, refine, point=None):
            ev = PointEval(body, dom, kb.leaves, refine=refine, point=point)
            ev.store_all([(v, j, ev.at(dom.dims, v.shape), v.dtype) for j, v in kb.pre_outs])
            return ev.exprs

        pointwise(ctx, "side", ix.Domain.of_shape(s_in), side_outputs,
                  lambda point, dom: side_outputs(dom, False, point))

    def reduce_at(dom, refine, point=None):
        kept = ix.domain_index(dom.dims, kept_shape, dom, refine)
        it = iter(kept)
        index = tuple(ix.ZERO if a in axes else next(it) for a in range(len(s_in)))
        ev = PointEval(body, dom, kb.leaves, refine=refine, point=point)
        xs = [ev.value(red.eqn.ins[0], index) for red in kb.reducers]
        b = point.builder if point is not None else None
        states = None if b is None else [red.repeat(b, x, n)
                                         for red, x in zip(kb.reducers, xs, strict=True)]
        post = PointEval(body, dom, kb.leaves, refine=refine, point=point,
                         known=kb.known(b, states))
        kb.epilogue(post, dom.dims)
        return ev.exprs + post.exprs

    pointwise(ctx, "bred", ix.Domain.of_shape(kept_shape), reduce_at,
              lambda point, dom: reduce_at(dom, False, point))


def _empty(ctx, kb: _Body) -> None:
    """Reducing an empty axis: every output point is the finalized initial state."""
    kept_shape = [n for a, n in enumerate(kb.s_in) if a not in kb.axes]
    body = kb.body

    def plan(dom, refine):
        ev = PointEval(body, dom, kb.leaves, refine=refine, known=kb.known(None, None))
        kb.epilogue(ev, dom.dims)
        return ev.exprs

    def emit(point, dom):
        states = [r.init() for r in kb.reducers]
        ev = PointEval(body, dom, kb.leaves, point=point, known=kb.known(point.builder, states))
        kb.epilogue(ev, dom.dims)

    pointwise(ctx, "empty", ix.Domain.of_shape(kept_shape), plan, emit)

