"""Post-training quantization as graph rewrites: which products are quantized (the
*sites*), the graph calibration runs, and the int8 graph.

A site is a ``conv2d`` or a ``matmul`` (A not transposed) of a float32 activation by a
float32 *constant* (a frozen weight). The rewrite replaces it by

    q   = cast[int8](clip(round(x * (1 / s)) + z, -128, 127))       # x's affine int8
    acc = int8_conv2d[..., pad_value=z](q, w_q)  /  int8_matmul(q, w_q)
    y   = cast[float32](acc) * (s * s_w) + (-z * s * s_w * sum(w_q))    # per channel

where ``s, z`` come from calibration and ``w_q, s_w`` are the per-output-channel
symmetric int8 weights. ``y`` stands exactly for ``sum((q - z) * w_q) * s * s_w``: the
padding of ``int8_conv2d`` holds ``z``, so every term of a window has the offset and
the per-channel ``sum(w_q)`` takes it off. Everything after the product (bias, batch
norm, ReLU, the next site's quantize) is left as it was: float ops that fusion puts in
the product's epilogue kernel (``int8_matmul``) or in one elementwise kernel after the
integer sums (``int8_conv2d``). The result is an ordinary graph: it runs on any device
and builds ahead of time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..ir import ConstValue, GraphBuilder, ops
from ..ir import dtypes as dt
from ..ir.core import Eqn, Graph, Var
from .numerics import QMAX, QMIN, AffineParams, quantize_weights

__all__ = ["Site", "find_sites", "with_site_inputs", "quantized_graph"]


@dataclass(frozen=True)
class Site:
    """One quantizable product: its position in the graph's equations, its op's name,
    the activation operand and the constant weight (as the product reads it: HWIO for
    a convolution, ``[k, n]`` for a matrix product)."""

    index: int
    op: str
    activation: Var
    weight: np.ndarray

    def describe(self) -> str:
        return f"{self.op} {list(self.activation.shape)} x {list(self.weight.shape)}"


def _constant_of(graph: Graph) -> dict[int, np.ndarray]:
    return {id(e.outs[0]): np.asarray(e.params["value"].array) for e in graph.eqns
            if e.op is ops.CONSTANT}


def find_sites(graph: Graph) -> list[Site]:
    """The products of ``graph`` that quantization rewrites, in equation order."""
    constants = _constant_of(graph)
    sites = []
    for i, eqn in enumerate(graph.eqns):
        if eqn.op not in (ops.CONV2D, ops.MATMUL):
            continue
        x, w = eqn.ins
        weight = constants.get(id(w))
        if weight is None or x.dtype is not dt.float32 or w.dtype is not dt.float32:
            continue
        if eqn.op is ops.MATMUL:
            if eqn.params["transpose_a"] or weight.ndim != 2:
                continue
            if eqn.params["transpose_b"]:
                weight = weight.T
        sites.append(Site(i, eqn.op.name, x, weight))
    return sites


def with_site_inputs(graph: Graph, sites: Sequence[Site]) -> Graph:
    """``graph`` with each site's activation as an extra output (what calibration
    observes), after the graph's own outputs."""
    return graph.replace(outputs=tuple(graph.outputs) + tuple(s.activation for s in sites))


def _const(b: GraphBuilder, value, dtype=np.float32) -> Var:
    return b.emit1(ops.CONSTANT, [], {"value": ConstValue(np.asarray(value, dtype))})


def _quantize(b: GraphBuilder, x: Var, p: AffineParams) -> Var:
    scaled = b.emit1(ops.MUL, [x, _const(b, np.float32(1.0 / p.scale))])
    shifted = b.emit1(ops.ADD, [b.emit1(ops.ROUND, [scaled]), _const(b, p.zero_point)])
    clipped = b.emit1(ops.CLIP, [shifted, _const(b, QMIN), _const(b, QMAX)])
    return b.emit1(ops.CAST, [clipped], {"dtype": dt.int8})


def _rewrite_site(b: GraphBuilder, eqn: Eqn, site: Site, x: Var, p: AffineParams) -> Var:
    q = _quantize(b, x, p)
    w_q, w_scales = quantize_weights(site.weight, axis=-1)
    if eqn.op is ops.CONV2D:
        acc = b.emit1(ops.INT8_CONV2D, [q, _const(b, w_q, np.int8)],
                      {**eqn.params, "pad_value": p.zero_point})
    else:
        acc = b.emit1(ops.INT8_MATMUL, [q, _const(b, w_q, np.int8)])
    column_sums = w_q.reshape(-1, w_q.shape[-1]).astype(np.int64).sum(axis=0)
    scale = (np.float64(p.scale) * w_scales).astype(np.float32)
    offset = (-p.zero_point * column_sums * scale.astype(np.float64)).astype(np.float32)
    real = b.emit1(ops.CAST, [acc], {"dtype": dt.float32})
    return b.emit1(ops.ADD, [b.emit1(ops.MUL, [real, _const(b, scale)]), _const(b, offset)])


def quantized_graph(graph: Graph, sites: Sequence[Site],
                    params: Mapping[int, AffineParams]) -> Graph:
    """``graph`` with each site whose index ``params`` has rewritten to int8."""
    b = GraphBuilder(graph.name)
    env: dict[int, Var] = {}
    for v in graph.inputs:
        env[id(v)] = b.add_input(v.type, v.meta)
    by_index = {s.index: s for s in sites}
    for i, eqn in enumerate(graph.eqns):
        ins = [env.get(id(v), v) for v in eqn.ins]
        if i in by_index and i in params:
            env[id(eqn.outs[0])] = _rewrite_site(b, eqn, by_index[i], ins[0], params[i])
            continue
        outs = tuple(Var(v.type, v.meta) for v in eqn.outs)
        b.eqns.append(Eqn(eqn.op, tuple(ins), outs, eqn.params))
        env.update((id(old), new) for old, new in zip(eqn.outs, outs, strict=True))
    return b.build([env[id(v)] for v in graph.outputs], stage="quantized")
