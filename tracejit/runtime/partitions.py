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
from ..ir.printer import name_vars
from ..passes.partition import Partitions, format_partitions, partition, rendezvous_key
from ..passes.place import place
from .device import RESIDENT, Device, Resident, fetch_residents
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
        self.devices = devices
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

    def __call__(self, arrays: Sequence, stores: dict | None = None) -> list:
        """Run a step. ``stores`` maps output positions to :class:`Resident` values (the
        variables the step updates that live on another task): each such output is kept
        where it lives -- by the stage that computes it when that stage runs there --
        and the Resident itself comes back in its place."""
        placed = self.parts.placed
        values = {id(v): a for v, a in zip(placed.inputs, arrays, strict=True)}
        keep = {id(placed.outputs[p]): r for p, r in (stores or {}).items()}
        for together, level in self.levels:
            calls = [(stage, self._stage_call(stage, run, values, keep))
                     for stage, run in level]
            if together:
                self._run_together(calls, values)
                continue
            for stage, call in calls:
                self._keep(stage, self._explained(stage, call), values)
        results = []
        for p, var in enumerate(placed.outputs):
            value = values[id(var)]
            resident = (stores or {}).get(p)
            if resident is not None and value is not resident:
                resident.store(value)       # computed elsewhere than where it lives
                value = resident
            results.append(value)
        kept = set(stores or {})
        fetched = fetch_residents([v for p, v in enumerate(results) if p not in kept])
        fetched.reverse()
        return [v if p in kept else fetched.pop() for p, v in enumerate(results)]

    def _stage_call(self, stage, run, values: dict, keep: dict):
        """The call that runs ``stage`` on the step's values: Resident values of another
        device fetched first; a RESIDENT device takes its own by reference and keeps the
        outputs that live there."""
        args = [values[id(v)] for v in stage.graph.inputs]
        if RESIDENT not in self.devices[stage.device].capabilities:
            return lambda: run(fetch_residents(args))
        mine = [a if not isinstance(a, Resident) or a.device_key == stage.device else None
                for a in args]
        stores = {i: keep[id(v)] for i, v in enumerate(stage.graph.outputs)
                  if id(v) in keep and keep[id(v)].device_key == stage.device}

        def call():
            fetched = fetch_residents([a for a, m in zip(args, mine, strict=True) if m is None])
            fetched.reverse()
            return run([m if m is not None else fetched.pop() for m in mine], stores)
        return call

    def _explained(self, stage, call):
        """Run ``call``; a timeout raised inside names the stage, what it was waiting to
        receive (rendezvous keys) and its first operations."""
        try:
            return call()
        except StepTimeout as exc:
            raise StepTimeout(f"{exc.bare_message}\n  {self.describe(stage)}") from None

    def describe(self, stage) -> str:
        names = name_vars(self.parts.placed)
        arguments = {id(v) for v in self.parts.placed.inputs}
        keys = [rendezvous_key(v.meta.device, stage.device, names[id(v)])
                for v in stage.graph.inputs
                if id(v) not in arguments and v.meta.device != stage.device]
        ops = [e.op.name for e in stage.graph.eqns[:3]]
        return (f"stage '{stage.graph.name}' on {stage.device}: ops {ops}"
                f"{'...' if len(stage.graph.eqns) > 3 else ''}; rendezvous keys "
                f"{keys or '(none: graph arguments only)'}")

    @staticmethod
    def _keep(stage, outs, values: dict) -> None:
        for var, value in zip(stage.graph.outputs, outs, strict=True):
            values[id(var)] = value

    def _run_together(self, calls: list, values: dict) -> None:
        """One level's stages on their devices' workers at once; the first failure (in
        stage order) or a stage past the deadline ends the step."""
        futures = [(stage, _worker(stage.device).submit(self._explained, stage, call))
                   for stage, call in calls]
        limit = step_deadline()
        deadline = time.monotonic() + limit
        for stage, future in futures:
            try:
                outs = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                raise StepTimeout(f"stage '{stage.graph.name}' on {stage.device} still "
                                  f"running after the step deadline ({limit:g} s, "
                                  f"{STEP_DEADLINE_ENV})\n  {self.describe(stage)}") from None
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
