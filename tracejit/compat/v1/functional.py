"""TF1's higher-order functions over a tensor's first axis: ``tf.map_fn``, ``tf.foldl``,
``tf.foldr``, ``tf.scan``, each one Operation replayed as tracejit's ``scan``.

``fn`` runs once while the graph is built, on tensors standing for one element (and the
accumulator); its ops form a region (regions.py), replayed once per element by a
native loop. ``elems`` (and ``initializer``) may be nested structures of tensors, all
with the same leading dimension.

>>> import numpy as np, tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.constant([1.0, 2.0, 3.0, 4.0])
...     outs = [tf.map_fn(lambda v: v * v, x), tf.scan(lambda a, v: a + v, x),
...             tf.foldl(lambda a, v: a * 2.0 + v, x), tf.foldr(lambda a, v: a * 2.0 + v, x)]
...     with tf.Session() as sess:
...         [np.asarray(v).tolist() for v in sess.run(outs)]
[[1.0, 4.0, 9.0, 16.0], [1.0, 3.0, 6.0, 10.0], 26.0, 49.0]
"""

from __future__ import annotations

from ...ir import dtypes as dt
from ...ir.errors import DTypeError, ShapeError
from ...trace import control_flow as core
from ...trace import pytree
from ...trace.array_ops import concat, expand_dims, stop_gradient
from .control_flow import create_control_op, outer_values
from .graph import Tensor, get_default_graph
from .ops import convert_to_tensor, graph_arg
from .regions import describe, fail, record, same_structure
from .shapes import TensorShape

__all__ = ["map_fn", "foldl", "foldr", "scan"]


def map_fn(fn, elems, dtype=None, parallel_iterations=None, back_prop=True,
           swap_memory=False, infer_shape=True, name=None):
    """``[fn(x) for x in elems]`` stacked: ``fn`` maps one element (a slice along the
    first axis of each tensor of ``elems``, in ``elems``' structure) to a structure of
    tensors. ``dtype``, when given, is the structure of dtypes ``fn`` returns."""
    return _loop("map_fn", fn, elems, None, False, back_prop, name or "map", dtype)


def foldl(fn, elems, initializer=None, parallel_iterations=10, back_prop=True,
          swap_memory=False, name=None):
    """``a = fn(a, x)`` for each element from the first; returns the final ``a``.
    Without ``initializer`` the first element is the initial ``a``."""
    return _loop("foldl", fn, elems, initializer, False, back_prop, name or "foldl")


def foldr(fn, elems, initializer=None, parallel_iterations=10, back_prop=True,
          swap_memory=False, name=None):
    """``a = fn(a, x)`` for each element from the last; returns the final ``a``.
    Without ``initializer`` the last element is the initial ``a``."""
    return _loop("foldr", fn, elems, initializer, True, back_prop, name or "foldr")


def scan(fn, elems, initializer=None, parallel_iterations=10, back_prop=True,
         swap_memory=False, infer_shape=True, reverse=False, name=None):
    """Every ``a`` of ``a = fn(a, x)``, stacked along a new first axis. Without
    ``initializer`` the first element (the last with ``reverse``) is the initial ``a``
    and the first (last) output. With ``reverse`` the outputs keep their elements'
    positions."""
    return _loop("scan", fn, elems, initializer, bool(reverse), back_prop, name or "scan")


def _element_shape(x: Tensor) -> TensorShape:
    return TensorShape(None if x.shape.dims is None else x.shape.dims[1:])


def _loop(kind: str, fn, elems, initializer, reverse: bool, back_prop: bool, name: str,
          dtype=None):
    if not callable(fn):
        raise TypeError("fn must be callable.")
    graph = get_default_graph()
    leaves: list = []
    x_def = pytree.flatten(elems, leaves)
    accumulate = kind != "map_fn"
    seeded = accumulate and initializer is None     # the first element starts the fold
    with graph.name_scope(name) as scope:
        xs = [convert_to_tensor(graph_arg(v)) for v in leaves]
        _check_elems(kind, xs)
        if seeded:
            a_def, inits = x_def, []
            acc = [(_element_shape(x), x.dtype, "accumulator") for x in xs]
        elif accumulate:
            a_leaves: list = []
            a_def = pytree.flatten(initializer, a_leaves)
            inits = [convert_to_tensor(graph_arg(v)) for v in a_leaves]
            acc = [(t.shape, t.dtype, "accumulator") for t in inits]
        else:
            a_def, inits, acc = None, [], []

        def call(args):
            x = pytree.unflatten(x_def, iter(args[len(acc):]))
            if not accumulate:
                return fn(x)
            return fn(pytree.unflatten(a_def, iter(args[:len(acc)])), x)
        region = record(graph, f"the fn of tf.{kind}", call,
                        acc + [(_element_shape(x), x.dtype, "elem") for x in xs])
    if accumulate:
        _check_accumulator(kind, region, a_def, acc)
    elif dtype is not None:
        _check_dtype(region, dtype)
    externals = region.externals
    n_x, n_i = len(xs), len(inits)

    def replay(values):
        xvals, init = list(values[:n_x]), list(values[n_x:n_x + n_i])
        outer = outer_values(externals, values[n_x + n_i:])
        if seeded:
            init = [x[-1] if reverse else x[0] for x in xvals]
            xvals = [x[:-1] if reverse else x[1:] for x in xvals]

        def step(carry, x):
            out = region.run(outer, list(carry) + list(x))
            if kind == "map_fn":
                return [], out
            return out, (out if kind == "scan" else None)
        carry, ys = core.scan(step, init, xvals, reverse=reverse)
        out = list(carry) if kind in ("foldl", "foldr") else list(ys)
        if kind == "scan" and seeded:
            out = [concat([y, expand_dims(a, 0)] if reverse else [expand_dims(a, 0), y], 0)
                   for y, a in zip(out, init, strict=True)]
        return [o if back_prop else stop_gradient(o) for o in out]

    created = create_control_op(graph, _OP_TYPES[kind], scope, xs + inits + externals,
                                [region], replay, [t.dtype for t in region.leaves])
    return pytree.unflatten(region.treedef, iter(created.outputs))


_OP_TYPES = {"map_fn": "MapFn", "foldl": "Foldl", "foldr": "Foldr", "scan": "Scan"}


def _check_elems(kind: str, xs: list[Tensor]) -> None:
    if not xs:
        fail(ShapeError, kind, "elems must hold at least one tensor")
    if any(x.shape.ndims == 0 for x in xs):
        fail(ShapeError, kind, "Elements in elems must be 1+ dimensional Tensors, not "
                               "scalars")
    lengths = {x.shape.dims[0] for x in xs if x.shape.dims is not None} - {None}
    if len(lengths) > 1:
        fail(ShapeError, kind, f"the tensors in elems must have the same first dimension, "
                               f"got {sorted(lengths)}")


def _check_accumulator(kind: str, region, a_def, acc: list[tuple]) -> None:
    shown = describe(a_def, [f"{d.name} {s}" for s, d, _ in acc])
    if not same_structure(region.treedef, a_def):
        fail(ShapeError, kind, f"fn must return the accumulator's structure {shown}, returns "
                               f"{describe(region.treedef, region.leaves)}")
    for k, (out, (shape, dtype, _)) in enumerate(zip(region.leaves, acc, strict=True)):
        if out.dtype is not dtype:
            fail(DTypeError, kind, f"fn returns {out.dtype.name} for accumulator value {k}, "
                                   f"which is {dtype.name}; its type must stay the same")
        want, got = shape.dims, out.shape.dims
        if want is not None and got is not None and (
                len(want) != len(got) or any(w is not None and g != w
                                             for w, g in zip(want, got, strict=False))):
            fail(ShapeError, kind, f"fn returns shape {out.shape} for accumulator value {k}, "
                                   f"which has shape {shape}: tracejit loops keep each "
                                   "value's shape")


def _check_dtype(region, dtype) -> None:
    wanted: list = []
    d_def = pytree.flatten(dtype, wanted)
    if not same_structure(d_def, region.treedef):
        fail(ShapeError, "map_fn", f"fn returns {describe(region.treedef, region.leaves)}, "
                                   f"not the structure of dtype={dtype!r}")
    for k, (out, want) in enumerate(zip(region.leaves, wanted, strict=True)):
        if out.dtype is not dt.as_dtype(want):
            fail(DTypeError, "map_fn", f"fn returns {out.dtype.name} for output {k}, but "
                                       f"dtype= says {dt.as_dtype(want).name}")
