"""TF1's control flow: ``tf.cond``, ``tf.case``, ``tf.switch_case``, ``tf.while_loop``.

As in TensorFlow 1, the branch and loop functions run once, while the graph is built;
the ops they create form a region (regions.py) and the whole branch or loop is one
Operation of the graph. ``Session.run`` replays it as tracejit's ``cond`` / ``switch`` /
``while_loop``, which compile to native branches and loops: only the taken branch
runs, and a loop runs in one program call however many times it iterates.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, shape=[])
...     y = tf.cond(x > 0.0, lambda: x * 2.0, lambda: -x)
...     i, total = tf.while_loop(lambda i, t: i < 4, lambda i, t: (i + 1, t + x), (0, 0.0))
...     with tf.Session() as sess:
...         [float(v) for v in sess.run([y, i, total], {x: 1.5})]
[3.0, 4.0, 6.0]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from ...ir import dtypes as dt
from ...ir.errors import DTypeError, ShapeError, TracejitError
from ...trace import control_flow as core
from ...trace import pytree
from ...trace.array_ops import stop_gradient
from ...trace.math_ops import cast, logical_and, where
from ...trace.tracing import current_trace, to_tensor
from ...trace.values import Tracer
from .graph import Operation, Tensor, get_default_graph, known_value
from .loop_arrays import BranchArrays, LoopArrays
from .ops import convert_to_tensor, graph_arg
from .regions import (
    Region,
    all_ops,
    check_leaves,
    describe,
    fail,
    record,
    same_structure,
    union,
)
from .shapes import TensorShape

__all__ = ["cond", "case", "switch_case", "while_loop"]


# ---- the one Operation a branch or loop becomes ---------------------------------------------

def create_control_op(graph, op_type: str, scope: str, inputs: list[Tensor],
                      regions: list[Region], replay: Callable, dtypes: list) -> Operation:
    """Record ``replay(values of inputs)`` as one op named ``scope``, depending on what
    its regions depend on; its static output shapes come from probing it as any op.
    ``dtypes``: its outputs' dtypes (their shapes stay unknown where an input of unknown
    rank leaves the probe nothing to go on)."""
    try:
        op = graph.create_op(op_type, replay, (list(inputs),), name=scope.rstrip("/"),
                             absolute=True, extra_control=union([r.controls for r in regions]))
    except TracejitError:
        graph.discard([o for r in regions for o in all_ops(r)])
        raise
    if [t.dtype for t in op.outputs] != list(dtypes):
        op.outputs = [Tensor(op, k, TensorShape(None), d) for k, d in enumerate(dtypes)]
    op.inner_reads = union([r.reads for r in regions])
    op.regions = list(regions)
    return op


def outer_values(externals: list[Tensor], values) -> dict[int, object]:
    """id(outer tensor) -> its replayed value, for a region's replay. A constant that
    some ``tf.gradients`` differentiates by enters as a value of the enclosing trace
    (which the region captures), so the gradient reaches it through the branch or loop;
    other constants stay constants of the region."""
    values = list(values)
    if externals:
        graph = externals[0].graph
        wrt = {id(t) for op in graph.get_operations() if op.type == "Gradients"
               for t in op.inputs}
        trace = current_trace()
        for k, (tensor, value) in enumerate(zip(externals, values, strict=True)):
            if id(tensor) in wrt and not isinstance(value, Tracer) and trace is not None:
                value = to_tensor(value)
                values[k] = Tracer(trace.var_of(value), trace, value.weak)
    return dict(zip((id(t) for t in externals), values, strict=True))


def _branch_fn(region: Region, outer: dict, op_value: bool) -> Callable:
    """The function tracejit's cond/switch traces for one branch: the region's results,
    a bool (``op_value``, TensorFlow's pred) where the branch returned an Operation."""
    def branch(*_):
        found = iter(region.run(outer, []))
        return [next(found) if isinstance(leaf, Tensor) else to_tensor(np.bool_(op_value))
                for leaf in region.leaves]
    return branch


def _unpack(result, strict: bool):
    """TF1 unpacks a one-element list or tuple a branch returns, unless ``strict``."""
    if not strict and isinstance(result, (list, tuple)) and len(result) == 1:
        return result[0]
    return result


def _predicate(pred, op: str, python_bool: str) -> Tensor:
    if isinstance(pred, bool):
        fail(DTypeError, op, python_bool)
    pred = convert_to_tensor(graph_arg(pred))
    if pred.dtype is not dt.bool_:
        fail(DTypeError, op, f"the predicate {pred.name} must be a bool tensor, got "
                             f"{pred.dtype.name}")
    if pred.shape.ndims not in (None, 0):
        fail(ShapeError, op, f"the predicate must be a scalar (Shape must be rank 0 but is "
                             f"rank {pred.shape.ndims}): {pred.name} has shape {pred.shape}")
    return pred


def _branches(graph, op: str, fns: list[tuple[str, Callable]], strict: bool,
              arrays: BranchArrays) -> list[Region]:
    regions = []
    for label, fn in fns:
        if not callable(fn):
            fail(DTypeError, op, f"'{label}' must be callable, got {fn!r}")
        # NOTE: a TensorArray a branch returns is returned as its flows (loop_arrays.py)
        region = record(graph, f"the {label} of tf.{op}",
                        lambda _, fn=fn: arrays.expand(_unpack(fn(), strict)),
                        allow_ops=True)
        if region.treedef is None and not region.leaves:
            fail(ShapeError, op, f"'{label}' must have a return value.")
        regions.append(region)
    for (label, _), region in zip(fns[1:], regions[1:], strict=True):
        check_leaves(op, regions[0], region, (fns[0][0], label))
    return regions


def _select(graph, op_type: str, scope: str, selectors: list[Tensor], regions: list[Region],
            op_values: list[bool], choose: Callable, strict: bool, arrays: BranchArrays):
    """One op running the branch ``choose(selector values, branch functions)`` picks."""
    externals = union([r.externals for r in regions])
    n = len(selectors)
    first = regions[0]

    def replay(values):
        if not first.leaves:
            return []
        outer = outer_values(externals, values[n:])
        fns = [_branch_fn(r, outer, v) for r, v in zip(regions, op_values, strict=True)]
        return list(choose(values[:n], fns))

    dtypes = [leaf.dtype if isinstance(leaf, Tensor) else dt.bool_ for leaf in first.leaves]
    created = create_control_op(graph, op_type, scope, selectors + externals, regions, replay,
                                dtypes)
    return _unpack(arrays.join(pytree.unflatten(first.treedef, iter(created.outputs))),
                   strict)


# ---- tf.cond, tf.case, tf.switch_case --------------------------------------------------------

def cond(pred, true_fn=None, false_fn=None, strict=False, name=None, fn1=None, fn2=None):
    """``true_fn()`` if ``pred`` else ``false_fn()``; only the taken branch runs.

    The branches take no arguments and use the graph's tensors they close over; they
    return the same structure (a tensor, a list, a dict, ...) of the same dtypes and
    shapes. A one-element list is unpacked unless ``strict=True``; an Operation returned
    by a branch becomes a bool tensor (the predicate) that runs it, as in TF1."""
    true_fn = _old_name(true_fn, fn1, "true_fn", "fn1")
    false_fn = _old_name(false_fn, fn2, "false_fn", "fn2")
    pred = _predicate(pred, "cond", "'pred' must not be a Python bool.")
    graph = get_default_graph()
    with graph.name_scope(name or "cond") as scope:
        arrays = BranchArrays()
        regions = _branches(graph, "cond", [("true_fn", true_fn), ("false_fn", false_fn)],
                            strict, arrays)
    return _select(graph, "Cond", scope, [pred], regions, [True, False],
                   lambda sel, fns: core.cond(sel[0], fns[0], fns[1]), strict, arrays)


def _old_name(value, old, name: str, old_name: str):
    if old is not None:
        if value is not None:
            raise TypeError(f"cond(): {name} and {old_name} may not be set simultaneously.")
        return old
    if value is None:
        raise TypeError(f"cond(): {name} argument required")
    return value


def case(pred_fn_pairs, default=None, exclusive=False, strict=False, name="case"):
    """The function of the first predicate that is true, else ``default``.

    ``pred_fn_pairs``: a list of (bool scalar tensor, function) pairs, or a dict (taken
    in the order of the predicates' names, as TF1 does). Without ``default`` the last
    pair's function runs when no earlier predicate is true."""
    if isinstance(pred_fn_pairs, OrderedDict):
        pairs = list(pred_fn_pairs.items())
    elif isinstance(pred_fn_pairs, dict):
        pairs = sorted(pred_fn_pairs.items(), key=lambda item: graph_arg(item[0]).name)
    elif isinstance(pred_fn_pairs, (list, tuple)):
        pairs = list(pred_fn_pairs)
    else:
        raise TypeError("pred_fn_pairs must be a list, tuple, or dict")
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError(f"Each entry in pred_fn_pairs must be a 2-tuple, got {pair!r}")
    preds = [_predicate(p, "case", f"pred must be a Tensor, got: {p}") for p, _ in pairs]
    if not pairs:
        if default is None:
            raise ValueError("tf.case needs at least one (pred, fn) pair or a default")
        return _unpack(default(), strict)
    fns = [(f"fn of pair {k}", fn) for k, (_, fn) in enumerate(pairs)]
    if default is not None:
        fns.append(("default", default))
    graph = get_default_graph()
    with graph.name_scope(name or "case") as scope:
        arrays = BranchArrays()
        regions = _branches(graph, "case", fns, strict, arrays)
    n = len(pairs)

    def choose(sel, branch_fns):
        # NOTE: the first true predicate's branch, else the default (without one, the
        # last pair's function, whose predicate is then not looked at).
        index = np.int32(n if default is not None else n - 1)
        for k in reversed(range(len(sel) if default is not None else n - 1)):
            index = where(sel[k], np.int32(k), index)
        return core.switch(index, branch_fns)
    op_values = [True] * n + ([False] if default is not None else [])
    return _select(graph, "Case", scope, preds, regions, op_values, choose, strict, arrays)


def switch_case(branch_index, branch_fns, default=None, name="switch_case"):
    """``branch_fns[branch_index]()``; an index out of range runs ``default`` (without
    one, the last branch). ``branch_fns``: a list of functions, or (int, function) pairs
    or a dict keyed by 0..n-1."""
    if isinstance(branch_fns, dict):
        branch_fns = sorted(branch_fns.items())
    fns = list(branch_fns)
    if fns and all(isinstance(f, (list, tuple)) and len(f) == 2 for f in fns):
        keys = [int(k) for k, _ in sorted(fns, key=lambda kv: kv[0])]
        if keys != list(range(len(fns))):
            raise ValueError(f"branch_fns keys must be 0..{len(fns) - 1}, got {keys}")
        fns = [fn for _, fn in sorted(fns, key=lambda kv: kv[0])]
    if not fns:
        raise ValueError("branch_fns must not be empty")
    index = convert_to_tensor(graph_arg(branch_index))
    if not index.dtype.is_integer or index.shape.ndims not in (None, 0):
        fail(DTypeError, "switch_case", f"branch_index must be an integer scalar, got "
                                        f"{index.dtype.name} of shape {index.shape}")
    labelled = [(f"branch {k}", fn) for k, fn in enumerate(fns)]
    if default is not None:
        labelled.append(("default", default))
    graph = get_default_graph()
    with graph.name_scope(name or "switch_case") as scope:
        arrays = BranchArrays()
        regions = _branches(graph, "switch_case", labelled, True, arrays)
    fallback = len(labelled) - 1

    def choose(sel, branch_fns):
        k = cast(sel[0], dt.int32)
        inside = logical_and(k >= 0, k < len(fns))
        return core.switch(where(inside, k, np.int32(fallback)), branch_fns)
    return _select(graph, "Case", scope, [index], regions, [True] * len(labelled), choose,
                   True, arrays)


# ---- tf.while_loop ---------------------------------------------------------------------------

def while_loop(cond, body, loop_vars, shape_invariants=None, parallel_iterations=10,
               back_prop=True, swap_memory=False, name=None, maximum_iterations=None,
               return_same_structure=False):
    """``while cond(*loop_vars): loop_vars = body(*loop_vars)``, as one op.

    ``loop_vars`` is a list or tuple (possibly nested); ``cond`` and ``body`` take its
    elements as separate arguments. Each loop variable keeps its dtype and shape (a
    shape that changes across iterations is an error: tracejit compiles the loop with
    static shapes). ``maximum_iterations`` bounds the iterations. Variables assigned in
    the body (``tf.assign_add``, an optimizer's ``minimize``) are carried by the loop.
    ``parallel_iterations`` and ``swap_memory`` are accepted and have no effect."""
    if not callable(cond):
        raise TypeError("cond must be callable.")
    if not callable(body):
        raise TypeError("body must be callable.")
    if int(parallel_iterations) < 1:
        raise TypeError("parallel_iterations must be a positive integer.")
    top = list(loop_vars) if isinstance(loop_vars, (list, tuple)) else [loop_vars]
    if not top:
        raise ValueError("No loop variables provided")
    graph = get_default_graph()
    with graph.name_scope(name or "while") as scope:
        # NOTE: a TensorArray is carried as its flows (loop_arrays.py)
        arrays = LoopArrays(top, maximum_iterations)
        leaves: list = []
        in_def = pytree.flatten(arrays.expanded, leaves)
        inits = [convert_to_tensor(graph_arg(v)) for v in leaves]
        relaxed = _shape_invariants(arrays.expand_like(shape_invariants), arrays.expanded,
                                    in_def, inits)
        limit = None
        if maximum_iterations is not None:
            limit = convert_to_tensor(graph_arg(maximum_iterations), dtype=dt.int32)
            if limit.shape.ndims not in (None, 0):
                fail(ShapeError, "while_loop", f"maximum_iterations must be a scalar, got "
                                               f"shape {limit.shape}")
        specs = [(t.shape, t.dtype, "loop_var") for t in inits]

        def splat(fn, wrap):
            def call(args):
                result = fn(*arrays.join(args))
                if not wrap:
                    return result
                return arrays.expand(result if isinstance(result, (list, tuple))
                                     else [result])
            return call
        test = record(graph, "the cond of tf.while_loop", splat(cond, False), specs)
        step = record(graph, "the body of tf.while_loop", splat(body, True), specs)
    _check_loop(test, step, in_def, inits, relaxed)
    externals = union([test.externals, step.externals])
    n = len(inits)

    def replay(values):
        outer = outer_values(externals, values[n:n + len(externals)])

        def test_fn(carried):
            return test.run(outer, carried)[0]

        def body_fn(carried):
            return step.run(outer, carried)
        init, trips = arrays.sized(list(values[:n]), outer, step.run, test.run)
        init = arrays.resolve(init, outer, step.run)
        bound = trips if limit is None else known_value(values[-1])
        if limit is None or bound is not None:   # trips: counted by arrays.sized
            # NOTE: a bound known when tracing is the loop's own (its gradient stores
            # each iteration's values instead of recomputing them).
            out = core.while_loop(test_fn, body_fn, init, max_iterations=None if bound is None
                                  else max(int(np.asarray(bound)), 0))
        else:
            out = core.while_loop(lambda s: logical_and(s[0] < values[-1], test_fn(s[1])),
                                  lambda s: (s[0] + 1, body_fn(s[1])),
                                  (np.int32(0), init))[1]
        return [o if back_prop else stop_gradient(o) for o in out]

    inputs = inits + externals + ([limit] if limit is not None else [])
    created = create_control_op(graph, "While", scope, inputs, [test, step], replay,
                                [t.dtype for t in inits])
    result = arrays.join(created.outputs, outputs=True)
    if not return_same_structure and len(arrays.templates) == 1:
        return _only_leaf(result)
    return result


def _only_leaf(tree):
    leaves: list = []
    pytree.flatten(tree, leaves)
    return leaves[0]


def _shape_invariants(invariants, top, in_def, inits: list[Tensor]) -> list[bool]:
    """Check ``shape_invariants`` against the loop variables; return, per variable,
    whether its invariant lets a dimension the variable has change."""
    if invariants is None:
        return [False] * len(inits)
    given = list(invariants) if isinstance(invariants, (list, tuple)) else [invariants]
    shapes: list = []
    if not same_structure(pytree.flatten(given, shapes), in_def):
        fail(ShapeError, "while_loop", "shape_invariants must have the structure of "
                                       f"loop_vars {describe(in_def, inits)}")
    relaxed = []
    for init, shape in zip(inits, shapes, strict=True):
        shape = TensorShape(shape)
        if not shape.is_compatible_with(init.shape) or (
                shape.dims is not None and init.shape.dims is not None
                and len(shape.dims) != len(init.shape.dims)):
            fail(ShapeError, "while_loop",
                 f"The shape invariant specified for {init.name} is not compatible with the "
                 f"initial shape of the loop variable. It enters the loop with shape "
                 f"{init.shape}, but the specified shape invariant is {shape}.")
        relaxed.append(shape.dims is None or any(
            s is None and d is not None for s, d in zip(shape.dims, init.shape.dims or (),
                                                       strict=False)))
    return relaxed


def _check_loop(test: Region, step: Region, in_def, inits: list[Tensor],
                relaxed: list[bool]) -> None:
    if len(test.leaves) != 1 or test.treedef != pytree.LEAF:
        fail(ShapeError, "while_loop", f"cond must return one bool scalar, returns "
                                       f"{describe(test.treedef, test.leaves)}")
    (flag,) = test.leaves
    if flag.dtype is not dt.bool_:
        fail(DTypeError, "while_loop", f"cond must return a bool scalar, returns "
                                       f"{flag.dtype.name} {flag.shape}")
    if flag.shape.ndims not in (None, 0):
        fail(ShapeError, "while_loop", f"cond must return a bool scalar, returns shape "
                                       f"{flag.shape}")
    if not same_structure(step.treedef, in_def):
        fail(ShapeError, "while_loop",
             f"The two structures don't have the same nested structure: the loop variables "
             f"are {describe(in_def, inits)} and the body returns "
             f"{describe(step.treedef, step.leaves)}")
    for init, out, loose in zip(inits, step.leaves, relaxed, strict=True):
        if out.dtype is not init.dtype:
            fail(DTypeError, "while_loop", f"Loop var {init.name} enters the loop with type "
                                           f"{init.dtype.name} but has type {out.dtype.name} "
                                           "after 1 iteration; its type must stay the same")
        want, got = init.shape.dims, out.shape.dims
        if want is None or got is None:
            continue
        if len(want) != len(got) or any(w is not None and g != w
                                        for w, g in zip(want, got, strict=False)):
            cause = ("its shape invariant lets it change, but" if loose else
                     "to allow the shape to vary across iterations TensorFlow takes "
                     "`shape_invariants`;")
            fail(ShapeError, "while_loop",
                 f"Input tensor '{init.name}' enters the loop with shape {init.shape}, but "
                 f"has shape {out.shape} after one iteration: {cause} tracejit compiles a "
                 "loop with one static shape per loop variable, so loop variables whose "
                 "shape changes across iterations are not supported")
