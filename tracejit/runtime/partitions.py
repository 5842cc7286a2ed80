"""The executor of partitions: a graph placed over several devices, run as one step.

:func:`partitioned_program` places a traced graph (passes/place.py: the pins the user
wrote, resolved to this process's devices), cuts it into stages (passes/partition.py)
and compiles each stage on its device. A call runs the stages level by level; the
rendezvous is the step's table of values by Var: a stage's inputs are taken from it,
its outputs put in it. In one process the hand-over is zero-copy between host-memory
devices (a device with memory of its own copies through its allocator:
``Device.host_program``); the cluster runtime will put a ZeroMQ rendezvous behind the
same table.

The stages of one level run at once, one worker thread per device, when every one of
their devices declares ``"concurrent"`` (its programs release the GIL while they run);
the step then waits for them at most ``TRACEJIT_STEP_DEADLINE`` seconds (default 600)
and raises :class:`StepTimeout` naming the stage still running. The CPU devices'
programs hold the GIL, so their stages run one after the other on the caller's thread:
threads would only add hand-over cost. Either way a failing stage ends the step with its
own error: no later level starts, and nothing waits on it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from ..ir.core import Graph
from ..ir.errors import TracejitError
from ..passes.partition import Partitions, format_partitions, partition
from ..passes.place import place
from .device import Device
from .registry import local_device

__all__ = ["PartitionedProgram", "partitioned_program", "plan_partitions", "device_key",
           "CONCURRENT", "STEP_DEADLINE_ENV", "StepTimeout"]

CONCURRENT = "concurrent"       # a device capability: its programs release the GIL
STEP_DEADLINE_ENV = "TRACEJIT_STEP_DEADLINE"
DEFAULT_STEP_DEADLINE = 600.0


class StepTimeout(TracejitError, TimeoutError):
    """A stage of a partitioned step ran past the step deadline."""


def step_deadline() -> float:
    raw = os.environ.get(STEP_DEADLINE_ENV, "").strip()
    try:
        return float(raw) if raw else DEFAULT_STEP_DEADLINE
    except ValueError:
        raise TracejitError(f"{STEP_DEADLINE_ENV}={raw!r}: expected seconds") from None


_WORKERS: dict[str, ThreadPoolExecutor] = {}
_WORKERS_LOCK = threading.Lock()


def _worker(key: str) -> ThreadPoolExecutor:
    """The one worker thread of device ``key``, shared by every partitioned program."""
    with _WORKERS_LOCK:
        pool = _WORKERS.get(key)
        if pool is None:
            pool = _WORKERS[key] = ThreadPoolExecutor(1, thread_name_prefix=f"tj-{key}")
        return pool


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
        # the steps level by level, and whether each level's stages run at once
        self.levels: list[tuple[bool, list]] = []
        for at in sorted({stage.level for stage in parts.stages}):
            level = [(stage, run) for stage, run in self.steps if stage.level == at]
            together = len(level) > 1 and all(
                CONCURRENT in devices[stage.device].capabilities for stage, _ in level)
            self.levels.append((together, level))

    def __call__(self, arrays: Sequence) -> list:
        placed = self.parts.placed
        values = {id(v): a for v, a in zip(placed.inputs, arrays, strict=True)}
        for together, level in self.levels:
            if together:
                self._run_together(level, values)
                continue
            for stage, run in level:
                self._keep(stage, run([values[id(v)] for v in stage.graph.inputs]), values)
        return [values[id(v)] for v in placed.outputs]

    @staticmethod
    def _keep(stage, outs, values: dict) -> None:
        for var, value in zip(stage.graph.outputs, outs, strict=True):
            values[id(var)] = value

    def _run_together(self, level: list, values: dict) -> None:
        """One level's stages on their devices' workers at once; the first failure (in
        stage order) or a stage past the deadline ends the step."""
        futures = [(stage, _worker(stage.device).submit(
                       run, [values[id(v)] for v in stage.graph.inputs]))
                   for stage, run in level]
        limit = step_deadline()
        deadline = time.monotonic() + limit
        for stage, future in futures:
            try:
                outs = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                raise StepTimeout(f"stage '{stage.graph.name}' on {stage.device} still "
                                  f"running after the step deadline ({limit:g} s, "
                                  f"{STEP_DEADLINE_ENV})") from None
            self._keep(stage, outs, values)

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
