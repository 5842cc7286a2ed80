"""A compile-only device for tests: it runs the target-independent pipeline and checks
the result, and its programs refuse to run. Tests use it to exercise the runtime's
paths (registry, placement, compile caching) without a backend's code generator."""

from __future__ import annotations

from collections.abc import Sequence

from ..ir.core import Graph
from ..ir.opdef import OpDef
from ..ir.verifier import verify
from .device import HOST_MEMORY, Device, UnsupportedOnDevice

__all__ = ["NullDevice"]


class NullDevice(Device):
    kind = name = "null"
    capabilities = frozenset({HOST_MEMORY})     # no "run"

    def __init__(self, spec=None):
        super().__init__(spec)
        self.compiled: list[Graph] = []     # what it was asked to compile, optimized

    def compile(self, graph: Graph, *, donated: Sequence[int] = ()):
        from ..passes.pipeline import optimize
        optimized = optimize(graph)
        verify(optimized)
        self.compiled.append(optimized)

        def program(args):
            raise UnsupportedOnDevice(f"the null device compiles only; graph "
                                      f"'{graph.name}' cannot run on it")
        return program

    def run_op(self, op: OpDef, args, params) -> tuple:
        raise UnsupportedOnDevice(f"the null device compiles only; op {op.name} cannot "
                                  "run on it")

    def supports(self, op: OpDef) -> bool:
        return True

    def clear_caches(self) -> None:
        self.compiled.clear()
