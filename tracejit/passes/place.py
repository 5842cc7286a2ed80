"""Placement: every equation of a graph gets the device it runs on.

The tracer records what the user asked (``with tj.device(...)`` puts the scope's
string on each value it makes, ``VarMeta.device``; a TF1 op's ``tf.device`` does the
same). :func:`place` turns those requests into one canonical device per equation:

1. a pinned equation runs where its pin says: ``resolve(pin)`` names the device
   (``/cpu:1`` -> ``/job:localhost/replica:0/task:0/device:CPU:1``) or raises for one
   the process lacks;
2. an unpinned equation with no operands (a constant, ``iota``, ``fill``) goes with its
   consumers when they all run on one device, so a constant is made where it is used
   instead of being sent there;
3. every other equation runs on the default device, as TensorFlow's placer puts
   unconstrained ops on the first device.

Graph arguments start on the default device, except a variable made under a device
scope: it lives there (its argument carries the pin).

The result is the same graph with every value's ``VarMeta.device`` set, so the printer
shows it. The pass knows device *strings* only;
the runtime (runtime/partitions.py) supplies ``resolve`` and the default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..ir.core import Eqn, Graph, Var

__all__ = ["is_pinned", "place"]


def is_pinned(graph: Graph) -> bool:
    """Whether any value of ``graph`` asks for a device (an argument does when it is a
    variable that lives on one)."""
    return any(v.meta.device is not None for v in graph.inputs) or \
        any(v.meta.device is not None for e in graph.eqns for v in e.outs)


def _pin(eqn: Eqn) -> str | None:
    return next((v.meta.device for v in eqn.outs if v.meta.device is not None), None)


def place(graph: Graph, resolve: Callable[[str], str], default: str) -> Graph:
    """``graph`` with a canonical device on every value (see the module's rules)."""
    pinned = [resolve(pin) if (pin := _pin(eqn)) is not None else None
              for eqn in graph.eqns]
    # NOTE: an argument asking for a device is a variable that lives there
    homes = [resolve(v.meta.device) if v.meta.device else default for v in graph.inputs]
    return _with_devices(graph, homes, list(_fill(graph, pinned, default)))


def _fill(graph: Graph, devices: list[str | None], default: str):
    """Rule 2 (a generator goes with its consumers' one device), then rule 3."""
    users: dict[int, set[str]] = {}
    for eqn, device in zip(graph.eqns, devices, strict=True):
        for var in eqn.ins:
            users.setdefault(id(var), set()).add(device or default)
    for eqn, device in zip(graph.eqns, devices, strict=True):
        if device is None and not eqn.ins:
            found = set().union(*(users.get(id(v), set()) for v in eqn.outs))
            device = next(iter(found)) if len(found) == 1 else None
        yield device or default


def _with_devices(graph: Graph, homes: list[str], devices: list[str]) -> Graph:
    renamed: dict[int, Var] = {}

    def placed(var: Var, device: str) -> Var:
        new = Var(var.type, dataclasses.replace(var.meta, device=device))
        renamed[id(var)] = new
        return new

    inputs = [placed(v, home) for v, home in zip(graph.inputs, homes, strict=True)]
    eqns = []
    for eqn, device in zip(graph.eqns, devices, strict=True):
        ins = tuple(renamed.get(id(v), v) for v in eqn.ins)
        outs = tuple(placed(v, device) for v in eqn.outs)
        eqns.append(Eqn(eqn.op, ins, outs, eqn.params))
    outputs = [renamed.get(id(v), v) for v in graph.outputs]
    return Graph(inputs, eqns, outputs, name=graph.name, stage="placed")
