"""The ``kernel`` op: a fused region of a graph that a backend lowers as one unit.

``outs = kernel[body, kind](*ins)`` runs the nested graph ``body``: its inputs
correspond one to one to the eqn's inputs (same types, same order) and its outputs to
the eqn's outputs. ``kind`` tells a backend which loop nest to emit:

* ``"elementwise"``: one loop over one iteration domain;
* ``"reduction"``: a loop over the kept axes around a loop over the reduced axes, with
  an elementwise prologue inside and an epilogue after the inner loop;
* ``"matmul_epilogue"``: one matmul (a library call or a loop nest: the backend's
  choice) followed by an elementwise loop over its result;
* ``"rows"``: reductions over the same rows in phases (a later one may read an earlier
  one's result), then elementwise values over the rows -- softmax, layer norm. Made only
  by the GPU's ``fuse_rows`` pass (tracejit/passes/fuse_rows.py), for a backend that can
  give each row a block of threads.

The precise rules a body of each kind obeys are in docs/passes.md; the fusion pass
(tracejit/passes/fuse.py) is what makes kernels, and the reference meaning here is
simply "interpret the body".

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> inner = GraphBuilder("k")
>>> x = inner.add_input(tensor_type([3], "f32"))
>>> body = inner.build([inner.emit1(ops.NEG, [inner.emit1(ops.EXP, [x])])], stage="body")
>>> outer = GraphBuilder()
>>> a = outer.add_input(tensor_type([3], "f32"))
>>> (y,) = outer.emit(KERNEL, [a], {"body": body, "kind": "elementwise"})
>>> y.type == x.type
True
"""

from __future__ import annotations

from .core import Graph
from .errors import ShapeError
from .interpret import interpret
from .opdef import ParamSpec, declare

__all__ = ["KERNEL", "KERNEL_KINDS"]

KERNEL_KINDS = ("elementwise", "reduction", "matmul_epilogue", "rows")


def _body_param(value) -> Graph:
    if not isinstance(value, Graph):
        raise TypeError(f"expected a Graph, got {type(value).__name__}")
    return value


def _kind_param(value) -> str:
    if value not in KERNEL_KINDS:
        raise ValueError(f"expected one of {', '.join(KERNEL_KINDS)}, got {value!r}")
    return str(value)


def _kernel_infer(types, params):
    body: Graph = params["body"]
    if len(types) != len(body.inputs):
        raise ShapeError(f"the body {body.name!r} takes {len(body.inputs)} inputs, "
                         f"got {len(types)}", op="kernel")
    for k, (given, var) in enumerate(zip(types, body.inputs, strict=True)):
        if given != var.type:
            raise ShapeError(f"input {k} is {given} but the body {body.name!r} expects "
                             f"{var.type}", op="kernel")
    return tuple(v.type for v in body.outputs)


def _kernel_impl(*arrays, body: Graph, kind: str):
    # NOTE: the reference meaning of a fused region is its body, run by the reference
    # interpreter; there is no second implementation of any op in it.
    return tuple(interpret(body, arrays))


KERNEL = declare(
    "kernel", arity=None, infer=_kernel_infer, impl=_kernel_impl,
    params={"body": ParamSpec(_body_param), "kind": ParamSpec(_kind_param)},
    doc="kernel[body, kind](*ins): the nested graph body, lowered as one loop nest")
