"""Fixtures of the CPU backend tests: a stand-in lowering and memory-only caches."""

from __future__ import annotations

import numpy as np
import pytest

from tracejit.codegen_cpu.host.cache import ProgramCache, compile_object, load_object
from tracejit.codegen_cpu.host.executor import CpuExecutor
from tracejit.codegen_cpu.host.program import build_program
from tracejit.ir import GraphBuilder, ops
from tracejit.ir.core import TensorType, VarMeta
from tracejit.ir.dtypes import as_dtype

from . import standin_lowering

ENTRIES = ["trampoline", "ctypes"]


@pytest.fixture
def standin():
    """A CpuExecutor with the stand-in lowering and no disk cache."""
    standin_lowering.lowered.clear()
    return CpuExecutor(cache=ProgramCache(None), lowering=standin_lowering)


def load_graph(graph, *, donated=(), entry=None, prefix="tj_test"):
    """The graph compiled as it is (no optimization passes) with the stand-in lowering."""
    from tracejit.codegen_cpu.host.binding import CompiledProgram
    built = build_program(graph, donated=donated, prefix=prefix, lowering=standin_lowering)
    return CompiledProgram(built.layout, load_object(compile_object(built.module)),
                           built.consts, entry=entry)


class Builder(GraphBuilder):
    """GraphBuilder with terse helpers: ``b.input("f32[4]", "x")``, ``b("add", x, y)``."""

    def input(self, spec: str, name: str | None = None):
        dtype, dims = spec.rstrip("]").split("[")
        shape = tuple(int(d) for d in dims.split(",") if d)
        return self.add_input(TensorType(shape, as_dtype(dtype)), VarMeta(name=name))

    def __call__(self, op: str, *ins, **params):
        return self.emit1(ops.OPS[op], list(ins), params)

    def const(self, value, dtype="f32"):
        return self("constant", value=np.asarray(value, as_dtype(dtype).np_dtype))
