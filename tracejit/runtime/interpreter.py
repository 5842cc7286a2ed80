"""The reference interpreter as a device: every op's NumPy reference, unoptimized.

It is the oracle every other device is checked against (tests/backends/), so it runs
the graph exactly as traced: no passes, no lowering table (every op has a reference).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir.core import Graph
from ..ir.interpret import interpret
from ..ir.opdef import OpDef
from .device import Device

__all__ = ["InterpreterDevice"]


class InterpreterDevice(Device):
    kind = name = "interpreter"

    def compile(self, graph: Graph, *, donated: Sequence[int] = ()):
        # NOTE: the reference runs the traced graph itself; with TRACEJIT_DUMP set the
        # pipeline still runs once so every compile's stages are written out.
        from ..passes.pipeline import dump_stages
        dump_stages(graph)

        def program(args):
            return interpret(graph, args)
        return program

    def run_op(self, op: OpDef, args, params) -> tuple:
        return op.evaluate(args, params)

    def supports(self, op: OpDef) -> bool:
        return True
