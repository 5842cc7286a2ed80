"""The CPU backend as a runtime device (``get_device("cpu")``).

Its compiler is :class:`~tracejit.codegen_cpu.host.executor.CpuExecutor` (graph -> LLVM ->
machine code, cached in memory and on disk), made on first use so that listing or
choosing devices loads no llvmlite. Its buffers are host memory (NumPy arrays), its
lowering table is ``kernels/table.py``'s ``KERNEL_RULES`` plus the one-equation elementwise and
reduction bodies, its pipeline is pipeline.CPU_PASSES, and it can build the native
dispatcher ``@jit``'s fast path calls (W6).
"""

from __future__ import annotations

import threading

from ..runtime.device import CAN_RUN, HOST_MEMORY, NATIVE_DISPATCH, Device
from .pipeline import CPU_PASSES

__all__ = ["CpuDevice"]


class CpuDevice(Device):
    kind = name = "cpu"
    passes = CPU_PASSES
    capabilities = frozenset({CAN_RUN, NATIVE_DISPATCH, HOST_MEMORY})

    def __init__(self, spec="/job:localhost/replica:0/task:0/device:CPU:0"):
        super().__init__(spec)
        index = self.spec.device_index or 0
        # NOTE: /cpu:0 keeps the name "cpu" (what executor= and compile caches know);
        # the others of TRACEJIT_CPU_DEVICES are "cpu:1", "cpu:2", ...
        self.name = "cpu" if index == 0 else f"cpu:{index}"
        self._compiler = None
        self._table = None
        self._lock = threading.Lock()

    @property
    def compiler(self):
        """The CpuExecutor compiling and running this device's programs."""
        if self._compiler is None:
            with self._lock:
                if self._compiler is None:
                    from .host.executor import CpuExecutor
                    self._compiler = CpuExecutor(passes=self.passes)
        return self._compiler

    @property
    def lowering(self):
        """op -> how it is lowered (``"rule"``, ``"reduction"``, ``"elementwise"``)."""
        if self._table is None:
            from ..ir import ops
            from .kernels.table import rule_kind
            table = {op: rule_kind(op) for op in ops.OPS.values()}
            self._table = {op: kind for op, kind in table.items() if kind is not None}
        return self._table

    def compile(self, graph, *, donated=()):
        return self.compiler.compile(graph, donated=donated)

    def run_op(self, op, args, params) -> tuple:
        return self.compiler.run_op(op, args, params)

    def dispatcher(self, program, slow, wrapper, returns: str, weak):
        return self.compiler.dispatcher(program, slow, wrapper, returns, weak)

    def overwritten_arguments(self, program):
        return self.compiler.overwritten_arguments(program)

    def queue_storage(self, capacity, dtypes, shapes, random=False, min_after=0):
        from .host.queue_storage import MAX_COLUMNS, NativeRing
        if len(dtypes) > MAX_COLUMNS:
            return None
        return NativeRing(capacity, dtypes, shapes, random, min_after)

    def clear_caches(self) -> None:
        if self._compiler is not None:
            self._compiler.clear_caches()
