"""The CPU backend: fused graphs -> LLVM IR -> machine code for this host (llvmlite).

Graph level (``program``, ``entry``, ``binding``, ``cache``, ``executor``): a whole
optimized graph becomes one LLVM module with one native entry, callable from Python as
a builtin function, cached in memory and on disk. Kernel level (``lower_*``, ``vmath``,
``blas``, ``parallel``): each equation's loop nest. See docs/cpu_backend.md.

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
        from .executor import CpuExecutor
        return CpuExecutor
    if name == "CpuDevice":
        from .device import CpuDevice
        return CpuDevice
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
