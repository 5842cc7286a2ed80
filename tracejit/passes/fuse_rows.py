"""Row fusion (a GPU pass, after ``fuse_kernels``): a chain of reduction kernels over
the same rows, and the elementwise kernels that follow them over those rows, become
one ``kernel`` of kind ``"rows"``.

Softmax is three kernels for the CPU (a max; exp-and-sum with ``exp(x - m)`` as a side
output; the quotient), because a CPU reduction kernel is one loop nest and a reduction
never reads another of its kernel. A GPU block can own a whole row instead: reduce,
share the result through shared memory, reduce again, then write -- reading the row
from memory once per phase, writing each output once, and launching once. The same
shape covers layer norm (mean, variance of ``x - mean``, the normalized row) and
log-softmax.

A group starts at a reduction kernel with input shape ``S`` reduced over axes ``A`` and
takes, in program order, each later kernel that reads one of the group's outputs and
is a reduction over the same ``(S, A)`` or an elementwise kernel over ``S`` (or over
the reduced shape: an epilogue), provided every value it reads is the group's or is
defined before the group starts (so the merged kernel can run where the group's first
kernel was). A group of one kernel is left alone. The merged body is the members'
bodies inlined in order; its outputs are the members' outputs that something outside
the group reads.

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> from tracejit.passes.fuse import fuse_kernels
>>> b = GraphBuilder()
>>> x = b.add_input(tensor_type([8, 32], "f32"))
>>> m = b.emit1(ops.MAX, [x], {"axes": (1,), "keepdims": True})
>>> e = b.emit1(ops.EXP, [b.emit1(ops.SUB, [x, m])])
>>> y = b.emit1(ops.DIV, [e, b.emit1(ops.SUM, [e], {"axes": (1,), "keepdims": True})])
>>> fused = fuse_rows(fuse_kernels(b.build([y])))
>>> [(e.op.name, e.params["kind"]) for e in fused.eqns]
[('kernel', 'rows')]
"""

from __future__ import annotations

import math

from ..ir import GraphBuilder
from ..ir.core import Eqn, Graph, Var
from ..ir.opdef import Tag, get_op
from .common import logger, stamp

__all__ = ["fuse_rows", "row_geometry"]

_KERNEL = get_op("kernel")


def row_geometry(body: Graph) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(input shape, reduced axes)`` of a body's first reduction."""
    first = next(e for e in body.eqns if e.op.has(Tag.REDUCE))
    axes = (first.params["axis"],) if "axis" in first.params else tuple(first.params["axes"])
    return tuple(first.ins[0].shape), axes


def _kind(eqn: Eqn) -> str | None:
    return eqn.params["kind"] if eqn.op is _KERNEL else None


def _fits(eqn: Eqn, geometry) -> bool:
    shape, axes = geometry
    kind = _kind(eqn)
    if kind == "reduction":
        return row_geometry(eqn.params["body"]) == geometry
    if kind == "elementwise":
        size = math.prod(eqn.outs[0].shape)
        rows = math.prod(d for a, d in enumerate(shape) if a not in axes)
        return size in (math.prod(shape), rows)
    return False


def _groups(graph: Graph) -> list[list[int]]:
    eqns = graph.eqns
    producer = {id(v): i for i, e in enumerate(eqns) for v in e.outs}
    taken: set[int] = set()
    groups = []
    for i, eqn in enumerate(eqns):
        if i in taken or _kind(eqn) != "reduction":
            continue
        geometry = row_geometry(eqn.params["body"])
        shape, axes = geometry
        if math.prod(shape[a] for a in axes) < 2:
            continue
        group, made = [i], {id(v) for v in eqn.outs}
        for j in range(i + 1, len(eqns)):
            other = eqns[j]
            if j in taken or not _fits(other, geometry):
                continue
            if not any(id(v) in made for v in other.ins):
                continue
            if all(id(v) in made or producer.get(id(v), -1) < i for v in other.ins):
                group.append(j)
                made |= {id(v) for v in other.outs}
        if len(group) > 1:
            groups.append(group)
            taken |= set(group)
    return groups


def _row_safe(body: Graph, geometry) -> bool:
    """Whether every row-sized value reads the group's per-row values *at its own row*:
    through an elementwise op over exactly the rows' shape, from exactly the keepdims
    shape (so broadcasting drops just the reduced axes). A per-row value that is
    reshaped, or broadcast against another shape (``x[4,4] + mean(x, 1)[4]`` broadcasts
    along the wrong axis), would need the general index path: such groups stay apart."""
    shape, axes = geometry
    size = math.prod(shape)
    rows = math.prod(d for a, d in enumerate(shape) if a not in axes)
    keepdims = tuple(1 if a in axes else d for a, d in enumerate(shape))
    made_here = {id(v) for e in body.eqns for v in e.outs}
    for eqn in body.eqns:
        if eqn.op.has(Tag.REDUCE) or math.prod(eqn.outs[0].shape) != size:
            continue
        for v in eqn.ins:
            if id(v) in made_here and rows > 1 and math.prod(v.shape) == rows and \
                    not (eqn.op.has(Tag.ELEMENTWISE) and tuple(v.shape) == keepdims
                         and tuple(eqn.outs[0].shape) == tuple(shape)):
                return False
    return True


def _merge(graph: Graph, group: list[int], read_outside: set[int]) -> Eqn | None:
    eqns = [graph.eqns[i] for i in group]
    made = {id(v) for e in eqns for v in e.outs}
    b = GraphBuilder("rows")
    outer_ins: list[Var] = []
    value_of: dict[int, Var] = {}
    for eqn in eqns:
        for v in eqn.ins:
            if id(v) not in made and id(v) not in value_of:
                value_of[id(v)] = b.add_input(v.type)
                outer_ins.append(v)
    for eqn in eqns:
        body = eqn.params["body"]
        env = {id(inner): value_of[id(v)] for inner, v in zip(body.inputs, eqn.ins,
                                                                strict=True)}
        for inner in body.eqns:
            outs = b.emit(inner.op, [env[id(v)] for v in inner.ins], dict(inner.params))
            env.update({id(o): n for o, n in zip(inner.outs, outs, strict=True)})
        for inner, v in zip(body.outputs, eqn.outs, strict=True):
            value_of[id(v)] = env[id(inner)]
    outer_outs = [v for e in eqns for v in e.outs if id(v) in read_outside]
    merged = b.build([value_of[id(v)] for v in outer_outs], stage="body")
    if not _row_safe(merged, row_geometry(merged)):
        return None
    return Eqn(_KERNEL, tuple(outer_ins), tuple(outer_outs),
               _KERNEL.make_params({"body": merged, "kind": "rows"}))


def fuse_rows(graph: Graph) -> Graph:
    groups = _groups(graph)
    if not groups:
        return graph
    members = {i: g for g in groups for i in g}
    group_of = {i: k for k, g in enumerate(groups) for i in g}
    made_by = {id(v): group_of.get(i) for i, e in enumerate(graph.eqns) for v in e.outs}
    # a member's output leaves its kernel when a graph output or any eqn outside its
    # group reads it
    outside = {id(v) for v in graph.outputs}
    for i, eqn in enumerate(graph.eqns):
        for v in eqn.ins:
            source = made_by.get(id(v))
            if source is None or group_of.get(i) != source:
                outside.add(id(v))
    merged = {g[0]: _merge(graph, g, outside) for g in groups}
    new_eqns = []
    for i, eqn in enumerate(graph.eqns):
        group = members.get(i)
        if group is None or merged[group[0]] is None:
            new_eqns.append(eqn)        # not a group, or one that must stay apart
        elif i == group[0]:
            new_eqns.append(merged[i])
    logger.debug("fuse_rows: %d row kernels", sum(1 for m in merged.values() if m))
    return stamp(graph, new_eqns, graph.outputs, "fuse_rows")
