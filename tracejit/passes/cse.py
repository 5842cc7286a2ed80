"""Common-subexpression elimination: one equation per distinct computation.

Two equations compute the same value when they apply the same op, with equal params,
to the same operands (in either order for ops tagged COMMUTATIVE) and request the same
device for their outputs. The later one is dropped and its uses read the earlier one's
outputs. Params compare by value: equal constants (``ConstValue`` compares contents)
and equal nested graphs (structurally) merge too. Ops tagged STATEFUL are never merged:
two assignments are two effects. ``random_bits`` is a pure function of its key, so two
draws from one key are one draw.

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> b = GraphBuilder()
>>> x, y = b.add_input(tensor_type([3], "f32")), b.add_input(tensor_type([3], "f32"))
>>> s, t = b.emit1(ops.ADD, [x, y]), b.emit1(ops.ADD, [y, x])
>>> g = eliminate_common_subexpressions(b.build([b.emit1(ops.MUL, [s, t])]))
>>> [e.op.name for e in g.eqns]
['add', 'mul']
"""

from __future__ import annotations

from ..ir.core import Eqn, Graph, Var
from ..ir.opdef import Tag
from ..ir.regions import has_effect
from .common import logger, renamer, stamp

__all__ = ["eliminate_common_subexpressions"]


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    subst: dict[int, Var] = {}
    rename = renamer(subst)
    seen: dict[tuple, tuple[Var, ...]] = {}
    eqns: list[Eqn] = []
    merged = 0
    for eqn in graph.eqns:
        ins = tuple(rename(v) for v in eqn.ins)
        if ins != eqn.ins:
            eqn = Eqn(eqn.op, ins, eqn.outs, eqn.params)
        if has_effect(eqn.op, eqn.params):
            eqns.append(eqn)
            continue
        operands = tuple(id(v) for v in ins)
        if eqn.op.has(Tag.COMMUTATIVE):
            operands = tuple(sorted(operands))
        key = (eqn.op.name, operands, eqn.params, tuple(v.meta.device for v in eqn.outs))
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = eqn.outs
            eqns.append(eqn)
            continue
        merged += 1
        for old, new in zip(eqn.outs, earlier, strict=True):
            subst[id(old)] = new
    if merged:
        logger.debug("eliminate_common_subexpressions: merged %d eqns in %s", merged,
                     graph.name)
    return stamp(graph, eqns, [rename(v) for v in graph.outputs],
                 "eliminate_common_subexpressions")
