"""The executor of partitions: a graph placed over several devices, run as one step.

:func:`partitioned_program` places a traced graph (passes/place.py: the pins the user
wrote, resolved to this process's devices), cuts it into stages (passes/partition.py)
and compiles each stage on its device. A call runs the stages in level order; the
rendezvous is the step's table of values by Var: a stage's inputs are taken from it,
its outputs put in it. In one process the hand-over is zero-copy between host-memory
devices (a device with memory of its own copies through its allocator:
``Device.host_program``); the cluster runtime will put a ZeroMQ rendezvous behind the
same table. A failing stage ends the step with its own error at once: no later stage
runs, and nothing waits on it.

Stages of one level could run at once, one worker per device; the CPU devices' programs
hold the GIL while they run, so they run one after the other here. Devices whose
programs release it (a GPU's launches) are what concurrency will be for.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir.core import Graph
from ..passes.partition import Partitions, format_partitions, partition
from ..passes.place import place
from .device import Device
from .registry import local_device

__all__ = ["PartitionedProgram", "partitioned_program", "plan_partitions", "device_key"]


def device_key(device: Device) -> str:
    """The string a placed graph names ``device`` by: its canonical spec, or its name for
    a device without one (the interpreter)."""
    return str(device.spec) or device.name


class PartitionedProgram:
    """A step over several devices: called on the graph's inputs (host arrays), returns
    its outputs (host arrays)."""

    def __init__(self, parts: Partitions, devices: dict[str, Device]):
        self.parts = parts
        self.steps = []
        for stage in parts.stages:
            device = devices[stage.device]
            self.steps.append((stage, device.host_program(device.compile(stage.graph),
                                                          stage.graph)))

    def __call__(self, arrays: Sequence) -> list:
        placed = self.parts.placed
        values = {id(v): a for v, a in zip(placed.inputs, arrays, strict=True)}
        for stage, run in self.steps:
            outs = run([values[id(v)] for v in stage.graph.inputs])
            for var, value in zip(stage.graph.outputs, outs, strict=True):
                values[id(var)] = value
        return [values[id(v)] for v in placed.outputs]

    def __str__(self) -> str:
        return format_partitions(self.parts)


def plan_partitions(graph: Graph, default: Device) -> tuple[Partitions, dict[str, Device]]:
    """``graph`` placed (pins resolved to this process's devices; unpinned work on
    ``default``) and partitioned, with the devices its stages name."""
    devices = {device_key(default): default}

    def resolve(pin: str) -> str:
        device = local_device(pin) or default
        devices[device_key(device)] = device
        return device_key(device)

    return partition(place(graph, resolve, device_key(default))), devices


def partitioned_program(graph: Graph, default: Device) -> PartitionedProgram:
    """Place and partition ``graph`` (:func:`plan_partitions`) and compile every stage."""
    return PartitionedProgram(*plan_partitions(graph, default))
