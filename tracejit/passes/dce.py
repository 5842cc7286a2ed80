"""Dead-code elimination: drop equations whose results nothing needs.

What is needed: the graph's outputs, everything an effect (an op tagged STATEFUL: a
variable assignment, a send, a queue operation) reads, and, transitively, the inputs of
every needed equation. Effects themselves are always kept, even when their outputs are
unused, because running them is the point. The graph's inputs are its signature and
stay even when unused.

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> b = GraphBuilder()
>>> x = b.add_input(tensor_type([3], "f32"))
>>> _ = b.emit1(ops.EXP, [x])                      # unused
>>> g = eliminate_dead_code(b.build([b.emit1(ops.NEG, [x])]))
>>> [e.op.name for e in g.eqns], g.stage
(['neg'], 'eliminate_dead_code')
"""

from __future__ import annotations

from ..ir.core import Graph
from ..ir.regions import has_effect
from .common import logger, stamp

__all__ = ["eliminate_dead_code"]


def eliminate_dead_code(graph: Graph) -> Graph:
    needed = {id(v) for v in graph.outputs}
    kept = []
    for eqn in reversed(graph.eqns):
        if has_effect(eqn.op, eqn.params) or any(id(v) in needed for v in eqn.outs):
            kept.append(eqn)
            needed.update(id(v) for v in eqn.ins)
    removed = len(graph.eqns) - len(kept)
    if removed:
        logger.debug("eliminate_dead_code: removed %d of %d eqns in %s", removed,
                     len(graph.eqns), graph.name)
    return stamp(graph, reversed(kept), graph.outputs, "eliminate_dead_code")
