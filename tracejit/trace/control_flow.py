"""Control flow for users: ``cond``, ``switch``, ``case``, ``while_loop``, ``fori_loop``,
``scan``.

Inside ``@jit`` (or a TF1 graph) each function given to them is traced once as a region
(regions.py) and the branch or loop becomes one op of the graph (ops_control.py), which
the CPU backend compiles to native branches and loops. Outside a trace they run as
Python control flow on concrete values, with the same results. Operands and carried
values are pytrees (tuples, lists, dicts) of tensors, as in JAX.

Variables assigned inside a loop body are carried by the loop (an optimizer step inside
``fori_loop`` updates its variables once per iteration, and they hold the last value
after it); variables assigned in a branch are returned by every branch.

>>> import numpy as np, tracejit as tj
>>> @tj.jit
... def collatz_steps(n):
...     def step(state):
...         k, count = state
...         k = tj.cond(k % 2 == 0, lambda k: k // 2, lambda k: 3 * k + 1, k)
...         return k, count + 1
...     return tj.while_loop(lambda s: s[0] != 1, step, (n, 0))[1]
>>> int(collatz_steps(np.int32(27)))
111
>>> carry, ys = tj.scan(lambda c, x: (c + x, c), 0.0, np.arange(4, dtype=np.float32))
>>> float(carry), np.asarray(ys).tolist()
(6.0, [0.0, 0.0, 1.0, 3.0])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.core import TensorType
from ..ir.errors import ShapeError, TracejitError
from ..ir.ops_control import INDEX_TYPE, branch_index
from ..ir.source import user_location
from ..passes.hoist import hoist_from_loop
from . import pytree
from .math_ops import where
from .regions import Region, close_regions, match_types, trace_region, variable_outputs
from .tracing import bind, cast, current_trace, to_tensor
from .values import Tensor, Tracer

__all__ = ["cond", "switch", "case", "while_loop", "fori_loop", "scan"]


def _fail(error, op: str, message: str):
    raise error(message, op=op, location=user_location())


def _leaves(tree) -> tuple[object, list[Tensor]]:
    leaves: list = []
    treedef = pytree.flatten(tree, leaves)
    return treedef, [to_tensor(leaf) for leaf in leaves]


def _tracing(tensors: Sequence[Tensor]) -> bool:
    return current_trace() is not None or any(isinstance(t, Tracer) for t in tensors)


def _in_trace(tensor: Tensor) -> Tracer:
    """``tensor`` as a value of the innermost trace (concrete values become constants),
    so that binding records the op there."""
    if isinstance(tensor, Tracer):
        return tensor
    trace = current_trace()
    return Tracer(trace.var_of(tensor), trace, tensor.weak)


def _assigned(regions: Sequence[Region]) -> list:
    """The variables any of the regions assigned, in order of first assignment."""
    found: dict[int, object] = {}
    for region in regions:
        for key, (variable, _) in region.updates.items():
            found.setdefault(key, variable)
    return list(found.values())


def _show(types) -> str:
    return "(" + ", ".join(str(t) for t in types) + ")"


def _scalar_pred(pred, op: str) -> Tensor:
    pred = to_tensor(pred)
    if pred.shape != ():
        _fail(ShapeError, op, f"the predicate must be a scalar, got a tensor of type "
                              f"{pred.type}")
    return pred if pred.dtype is dt.bool_ else bind(ops.NOT_EQUAL, [pred, to_tensor(0, pred.dtype)])


# ---- branches ------------------------------------------------------------------------------

def cond(pred, true_fn: Callable, false_fn: Callable, *operands):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``. Both branches must
    return the same structure of tensors with the same shapes and dtypes. Only the
    taken branch runs; gradients flow through it."""
    pred = _scalar_pred(pred, "cond")
    if not isinstance(pred, Tracer):
        return (true_fn if bool(np.asarray(pred.value)) else false_fn)(*operands)
    return _branch(pred, [false_fn, true_fn], operands, "cond")


def switch(index, branches: Sequence[Callable], *operands):
    """``branches[index](*operands)``, the index clamped to the branches (JAX's
    ``lax.switch``)."""
    branches = list(branches)
    if not branches:
        _fail(TracejitError, "switch", "switch needs at least one branch")
    index = to_tensor(index)
    if index.shape != () or not index.dtype.is_integer:
        _fail(ShapeError, "switch", f"the index must be an integer scalar, got {index.type}")
    if not isinstance(index, Tracer):
        return branches[branch_index(index.value, len(branches))](*operands)
    return _branch(index, branches, operands, "switch")


def case(pred_fn_pairs, default: Callable | None = None, exclusive: bool = False, *operands):
    """TensorFlow's ``tf.case``: the function of the first true predicate, else
    ``default`` (without one, the last pair's function)."""
    pairs = list(pred_fn_pairs.items() if isinstance(pred_fn_pairs, dict) else pred_fn_pairs)
    if not pairs:
        _fail(TracejitError, "case", "case needs at least one (predicate, function) pair")
    fns = [fn for _, fn in pairs]
    if default is None:
        pairs, default = pairs[:-1], fns[-1]
        fns = fns[:-1]
    preds = [_scalar_pred(p, "case") for p, _ in pairs]
    index = to_tensor(np.int32(len(fns)))
    for k in reversed(range(len(preds))):
        index = where(preds[k], np.int32(k), index)
    return switch(index, fns + [default], *operands)


def _branch(index: Tracer, fns: Sequence[Callable], operands, op: str):
    treedef, tensors = _leaves(operands)
    types, weak = [t.type for t in tensors], [t.weak for t in tensors]
    regions = [trace_region(f"{op}_branch{k}", fn, treedef, types, weak)
               for k, fn in enumerate(fns)]
    first = regions[0]
    for k, region in enumerate(regions[1:], 1):
        if region.treedef != first.treedef:
            _fail(ShapeError, op, f"the branches return different structures: branch {k} "
                                  f"returns {region.treedef}, branch 0 {first.treedef}")
        match_types(region, first.types, op)
        match_types(first, region.types, op)
    for k, region in enumerate(regions):
        if region.types != first.types:
            _fail(ShapeError, op, f"branch {k} returns {_show(region.types)} but branch 0 "
                                  f"returns {_show(first.types)}; every branch must return "
                                  "the same shapes and dtypes")
    variables = _assigned(regions)
    if variables:
        regions = [trace_region(f"{op}_branch{k}", fn, treedef, types, weak,
                                variables=variables) for k, fn in enumerate(fns)]
        for region in regions[1:]:
            match_types(region, regions[0].types, op)
    outputs = [r.outputs + variable_outputs(r, variables) for r in regions]
    graphs, captured = close_regions(regions, outputs)
    operands = [*tensors, *(v.read_value() for v in variables), *captured]
    results = bind(ops.COND, [index, *map(_in_trace, operands)], {"branches": tuple(graphs)})
    results = list(results) if isinstance(results, tuple) else [results]
    n = len(first.outputs)
    for variable, value in zip(variables, results[n:], strict=True):
        variable.assign(value)
    for k, r in enumerate(results[:n]):
        r.weak = all(region.weak[k] for region in regions)
    return pytree.unflatten(regions[0].treedef, iter(results[:n]))


# ---- loops ---------------------------------------------------------------------------------

def _check_carried(region: Region, treedef, types, op: str, what: str) -> None:
    if region.treedef != treedef:
        _fail(ShapeError, op, f"{what} must return the structure of the carried values "
                              f"{treedef}, got {region.treedef}")
    match_types(region, types, op)
    for k, (got, want) in enumerate(zip(region.types, types, strict=True)):
        if got != want:
            _fail(ShapeError, op, f"carried value {k} is {want} before the body and {got} "
                                  "after it: a loop must keep each carried value's shape and "
                                  "dtype")


def while_loop(cond_fn: Callable, body_fn: Callable, init, *, max_iterations: int | None = None):
    """``val = init; while cond_fn(val): val = body_fn(val); return val``.

    ``val`` is a pytree whose shapes and dtypes stay fixed. ``max_iterations`` stops the
    loop after that many iterations (TensorFlow's ``maximum_iterations``)."""
    bound = -1 if max_iterations is None else int(max_iterations)
    if bound < -1:
        _fail(ShapeError, "while_loop", f"max_iterations must be >= 0, got {bound}")
    treedef, tensors = _leaves(init)
    if not _tracing(tensors):
        value, trips = init, 0
        while (bound < 0 or trips < bound) and \
                bool(np.asarray(to_tensor(cond_fn(value)).value)):
            value = body_fn(value)
            trips += 1
        return value
    types, weak = [t.type for t in tensors], [t.weak for t in tensors]
    arg_def = pytree.flatten((init,), [])     # the functions take the carried value whole
    body = trace_region("while_body", body_fn, arg_def, types, weak)
    _check_carried(body, treedef, types, "while_loop", "the body")
    variables = _assigned([body])
    if variables:
        body = trace_region("while_body", body_fn, arg_def, types, weak, variables=variables)
        _check_carried(body, treedef, types, "while_loop", "the body")
    test = trace_region("while_cond", cond_fn, arg_def, types, weak, variables=variables)
    if _assigned([test]):
        _fail(TracejitError, "while_loop", "the loop condition assigns a variable; assign "
                                          "variables in the body")
    if len(test.outputs) != 1 or test.types[0] != TensorType((), dt.bool_):
        _fail(ShapeError, "while_loop", f"the condition must return one bool scalar, "
                                        f"returns {_show(test.types)}")
    outputs = [test.outputs, body.outputs + variable_outputs(body, variables)]
    (cond_graph, body_graph), captured = close_regions([test, body], outputs)
    carried = [*tensors, *(v.read_value() for v in variables)]
    results = bind(ops.WHILE_LOOP, [_in_trace(t) for t in carried + captured],
                   {"cond": cond_graph, "body": body_graph, "num_carried": len(carried),
                    "max_trips": bound})
    return _finish(results, len(tensors), variables, treedef, weak)[0]


def _hoisted(results):
    """Move what the loop just recorded computes from invariants out of it, now, before
    anything differentiates it (passes/hoist.py)."""
    if isinstance(results, tuple) and not results:
        return results
    first = results[0] if isinstance(results, tuple) else results
    builder = first.trace.builder
    builder.eqns[-1:] = hoist_from_loop(builder.eqns[-1])
    return results


def _finish(results, n: int, variables, treedef, weak):
    results = list(_hoisted(results)) if isinstance(results, tuple) else [_hoisted(results)]
    for variable, value in zip(variables, results[n:n + len(variables)], strict=True):
        variable.assign(value)
    for r, w in zip(results[:n], weak, strict=True):
        r.weak = w
    return pytree.unflatten(treedef, iter(results[:n])), results[n + len(variables):]


def fori_loop(lower, upper, body_fn: Callable, init):
    """``val = init; for i in range(lower, upper): val = body_fn(i, val); return val``.

    With bounds known while tracing (Python ints) the loop is a counted ``scan``, which
    reverse-mode autodiff differentiates; traced bounds make a ``while_loop``."""
    lo, hi = to_tensor(lower), to_tensor(upper)
    if isinstance(lo, Tracer) or isinstance(hi, Tracer):
        index_dtype = dt.result_type((lo.dtype, lo.weak), (hi.dtype, hi.weak))[0]
        lo, hi = cast(lo, index_dtype), cast(hi, index_dtype)
        state = while_loop(lambda s: s[0] < hi, lambda s: (s[0] + 1, body_fn(s[0], s[1])),
                           (lo, init))
        return state[1]
    lo_i, hi_i = int(np.asarray(lo.value)), int(np.asarray(hi.value))
    _, tensors = _leaves(init)
    if not _tracing(tensors):
        value = init
        for i in range(lo_i, hi_i):
            value = body_fn(to_tensor(np.int32(i)), value)
        return value
    carry, _ = scan(lambda c, i: (body_fn(i + lo_i if lo_i else i, c), None), init,
                    length=max(hi_i - lo_i, 0), _index=True)
    return carry


def scan(f: Callable, init, xs=None, length: int | None = None, reverse: bool = False,
         remat: bool = False, _index: bool = False):
    """JAX's ``lax.scan``: ``carry, y = f(carry, x)`` for each slice ``x`` of ``xs``
    along its leading axis; returns the final carry and the ys stacked.

    ``reverse`` runs from the last slice to the first (ys keep their positions).
    ``remat=True`` makes reverse-mode autodiff store only the carried values of each
    iteration and recompute the rest, instead of storing every residual."""
    treedef, tensors = _leaves(init)
    x_def, x_tensors = _leaves(xs)
    lengths = {t.shape[0] for t in x_tensors if t.ndim}
    if any(t.ndim == 0 for t in x_tensors):
        _fail(ShapeError, "scan", "every scanned input needs a leading axis to scan over")
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        _fail(ShapeError, "scan", f"the scanned inputs' leading axes and length= disagree: "
                                  f"{sorted(lengths)}" if lengths else
                                  "scan needs xs or length=")
    (n_steps,) = lengths
    if not _tracing(tensors + x_tensors):
        return _scan_eagerly(f, init, x_def, x_tensors, n_steps, reverse, _index)
    types, weak = [t.type for t in tensors], [t.weak for t in tensors]
    x_types = [TensorType(t.shape[1:], t.dtype) for t in x_tensors]
    n = len(tensors)
    y_def = [None]

    def body(i, *leaves):
        carry = pytree.unflatten(treedef, iter(leaves[:n]))
        x = i if _index else pytree.unflatten(x_def, iter(leaves[n:n + len(x_types)]))
        new_carry, y = f(carry, x)
        c_def, c_leaves = _leaves(new_carry)
        if c_def != treedef:
            _fail(ShapeError, "scan", f"f must return the carry's structure {treedef} as its "
                                      f"first result, got {c_def}")
        y_def[0], y_leaves = _leaves(y)
        return [*c_leaves, *y_leaves]

    all_types, all_weak = [*types, *x_types], [*weak, *(t.weak for t in x_tensors)]
    region = trace_region("scan_body", body, None, all_types, all_weak, leading=[INDEX_TYPE])
    variables = _assigned([region])
    if variables:
        region = trace_region("scan_body", body, None, all_types, all_weak,
                              leading=[INDEX_TYPE], variables=variables)
    match_types(region, types, "scan")
    carried_out, ys_out = region.outputs[:n], region.outputs[n:]
    for k, (got, want) in enumerate(zip((v.type for v in carried_out), types, strict=True)):
        if got != want:
            _fail(ShapeError, "scan", f"carried value {k} is {want} before the body and {got} "
                                      "after it: a loop must keep each carried value's shape "
                                      "and dtype")
    outputs = [carried_out + variable_outputs(region, variables) + ys_out]
    (graph,), captured = close_regions([region], outputs)
    carried = [*tensors, *(v.read_value() for v in variables)]
    params = {"body": graph, "length": n_steps, "reverse": bool(reverse),
              "num_carried": len(carried), "num_xs": len(x_tensors), "remat": bool(remat)}
    results = bind(ops.SCAN, [_in_trace(t) for t in carried + x_tensors + captured], params)
    carry, ys = _finish(results, n, variables, treedef, weak)
    for y, w in zip(ys, region.weak[n:], strict=True):
        y.weak = w
    return carry, pytree.unflatten(y_def[0], iter(ys))


def _scan_eagerly(f, init, x_def, x_tensors, length: int, reverse: bool, index: bool):
    if length == 0:
        # NOTE: the ys' types come from f, which never runs: trace it once to learn them.
        from .jit import JitFunction
        return JitFunction(lambda c, xs: scan(f, c, xs, length=0, reverse=reverse,
                                              _index=index))(init, pytree.unflatten(
                                                  x_def, iter(x_tensors)))
    from .array_ops import stack
    carry, ys, y_def = init, [None] * length, None
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        x = to_tensor(np.int32(i)) if index else \
            pytree.unflatten(x_def, iter([t[i] for t in x_tensors]))
        carry, y = f(carry, x)
        y_def, ys[i] = _leaves(y)
    stacked = [stack([ys[i][k] for i in range(length)]) for k in range(len(ys[0]))]
    return carry, pytree.unflatten(y_def, iter(stacked))
