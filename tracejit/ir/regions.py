"""Working with regions: the graphs a control-flow op holds in its params.

A region is an ordinary :class:`Graph`; the op that holds it says how its inputs and
outputs line up with the op's own (ops_control.py). These helpers are what passes,
autodiff and front ends share to copy a region's equations into another graph, to
rewrite every region of an equation, and to build a region from a Python function of
Vars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .builder import GraphBuilder
from .core import Eqn, Graph, Var
from .opdef import Tag

__all__ = ["inline", "regions_of", "map_regions", "has_regions", "region_from", "has_effect"]


def inline(builder: GraphBuilder, graph: Graph, ins: Sequence[Var]) -> list[Var]:
    """Append ``graph``'s equations to ``builder`` reading ``ins`` in place of its
    inputs; returns the Vars that hold its outputs. Every defined Var is fresh, so one
    region can be inlined any number of times."""
    if len(ins) != len(graph.inputs):
        raise ValueError(f"graph {graph.name!r} takes {len(graph.inputs)} inputs, "
                         f"got {len(ins)}")
    env: dict[int, Var] = {id(v): x for v, x in zip(graph.inputs, ins, strict=True)}
    for eqn in graph.eqns:
        outs = tuple(Var(v.type, v.meta) for v in eqn.outs)
        builder.eqns.append(Eqn(eqn.op, tuple(env[id(v)] for v in eqn.ins), outs,
                                eqn.params))
        env.update((id(old), new) for old, new in zip(eqn.outs, outs, strict=True))
    return [env[id(v)] for v in graph.outputs]


def has_regions(eqn: Eqn) -> bool:
    """Whether ``eqn`` holds regions that passes must look into (fusion kernels hold a
    graph too, but theirs is the backend's, made last)."""
    return eqn.op.has(Tag.CONTROL_FLOW)


def regions_of(eqn: Eqn) -> Iterator[Graph]:
    for value in eqn.params.values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Graph):
                yield item


def has_effect(op, params) -> bool:
    """Whether an equation of ``op`` with ``params`` has an effect: the op is STATEFUL,
    or one of its regions (at any depth) holds such an equation (a loop whose body
    prints). Such an equation is never evaluated early, merged or removed."""
    if op.has(Tag.STATEFUL):
        return True
    if not op.has(Tag.CONTROL_FLOW):
        return False
    for value in params.values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Graph) and any(has_effect(e.op, e.params) for e in item.eqns):
                return True
    return False


def map_regions(eqn: Eqn, rewrite: Callable[[Graph], Graph]) -> Eqn:
    """``eqn`` with every region replaced by ``rewrite(region)``; the same Eqn object
    when nothing changed."""
    if not has_regions(eqn):
        return eqn
    changed = False

    def swap(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, Graph):
            new = rewrite(value)
            changed = changed or new is not value
            return new
        if isinstance(value, tuple):
            return tuple(swap(v) for v in value)
        return value

    params = {k: swap(v) for k, v in eqn.params.items()}
    if not changed:
        return eqn
    return Eqn(eqn.op, eqn.ins, eqn.outs, eqn.op.make_params(params))


def region_from(name: str, in_types: Sequence, body: Callable[[GraphBuilder, list[Var]],
                                                                Sequence[Var]]) -> Graph:
    """A region graph with inputs of ``in_types`` whose outputs ``body(builder, inputs)``
    emits and returns."""
    builder = GraphBuilder(name)
    ins = [builder.add_input(t) for t in in_types]
    return builder.build(list(body(builder, ins)), stage="region")
