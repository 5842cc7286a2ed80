"""Loop-invariant code motion: what a loop body computes from loop invariants alone is
computed once, before the loop.

A loop's read-only operands (ops_control.loop_invariants says where they start) are the
same on every iteration, so an equation of a region whose inputs are all such values
(or results of equations already hoisted) computes the same value every time. It moves
out, in front of the loop, and its result enters the loop as a new read-only operand
(every region of the loop gets the new input; regions that do not use it ignore it).

Not hoisted: effects (STATEFUL), equations with no inputs (constants cost nothing inside
and fold there; one that a hoisted equation reads is copied out with it), and equations
whose inputs include a carried value, an element of a scanned input or the iteration
index. The pipeline runs the pass on every region,
innermost first, so values invariant in several nested loops climb out of all of them.

>>> import numpy as np, tracejit as tj
>>> from tracejit.passes import optimize
>>> g = tj.make_ir(lambda w, x: tj.fori_loop(0, 5, lambda i, v: v * tj.exp(w), x))(
...     np.float32(1), np.float32(2))
>>> [e.op.name for e in optimize(g).eqns]
['exp', 'scan']
"""

from __future__ import annotations

from ..ir.core import Eqn, Graph, Var
from ..ir.opdef import Tag, get_op
from ..ir.ops_control import loop_invariants
from .common import is_constant_eqn, logger, make_eqn, stamp

__all__ = ["hoist_loop_invariants", "hoist_from_loop"]

_TRANSPOSE = get_op("transpose")


def _movable(eqn: Eqn) -> bool:
    return bool(eqn.ins) and not eqn.op.has(Tag.STATEFUL)


def _pretransposed(inner: Eqn, invariant: dict, outer_of: dict, before: list[Eqn]) -> Eqn:
    """A product in the loop whose second operand is a loop-invariant matrix it reads
    transposed (the backward of ``h @ w`` in a recurrent cell: ``dz @ w^T``) reads a
    transposed copy made once before the loop instead: on the Intel host a
    [20,1024] x [1024,256]^T gemm took 100 us, the same with B stored as [1024,256] 68."""
    if not (inner.op.has(Tag.LINALG) and inner.params.get("transpose_b") and
            len(inner.ins) == 2 and inner.ins[1].type.ndim == 2 and
            id(inner.ins[1]) in invariant and id(inner.ins[0]) not in invariant):
        return inner
    flipped = make_eqn(_TRANSPOSE, [invariant[id(inner.ins[1])]], {"perm": (1, 0)})
    before.append(flipped)
    stand_in = Var(flipped.outs[0].type, flipped.outs[0].meta)
    invariant[id(stand_in)] = outer_of[id(stand_in)] = flipped.outs[0]
    return make_eqn(inner.op, [inner.ins[0], stand_in],
                    {**inner.params, "transpose_b": False}, outs=inner.outs)


def _hoist(eqn: Eqn, before: list[Eqn]) -> Eqn:
    """``eqn`` (a loop) with its regions' invariant equations moved into ``before``."""
    first_operand, starts = loop_invariants(eqn)
    operands = list(eqn.ins)
    outer_of: dict[int, Var] = {}        # a region's Var -> the outer Var it equals
    kept: dict[str, list[Eqn]] = {}
    for name, start in starts.items():
        region = eqn.params[name]
        invariant = {id(v): o for v, o in zip(region.inputs[start:], operands[first_operand:],
                                              strict=True)}
        stays = []
        constants: dict[int, Eqn] = {}      # copied out when a hoisted eqn reads them
        for inner in region.eqns:
            if is_constant_eqn(inner) and len(inner.outs) == 1:
                constants[id(inner.outs[0])] = inner
            ready = all(id(v) in invariant or id(v) in constants for v in inner.ins)
            if _movable(inner) and ready and any(id(v) in invariant for v in inner.ins):
                for v in inner.ins:
                    if id(v) not in invariant:
                        copy = make_eqn(constants[id(v)].op, [], constants[id(v)].params)
                        before.append(copy)
                        invariant[id(v)] = copy.outs[0]
                moved = make_eqn(inner.op, [invariant[id(v)] for v in inner.ins],
                                 inner.params, meta=inner.outs[0].meta if inner.outs else None)
                before.append(moved)
                for old, new in zip(inner.outs, moved.outs, strict=True):
                    invariant[id(old)] = new
                    outer_of[id(old)] = new
            else:
                stays.append(_pretransposed(inner, invariant, outer_of, before))
        kept[name] = stays
    if not outer_of:
        return eqn
    # the hoisted values the loop still reads enter as new read-only operands
    used: dict[int, Var] = {}
    for name, stays in kept.items():
        region = eqn.params[name]
        for v in [x for e in stays for x in e.ins] + list(region.outputs):
            if id(v) in outer_of:
                used.setdefault(id(outer_of[id(v)]), outer_of[id(v)])
    new_operands = list(used.values())
    params = dict(eqn.params)
    for name, stays in kept.items():
        region = eqn.params[name]
        fresh = {id(o): Var(o.type, o.meta) for o in new_operands}
        mapping = {k: fresh[id(o)] for k, o in outer_of.items() if id(o) in fresh}

        def rename(v: Var, mapping=mapping) -> Var:
            return mapping.get(id(v), v)
        eqns = [Eqn(e.op, tuple(rename(v) for v in e.ins), e.outs, e.params) for e in stays]
        params[name] = Graph(list(region.inputs) + [fresh[id(o)] for o in new_operands], eqns,
                             [rename(v) for v in region.outputs], name=region.name,
                             stage="hoist_loop_invariants")
    return make_eqn(eqn.op, operands + new_operands, params, outs=eqn.outs)


def hoist_from_loop(eqn: Eqn) -> list[Eqn]:
    """``eqn`` (a loop) as the equations to run instead: the hoisted ones, then the loop
    (whose outputs are ``eqn``'s own Vars). Front ends call it when they record a loop,
    so that autodiff sees invariants outside (a gradient summed over the iterations is
    then the gradient of the small hoisted value, not of what it was computed from)."""
    before: list[Eqn] = []
    after = _hoist(eqn, before)
    return before + [after]


def hoist_loop_invariants(graph: Graph) -> Graph:
    eqns: list[Eqn] = []
    moved = 0
    for eqn in graph.eqns:
        if eqn.op.has(Tag.LOOP):
            start = len(eqns)
            new = _hoist(eqn, eqns)
            moved += len(eqns) - start
            eqn = new
        eqns.append(eqn)
    if moved:
        logger.debug("hoist_loop_invariants: moved %d eqns out of loops in %s", moved,
                     graph.name)
    return stamp(graph, eqns, graph.outputs, "hoist_loop_invariants")
