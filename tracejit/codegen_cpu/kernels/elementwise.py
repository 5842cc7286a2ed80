"""The elementwise loop nest of a kernel body: every output of ``body`` computed point by
point from its inputs (broadcast strides, fused index maps) in one loop nest over the
outputs' common size. Elementwise kernels are this alone; a reduction kernel's
prologue, a matmul's epilogue and the movement ops' one-equation bodies reuse it."""

from __future__ import annotations

from ...ir import ops
from ...ir.core import Graph
from ...ir.opdef import Tag
from ..loops import index as ix
from ..loops.body import Leaf, PointEval
from ..loops.pointwise import FnContext, pointwise

__all__ = ["lower_elementwise_body", "input_leaves", "body_weight"]


def input_leaves(body: Graph, n_outs: int) -> dict[int, Leaf]:
    leaves: dict[int, Leaf] = {}
    for i, v in enumerate(body.inputs):
        leaves.setdefault(id(v), Leaf(n_outs + i, v.dtype))
    return leaves


def body_weight(body: Graph) -> int:
    """A rough per-element cost, for the threading threshold."""
    weight = 1
    for e in body.eqns:
        if e.op.has(Tag.TRANSCENDENTAL):
            weight += 8
        elif e.op is ops.RANDOM_BITS:
            weight += 16
        elif e.op.has(Tag.ELEMENTWISE):
            weight += 1
    return weight


def lower_elementwise_body(ctx: FnContext, body: Graph, *, leaves=None, skip=(), extra=None,
                           shape=None) -> None:
    """One loop nest over the outputs' common size, storing every body output (except
    the positions in ``skip``) into buffer ``position``."""
    n_outs = len(body.outputs)
    if leaves is None:
        leaves = input_leaves(body, n_outs)
    outputs = [(j, v) for j, v in enumerate(body.outputs) if j not in skip]
    if not outputs:
        return
    shape = shape if shape is not None else outputs[0][1].shape
    size = ix.Domain.of_shape(shape).size if 0 not in shape else 0
    for _, v in outputs:
        if v.type.size != size:
            raise NotImplementedError(f"elementwise kernel outputs of different sizes: "
                                      f"{[str(v.type) for v in body.outputs]}")

    def run(evaluator: PointEval, dom: ix.Domain) -> None:
        evaluator.store_all([(v, j, evaluator.at(dom.dims, v.shape), v.dtype)
                             for j, v in outputs])

    def plan(dom, refine):
        evaluator = PointEval(body, dom, leaves, refine=refine)
        run(evaluator, dom)
        return evaluator.exprs

    def emit(point, dom):
        run(PointEval(body, dom, leaves, point=point), dom)

    pointwise(ctx, "ew", ix.Domain.of_shape(shape), plan, emit, weight=body_weight(body),
              extra=extra)
