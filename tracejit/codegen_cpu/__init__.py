"""The CPU backend: fused graphs -> LLVM IR -> machine code for this host (llvmlite).

Graph level (``program``, ``entry``, ``binding``, ``cache``, ``executor``): a whole
optimized graph becomes one LLVM module with one native entry, callable from Python as
a builtin function, cached in memory and on disk. Kernel level (``lower_*``, ``vmath``,
``blas``, ``parallel``): each equation's loop nest. See docs/cpu_backend.md.

Importing this package is cheap: llvmlite and the compiler load on first use of the
executor, so ``import tracejit`` does not pay for them.
"""

from __future__ import annotations

__all__ = ["CpuExecutor", "register"]


def __getattr__(name: str):
    if name == "CpuExecutor":
        from .executor import CpuExecutor
        return CpuExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _LazyCpuExecutor:
    """Stands in for :class:`~tracejit.codegen_cpu.executor.CpuExecutor` in the executor
    registry until first use, then forwards to one shared instance."""

    name = "cpu"

    def __init__(self):
        self._real = None

    def get(self):
        if self._real is None:
            from .executor import CpuExecutor
            self._real = CpuExecutor()
        return self._real

    def compile(self, graph, **options):
        return self.get().compile(graph, **options)

    def run_op(self, op, args, params):
        return self.get().run_op(op, args, params)

    def __getattr__(self, name: str):
        return getattr(self.get(), name)


def register(*, default: bool = False) -> None:
    """Register the executor as ``"cpu"`` (and as the default one if ``default``)."""
    from ..trace.executors import register_executor
    register_executor(_LazyCpuExecutor(), default=default)
