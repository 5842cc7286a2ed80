"""A graph on the GPU: its steps, run in order on the device's stream.

:class:`GpuProgram` is what ``CudaDevice.compile`` returns: called with the graph's
inputs as device arrays (flat, storage dtype: memory.storage_dtype), it returns the
outputs as fresh device arrays. Intermediate buffers come from the device's caching
allocator and go back to it right after their last reader is launched (all work is on
one stream, so a later kernel reusing the memory runs after the last reader). Nothing
here synchronizes with the host except control flow, which needs its predicate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..ir.core import Graph
from .kernels.host_callback import run_host_step
from .steps import AliasStep, ConstStep, GemmStep, HostStep, KernelStep, RegionStep, Step

__all__ = ["GpuProgram", "build_steps"]


def build_steps(graph: Graph, simulating: bool) -> list[Step]:
    from .table import lower_eqn
    steps: list[Step] = []
    for eqn in graph.eqns:
        steps.extend(lower_eqn(eqn, simulating))
    return steps


class GpuProgram:
    def __init__(self, device, graph: Graph, steps: list[Step]):
        self.device = device
        self.graph = graph
        self.steps = steps
        self.compiler = device.compiler
        # the steps of one equation run together and share its scratch buffers
        self.groups: list[list[Step]] = []
        for step in steps:
            if self.groups and self.groups[-1][0].eqn is step.eqn:
                self.groups[-1].append(step)
            else:
                self.groups.append([step])
        self._constants: dict[int, tuple] = {}     # id(ConstValue) -> (value, Buffer)
        self._releases = self._release_plan()
        counts: dict[int, int] = {}
        for v in graph.outputs:
            counts[id(v)] = counts.get(id(v), 0) + 1
        # an output listed once may be handed over as it is; twice, each gets a copy
        self._handed_over = {v_id for v_id, n in counts.items() if n == 1}
        for step in steps:      # compile every kernel now, not on the first call
            for kernel in _kernels_of(step):
                self.compiler.launchable(kernel)

    def _release_plan(self) -> list[list[int]]:
        """For each group, the buffers (by the id of the Var that owns them) to give back
        after it: a buffer goes when the last reader of it and of its aliases has been
        launched (the stream orders any reuse after that reader); graph outputs never.
        Aliasing is static (AliasSteps), so the plan is made once, not per call."""
        root: dict[int, int] = {}
        last: dict[int, int] = {}
        for i, group in enumerate(self.groups):
            eqn = group[0].eqn
            if isinstance(group[0], AliasStep):
                src = id(eqn.ins[0])
                root[id(eqn.outs[0])] = root.get(src, src)
            for v in eqn.ins:
                r = root.get(id(v), id(v))
                last[r] = max(last.get(r, -1), i)
        for v in self.graph.outputs:
            last[root.get(id(v), id(v))] = len(self.groups)
        plan: list[list[int]] = [[] for _ in self.groups]
        for r, i in last.items():
            if i < len(self.groups):
                plan[i].append(r)
        return plan

    # ---- running ------------------------------------------------------------------------

    def __call__(self, inputs: Sequence) -> list:
        graph, allocator = self.graph, self.device.allocator
        values = {id(v): a for v, a in zip(graph.inputs, inputs, strict=True)}
        owned: dict[int, object] = {}       # id(var) -> Buffer we allocated
        try:
            for i, group in enumerate(self.groups):
                eqn = group[0].eqn
                first = group[0]
                if isinstance(first, AliasStep):
                    values[id(eqn.outs[0])] = values[id(eqn.ins[0])]
                elif isinstance(first, ConstStep):
                    values[id(eqn.outs[0])] = self._constant(eqn.params["value"])
                else:
                    for v in eqn.outs:
                        buf = allocator.alloc(v.shape, v.type.dtype)
                        owned[id(v)] = buf
                        values[id(v)] = buf.storage
                    self._run(group, values)
                for r in self._releases[i]:
                    buf = owned.pop(r, None)
                    if buf is not None:
                        allocator.free(buf)
            outputs = []
            for v in graph.outputs:
                if id(v) in owned and id(v) in self._handed_over:
                    outputs.append(owned.pop(id(v)).storage)
                else:   # an input, a constant, an alias: the caller gets its own copy
                    outputs.append(self.device.copy_storage(values[id(v)], v))
            return outputs
        finally:
            for buf in owned.values():
                allocator.free(buf)

    def _constant(self, value):
        key = id(value)
        if key not in self._constants:
            self._constants[key] = (value, self.device.upload_constant(value.array))
        return self._constants[key][1].storage

    def _arg(self, arg, eqn, values, scratch):
        kind, key = arg.kind, arg.key
        if kind == "in":
            return values[id(eqn.ins[key])]
        if kind == "out":
            return values[id(eqn.outs[key])]
        if kind == "int":
            return key
        if kind == "const":
            return self._constant(key)
        if kind == "scratch":
            name, count, dtype = key
            if name not in scratch:
                scratch[name] = self.device.allocator.alloc((max(count, 1),), dtype)
            return scratch[name].storage
        raise ValueError(f"unknown kernel argument kind {kind!r}")

    def _run(self, group: list[Step], values) -> None:
        scratch: dict = {}
        try:
            for step in group:
                eqn = step.eqn
                if isinstance(step, KernelStep):
                    self._launch(step.kernel, eqn, values, scratch)
                elif isinstance(step, GemmStep):
                    if _empty(eqn):
                        continue

                    def resolve(a, eqn=eqn):
                        return self._arg(a, eqn, values, scratch)
                    if not self.device.gemm(step, resolve):
                        self._launch(step.fallback, eqn, values, scratch)
                elif isinstance(step, RegionStep):
                    self.device.run_region(step, values)
                elif isinstance(step, HostStep):
                    run_host_step(self.device, step, values)
        finally:
            for buf in scratch.values():
                self.device.allocator.free(buf)

    def _launch(self, kernel, eqn, values, scratch) -> None:
        if _empty(eqn):
            return
        fn = self.compiler.launchable(kernel)
        args = [self._arg(a, eqn, values, scratch) for a in kernel.args]
        self.device.launch(fn, kernel.launch, args)


def _kernels_of(step):
    if isinstance(step, KernelStep):
        return [step.kernel]
    if isinstance(step, GemmStep):
        return [step.fallback]
    return []


def _empty(eqn) -> bool:
    return all(math.prod(v.shape) == 0 for v in eqn.outs)
