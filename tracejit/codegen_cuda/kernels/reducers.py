"""Each reduction op as an accumulator: its type, identity, combine and finish.

Accumulators: sum, prod and mean accumulate floats in float32 (halves too) or float64,
integers in int64 (wrapped to the op's width at the end, which equals wrapping every
step); max and min in the compute type with IEEE maximum/minimum (NaN wins, -0.0 below
+0.0); any and all as 0/1; argmax and argmin as a (value, index) pair where a NaN is
the extreme and ties go to the smaller index, so the pair is the NumPy answer whatever
order a tree combines it in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ...ir.dtypes import DType
from ..scalars import literal

__all__ = ["Reducer", "reducer_of", "NO_INDEX"]

NO_INDEX = 2 ** 62


@dataclass(frozen=True)
class Reducer:
    op_name: str
    acc: DType                 # the accumulator's compute dtype
    identity: str              # source of the initial value
    indexed: bool = False      # argmax/argmin: also an int64 index

    def combine(self, a: str, b: str) -> str:
        """Source of the accumulator after folding ``b`` into ``a`` (not indexed)."""
        name = self.op_name
        if name in ("sum", "mean"):
            return f"{_conv(self.acc)}({a} + {b})"
        if name == "prod":
            return f"{_conv(self.acc)}({a} * {b})"
        if name == "max":
            return f"tj_max_float({a}, {b})" if self.acc.is_float else \
                f"({a} if {a} > {b} else {b})"
        if name == "min":
            return f"tj_min_float({a}, {b})" if self.acc.is_float else \
                f"({a} if {a} < {b} else {b})"
        if name == "any":
            return f"({a} | {b})"
        return f"({a} & {b})"     # all

    def better(self, value: str, index: str, best: str, best_index: str) -> str:
        """argmax/argmin: whether (value, index) replaces (best, best_index). An index of
        NO_INDEX marks an empty accumulator: it never wins and always loses."""
        cmp = ">" if self.op_name == "argmax" else "<"
        if not self.acc.is_float:
            core = (f"{value} {cmp} {best} or ({value} == {best} and "
                    f"{index} < {best_index})")
        else:
            core = (f"(math.isnan({value}) and (not math.isnan({best}) or {index} < "
                    f"{best_index})) or (not math.isnan({best}) and ({value} {cmp} {best} "
                    f"or ({value} == {best} and {index} < {best_index})))")
        return f"({index} < {NO_INDEX} and ({best_index} >= {NO_INDEX} or {core}))"


def _conv(dtype: DType) -> str:
    return {dt.float64: "F64", dt.float32: "F32", dt.int64: "I64"}[dtype]


def _accumulator(dtype: DType) -> DType:
    if dtype.is_bool:
        return dt.bool_
    if dtype.is_float:
        return dt.float64 if dtype is dt.float64 else dt.float32
    return dt.int64


def reducer_of(eqn: Eqn) -> Reducer:
    name, dtype = eqn.op.name, eqn.ins[0].type.dtype
    acc = _accumulator(dtype)
    if name in ("sum", "mean"):
        return Reducer(name, acc, literal(0, acc))
    if name == "prod":
        return Reducer(name, acc, literal(1, acc))
    if name in ("max", "min", "argmax", "argmin"):
        compute = acc
        if name in ("argmax", "argmin"):
            return Reducer(name, compute, literal(0, compute), indexed=True)
        if dtype.is_float:
            ident = literal(float("-inf") if name == "max" else float("inf"), compute)
        elif dtype.is_bool:
            ident = "False" if name == "max" else "True"
        else:
            import numpy as np
            info = np.iinfo(dtype.np_dtype)
            ident = literal(info.min if name == "max" else info.max, compute)
        return Reducer(name, compute, ident)
    if eqn.op in (ops.ANY, ops.ALL):
        return Reducer(name, dt.bool_, "False" if name == "any" else "True")
    raise NotImplementedError(f"no GPU reducer for {name}")
