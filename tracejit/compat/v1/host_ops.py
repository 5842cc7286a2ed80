"""Ops the Session runs on the host, in Python, around the compiled step: queues,
readers, parsers, string ops and dataset iterators -- work that is not arithmetic on
tensors and that TensorFlow, too, runs as CPU kernels outside the math.

``host_op(type, compute, inputs, outputs)`` records one. When a ``Session.run`` needs
it, the Session first computes its inputs (fed values, other host ops' outputs, or a
compiled step of their own), calls ``compute(session, [input values])`` and gives its
outputs to the rest of the run as if they were fed: the compiled step never waits in
Python, and a host op that blocks (a dequeue from an empty queue) blocks in a wait that
releases the GIL, so the threads filling the queue run. Each host op runs at most once
per ``Session.run``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ...ir import dtypes as dt
from .graph import Operation, Tensor, get_default_graph
from .shapes import TensorShape
from .special_runs import needs_host
from .strings import string


def host_op(op_type: str, compute: Callable, inputs: Sequence = (),
            outputs: Sequence[tuple] = (), name: str | None = None,
            control_inputs: Sequence[Operation] = (),
            batched: Callable | None = None) -> Operation:
    """An op whose outputs ``compute(session, input_values) -> [values]`` makes on the
    host; ``outputs`` are ``(dtype, shape)`` pairs (shape entries None when unknown).

    ``batched(session, input_batches, limit) -> [output batches]``, where it is given,
    does what up to ``limit`` runs of ``compute`` in a row would, on inputs and outputs
    with a leading axis of one row per run (an op without inputs chooses how many runs,
    at least one, up to ``limit``): see :func:`batch_plan`."""
    from .ops import convert_to_tensor
    graph = get_default_graph()
    tensors = [t if isinstance(t, Tensor) else convert_to_tensor(t) for t in inputs]
    op = graph.create_op(op_type, None, tuple(tensors), name=name,
                         extra_control=list(control_inputs))
    op.outputs = [Tensor(op, i, TensorShape(shape), dtype)
                  for i, (dtype, shape) in enumerate(outputs)]
    op.host_compute = compute
    op.host_batch = batched
    return op


def host_tensor(op_type: str, compute: Callable, inputs: Sequence = (), dtype=string,
                shape=None, name: str | None = None) -> Tensor:
    """One-output ``host_op``: ``compute(session, values)`` returns the value itself."""
    op = host_op(op_type, lambda session, values: [compute(session, values)], inputs,
                 [(dtype, shape)], name)
    return op.outputs[0]


def as_value(dtype, value) -> np.ndarray:
    """A host op's output as the Session hands it on: bytes objects for strings, the
    dtype's NumPy type otherwise."""
    if dtype is string:
        array = np.asarray(value, dtype=object)
        flat = [v.encode() if isinstance(v, str) else bytes(v) for v in array.reshape(-1)]
        return np.array(flat, dtype=object).reshape(array.shape) if flat else \
            np.zeros(array.shape, dtype=object)
    return np.asarray(value, dtype=dt.as_dtype(dtype).np_dtype)


def ancestors_on_host(targets, fed_ids: set[int]) -> list[Operation]:
    """The host ops ``targets`` (tensors or operations) need, in creation order; the
    walk stops at fed tensors and goes through control inputs."""
    found: dict[int, Operation] = {}
    seen: set[int] = set()
    stack = [t if isinstance(t, Operation) else t.op for t in targets
             if not (isinstance(t, Tensor) and id(t) in fed_ids)]
    while stack:
        op = stack.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        if getattr(op, "host_compute", None) is not None:
            found[id(op)] = op
        stack.extend(t.op for t in op.inputs if id(t) not in fed_ids)
        stack.extend(op.control_inputs)
    return sorted(found.values(), key=lambda o: o.order)


class HostRun:
    """One kind of ``Session.run`` that needs the host ops ``hosts`` (the same fetches,
    the same fed tensors), worked out once and run every step: each host op runs once,
    in creation order, its inputs from the feeds, constants of the graph, earlier host
    ops' outputs, or a step of their own; then the rest of the targets run with the
    host ops' outputs fed.

    A training step's run (a dequeue feeding the compiled step) is the common kind: its
    host ops need no step of their own, and once the first run has shown that the rest
    needs no more host work, later runs hand the rest straight to the compiled step
    (``step``), skipping the session's per-run bookkeeping (35 us of a 60 us run)."""

    def __init__(self, targets, hosts, fed_ids):
        self.targets = targets
        self.hosts = hosts
        self.constants: dict[int, np.ndarray] = {}
        made = set(fed_ids)
        for op in hosts:
            for t in op.inputs:
                if id(t) not in made and t.op.type == "Const" and len(t.probe_known) == 1:
                    # NOTE: a constant input (dequeue_many's count) is known from the
                    # graph: no step of its own each run
                    self.constants[id(t)] = as_value(t.dtype, next(iter(
                        t.probe_known.values())))
                    made.add(id(t))
            made.update(id(t) for t in op.outputs)
        done = {id(op) for op in hosts}
        self.rest = [t for t in targets
                     if not (isinstance(t, Operation) and id(t) in done)
                     and not (isinstance(t, Tensor) and id(t) in made)]
        self.direct: bool | None = None     # whether the rest is the compiled step alone

    def run(self, session, run: Callable, step: Callable, feed_dict, host_done) -> list:
        """The targets' values. ``run(fetches, feeds, done)`` is the session's own run,
        ``step(fetches, feeds)`` its compiled step alone, ``host_done`` the host ops an
        enclosing run already ran."""
        feeds = dict(feed_dict)
        values = {id(tensor): v for tensor, v in feed_dict.items()}
        values.update(self.constants)
        done = set(host_done)
        for op in self.hosts:
            if id(op) in done:
                continue
            missing = [t for t in op.inputs if id(t) not in values]
            controls = [c for c in op.control_inputs if id(c) not in done]
            computed = iter(run(missing + controls, feeds, frozenset(done))
                            if missing or controls else [])
            inputs = [values[id(t)] if id(t) in values else next(computed)
                      for t in op.inputs]
            outputs = op.host_compute(session, inputs)
            done.add(id(op))
            for tensor, value in zip(op.outputs, outputs or [], strict=True):
                value = as_value(tensor.dtype, value)
                feeds[tensor] = value
                values[id(tensor)] = value
        rest = self.rest if not host_done else [
            t for t in self.targets if not (isinstance(t, Operation) and id(t) in done)
            and not (isinstance(t, Tensor) and id(t) in values)]
        if not rest:
            others = iter([])
        elif self.direct and not host_done:
            others = iter(step(rest, feeds))
        else:
            others = iter(run(rest, feeds, frozenset(done)))
        results = []
        for t in self.targets:
            if isinstance(t, Operation) and id(t) in done:
                results.append(None)
            elif isinstance(t, Tensor) and id(t) in values:
                results.append(values[id(t)])
            else:
                results.append(next(others))
        if self.direct is None and not host_done:
            # NOTE: known after one run: the fed tensors are the same every time
            fed = [*feed_dict, *(t for op in self.hosts for t in op.outputs)]
            self.direct = not self.rest or not (
                ancestors_on_host(self.rest, {id(t) for t in fed})
                or needs_host(self.rest, fed))
        return results


def batch_plan(op: Operation) -> list[Operation] | None:
    """The host ops to run, in order, for ``op`` run many times at once -- a queue
    runner's enqueue fed by a dequeue through per-element host ops (a dequeued index
    gathering rows of in-memory data, say) -- or None where that cannot be: an op of
    the chain has no ``batched`` rule, reads a tensor the host does not make, has
    control inputs, or the chain has other than one source (the op choosing how many
    runs there are). Running the plan's batched rules in order does what that many
    ``Session.run(op)`` calls in a row would, with one Python call per op, not per
    element."""
    if op.outputs:
        return None
    chain = ancestors_on_host([op], set())
    made = {id(o) for o in chain}
    sources = 0
    for host in chain:
        if getattr(host, "host_batch", None) is None or host.control_inputs:
            return None
        if any(id(t.op) not in made for t in host.inputs):
            return None
        sources += not host.inputs
    return chain if sources == 1 and chain and chain[-1] is op else None


def pump_plan(op: Operation) -> tuple | None:
    """``(source queue, tables)`` where ``op`` is an enqueue fed by one-element dequeue
    from ``source`` through row gathers of constant ``tables`` (one per component, the
    chain ``slice_input_producer`` makes into ``batch``/``shuffle_batch``): its runs can
    go on in native code, without Python (``op.host_pump``); else None."""
    chain = batch_plan(op)
    if chain is None or len(chain) < 3 or getattr(op, "host_pump", None) is None:
        return None
    dequeue, *gathers = chain[:-1]
    source = getattr(dequeue, "source_queue", None)
    if source is None or len(dequeue.outputs) != 1:
        return None
    tables = {}
    for gather in gathers:
        table = getattr(gather, "gather_table", None)
        if table is None or list(gather.inputs) != [dequeue.outputs[0]]:
            return None
        tables[id(gather.outputs[0])] = table
    if any(id(t) not in tables for t in op.inputs):
        return None
    return source, [tables[id(t)] for t in op.inputs]


def run_batch_plan(session, plan: list[Operation], limit: int) -> None:
    """Run ``plan`` (from :func:`batch_plan`) for up to ``limit`` elements."""
    values: dict[int, object] = {}
    for op in plan:
        outputs = op.host_batch(session, [values[id(t)] for t in op.inputs], limit)
        for tensor, value in zip(op.outputs, outputs or [], strict=True):
            values[id(tensor)] = value
