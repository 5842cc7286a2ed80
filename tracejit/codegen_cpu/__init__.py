"""The CPU backend: fused graphs -> LLVM IR -> machine code for this host (llvmlite).

Its parts, one subpackage each (docs/cpu_backend.md):

* ``host/`` -- a whole optimized graph as one LLVM module with one native entry,
  callable from Python as a builtin function, compiled for a target, cached in memory
  and on disk;
* ``kernels/`` -- each equation's loop nest, one rule per op (``kernels/table.py``);
* ``loops/`` -- the loop machinery kernels are written in;
* ``gemm/`` -- matrix products (OpenBLAS, oneDNN, a register-tiled kernel);
* ``parallel/`` -- tracejit's thread pool and the parallel-for kernels emit;
* ``vmath/`` -- vectorizable float math emitted inline.

``device.py`` is the runtime's Device for the CPU, ``pipeline.py`` its passes.

The runtime's registry makes the ``cpu`` device (device.py) on first use; llvmlite and
the compiler load on the device's first compile, so ``import tracejit`` does not pay
for them.
"""

from __future__ import annotations

__all__ = ["CpuExecutor", "CpuDevice"]


def __getattr__(name: str):
    # NOTE: lazy, so that importing the package (the registry names its device by
    # module path) loads no llvmlite.
    if name == "CpuExecutor":
        from .host.executor import CpuExecutor
        return CpuExecutor
    if name == "CpuDevice":
        from .device import CpuDevice
        return CpuDevice
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
