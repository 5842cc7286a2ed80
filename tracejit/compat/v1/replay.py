"""Replaying recorded TF1 operations inside the active trace (graph.py records them):
the operations some roots depend on, and the replay itself."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ir.errors import TracejitError
from ...trace.device_scope import device as device_scope
from ...trace.tracing import current_trace, to_tensor
from ...trace.values import Tracer


def ancestor_ops(roots, fed_ids: set[int], control: bool = False) -> list:
    """The ops ``roots`` depend on (roots included), stopping at fed tensors; ``control``
    follows control dependencies too."""
    found: dict[int, Any] = {}   # id(op) -> the Operation
    stack = list(roots)
    while stack:
        op = stack.pop()
        if id(op) in found:
            continue
        found[id(op)] = op
        stack.extend(t.op for t in op.inputs if id(t) not in fed_ids)
        if control:
            stack.extend(op.control_inputs)
    return list(found.values())


def replay_ops(ops, values: dict[int, Any], device_of=None) -> None:
    """Replay ``ops`` (in creation order) inside the active trace, filling ``values``
    (graph tensor id -> traced value); tensors already in ``values`` are not recomputed.
    ``device_of(op)``: the device each op is traced on (None: no pin), as the Session
    places it."""
    for op in ops:
        if getattr(op, "host_compute", None) is not None and \
                getattr(op, "gradient_rule", None) is not None and \
                all(id(t) in values for t in op.outputs):
            # NOTE: a host op ran before the step (host_ops.py) and its results are fed;
            # an overriding gradient (gradient_override.py) ties them to its inputs
            fed = [values[id(t)] for t in op.outputs]
            tied = op.gradient_rule(lambda fed=fed: fed, values)
            values.update(zip(map(id, op.outputs), tied, strict=True))
            continue
        if op.outputs and all(id(t) in values for t in op.outputs):
            continue
        if getattr(op, "host_compute", None) is not None:
            continue            # runs on the host, before the step (host_ops.py)
        try:
            with device_scope(device_of(op) if device_of is not None else None):
                result = op.replay(values)
        except TracejitError as err:
            if getattr(err, "graph_op", None) is None:
                err.graph_op = op   # which (innermost) operation failed, for the Session
            raise
        if op.outputs:
            flat = result if isinstance(result, (list, tuple)) else [result]
            flat = [r for r in flat if r is not None]
            if getattr(op, "differentiated", False):
                flat = [_traced(r) for r in flat]
            for tensor, value in zip(op.outputs, flat, strict=True):
                values.setdefault(id(tensor), value)


def _traced(value):
    """``value`` as a value of the active trace: a concrete one (a constant) becomes a
    traced constant, so what is computed from it is traced too and ``tf.gradients`` with
    respect to it has a path to follow."""
    trace = current_trace()
    if trace is None or isinstance(value, Tracer):
        return value
    return Tracer(trace.constant_var(to_tensor(value)), trace)


def known_value(value):
    """What is known of a traced result: a concrete array, or a tracer's known value."""
    known = getattr(value, "known", None)
    if known is None and isinstance(getattr(value, "value", None), np.ndarray):
        known = value.value
    return known
