"""Tracing a region: a Python function recorded as a graph nested in the one being traced.

A :class:`RegionTrace` is a trace with a parent. Ops on its own values are recorded in
it; a value of an enclosing trace that the function uses (a closure, a global) is
*captured*: it becomes an input of the region and, outside, an operand of the
control-flow op. Variables read inside are captured the same way (their current value
in the enclosing trace); variables assigned inside are reported, so that a loop can
carry them and a branch can return them.

:func:`trace_region` runs the function on fresh inputs and returns a :class:`Region`;
:func:`close_regions` turns several regions that an op runs (branches; a condition and
a body) into graphs taking the same operands: their own inputs, then every value any
of them captured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..ir.core import Graph, TensorType, Var
from ..ir.errors import TracejitError
from ..ir.source import user_location
from . import pytree
from .tracing import Trace, cast, current_trace, to_tensor, tracing
from .values import Tensor, Tracer

__all__ = ["RegionTrace", "Region", "trace_region", "close_regions", "match_types",
           "variable_outputs"]


class RegionTrace(Trace):
    """The trace of a region nested in ``parent``."""

    def __init__(self, parent: Trace, name: str):
        super().__init__(name)
        self.parent = parent
        # id(outer Var) -> (the outer Tracer, the region's input standing for it)
        self.captured: dict[int, tuple[Tracer, Var]] = {}
        self.own_inputs: list[Var] = []

    def capture(self, value: Tracer) -> Var:
        outer = value if value.trace is self.parent else None
        if outer is None:
            ancestor = self.parent
            while ancestor is not None and ancestor is not value.trace:
                ancestor = ancestor.parent
            if ancestor is None:
                raise TracejitError(
                    "a traced value from another trace was used here; values traced inside "
                    "one function cannot escape into another (return them instead)",
                    location=user_location())
            outer = Tracer(self.parent.capture(value), self.parent, value.weak, value.known)
        known = self.captured.get(id(outer.var))
        if known is None:
            known = (outer, self.builder.add_input(outer.var.type, outer.var.meta))
            self.captured[id(outer.var)] = known
        return known[1]

    def var_of(self, value: Tensor) -> Var:
        if isinstance(value, Tracer) and value.trace is not self:
            return self.capture(value)
        return super().var_of(value)

    def read_variable(self, variable) -> Tracer:
        current = self.variable_values.get(id(variable))
        if current is None:
            outer = self.parent.read_variable(variable)
            current = self.capture(outer)
            self.variable_inputs[id(variable)] = (variable, current)
            self.variable_values[id(variable)] = current
        return Tracer(current, self)

    def argument(self, type_: TensorType, weak: bool, known=None) -> Tracer:
        var = self.builder.add_input(type_)
        self.own_inputs.append(var)
        return Tracer(var, self, weak, known)


@dataclass
class Region:
    """A traced function: its trace, what it returned (flattened), and the treedef."""

    trace: RegionTrace
    treedef: Any
    outputs: list[Var]
    weak: list[bool]
    updates: dict[int, tuple[Any, Var]] = field(default_factory=dict)

    @property
    def types(self) -> list[TensorType]:
        return [v.type for v in self.outputs]


def trace_region(name: str, fn: Callable, treedef, types: Sequence[TensorType],
                 weak: Sequence[bool], *, leading: Sequence[TensorType] = (),
                 variables: Sequence = ()) -> Region:
    """Trace ``fn(*lead, *unflatten(treedef, args))`` as a region of the current trace.
    Its inputs, in order: ``lead`` (of the ``leading`` types, passed first and
    separately, e.g. a loop index), ``args`` (of ``types``), then one per variable of
    ``variables`` (which the region reads and writes as that input, e.g. a variable a
    loop carries), then the captures."""
    parent = current_trace()
    region = RegionTrace(parent, name)
    with tracing(region):
        region.closed = False
        lead = [region.argument(t, False) for t in leading]
        args = [region.argument(t, w) for t, w in zip(types, weak, strict=True)]
        for variable in variables:
            var = region.argument(variable.type, False).var
            region.variable_inputs[id(variable)] = (variable, var)
            region.variable_values[id(variable)] = var
        # NOTE: ``treedef`` describes the tuple of positional arguments; None: each
        # input is one argument.
        result = fn(*lead, *(pytree.unflatten(treedef, iter(args)) if treedef is not None
                             else args))
        leaves: list = []
        out_def = pytree.flatten(result, leaves)
        tensors = [to_tensor(leaf) for leaf in leaves]
        outputs = [region.var_of(t) for t in tensors]
    region.closed = True
    return Region(region, out_def, outputs, [t.weak for t in tensors],
                  dict(region.variable_updates))


def variable_outputs(region: Region, variables: Sequence) -> list[Var]:
    """What each of ``variables`` holds when the region ends: its assigned value, else
    the input it came in as."""
    trace = region.trace
    return [trace.variable_values[id(v)] for v in variables]


def match_types(region: Region, want: Sequence[TensorType], what: str) -> None:
    """Weakly typed outputs (Python numbers) take the dtype expected of them, as they
    would in an operation; anything else must already match."""
    for k, (var, w) in enumerate(zip(region.outputs, region.weak, strict=True)):
        if k < len(want) and var.type != want[k] and w and var.shape == want[k].shape:
            with tracing(region.trace):
                region.outputs[k] = region.trace.var_of(
                    cast(Tracer(var, region.trace, True), want[k].dtype))


def close_regions(regions: Sequence[Region], outputs: Sequence[Sequence[Var]] | None = None
                  ) -> tuple[list[Graph], list[Tracer]]:
    """The regions as graphs over one operand list: each region's own inputs, then the
    values any of them captured (in order of first capture). Returns the graphs and the
    captured outer values (the op's trailing operands). ``outputs`` overrides what each
    graph returns."""
    order: dict[int, Tracer] = {}
    for region in regions:
        for key, (outer, _) in region.trace.captured.items():
            order.setdefault(key, outer)
    graphs = []
    for k, region in enumerate(regions):
        trace = region.trace
        extra = []
        for key, outer in order.items():
            mine = trace.captured.get(key)
            extra.append(mine[1] if mine is not None else Var(outer.var.type, outer.var.meta))
        builder = trace.builder
        inputs = list(trace.own_inputs) + extra
        outs = list(outputs[k]) if outputs is not None else list(region.outputs)
        graphs.append(Graph(inputs, builder.eqns, outs, name=builder.name, stage="region"))
    return graphs, list(order.values())
