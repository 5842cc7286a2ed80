"""Reverse-mode automatic differentiation as a graph transformation.

As in the 2016 TensorFlow design, gradients are *ops added to the graph*: given the
equations recorded so far, ``add_gradients`` walks backward from ``ys`` to ``xs`` and
appends the equations of each op's VJP rule (declared with the op in the op table).
The result is ordinary IR, so it can be differentiated again (grad of grad),
optimized, fused and compiled like anything else.

Only float values carry gradients: integer and bool inputs get none, as in TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir.builder import GraphBuilder
from ..ir.core import Graph, Var, VarMeta
from ..ir.errors import TracejitError
from ..ir.symbolic import Sym, SymBuilder


class GradientError(TracejitError, LookupError):
    """An op on the path from xs to ys has no gradient rule."""


def _differentiable(var: Var) -> bool:
    return var.dtype.is_float


def add_gradients(builder: GraphBuilder, ys: Sequence[Var], xs: Sequence[Var],
                  grad_ys: Sequence[Var | None] | None = None,
                  meta: VarMeta | None = None) -> list[Var | None]:
    """Append the equations computing d(sum of ys * grad_ys)/d(xs) to ``builder``.

    ``grad_ys`` defaults to ones. Returns one Var per x, or None where no
    differentiable path leads from that x to any y.
    """
    g = SymBuilder(builder, meta)
    g.differentiate = add_gradients     # control-flow rules differentiate their regions
    reaches_from_x = {id(x) for x in xs if _differentiable(x)}
    for eqn in builder.eqns:
        if any(id(v) in reaches_from_x for v in eqn.ins):
            reaches_from_x.update(id(o) for o in eqn.outs if _differentiable(o))
    saved = _record_residuals(builder, ys, reaches_from_x)
    eqns = list(builder.eqns)     # the forward computation, before any gradient eqns

    cotangents: dict[int, Sym] = {}

    def accumulate(var: Var, ct: Sym) -> None:
        known = cotangents.get(id(var))
        cotangents[id(var)] = ct if known is None else known + ct

    grad_ys = list(grad_ys) if grad_ys is not None else [None] * len(ys)
    for y, gy in zip(ys, grad_ys, strict=True):
        if id(y) not in reaches_from_x:
            continue
        seed = g.wrap(gy) if gy is not None else g.op("fill", shape=y.shape, value=1,
                                                      dtype=y.dtype)
        accumulate(y, g.cast(seed, y.dtype))

    for eqn in reversed(eqns):
        if not any(id(o) in cotangents for o in eqn.outs):
            continue
        if not any(id(v) in reaches_from_x for v in eqn.ins):
            continue
        if eqn.op.vjp is None:
            raise GradientError(f"no gradient is defined for op {eqn.op.name} "
                                f"(on the path from xs to ys)", op=eqn.op.name,
                                location=None if meta is None else meta.source)
        cts = [cotangents.get(id(o)) or g.zeros(o.shape, o.dtype) for o in eqn.outs]
        ins = [g.wrap(v) for v in eqn.ins]
        outs = [g.wrap(v) for v in eqn.outs]
        if id(eqn) in saved:
            in_cts = eqn.op.vjp(g, ins, outs, cts, eqn.params, saved=saved[id(eqn)])
        else:
            in_cts = eqn.op.vjp(g, ins, outs, cts, eqn.params)
        for var, ct in zip(eqn.ins, in_cts, strict=True):
            if ct is None or id(var) not in reaches_from_x:
                continue
            if ct.shape != var.shape or ct.dtype is not var.dtype:
                raise GradientError(f"gradient rule returned {ct.var.type} for an input of "
                                    f"type {var.type}", op=eqn.op.name)
            accumulate(var, ct)

    return [cotangents[id(x)].var if id(x) in cotangents else None for x in xs]


def _record_residuals(builder: GraphBuilder, ys: Sequence[Var], reaches_from_x: set[int]
                      ) -> dict[int, object]:
    """Swap in, for each equation on a path from xs to ys whose op records residuals
    (loops), the equations that also record them; ``{id(new eqn): saved}``."""
    needed = {id(y) for y in ys}
    on_path = set()
    for eqn in reversed(builder.eqns):
        if any(id(o) in needed for o in eqn.outs):
            needed.update(id(v) for v in eqn.ins)
            if eqn.op.with_residuals is not None and \
                    any(id(v) in reaches_from_x for v in eqn.ins):
                on_path.add(id(eqn))
    if not on_path:
        return {}
    saved: dict[int, object] = {}
    swapped = []
    for eqn in builder.eqns:
        if id(eqn) not in on_path:
            swapped.append(eqn)
            continue
        replacement, data = eqn.op.with_residuals(eqn, add_gradients)
        swapped.extend(replacement)
        saved[id(replacement[-1])] = data
    builder.eqns[:] = swapped
    return saved


def gradient_graph(graph: Graph, wrt: Sequence[int] | None = None) -> Graph:
    """A new graph computing ``graph``'s outputs followed by the gradients of the sum of its
    first output with respect to the inputs at ``wrt`` (all float inputs by default).
    Inputs with no path get a zero gradient."""
    builder = GraphBuilder(graph.name)
    mapping: dict[int, Var] = {}
    for v in graph.inputs:
        mapping[id(v)] = builder.add_input(v.type, v.meta)
    for eqn in graph.eqns:
        outs = builder.emit(eqn.op, [mapping[id(v)] for v in eqn.ins], dict(eqn.params))
        for old, new in zip(eqn.outs, outs, strict=True):
            mapping[id(old)] = new
    outputs = [mapping[id(v)] for v in graph.outputs]
    wrt = [i for i, v in enumerate(graph.inputs) if v.dtype.is_float] if wrt is None else wrt
    xs = [builder.inputs[i] for i in wrt]
    grads = add_gradients(builder, outputs[:1], xs)
    g = SymBuilder(builder)
    filled = [gv if gv is not None else g.zeros(x.shape, x.dtype).var
              for gv, x in zip(grads, xs, strict=True)]
    return builder.build(outputs + filled, stage="autodiff")
