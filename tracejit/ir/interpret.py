"""The reference interpreter: runs any Graph with the op table's NumPy implementations.

It is the executable specification of the IR. Every pass and every backend is
tested against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .core import Graph, TensorType
from .errors import ShapeError, VerifyError


def check_argument(graph: Graph, index: int, value: np.ndarray) -> None:
    expected = graph.inputs[index].type
    if value.shape != expected.shape or value.dtype != expected.dtype.np_dtype:
        got = f"{value.dtype}{list(value.shape)}"
        raise ShapeError(f"argument {index} of graph {graph.name!r} should be {expected}, "
                         f"got {got}")


def interpret(graph: Graph, args: Sequence, *, check: bool = False) -> list[np.ndarray]:
    """Evaluate ``graph`` on ``args``. ``check`` verifies each result's shape and dtype
    against the op's shape rule (tests turn it on; it catches a wrong reference)."""
    if len(args) != len(graph.inputs):
        raise ShapeError(f"graph {graph.name!r} takes {len(graph.inputs)} arguments, "
                         f"got {len(args)}")
    env: dict[int, np.ndarray] = {}
    for i, (var, value) in enumerate(zip(graph.inputs, args, strict=True)):
        value = np.asarray(value)
        check_argument(graph, i, value)
        env[id(var)] = value
    for eqn in graph.eqns:
        results = eqn.op.evaluate([env[id(v)] for v in eqn.ins], eqn.params)
        if len(results) != len(eqn.outs):
            raise VerifyError(f"reference returned {len(results)} results for "
                              f"{len(eqn.outs)} outputs", op=eqn.op.name)
        for var, value in zip(eqn.outs, results, strict=True):
            if check:
                _check_result(eqn.op.name, var.type, value)
            env[id(var)] = value
    return [env[id(v)] for v in graph.outputs]


def _check_result(op: str, expected: TensorType, value: np.ndarray) -> None:
    if not isinstance(value, np.ndarray) or value.shape != expected.shape \
            or value.dtype != expected.dtype.np_dtype:
        got = (f"{value.dtype}{list(value.shape)}" if isinstance(value, np.ndarray)
               else type(value).__name__)
        raise VerifyError(f"reference produced {got}, shape rule says {expected}", op=op)
