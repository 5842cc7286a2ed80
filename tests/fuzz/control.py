"""Control-flow steps: ``cond``, ``while_loop`` and ``scan`` over random regions.

A region is a random sub-program made by the generator's own builder (generate.py),
with fewer steps, over the region's inputs: the op's operands as the region sees them
(a branch's operands; a loop's carried values, scanned slices and invariants; a scan's
i32 index first). A fresh leaf a region asks for becomes one more input, *captured*:
the step passes a value of the enclosing program there, as one more operand (for a
loop, one more invariant). Regions nest at most ``MAX_DEPTH`` deep: a loop in a
branch, a branch in a loop body, a loop in a loop.

What makes each region fit its op's typing:

* ``cond``: the first branch returns one or two of its values; every other branch is
  another random sub-program whose results are brought to those types (``value_of``:
  a value of that type at hand, a fresh leaf, or any value broadcast, reshaped or
  reduced, then cast). The index is a bool or an integer scalar: an argument, a
  constant (folding then inlines the branch), or computed from a value.
* ``while_loop``: one to three carried values, and an int32 counter carried with them
  (the body returns ``counter + 1``), or ``max_trips``, or both. The condition is
  ``counter < limit`` (a constant or a captured argument clamped to ``MAX_TRIPS``),
  ``and`` a predicate on the data now and then, or the predicate alone in a loop that
  ``max_trips`` bounds; so every loop ends within ``MAX_TRIPS + 1`` iterations whatever
  the data (noisy reference runs included). The body's carried results are mostly
  recurrences: the carried value combined with another value (``carry``).
* ``scan``: up to ``MAX_TRIPS`` iterations (sometimes none), zero to two carried
  values (recurrences), zero to two scanned inputs (values at hand whose leading axis
  fits, or leaves), stacked results (often the carried values as they go: the order of
  the iterations shows), ``reverse`` and ``remat`` at random.
"""

from __future__ import annotations

import numpy as np

from tracejit.ir import dtypes as dt
from tracejit.ir.core import Graph, TensorType
from tracejit.ir.errors import TracejitError
from tracejit.ir.ops import OPS

from .proposals import MAX_SIZE, pick, random_shape

MAX_DEPTH = 2                   # regions inside regions inside the program, no deeper
REGION_STEPS = {1: 4, 2: 3}     # the most random steps of a region at that depth
MAX_TRIPS = {1: 8, 2: 4}        # the most iterations of a loop whose body is that deep
MAX_CAPTURES = 2                # fresh inputs a region may capture
I32 = TensorType((), dt.int32)
INDEX_DTYPES = (dt.int32, dt.int32, dt.int8, dt.uint8, dt.int64)


def build(b, name: str) -> bool:
    """Emit a random ``name`` step into builder ``b``; False (and ``b`` as it was) when
    regions may not nest deeper or the proposal did not type-check."""
    if b.depth >= MAX_DEPTH:
        return False
    mark = b.mark()
    try:
        BUILDERS[name](b)
    except TracejitError:
        b.rollback(mark)
        return False
    step = b.steps[-1]
    opdef = OPS[name]
    types = opdef.infer_types(_types(b, step.ins), opdef.make_params(step.params))
    assert list(types) == _types(b, step.outs), f"the generator mistyped a {name}"
    return True


# ---- values for the regions --------------------------------------------------------------

def _constant(b, value, dtype: dt.DType) -> str:
    t = TensorType((), dtype)
    return b.emit("constant", [], {"value": np.array(value, dtype.np_dtype)}, t)


def _broadcasts(shape, target) -> bool:
    if len(shape) > len(target):
        return False
    return all(d in (1, e) for d, e in zip(shape[::-1], target[::-1], strict=False))


def coerce(b, name: str, target: TensorType) -> str:
    """``name`` brought to ``target``: broadcast, regrouped or summed, then cast."""
    t = b.types[name]
    if t.shape != target.shape:
        if _broadcasts(t.shape, target.shape):
            name = b.apply("broadcast_to", [name], {"shape": target.shape})
        elif t.size == target.size:
            name = b.apply("reshape", [name], {"shape": target.shape})
        else:
            # NOTE: sum and any have identities, so empty values reduce too.
            reduce = "any" if t.dtype.is_bool else "sum"
            name = b.apply(reduce, [name], {"axes": tuple(range(t.ndim))})
            if target.shape:
                name = b.apply("broadcast_to", [name], {"shape": target.shape})
    if b.types[name].dtype is not target.dtype:
        name = b.apply("cast", [name], {"dtype": target.dtype})
    return name


def value_of(b, target: TensorType) -> str:
    """A value of type ``target`` for a region's result: one of that type at hand (a
    region input too: returned as it came, or swapped with another carried value), a
    fresh leaf, or another value coerced."""
    r = b.rng.random()
    same = [n for n, t in b.pool if t == target]
    if same and r < 0.45:
        return pick(b.rng, same)
    if r < 0.55:
        return b.materialize(("leaf", target))
    return coerce(b, b.choose_value()[0], target)


def carry(b, name: str) -> str:
    """The next value of the carried input ``name``: mostly a recurrence (the input
    combined with another value, so that the order and number of iterations show in
    the result), otherwise any value of its type."""
    t = b.types[name]
    if b.rng.random() < 0.35:
        return value_of(b, t)
    ops = ("logical_xor", "logical_or") if t.dtype.is_bool else \
        ("add", "add", "sub", "mul", "maximum", "minimum")
    other = coerce(b, b.choose_value()[0], t) if b.rng.random() < 0.6 else value_of(b, t)
    return b.apply(pick(b.rng, ops), [name, other])


def predicate(b, name: str) -> str:
    """A bool scalar computed from ``name``: any/all of bools, a reduction of numbers
    compared with zero."""
    t = b.types[name]
    axes = {"axes": tuple(range(t.ndim))}
    if t.dtype.is_bool:
        out = b.apply(pick(b.rng, ("any", "all")), [name], axes) if t.ndim else name
        return b.apply("logical_not", [out]) if b.rng.random() < 0.3 else out
    reduce = pick(b.rng, ("sum", "max", "min")) if t.size else "sum"
    total = b.apply(reduce, [name], axes) if t.ndim else name
    compare = pick(b.rng, ("greater", "less", "greater_equal", "not_equal"))
    return b.apply(compare, [total, _constant(b, 0, t.dtype)])


def _index(b, count: int) -> str:
    """A cond's index: a bool (two branches) or an integer scalar."""
    rng = b.rng
    dtype = dt.bool_ if count == 2 and rng.random() < 0.6 else pick(rng, INDEX_DTYPES)
    t = TensorType((), dtype)
    r = rng.random()
    if r < 0.2:
        same = [n for n, u in b.pool if u == t]
        if same:
            return pick(rng, same)
    if r < 0.6:
        return b.materialize(("leaf", t))            # an argument, or a constant
    value = b.choose_value()[0]
    if dtype.is_bool:
        return predicate(b, value)
    total = coerce(b, value, TensorType((), b.types[value].dtype))
    return b.apply("cast", [total], {"dtype": dtype})


def _operands(b, low: int, high: int) -> list[str]:
    """Values at hand (a value may come twice: one buffer in two operands)."""
    return [b.choose_value()[0] for _ in range(int(b.rng.integers(low, high + 1)))]


def _steps(b) -> int:
    return int(b.rng.integers(1, REGION_STEPS[b.depth + 1] + 1))


def _types(b, names) -> list[TensorType]:
    return [b.types[n] for n in names]


def _close(b, regions, fixed: int) -> tuple[list[TensorType], list[str]]:
    """Every region's inputs (the last region's: each began with the previous one's)
    and the values ``b`` passes for the captured ones, past the ``fixed`` first."""
    final = [t for _, t in regions[-1].inputs]
    return final, [b.supply(t) for t in final[fixed:]]


# ---- the three ops -------------------------------------------------------------------------

def _cond(b) -> None:
    rng = b.rng
    count = 2 if rng.random() < 0.75 else 3
    index = _index(b, count)
    operands = _operands(b, 1, 3)
    inputs = _types(b, operands)
    branches, results, out_types = [], [], None
    for _ in range(count):
        sub = b.region([t for _, t in branches[-1].inputs] if branches else inputs)
        sub.run(_steps(b))
        if out_types is None:
            outs = [sub.pool[-1][0]]
            if rng.random() < 0.4:
                outs.append(sub.choose_value()[0])
            out_types = _types(sub, outs)
        else:
            outs = [value_of(sub, t) for t in out_types]
        branches.append(sub)
        results.append(outs)
    final, captured = _close(b, branches, len(inputs))
    graphs = tuple(sub.graph(outs, f"branch{k}", final[len(sub.inputs):])
                   for k, (sub, outs) in enumerate(zip(branches, results, strict=True)))
    b.emit_many("cond", [index, *operands, *captured], {"branches": graphs}, out_types)


def _while(b) -> None:
    rng = b.rng
    trips = MAX_TRIPS[b.depth + 1]
    # NOTE: a loop ends by its counter, by max_trips (TF's maximum_iterations), or both;
    # one bounded by max_trips alone may test the data only.
    bound = int(rng.integers(0, trips + 1)) if rng.random() < 0.4 else -1
    counted = bound < 0 or rng.random() < 0.5
    carried = _operands(b, 1, 3)
    where = int(rng.integers(0, len(carried) + 1)) if counted else -1  # the counter's place
    if counted:
        carried.insert(where, _constant(b, pick(rng, (-1, 0, 0, 0, 1, 2)), dt.int32))
    invariants = _operands(b, 0, 2)
    carried_types = _types(b, carried)
    fixed = carried_types + _types(b, invariants)

    body = b.region(fixed, focus=len(carried))
    body.run(_steps(b))
    outs = [carry(body, n) for n, _ in body.inputs[:len(carried)]]
    if counted:
        outs[where] = body.apply("add", [body.inputs[where][0], _constant(body, 1, dt.int32)])

    cond = b.region([t for _, t in body.inputs])
    cond.run(int(rng.integers(0, 3)))
    tests = []
    if counted:
        if rng.random() < 0.6:
            limit = _constant(cond, int(rng.integers(0, trips + 1)), dt.int32)
        else:                                   # a captured argument, clamped
            limit = cond.apply("minimum", [cond.new_input(I32),
                                           _constant(cond, trips, dt.int32)])
        tests.append(cond.apply("less", [cond.inputs[where][0], limit]))
    if not counted or rng.random() < 0.5:
        tests.append(predicate(cond, cond.choose_value()[0]))
    test = tests[0] if len(tests) == 1 else cond.apply("logical_and", tests)

    final, captured = _close(b, [body, cond], len(fixed))
    params = {"cond": cond.graph([test], "cond"),
              "body": body.graph(outs, "body", final[len(body.inputs):]),
              "num_carried": len(carried)}
    if bound >= 0:
        params["max_trips"] = bound
    b.emit_many("while_loop", [*carried, *invariants, *captured], params, carried_types)


def _scan(b) -> None:
    rng = b.rng
    trips = MAX_TRIPS[b.depth + 1]
    length = 0 if rng.random() < 0.05 else int(rng.integers(1, trips + 1))
    carried = _operands(b, 0 if rng.random() < 0.2 else 1, 2)
    xs = [_scanned(b, length) for _ in range(int(rng.integers(0, 3)))]
    invariants = _operands(b, 0 if carried or xs else 1, 2)    # an op takes an operand
    carried_types = _types(b, carried)
    slices = [TensorType(t.shape[1:], t.dtype) for t in _types(b, xs)]
    fixed = [I32, *carried_types, *slices, *_types(b, invariants)]

    body = b.region(fixed, focus=1 + len(carried) + len(xs))
    body.run(_steps(b))
    outs = [carry(body, n) for n, _ in body.inputs[1:1 + len(carried)]]
    ys = [body.choose_value()[0] for _ in range(int(rng.integers(0 if carried else 1, 3)))]
    if carried and rng.random() < 0.5:          # the carried values as they go (cumsum)
        ys.insert(0, pick(rng, outs + [n for n, _ in body.inputs[1:1 + len(carried)]]))
    outs += [y for y in ys if max(length, 1) * body.types[y].size <= MAX_SIZE]
    if not outs:
        outs.append(body.inputs[0][0])                  # the index, stacked
    ys = [TensorType((length, *t.shape), t.dtype) for t in _types(body, outs[len(carried):])]

    final, captured = _close(b, [body], len(fixed))
    params = {"body": body.graph(outs, "body"), "length": length,
              "reverse": bool(rng.random() < 0.4), "num_carried": len(carried),
              "num_xs": len(xs), "remat": bool(rng.random() < 0.3)}
    b.emit_many("scan", [*carried, *xs, *invariants, *captured], params, carried_types + ys)


def _scanned(b, length: int) -> str:
    """A scanned input: a value at hand whose leading axis is ``length``, or a leaf."""
    fits = [n for n, t in b.pool if t.ndim and t.shape[0] == length]
    if fits and b.rng.random() < 0.6:
        return pick(b.rng, fits)
    while True:
        shape = (length, *random_shape(b.rng, 2, b.dims))
        if length * int(np.prod(shape[1:], dtype=np.int64)) <= MAX_SIZE:
            return b.materialize(("leaf", TensorType(shape, b.input_dtype())))


BUILDERS = {"cond": _cond, "while_loop": _while, "scan": _scan}


def walk(program):
    """``(op name, params, path)`` of every step of ``program`` and every equation of
    its regions, nested ones included; ``path``: the names of the control-flow ops
    holding it, outermost first (``()`` for a step)."""
    def inside(params, path):
        for value in params.values():
            for graph in value if isinstance(value, tuple) else (value,):
                if isinstance(graph, Graph):
                    for eqn in graph.eqns:
                        yield eqn.op.name, eqn.params, path
                        yield from inside(eqn.params, (*path, eqn.op.name))

    for step in program.steps:
        yield step.op, step.params, ()
        yield from inside(step.params, (step.op,))
