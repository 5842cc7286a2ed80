"""The CUDA backend as runtime devices: ``/gpu:0``, ``/gpu:1``, ...

A :class:`CudaDevice` compiles an optimized graph into a :class:`~.program.GpuProgram`
(kernels generated as numba.cuda source, cuBLAS for matrix products) and keeps its
buffers in device memory through a caching allocator (memory.py). Its programs take
and return device arrays; the front ends reach it through ``Device.host_program``,
which copies NumPy arguments in and results out (the partitioner's send/recv between
``/cpu:0`` and ``/gpu:0`` is exactly that copy).

In ``TRACEJIT_GPU=null`` mode the device compiles (placement, partitioning, fusion,
kernel sources) and its programs refuse to run; in ``sim`` mode the kernels run in
numba's CUDA simulator (mode.py).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Sequence

import numpy as np

from ..ir import GraphBuilder
from ..ir.core import Graph
from ..ir.verifier import verify
from ..runtime.device import (
    CAN_RUN,
    RESIDENT,
    Buffer,
    Device,
    DeviceValue,
    Resident,
    UnsupportedOnDevice,
)
from .mode import gpu_mode
from .pipeline import GPU_PASSES

__all__ = ["CudaDevice"]


class CudaDevice(Device):
    kind = "gpu"
    passes = GPU_PASSES

    def __init__(self, spec="/job:localhost/replica:0/task:0/device:GPU:0"):
        super().__init__(spec)
        self.index = self.spec.device_index or 0
        self.name = "gpu" if self.index == 0 else f"gpu:{self.index}"
        self.mode = gpu_mode()
        self.simulating = self.mode == "sim"
        self.capabilities = frozenset({CAN_RUN, RESIDENT}) \
            if self.mode in ("cuda", "sim") else frozenset()
        self._lock = threading.RLock()
        self._allocator = None
        self._stream = None
        self._cublas = None
        self._ops: dict = {}

    # ---- the pieces, made on first use ----------------------------------------------------

    @property
    def compiler(self):
        from .compiler import kernel_compiler
        return kernel_compiler()

    @property
    def cuda(self):
        return self.compiler.cuda

    @property
    def lowering(self):
        from .table import LOWERING
        return LOWERING

    @property
    def stream(self):
        if self._stream is None and self.mode == "cuda":
            with self.current():
                self._stream = self.cuda.stream()
        return self._stream

    @property
    def allocator(self):
        if self._allocator is None:
            with self._lock:
                if self._allocator is None:
                    self._require_run("hold buffers")
                    from .memory import CachingAllocator
                    self._allocator = CachingAllocator(self, self.cuda, self.stream)
        return self._allocator

    @allocator.setter
    def allocator(self, value):
        # NOTE: Device.__init__ assigns a host allocator; this device makes its own lazily
        pass

    def _require_run(self, what: str) -> None:
        if CAN_RUN not in self.capabilities:
            raise UnsupportedOnDevice(f"{self.spec} is compile-only (TRACEJIT_GPU="
                                      f"{self.mode}); it cannot {what}")

    # ---- compiling ----------------------------------------------------------------------

    def optimize(self, graph: Graph) -> Graph:
        from ..passes.pipeline import optimize
        optimized = optimize(graph, device_passes=self.passes)
        verify(optimized)
        return optimized

    def compile(self, graph: Graph, *, donated: Sequence[int] = ()):
        from .program import GpuProgram, build_steps
        optimized = self.optimize(graph)
        steps = build_steps(optimized, self.simulating)
        if CAN_RUN not in self.capabilities:
            def refuse(args):
                raise UnsupportedOnDevice(f"{self.spec} is compile-only (TRACEJIT_GPU="
                                          f"{self.mode}); graph '{graph.name}' compiled "
                                          f"to {len(steps)} steps but cannot run here")
            refuse.steps = steps
            return refuse
        return GpuProgram(self, optimized, steps)

    def run_op(self, op, args, params) -> tuple:
        arrays = [np.asarray(a) for a in args]
        # NOTE: params by value (a ConstValue hashes its content; its repr names only
        # shape and dtype, so two constants would have shared a program)
        key = (op, tuple((a.shape, a.dtype.str) for a in arrays),
               tuple(sorted(params.items())))
        try:
            program = self._ops.get(key)
        except TypeError:           # an unhashable param: compile, do not cache
            key, program = None, None
        if program is None:
            from ..ir.core import tensor_type
            from ..ir.dtypes import as_dtype
            b = GraphBuilder(op.name)
            ins = [b.add_input(tensor_type(a.shape, as_dtype(a.dtype))) for a in arrays]
            outs = b.emit(op, ins, dict(params))
            graph = b.build(list(outs))
            program = self.host_program(self.compile(graph), graph)
            if key is not None:
                self._ops[key] = program
        return tuple(program(arrays))

    def supports(self, op) -> bool:
        return op in self.lowering

    def clear_caches(self) -> None:
        self._ops.clear()

    # ---- the user's boundary ------------------------------------------------------------

    def host_program(self, program, graph: Graph):
        """``program`` as the front ends call it: NumPy arrays are copied in (through
        pinned staging, asynchronously); a :class:`DeviceValue` of this device is used in
        place. Results come back as NumPy arrays -- or, when any argument was a
        DeviceValue (a call committed to this device), stay here as DeviceValues, so
        chained calls copy nothing."""
        if CAN_RUN not in self.capabilities:
            return program
        allocator = self.allocator
        outputs = [(tuple(v.shape), v.type.dtype) for v in graph.outputs]

        def on_device(arrays, stores=None):
            with self.current():
                return run(arrays, stores or {})

        def run(arrays, stores):
            uploaded, storages, resident = [], [], False
            try:
                for a in arrays:
                    if isinstance(a, DeviceValue) and a.device is self:
                        storages.append(a.buffer.storage)
                        resident = True
                    elif isinstance(a, GpuVariable) and a.device is self:
                        storages.append(a.buffer.storage)      # read in place
                    else:
                        buf = allocator.to_device(np.asarray(a))
                        uploaded.append(buf)
                        storages.append(buf.storage)
                results = [Buffer(self, shape, dtype, value) for (shape, dtype), value
                           in zip(outputs, program(storages), strict=True)]
            finally:
                for buf in uploaded:
                    allocator.free(buf)
            for i, variable in stores.items():      # a variable's new value, kept here
                variable.take(results[i])
                results[i] = variable
            if resident:
                return [r if isinstance(r, GpuVariable) else DeviceValue(r) for r in results]
            try:
                return [r if isinstance(r, GpuVariable) else allocator.to_host(r)
                        for r in results]
            finally:
                for r in results:
                    if not isinstance(r, GpuVariable):
                        allocator.free(r)
        on_device.__wrapped__ = program
        return on_device

    def current(self):
        """This GPU as the calling thread's current CUDA context (numba's contexts are
        per thread and per device: with several GPUs, work for /gpu:1 must run in its
        context); nothing to switch in the simulator."""
        if self.mode == "cuda":
            return self.cuda.gpus[self.index]
        return contextlib.nullcontext()

    def resident(self, name: str, array: np.ndarray):
        """A variable made under ``tj.device("/gpu:N")`` lives in this GPU's memory."""
        if CAN_RUN not in self.capabilities:
            return None
        return GpuVariable(self, name, self.put(np.asarray(array)))

    def put(self, array):
        with self.current():
            return self.allocator.to_device(np.asarray(array))

    def get(self, buffer) -> np.ndarray:
        with self.current():
            return self.allocator.to_host(buffer)

    def synchronize(self) -> None:
        """Wait for the work queued on this device (timing, before reading results)."""
        if CAN_RUN in self.capabilities:
            self.allocator.synchronize()

    # ---- what programs call -------------------------------------------------------------

    def launch(self, fn, launch, args) -> None:
        if self.simulating:
            # NOTE: the simulator's threads do not see this thread's np.errstate; the
            # warnings NumPy scalars raise there (overflow of a wrapping int8 add, 0/0)
            # are the IEEE and modular results the GPU gives silently
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fn[launch.grid, launch.block](*args)
        else:
            fn[launch.grid, launch.block, self.stream](*args)

    def gemm(self, step, resolve) -> bool:
        """Run ``step`` with cuBLAS when it can; False: the caller launches the fallback."""
        if self.mode != "cuda" or step.stride_a is None or step.stride_b is None:
            return False
        dtype = step.dtype
        if not dtype.is_float or step.out_dtype is not dtype:
            return False
        blas = self._blas()
        if blas is None:
            return False
        from .cublas import device_pointer
        blas.gemm(device_pointer(resolve(step.a)), device_pointer(resolve(step.b)),
                  device_pointer(resolve(step.out)), m=step.m, n=step.n, k=step.k,
                  dtype=dtype, transpose_a=step.transpose_a, transpose_b=step.transpose_b,
                  batch=step.batch, stride_a=step.stride_a, stride_b=step.stride_b,
                  stride_c=step.stride_c)
        return True

    def _blas(self):
        if self._cublas is None:
            from .cublas import Cublas, find_cublas
            path = find_cublas()
            if path is None:
                self._cublas = False
            else:
                self._cublas = Cublas(path)
                self._cublas.set_stream(self.stream.handle.value
                                        if hasattr(self.stream.handle, "value")
                                        else int(self.stream.handle))
        return self._cublas or None

    def run_region(self, step, values) -> None:
        from .regions import run_region
        run_region(self, step, values)

    def copy_storage(self, storage, var):
        """A fresh buffer's storage holding a copy of ``storage`` (a value of ``var``)."""
        buf = self.allocator.alloc(var.shape, var.type.dtype)
        if buf.storage.size:
            buf.storage.copy_to_device(storage, stream=self.stream or 0)
        return buf.storage

    def upload_constant(self, array: np.ndarray):
        return self.allocator.to_device(np.ascontiguousarray(array))


class GpuVariable(Resident):
    """A variable's value kept in a GPU's memory (made under ``tj.device("/gpu:N")``):
    GPU stages read it in place and store its new value into it without a copy to the
    host; the host sees a download (``np.asarray(variable)``)."""

    def __init__(self, device: CudaDevice, name: str, buffer: Buffer):
        self.device, self.name, self.buffer = device, name, buffer
        self.device_key = str(device.spec)
        self.shape, self.dtype = buffer.shape, buffer.dtype

    @classmethod
    def fetch_many(cls, residents) -> list[np.ndarray]:
        return [r.device.get(r.buffer) for r in residents]

    def store(self, array) -> None:
        """A new value computed elsewhere (the host, another device)."""
        with self.device.current():
            self.device.allocator.upload_into(self.buffer, np.asarray(array).reshape(
                self.shape).astype(self.dtype.np_dtype, copy=False))

    def take(self, buffer: Buffer) -> None:
        """Adopt a freshly computed buffer of this device as the new value (the old one
        goes back to the allocator)."""
        old, self.buffer = self.buffer, buffer
        self.device.allocator.free(old)

    def __repr__(self) -> str:
        return f"<GpuVariable {self.name!r} on {self.device_key}>"

    def __del__(self):
        try:
            self.device.allocator.free(self.buffer)
        except Exception:     # noqa: BLE001 (interpreter shutdown)
            pass
