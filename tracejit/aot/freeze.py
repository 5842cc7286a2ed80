"""A traced function as a pure graph: the variables it reads become constants.

An ahead-of-time library is a function of its arguments alone: the values of the
Variables the function (or a Session's fetches) reads are taken at build time and
baked into the graph as ``constant`` equations (the weights). A function that *assigns*
a variable has no such form -- its updates would have nowhere to go -- and is refused
(unless no result reads the variable: see :func:`freeze`).
"""

from __future__ import annotations

import re

import numpy as np

from ..ir import ops
from ..ir.core import Eqn, Graph
from ..passes.pipeline import optimize

__all__ = ["freeze", "c_names", "check_identifier", "FreezeError"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FreezeError(ValueError):
    """The function cannot be built ahead of time as it is."""


def freeze(traced, what: str) -> Graph:
    """The graph of ``traced`` (a ``trace.jit.Traced``) with the variables it reads as
    constants and only the function's own results as outputs. ``what`` names the
    function in errors.

    Variables the function assigns stay inputs while the graph is simplified with the
    weights known; if the results then still read one, the function is refused (its
    results would depend on state the library cannot keep). Otherwise the assignment
    only fed later calls, which a library without state does not have -- dropout in an
    inference graph advances the random counter, yet with ``is_training`` False no
    result reads the bits it draws."""
    graph = traced.graph
    n_args = len(graph.inputs) - len(traced.captured)
    n_results = len(graph.outputs) - len(traced.updated)
    updated = {id(v) for v in traced.updated}
    constants, kept = [], []
    for var, variable in zip(graph.inputs[n_args:], traced.captured, strict=True):
        if id(variable) in updated:
            kept.append(var)
            continue
        value = np.asarray(variable.numpy(), dtype=var.dtype.np_dtype)
        constants.append(Eqn(ops.CONSTANT, (), (var,),
                             ops.CONSTANT.make_params({"value": value})))
    frozen = Graph(graph.inputs[:n_args] + tuple(kept), constants + list(graph.eqns),
                   graph.outputs[:n_results], name=graph.name, stage=graph.stage)
    if not kept:
        return frozen
    frozen = optimize(frozen)
    read = {id(v) for eqn in frozen.eqns for v in eqn.ins} | {id(v) for v in frozen.outputs}
    still = [v for v in frozen.inputs[n_args:] if id(v) in read]
    if still:
        names = ", ".join(sorted({getattr(v, "name", "?") for v in traced.updated}))
        raise FreezeError(f"{what} assigns the variable(s) {names} and its results read "
                          "them: an ahead-of-time build is a pure function of its "
                          "arguments (build the inference function, which reads the "
                          "variables but does not update them)")
    return frozen.replace(inputs=frozen.inputs[:n_args])


def c_names(labels, stem: str) -> list[str]:
    """C identifiers for arguments or results: each label with what is not a letter,
    digit or underscore replaced (``inputs[0]['x']`` -> ``inputs_0_x``), ``<stem><i>``
    where nothing is left, made unique."""
    names, seen = [], set()
    for i, label in enumerate(labels):
        name = re.sub(r"[^A-Za-z0-9_]+", "_", label or "").strip("_")
        if not name or not _IDENTIFIER.match(name):
            name = f"{stem}{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        names.append(name)
    return names


def check_identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name or ""):
        raise ValueError(f"{what} {name!r} is not a C identifier (letters, digits and _, "
                         "not starting with a digit)")
    return name

