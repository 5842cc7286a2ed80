"""Elementwise kernels: one grid-stride loop over the flat index of the domain.

Every computed value of an elementwise body has the domain's size (the fusion rules),
so each thread computes the whole body at its flat index ``i`` and writes every output
there. Consecutive threads take consecutive ``i``: loads and stores coalesce, broadcast
operands are read at ``i % n`` or ``i // n`` (point.py).
"""

from __future__ import annotations

import math

from ...ir.core import Graph
from ..point import Index, Leaf, PointEmitter
from ..scalars import store_expr
from ..source import Arg, GeneratedKernel, Param, SourceWriter
from .common import constant_leaves, grid_stride_kernel

__all__ = ["elementwise_kernel"]


def elementwise_kernel(body: Graph, simulating: bool, stem: str = "elementwise",
                       extra_leaves: dict | None = None) -> GeneratedKernel:
    """The kernel computing ``body`` over its outputs' common size. ``extra_leaves``
    maps body values already in buffers (a matmul's result) to ``(param, Arg)``."""
    size = int(math.prod(body.outputs[0].shape))
    params = [Param(f"o{k}", v.type.dtype) for k, v in enumerate(body.outputs)]
    args = [Arg("out", k) for k in range(len(body.outputs))]
    leaves: dict[int, Leaf] = {}
    for k, v in enumerate(body.inputs):
        leaves[id(v)] = Leaf(f"a{k}", v.type.dtype)
        params.append(Param(f"a{k}", v.type.dtype))
        args.append(Arg("in", k))
    for var_id, (param, arg, dtype) in (extra_leaves or {}).items():
        leaves[var_id] = Leaf(param, dtype)
        params.append(Param(param, dtype))
        args.append(arg)
    constant_leaves(body, leaves, params, args)

    def point(w: SourceWriter) -> None:
        emitter = PointEmitter(w, body, leaves)
        values = [emitter.value(v, Index(v.shape, flat="i")) for v in body.outputs]
        for k, (v, value) in enumerate(zip(body.outputs, values, strict=True)):
            w.line(f"o{k}[i] = {store_expr(value, v.type.dtype)}")
    return grid_stride_kernel(stem, params, args, size, simulating, point,
                              kind="elementwise")
