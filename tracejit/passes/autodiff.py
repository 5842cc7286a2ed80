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
from dataclasses import dataclass

from ..ir import dtypes
from ..ir.builder import GraphBuilder
from ..ir.core import Graph, Var, VarMeta
from ..ir.errors import TracejitError
from ..ir.symbolic import Sym, SymBuilder


class GradientError(TracejitError, LookupError):
    """An op on the path from xs to ys has no gradient rule."""


def _differentiable(var: Var) -> bool:
    return var.dtype.is_float


@dataclass(frozen=True)
class RowSlices:
    """A row-sparse gradient (TensorFlow's IndexedSlices): the dense gradient is zero
    except that ``values[i]`` is added to row ``indices[i]`` (repeated indices add up)."""

    values: Var
    indices: Var


def add_gradients(builder: GraphBuilder, ys: Sequence[Var], xs: Sequence[Var],
                  grad_ys: Sequence[Var | None] | None = None,
                  meta: VarMeta | None = None,
                  sparse: Sequence[bool] = ()) -> list[Var | RowSlices | None]:
    """Append the equations computing d(sum of ys * grad_ys)/d(xs) to ``builder``.

    ``grad_ys`` defaults to ones. Returns one Var per x, or None where no
    differentiable path leads from that x to any y. An x marked in ``sparse`` whose
    every use on the way to the ys is an op with a row rule (``sparse_vjp``: a gather of
    rows) gets its gradient as ``RowSlices`` instead of a dense Var.
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
    wants_rows = {id(x) for x, rows in zip(xs, sparse, strict=False)
                  if rows and id(x) in reaches_from_x}
    row_parts: dict[int, list[tuple[Sym, Sym]]] = {}

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
        rows = _rows_of_first_input(g, eqn, ins, outs, cts, wants_rows)
        if rows is not None:
            row_parts.setdefault(id(eqn.ins[0]), []).append(rows)
            if not any(id(v) in reaches_from_x for v in eqn.ins[1:]):
                continue
        if id(eqn) in saved:
            in_cts = eqn.op.vjp(g, ins, outs, cts, eqn.params, saved=saved[id(eqn)])
        else:
            in_cts = eqn.op.vjp(g, ins, outs, cts, eqn.params)
        for position, (var, ct) in enumerate(zip(eqn.ins, in_cts, strict=True)):
            if ct is None or id(var) not in reaches_from_x or (rows is not None and position == 0):
                continue
            if ct.shape != var.shape or ct.dtype is not var.dtype:
                raise GradientError(f"gradient rule returned {ct.var.type} for an input of "
                                    f"type {var.type}", op=eqn.op.name)
            accumulate(var, ct)

    return [_gradient_of(g, cotangents.get(id(x)), row_parts.get(id(x))) for x in xs]


def _rows_of_first_input(g: SymBuilder, eqn, ins, outs, cts, wants_rows: set[int]):
    """The op's row rule for its first input where that input wants rows (and is not
    also another input of the op), else None."""
    if not eqn.ins or id(eqn.ins[0]) not in wants_rows or eqn.op.sparse_vjp is None:
        return None
    if any(v is eqn.ins[0] for v in eqn.ins[1:]):
        return None
    return eqn.op.sparse_vjp(g, ins, outs, cts, eqn.params)


def _gradient_of(g: SymBuilder, dense: Sym | None, parts) -> Var | RowSlices | None:
    """One x's gradient from its dense cotangent and its row parts: rows alone stay
    rows (joined); rows beside a dense part are added into it, as TensorFlow's
    aggregation densifies a mix of IndexedSlices and tensors."""
    if not parts:
        return None if dense is None else dense.var
    values = [v for v, _ in parts]
    indices = [i for _, i in parts]
    if len({i.dtype for i in indices}) > 1:
        indices = [g.cast(i, dtypes.int64) for i in indices]
    if len(parts) > 1:
        values, indices = [g.op("concat", *values, axis=0)], [g.op("concat", *indices, axis=0)]
    if dense is None:
        return RowSlices(values[0].var, indices[0].var)
    return g.op("scatter_add", dense, indices[0], values[0], axis=0).var


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
