"""Structured control flow: ``cond``, ``while_loop`` and ``scan``, whose params hold regions.

Each region is a Graph; how its inputs and outputs line up with the op's:

``outs = cond[branches=(g0, g1, ...)] index, *operands``
    Runs ``branches[index]`` on ``operands``; every branch takes the operands' types and
    returns the outputs' types. ``index`` is a scalar: a bool picks ``g1`` when true and
    ``g0`` when false (so ``tj.cond(p, t, f)`` holds ``(f, t)``); an integer is clamped
    to the branches (``switch``/``case``, as ``jax.lax.switch``).

``finals = while_loop[cond=c, body=b, num_carried=n, max_trips=k] *init, *invariants``
    ``carried = init; while c(*carried, *invariants): carried = b(*carried,
    *invariants)``, stopping after ``k`` iterations when ``k >= 0`` (TensorFlow's
    ``maximum_iterations``; -1: no bound). The first ``n`` operands are carried: their
    shapes and dtypes are fixed across iterations. The rest are read-only values the
    regions use (what the loop captured from outside, and what loop-invariant code
    motion hoisted out). A bound also lets the gradient store residuals (``k`` slots)
    instead of recomputing them.

``*finals, *ys = scan[body=b, length=L, reverse=r, num_carried=n, num_xs=m, remat=k]
*init, *xs, *invariants``
    A loop with a trip count known at compile time. Iteration ``i`` (``L-1`` down to 0
    when ``reverse``) calls ``b(i, *carried, *[x[i] for x in xs], *invariants)``, which
    returns the next carried values and one slice of each ``y``; the ys are stacked
    along a new leading axis of length ``L`` (slice ``i`` at position ``i``). ``i`` is
    an ``i32`` scalar. ``remat`` is how reverse-mode autodiff keeps what the backward
    loop needs (vjp_control.py): False stores every residual per iteration, True stores
    only the carried values and recomputes the rest.

Why scan is an op and not a while loop with a counter: its trip count is static, so
its ys and the per-iteration residuals of its gradient have static shapes, and a
backend emits a counted loop. ``fori_loop`` with static bounds is a scan with no xs.

The reference meaning of each is the loop written in Python around the reference
interpreter.
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from .core import Graph, TensorType
from .errors import ShapeError
from .interpret import interpret
from .opdef import ParamSpec, Tag, bool_param, declare, int_param
from .printer import format_type
from .vjp_control import cond_vjp, scan_vjp, scan_with_residuals, while_vjp

__all__ = ["COND", "WHILE_LOOP", "SCAN"]

INDEX_TYPE = TensorType((), dt.int32)     # the iteration index a scan body receives


def _graph(value) -> Graph:
    if not isinstance(value, Graph):
        raise TypeError(f"expected a Graph, got {type(value).__name__}")
    return value


def _graphs(value) -> tuple[Graph, ...]:
    if isinstance(value, Graph) or not isinstance(value, (tuple, list)) or not value:
        raise TypeError("expected a non-empty tuple of Graphs")
    return tuple(_graph(g) for g in value)


def _types(types) -> str:
    return "(" + ", ".join(format_type(t) for t in types) + ")"


def _check_inputs(op: str, region: str, graph: Graph, types) -> None:
    want = tuple(v.type for v in graph.inputs)
    if tuple(types) != want:
        raise ShapeError(f"the {region} takes {_types(want)} but is given {_types(types)}",
                         op=op)


# ---- cond --------------------------------------------------------------------------------

def _cond_infer(types, params):
    branches = params["branches"]
    index, operands = types[0], types[1:]
    if index.shape != () or not (index.dtype is dt.bool_ or index.dtype.is_integer):
        raise ShapeError(f"the branch index must be a bool or integer scalar, got "
                         f"{format_type(index)}", op="cond")
    outs = tuple(v.type for v in branches[0].outputs)
    for k, branch in enumerate(branches):
        _check_inputs("cond", f"branch {k}", branch, operands)
        got = tuple(v.type for v in branch.outputs)
        if got != outs:
            raise ShapeError(f"branch {k} returns {_types(got)} but branch 0 returns "
                             f"{_types(outs)}; every branch must return the same types",
                             op="cond")
    return outs


def branch_index(index, count: int) -> int:
    """The branch a concrete index selects (bools: False 0, True 1; ints clamped)."""
    return int(np.clip(int(np.asarray(index)), 0, count - 1))


def _cond_impl(index, *operands, branches):
    return tuple(interpret(branches[branch_index(index, len(branches))], operands))


COND = declare(
    "cond", arity=None, infer=_cond_infer, impl=_cond_impl,
    params={"branches": ParamSpec(_graphs)}, tags=[Tag.CONTROL_FLOW, Tag.BRANCH],
    vjp=cond_vjp,
    doc="cond[branches](index, *operands): run branches[index] on the operands")


def loop_invariants(eqn) -> tuple[int, dict[str, int]]:
    """Where a loop's read-only operands start: ``(position among the eqn's operands,
    {region param: position among that region's inputs})``; they run to the end of
    both, one to one (loop-invariant code motion appends to both)."""
    params = eqn.params
    n = params["num_carried"]
    if eqn.op is SCAN:
        m = params["num_xs"]
        return n + m, {"body": 1 + n + m}
    return n, {"cond": n, "body": n}


# ---- while_loop ----------------------------------------------------------------------------

def _carried_count(op: str, params, total: int) -> int:
    n = params["num_carried"]
    if not 0 <= n <= total:
        raise ShapeError(f"num_carried={n} for {total} operands", op=op)
    return n


def check_carried(op: str, body: Graph, carried: tuple, first_out: int = 0) -> None:
    """The body returns each carried value with the type it came in with."""
    outs = tuple(v.type for v in body.outputs)
    if len(outs) < first_out + len(carried):
        raise ShapeError(f"the body returns {len(outs) - first_out} values for "
                         f"{len(carried)} carried values", op=op)
    for k, want in enumerate(carried):
        got = outs[first_out + k]
        if got != want:
            raise ShapeError(f"carried value {k} is {format_type(want)} before the body and "
                             f"{format_type(got)} after it: a loop must keep each carried "
                             "value's shape and dtype", op=op)


def _while_infer(types, params):
    cond, body = params["cond"], params["body"]
    if params["max_trips"] < -1:
        raise ShapeError(f"max_trips must be >= 0, or -1 for no bound; got "
                         f"{params['max_trips']}", op="while_loop")
    n = _carried_count("while_loop", params, len(types))
    _check_inputs("while_loop", "condition", cond, types)
    _check_inputs("while_loop", "body", body, types)
    got = tuple(v.type for v in cond.outputs)
    if got != (TensorType((), dt.bool_),):
        raise ShapeError(f"the condition must return one bool scalar, returns {_types(got)}",
                         op="while_loop")
    carried = tuple(types[:n])
    check_carried("while_loop", body, carried)
    if len(body.outputs) != n:
        raise ShapeError(f"the body returns {len(body.outputs)} values for {n} carried "
                         "values", op="while_loop")
    return carried


def _while_impl(*operands, cond, body, num_carried, max_trips):
    carried, invariants = list(operands[:num_carried]), list(operands[num_carried:])
    trips = 0
    while (max_trips < 0 or trips < max_trips) and \
            bool(interpret(cond, carried + invariants)[0]):
        carried = interpret(body, carried + invariants)
        trips += 1
    return tuple(np.array(c, copy=True) for c in carried)


WHILE_LOOP = declare(
    "while_loop", arity=None, infer=_while_infer, impl=_while_impl,
    params={"cond": ParamSpec(_graph), "body": ParamSpec(_graph),
            "num_carried": ParamSpec(int_param), "max_trips": ParamSpec(int_param, -1)},
    tags=[Tag.CONTROL_FLOW, Tag.LOOP], vjp=while_vjp,
    doc="while_loop[cond, body, num_carried, max_trips](*init, *invariants): loop while "
        "cond holds, at most max_trips times (-1: no bound)")


# ---- scan ----------------------------------------------------------------------------------

def scan_layout(params, count: int) -> tuple[int, int, int]:
    """(carried, xs, invariants): how many operands of each kind a scan has."""
    n, m = params["num_carried"], params["num_xs"]
    if n < 0 or m < 0 or n + m > count:
        raise ShapeError(f"num_carried={n} and num_xs={m} for {count} operands", op="scan")
    return n, m, count - n - m


def _scan_infer(types, params):
    body, length = params["body"], params["length"]
    if length < 0:
        raise ShapeError(f"length must be >= 0, got {length}", op="scan")
    n, m, _ = scan_layout(params, len(types))
    carried, xs, invariants = types[:n], types[n:n + m], types[n + m:]
    slices = []
    for k, x in enumerate(xs):
        if not x.shape or x.shape[0] != length:
            raise ShapeError(f"scanned input {k} is {format_type(x)}; its leading axis must "
                             f"be the scan length {length}", op="scan")
        slices.append(TensorType(x.shape[1:], x.dtype))
    _check_inputs("scan", "body", body, (INDEX_TYPE, *carried, *slices, *invariants))
    check_carried("scan", body, tuple(carried))
    ys = tuple(TensorType((length, *v.type.shape), v.type.dtype) for v in body.outputs[n:])
    return tuple(carried) + ys


def _scan_impl(*operands, body, length, reverse, num_carried, num_xs, remat):
    n, m = num_carried, num_xs
    carried = list(operands[:n])
    xs, invariants = operands[n:n + m], list(operands[n + m:])
    ys = [np.empty((length, *v.type.shape), v.type.dtype.np_dtype)
          for v in body.outputs[n:]]
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = interpret(body, [np.int32(i), *carried, *(x[i] for x in xs), *invariants])
        carried = outs[:n]
        for y, value in zip(ys, outs[n:], strict=True):
            y[i] = value
    return tuple(np.array(c, copy=True) for c in carried) + tuple(ys)


SCAN = declare(
    "scan", arity=None, infer=_scan_infer, impl=_scan_impl,
    params={"body": ParamSpec(_graph), "length": ParamSpec(int_param),
            "reverse": ParamSpec(bool_param, False), "num_carried": ParamSpec(int_param),
            "num_xs": ParamSpec(int_param, 0), "remat": ParamSpec(bool_param, False)},
    tags=[Tag.CONTROL_FLOW, Tag.LOOP], vjp=scan_vjp, with_residuals=scan_with_residuals,
    doc="scan[body, length, reverse, num_carried, num_xs, remat](*init, *xs, *invariants): "
        "a counted loop stacking per-iteration outputs")
