"""Control flow on the GPU, driven from the host: ``cond``, ``while_loop`` and ``scan``.

Each region (a branch, a loop's condition and body) is compiled once into a GPU program
of its own. The host decides: it copies a branch index or a loop condition back (one
scalar, one synchronization per decision, as TensorFlow's GPU kernels do for
``tf.cond`` and ``tf.while_loop``) and launches the chosen region's program. Loop
state stays in device memory between iterations: a scan's ``xs[i]`` is a view of the
flat input at offset ``i * size``, its ``ys[i]`` a device-to-device copy into the
stacked output.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir.core import Graph
from ..ir.ops_control import branch_index
from ..runtime.device import Buffer

__all__ = ["run_region"]


def _program(device, graph: Graph, cache: dict):
    from .program import GpuProgram, build_steps
    found = cache.get(id(graph))
    if found is None:
        found = (graph, GpuProgram(device, graph, build_steps(graph, device.simulating)))
        cache[id(graph)] = found
    return found[1]


def _scalar(device, storage, var) -> np.ndarray:
    return device.allocator.to_host(Buffer(device, tuple(var.shape), var.type.dtype,
                                           storage))


def _free(device, storages, outputs) -> None:
    """Give back the buffers a region program returned (``outputs``: their Vars)."""
    for storage, var in zip(storages, outputs, strict=True):
        device.allocator.free(Buffer(device, tuple(var.shape), var.type.dtype, storage))


def _copy_into(device, target, source) -> None:
    if target.size:
        target.copy_to_device(source, stream=device.stream or 0)


def run_region(device, step, values) -> None:
    eqn = step.eqn
    cache = step.programs
    ins = [values[id(v)] for v in eqn.ins]
    outs = [values[id(v)] for v in eqn.outs]
    name = eqn.op.name
    if name == "cond":
        branches = eqn.params["branches"]
        index = int(_scalar(device, ins[0], eqn.ins[0]))
        graph = branches[branch_index(index, len(branches))]
        results = _program(device, graph, cache)(ins[1:])
        for target, source in zip(outs, results, strict=True):
            _copy_into(device, target, source)
        _free(device, results, graph.outputs)
    elif name == "while_loop":
        _while(device, eqn, ins, outs, cache)
    elif name == "scan":
        _scan(device, eqn, ins, outs, cache)
    else:
        raise NotImplementedError(f"{name} on the GPU")


def _while(device, eqn, ins, outs, cache) -> None:
    p = eqn.params
    n, cond, body = p["num_carried"], p["cond"], p["body"]
    carried, invariants = list(ins[:n]), list(ins[n:])
    owned: list | None = None       # the body's results we hold (inputs are the caller's)
    trips = 0
    while p["max_trips"] < 0 or trips < p["max_trips"]:
        flag = _program(device, cond, cache)(carried + invariants)
        go = bool(_scalar(device, flag[0], cond.outputs[0]))
        _free(device, flag, cond.outputs)
        if not go:
            break
        results = _program(device, body, cache)(carried + invariants)
        if owned is not None:
            _free(device, owned, body.outputs)
        owned = carried = list(results[:n])
        trips += 1
    for target, source in zip(outs, carried, strict=True):
        _copy_into(device, target, source)
    if owned is not None:
        _free(device, owned, body.outputs)


def _scan(device, eqn, ins, outs, cache) -> None:
    p = eqn.params
    n, m, length, body = p["num_carried"], p["num_xs"], p["length"], p["body"]
    carried, xs, invariants = list(ins[:n]), ins[n:n + m], list(ins[n + m:])
    x_sizes = [math.prod(v.shape[1:]) for v in eqn.ins[n:n + m]]
    y_sizes = [math.prod(v.shape[1:]) for v in eqn.outs[n:]]
    counter_var = body.inputs[0]
    owned: list | None = None
    for i in (range(length - 1, -1, -1) if p["reverse"] else range(length)):
        counter = device.allocator.to_device(np.asarray(i, dtype=counter_var.type.dtype
                                                        .np_dtype))
        slices = [x[i * size:(i + 1) * size] for x, size in zip(xs, x_sizes, strict=True)]
        results = _program(device, body, cache)([counter.storage, *carried, *slices,
                                                 *invariants])
        device.allocator.free(counter)
        for y, size, value in zip(outs[n:], y_sizes, results[n:], strict=True):
            _copy_into(device, y[i * size:(i + 1) * size], value)
        _free(device, results[n:], body.outputs[n:])
        if owned is not None:
            _free(device, owned, body.outputs[:n])
        owned = carried = list(results[:n])
    for target, source in zip(outs[:n], carried, strict=True):
        _copy_into(device, target, source)
    if owned is not None:
        _free(device, owned, body.outputs[:n])


