"""The one small interface through which traced graphs and eager ops are run.

An executor compiles a Graph into a callable over NumPy arrays, and runs single
ops for eager mode. The reference interpreter is always registered; compiled
backends register themselves when imported (``register_executor``), and the
tracer never needs to know which one runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from ..config import config
from ..ir.core import Graph, Params
from ..ir.interpret import interpret
from ..ir.opdef import OpDef

Program = Callable[[Sequence[np.ndarray]], Sequence[np.ndarray]]


class Executor(Protocol):
    name: str

    def compile(self, graph: Graph, *, donated: Sequence[int] = ()) -> Program:
        """Turn a traced graph into a program taking and returning NumPy arrays. The
        ``donated`` arguments' arrays may be overwritten, and returned as results."""

    def run_op(self, op: OpDef, args: Sequence[np.ndarray], params: Params) -> tuple:
        """Run one op at once on concrete arrays (eager mode)."""

    # Optional: ``dispatcher(program, slow, wrapper, returns, weak)`` -> a native callable
    # or None; ``@jit`` makes it a function's ``__call__`` (see CpuExecutor.dispatcher).


class InterpreterExecutor:
    """Runs graphs with the NumPy reference implementations, unoptimized."""

    name = "interpreter"

    def compile(self, graph: Graph, *, donated: Sequence[int] = ()) -> Program:
        # NOTE: the reference runs the traced graph itself; with TRACEJIT_DUMP set the
        # pipeline still runs once so every compile's stages are written out.
        from ..passes.pipeline import dump_stages
        dump_stages(graph)

        def program(args):
            return interpret(graph, args)
        return program

    def run_op(self, op: OpDef, args, params) -> tuple:
        return op.evaluate(args, params)


_EXECUTORS: dict[str, Executor] = {"interpreter": InterpreterExecutor()}
DEFAULT_EXECUTOR = ["interpreter"]   # a backend that registers as default replaces this


def register_executor(executor: Executor, *, default: bool = False) -> None:
    _EXECUTORS[executor.name] = executor
    if default:
        DEFAULT_EXECUTOR[0] = executor.name


def get_executor(name: str | None = None) -> Executor:
    name = name or config.executor or DEFAULT_EXECUTOR[0]
    try:
        return _EXECUTORS[name]
    except KeyError:
        raise ValueError(f"unknown executor {name!r}; registered: {sorted(_EXECUTORS)}") from None


def clear_caches() -> None:
    """Forget every compiled program the executors keep (in memory; a disk cache stays,
    see ``TRACEJIT_CACHE_DIR=off``), so the next compile compiles. Jitted functions keep
    their own caches (``f.clear_cache()``)."""
    for executor in _EXECUTORS.values():
        clear = getattr(executor, "clear_caches", None)
        if clear is not None:
            clear()


def executor_names() -> list[str]:
    return sorted(_EXECUTORS)
