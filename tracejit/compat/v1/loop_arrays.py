"""TensorArrays as ``tf.while_loop`` variables.

A loop carries tensors, so each TensorArray among the loop variables stands in the loop
as its flows (its buffer, and a dynamic array's element count: tensor_array.py); the
``cond`` and ``body`` functions get TensorArrays again, and so does the caller.

Two things need the shapes only the traced step knows:

* an array whose element shape is not fully known enters the loop as a stand-in buffer;
  when the Session traces the loop, the body is first traced on stand-in values (as
  the graph probes any op's shapes) to learn the shape of what it writes, and the loop
  starts from zeros of that shape;
* a ``dynamic_size`` array cannot grow inside a compiled loop (its buffer is a loop
  variable of one shape): it enters with room for ``maximum_iterations`` more elements;
  without a bound known while the graph is built, the loop's iterations are counted when
  the step is traced, where its predicate depends only on known values (a counter
  against a constant or a shape), and the loop gets that many rooms and that bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ...ir.core import TensorType
from ...ir.errors import ShapeError, TracejitError
from ...ir.source import user_location
from ...trace import array_ops, pytree
from ...trace.tracing import Trace, to_tensor, tracing
from ...trace.values import Tracer
from .graph import known_value
from .ops import graph_op
from .regions import same_structure
from .shapes import TensorShape
from .tensor_array import TensorArray, static_value
from .tensor_array_ops import is_unwritten

__all__ = ["LoopArrays", "BranchArrays"]


def _grow_rows(buffer, rows: int):
    extra = rows - buffer.shape[0] if buffer.ndim else 0   # rank 0: a shape probe's
    if extra <= 0:                                          # stand-in for unknown rank
        return buffer
    return array_ops.pad(buffer, [[0, extra]] + [[0, 0]] * (buffer.ndim - 1))


def _entering(array: TensorArray, maximum_iterations) -> tuple[TensorArray, bool]:
    """A dynamic array with room for the loop's writes: ``maximum_iterations`` more; and
    whether its room is found only when the step is traced (no bound is known now)."""
    if not array.dynamic_size:
        return array, False
    bound = static_value(maximum_iterations) if maximum_iterations is not None else None
    count = static_value(array.flows()[1])
    dims = array.flow.shape.dims
    capacity = dims[0] if dims is not None else None
    if bound is None or count is None:
        if capacity:
            return array, False
        # NOTE: sized when the step is traced, by counting the loop's iterations
        # (LoopArrays.resolve); its first dimension is unknown until then
        buffer = graph_op(array_ops.identity, "TensorArrayGrow")(array.flow)
        elements = array.element_shape.dims
        buffer._shape = TensorShape(None if elements is None else [None, *elements])
        return array.with_flows([buffer] + array.flows()[1:], capacity=None), True
    rows = int(count) + int(bound)
    if capacity is not None and capacity >= rows:
        return array, False
    buffer = graph_op(_grow_rows, "TensorArrayGrow")(array.flow, rows)
    elements = array.element_shape.dims
    buffer._shape = TensorShape(None if elements is None else [rows, *elements])
    return array.with_flows([buffer] + array.flows()[1:], capacity=rows), False


def _fail_unsized(why: str):
    raise ShapeError("a dynamic_size TensorArray with no room enters this tf.while_loop, "
                     f"and {why}: tracejit compiles a loop with static shapes, so the "
                     "array's elements must be counted before the loop runs. Give the loop "
                     "maximum_iterations= (a number known while the graph is built) or the "
                     "TensorArray a size=", op="while_loop", location=user_location())


def count_iterations(test: Callable, step: Callable, outer: dict, init: list,
                     limit: int = 100_000):
    """How many times the loop runs, where its predicate depends only on values known
    when the step is traced (a counter against a constant or a shape): the loop is
    followed on stand-in values (as the graph probes shapes); None where it is not."""
    probe = Trace(name="trip_count_probe")
    try:
        with tracing(probe):
            outer_in = {key: _stand_in(probe, value) for key, value in outer.items()}
            carried = [_stand_in(probe, value) for value in init]
            for trips in range(limit):
                flag = known_value(to_tensor(test(outer_in, carried)[0]))
                if flag is None:
                    return None
                if not bool(flag):
                    return trips
                carried = step(outer_in, carried)
    except TracejitError:
        return None
    finally:
        probe.closed = True
    return None


class LoopArrays:
    """The loop variables ``top`` with each TensorArray replaced by a tuple of its flows
    (``expanded``), and the way back."""

    def __init__(self, top, maximum_iterations=None):
        leaves: list = []
        self.treedef = pytree.flatten(top, leaves)
        entered = [_entering(leaf, maximum_iterations) if isinstance(leaf, TensorArray)
                   else (None, False) for leaf in leaves]
        self.templates = [template for template, _ in entered]
        # flat positions of (buffer, count) of the dynamic arrays sized when traced
        self.sized_when_traced = [pair for pair, (_, later) in
                                  zip(self._flow_positions(), entered, strict=True) if later]
        flat = [tuple(t.flows()) if t is not None else leaf
                for t, leaf in zip(self.templates, leaves, strict=True)]
        self.expanded = pytree.unflatten(self.treedef, iter(flat))
        self.returned: list = list(self.templates)   # the arrays the body returns
        self.result_treedef = self.treedef           # the structure it returns them in

    def join(self, flat: Sequence, outputs: bool = False):
        """The loop variables' structure, with TensorArrays, from the expanded flat
        values (a body's arguments; with ``outputs``, the loop's results)."""
        found = iter(flat)
        leaves = []
        for template, returned in zip(self.templates, self.returned, strict=True):
            if template is None:
                leaves.append(next(found))
                continue
            flows = [next(found) for _ in template.flows()]
            if outputs:
                leaves.append(returned.with_flows(flows, lazy=returned.lazy))
            else:
                leaves.append(template.with_flows(flows))
        return pytree.unflatten(self.result_treedef if outputs else self.treedef, iter(leaves))

    def expand(self, result):
        """A body's result with each TensorArray replaced by its flows (where the loop
        variables have TensorArrays; a structure that differs is left for the loop's
        structure check to report)."""
        leaves: list = []
        treedef = pytree.flatten(result, leaves)
        if same_structure(treedef, self.treedef):
            self.result_treedef = treedef
            self.returned = [leaf if isinstance(leaf, TensorArray) and t is not None else t
                             for leaf, t in zip(leaves, self.templates, strict=True)]
        flat = [tuple(leaf.flows()) if isinstance(leaf, TensorArray) else leaf
                for leaf in leaves]
        return pytree.unflatten(treedef, iter(flat))

    def expand_like(self, tree):
        """``tree`` (shape invariants, in the loop variables' structure) with the shapes
        of each TensorArray's flows where it has a TensorArray."""
        if tree is None:
            return None
        leaves: list = []
        treedef = pytree.flatten(tree, leaves)
        if not same_structure(treedef, self.treedef) or all(t is None for t in self.templates):
            return tree
        flat = [tuple(f.shape for f in t.flows()) if t is not None else leaf
                for t, leaf in zip(self.templates, leaves, strict=True)]
        return pytree.unflatten(treedef, iter(flat))

    def _flow_positions(self) -> list:
        """Per loop variable: (buffer, count) flat positions for an array, else None."""
        positions, k = [], 0
        for template in self.templates:
            if template is None:
                positions.append(None)
                k += 1
                continue
            flows = len(template.flows())
            positions.append((k, k + 1) if flows == 2 else (k, None))
            k += flows
        return positions

    def sized(self, init: list, outer: dict, step: Callable, test: Callable):
        """``init`` with the dynamic arrays sized when traced given room for every
        iteration, and the loop's iteration count (None where no array needs it)."""
        if not self.sized_when_traced:
            return init, None
        trips = count_iterations(test, step, outer, init)
        if trips is None:
            _fail_unsized("its predicate depends on values known only when it runs")
        init = list(init)
        for buffer, count in self.sized_when_traced:
            written = known_value(to_tensor(init[count]))
            if written is None:
                _fail_unsized("its element count is known only when it runs")
            init[buffer] = _grow_rows(to_tensor(init[buffer]),
                                      int(np.asarray(written)) + trips)
        return init, trips

    def lazy_positions(self) -> list[int]:
        """Flat positions (in the expanded loop variables) of the stand-in buffers."""
        positions, k = [], 0
        for template in self.templates:
            if template is not None and template.lazy:
                positions.append(k)
            k += len(template.flows()) if template is not None else 1
        return positions

    def resolve(self, init: list, outer: dict, step: Callable) -> list:
        """``init`` with each stand-in buffer replaced by zeros of the shape the body
        writes into it, found by tracing ``step(outer, carried)`` on stand-in values."""
        lazy = [k for k in self.lazy_positions() if is_unwritten(to_tensor(init[k]))]
        if not lazy:
            return init
        probe = Trace(name="tensor_array_probe")
        with tracing(probe):
            outer_in = {key: _stand_in(probe, value) for key, value in outer.items()}
            written = step(outer_in, [_stand_in(probe, value) for value in init])
        probe.closed = True
        init = list(init)
        for k in lazy:
            shape = tuple(written[k].shape)
            if shape != tuple(init[k].shape):
                init[k] = array_ops.zeros(shape, init[k].dtype)
        return init


def _stand_in(trace: Trace, value):
    """A value of ``trace`` with ``value``'s type (and known value, where it has one)."""
    if not isinstance(value, Tracer):
        return value
    stand_in = trace.new_input(TensorType(tuple(value.shape), value.dtype), weak=value.weak)
    stand_in.known = known_value(value)
    return stand_in


class BranchArrays:
    """The TensorArrays among what the branches of a ``tf.cond`` (``tf.case``,
    ``tf.switch_case``) return: each is returned as its flows; the results are
    TensorArrays again, where the first branch returned them."""

    def __init__(self):
        self.returned: list[tuple] = []     # per branch: (structure, its arrays or None)

    def expand(self, result):
        leaves: list = []
        treedef = pytree.flatten(result, leaves)
        self.returned.append((treedef, [leaf if isinstance(leaf, TensorArray) else None
                                        for leaf in leaves]))
        flat = [tuple(leaf.flows()) if isinstance(leaf, TensorArray) else leaf
                for leaf in leaves]
        return pytree.unflatten(treedef, iter(flat))

    def join(self, result):
        """The op's results (flows where arrays were) in the first branch's structure."""
        if not self.returned or not any(self.returned[0][1]):
            return result
        treedef, first = self.returned[0]
        found: list = []
        pytree.flatten(result, found)
        values = iter(found)
        leaves = []
        for k, template in enumerate(first):
            if template is None:
                leaves.append(next(values))
                continue
            # NOTE: still the stand-in only where every branch returns it unwritten
            lazy = all(getattr(arrays[k], "lazy", False) for _, arrays in self.returned
                       if k < len(arrays))
            leaves.append(template.with_flows([next(values) for _ in template.flows()],
                                              lazy=lazy))
        return pytree.unflatten(treedef, iter(leaves))
