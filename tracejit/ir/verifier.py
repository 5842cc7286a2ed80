"""The IR's invariants, checked: ``verify(graph)`` returns None or raises VerifyError.

A valid graph

* defines every var once: as an input (and the inputs are distinct) or as the output of
  one equation, and uses a var only after its definition (the eqns are in topological
  order); the graph's outputs are defined vars (they may repeat, or be inputs);
* holds, on each equation, the op's normalized params (``op.make_params`` gives them
  back unchanged) and outputs of exactly the types ``op.infer_types`` gives;
* holds only valid graphs in its params (fusion regions), checked the same way.

Messages name the equation's index, its op, and the var as the printer names it
(``c:f32[3]``), so they can be read next to ``print_graph(graph)``.

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> b = GraphBuilder()
>>> x = b.add_input(tensor_type([3], "f32"))
>>> verify(b.build([b.emit1(ops.NEG, [x])]))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .core import Eqn, Graph, Var
from .errors import TracejitError, VerifyError
from .printer import format_type, format_value, name_vars

__all__ = ["verify", "same_params"]


def verify(graph: Graph) -> None:
    """Raise VerifyError at the first broken invariant of ``graph``."""
    names = name_vars(graph)

    def show(var: Var) -> str:
        return f"{names.get(id(var), '?')}:{format_type(var.type)}"

    defined: dict[int, str] = {}    # id(var) -> where it was defined, for messages
    for k, var in enumerate(graph.inputs):
        if id(var) in defined:
            raise VerifyError(f"input {k} {show(var)} is already {defined[id(var)]}")
        defined[id(var)] = f"input {k}"
    first_def: dict[int, int] = {}   # to tell "used too early" from "never defined"
    for i, eqn in enumerate(graph.eqns):
        for var in eqn.outs:
            first_def.setdefault(id(var), i)

    for i, eqn in enumerate(graph.eqns):
        where = f"eqn {i}"     # the op is named by the error's prefix
        for k, var in enumerate(eqn.ins):
            if id(var) in defined:
                continue
            if id(var) in first_def:
                raise VerifyError(f"{where}: operand {k} {show(var)} is used before it is "
                                  f"defined (by eqn {first_def[id(var)]})", op=eqn.op.name)
            raise VerifyError(f"{where}: operand {k} {show(var)} is not defined",
                              op=eqn.op.name)
        for k, var in enumerate(eqn.outs):
            if id(var) in defined:
                raise VerifyError(f"{where}: output {k} {show(var)} is defined again; it is "
                                  f"already {defined[id(var)]}", op=eqn.op.name)
            defined[id(var)] = f"output {k} of eqn {i}"
        _check_params(eqn, where)
        _check_types(eqn, where, show)
        for key, nested in _graphs_in(eqn.params):
            try:
                verify(nested)
            except VerifyError as exc:
                raise VerifyError(f"{where}: in the graph of param {key}: {exc}",
                                  op=eqn.op.name) from exc

    for k, var in enumerate(graph.outputs):
        if id(var) not in defined:
            raise VerifyError(f"graph output {k} {show(var)} is not defined")


def _check_params(eqn: Eqn, where: str) -> None:
    try:
        normalized = eqn.op.make_params(dict(eqn.params))
    except (TracejitError, TypeError, ValueError) as exc:
        raise VerifyError(f"{where}: invalid params: {exc}", op=eqn.op.name) from None
    if not same_params(normalized, eqn.params):
        # NOTE: un-normalized params would make equal programs compare (and cache) unequal.
        raise VerifyError(f"{where}: params {_show_params(eqn.params)} are not normalized; "
                          f"make_params gives {_show_params(normalized)}", op=eqn.op.name)


def _check_types(eqn: Eqn, where: str, show) -> None:
    try:
        inferred = eqn.op.infer_types([v.type for v in eqn.ins], eqn.params)
    except (TracejitError, TypeError, ValueError) as exc:
        raise VerifyError(f"{where}: the operands do not fit the op: {exc}",
                          op=eqn.op.name) from None
    if len(inferred) != len(eqn.outs):
        raise VerifyError(f"{where}: has {len(eqn.outs)} outputs, the op gives "
                          f"{len(inferred)}", op=eqn.op.name)
    for k, (var, want) in enumerate(zip(eqn.outs, inferred, strict=True)):
        if var.type != want:
            raise VerifyError(f"{where}: output {k} {show(var)} should be {format_type(want)}",
                              op=eqn.op.name)


def same_params(a, b) -> bool:
    """Equal, and of the same Python types throughout.

    NOTE: Params equality alone lets ``np.int64(1)`` equal ``1`` and ``"float32"`` equal
    ``f32``; such values are not what ``make_params`` returns, and would not print as
    (or print back to) the normalized text.
    """
    def same_kind(x, y) -> bool:
        if type(x) is not type(y):
            return False
        return not isinstance(x, tuple) or all(map(same_kind, x, y))

    return a == b and all(same_kind(a[k], b[k]) for k in a)


def _show_params(params) -> str:
    try:
        return "[" + ", ".join(f"{k}={format_value(v)}" for k, v in dict(params).items()) + "]"
    except (TypeError, ValueError):
        return repr(params)     # a value the printer does not know is itself the problem


def _graphs_in(params) -> Iterator[tuple[str, Graph]]:
    """Graphs held in params, also inside tuples (e.g. the branches of a conditional)."""
    def walk(key: str, value: Any) -> Iterator[tuple[str, Graph]]:
        if isinstance(value, Graph):
            yield key, value
        elif isinstance(value, tuple):
            for item in value:
                yield from walk(key, item)

    for key, value in dict(params).items():
        yield from walk(key, value)
