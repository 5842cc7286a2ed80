"""The GPU's rule for every ELEMENTWISE op: operand expressions in, one expression out.

A rule gets the operands as source expressions in their compute types (scalars.py), the
operands' dtypes, the result dtype and the op's params, and returns the result as an
expression in the result's compute type. The caller binds it to a temporary after
:func:`scalars.round_op_result`, which wraps integers and rounds halves, so a rule
writes the math only. Ops whose NumPy meaning is more than one expression call the
device functions of device_functions.py.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.dtypes import DType
from ..ir.opdef import OpDef
from .scalars import convert_name, literal

__all__ = ["ELEMENTWISE_RULES", "emit_elementwise"]

Rule = Callable[[list[str], list[DType], DType, dict], str]


def _width(dtype: DType) -> str:
    return "64" if dtype is dt.float64 else "32"


def _float_or_int(float_rule: Rule, int_rule: Rule) -> Rule:
    def rule(a, d, out, p):
        return (float_rule if d[0].is_float else int_rule)(a, d, out, p)
    return rule


def _math(fn: str) -> Rule:
    return lambda a, d, out, p: f"math.{fn}({a[0]})"


def _per_width(stem: str) -> Rule:
    # floor/ceil/rint stay floats (numba's math.floor returns an int64)
    return lambda a, d, out, p: f"{stem}{_width(d[0])}({a[0]})"


def _one(dtype: DType) -> str:
    return literal(1, dtype)


def _zero(dtype: DType) -> str:
    return literal(0, dtype)


def _binop(symbol: str) -> Rule:
    return lambda a, d, out, p: f"({a[0]} {symbol} {a[1]})"


def _extremum(float_helper: str, bool_op: str, compare: str) -> Rule:
    """maximum/minimum: IEEE (NaN wins, signed zeros) for floats, or/and for bools."""
    def rule(a, d, out, p):
        if d[0].is_float:
            return f"{float_helper}({a[0]}, {a[1]})"
        if d[0].is_bool:
            return f"({a[0]} {bool_op} {a[1]})"
        return f"({a[0]} if {a[0]} {compare} {a[1]} else {a[1]})"
    return rule


_maximum = _extremum("tj_max_float", "or", ">")
_minimum = _extremum("tj_min_float", "and", "<")


def _sign(a, d, out, p):
    if d[0].is_float:
        return f"tj_sign_float({a[0]})"
    return f"(I64({a[0]} > 0) - I64({a[0]} < 0))"


def _relu(a, d, out, p):
    if d[0].is_float:
        return f"tj_max_float({a[0]}, {_zero(d[0])})"
    return f"({a[0]} if {a[0]} > 0 else 0)"


def _cast(a, d, out, p):
    src, x = d[0], a[0]
    if out.is_bool:
        return f"({x} != 0)"
    if src.is_bool:
        return f"{convert_name(out)}(1 if {x} else 0)"
    if src.is_float and out.is_integer:
        info = np.iinfo(out.np_dtype)
        # NOTE: the bounds as floats of the source's compute type: float(int64 max) is
        # 2**63, so "x >= hi" saturates exactly where the value does not fit
        return (f"tj_float_to_int({x}, {float(info.min)!r}, {float(info.max)!r}, "
                f"{int(info.min)}, {int(info.max)})")
    return f"{convert_name(out)}({x})"


def _clip(a, d, out, p):
    return _minimum([_maximum(a[:2], d, out, p), a[2]], d, out, p)


def _isfinite(a, d, out, p):
    return f"(not (math.isnan({a[0]}) or math.isinf({a[0]})))"


ELEMENTWISE_RULES: dict[OpDef, Rule] = {
    ops.ADD: _binop("+"), ops.SUB: _binop("-"), ops.MUL: _binop("*"),
    ops.DIV: _float_or_int(_binop("/"), lambda a, d, o, p: f"tj_div_int({a[0]}, {a[1]})"),
    ops.FLOORDIV: _float_or_int(lambda a, d, o, p: f"tj_floordiv_float({a[0]}, {a[1]})",
                                lambda a, d, o, p: f"tj_floordiv_int({a[0]}, {a[1]})"),
    ops.MOD: _float_or_int(lambda a, d, o, p: f"tj_mod_float({a[0]}, {a[1]})",
                           lambda a, d, o, p: f"tj_mod_int({a[0]}, {a[1]})"),
    ops.POW: _float_or_int(lambda a, d, o, p: f"math.pow({a[0]}, {a[1]})",
                           lambda a, d, o, p: f"tj_pow_int({a[0]}, {a[1]})"),
    ops.MAXIMUM: _maximum, ops.MINIMUM: _minimum,
    ops.EQUAL: _binop("=="), ops.NOT_EQUAL: _binop("!="), ops.LESS: _binop("<"),
    ops.LESS_EQUAL: _binop("<="), ops.GREATER: _binop(">"), ops.GREATER_EQUAL: _binop(">="),
    ops.LOGICAL_AND: lambda a, d, o, p: f"({a[0]} and {a[1]})",
    ops.LOGICAL_OR: lambda a, d, o, p: f"({a[0]} or {a[1]})",
    ops.LOGICAL_XOR: lambda a, d, o, p: f"({a[0]} != {a[1]})",
    ops.LOGICAL_NOT: lambda a, d, o, p: f"(not {a[0]})",
    ops.NEG: lambda a, d, o, p: f"(-{a[0]})",
    ops.ABS: lambda a, d, o, p: f"abs({a[0]})",
    ops.SIGN: _sign, ops.SQUARE: lambda a, d, o, p: f"({a[0]} * {a[0]})",
    ops.RELU: _relu,
    ops.EXP: _math("exp"), ops.EXPM1: _math("expm1"), ops.LOG: _math("log"),
    ops.LOG1P: _math("log1p"), ops.SQRT: _math("sqrt"), ops.TANH: _math("tanh"),
    ops.SIN: _math("sin"), ops.COS: _math("cos"), ops.ERF: _math("erf"),
    ops.RSQRT: lambda a, d, o, p: f"({_one(d[0])} / math.sqrt({a[0]}))",
    ops.RECIPROCAL: lambda a, d, o, p: f"({_one(d[0])} / {a[0]})",
    ops.SIGMOID: lambda a, d, o, p: f"tj_sigmoid({a[0]})",
    ops.FLOOR: _per_width("floor"), ops.CEIL: _per_width("ceil"),
    ops.ROUND: _per_width("rint"),
    ops.ISNAN: lambda a, d, o, p: f"math.isnan({a[0]})",
    ops.ISFINITE: _isfinite,
    ops.STOP_GRADIENT: lambda a, d, o, p: a[0],
    ops.SELECT: lambda a, d, o, p: f"({a[1]} if {a[0]} else {a[2]})",
    ops.CAST: _cast, ops.CLIP: _clip,
}


def emit_elementwise(op: OpDef, args: list[str], in_dtypes: list[DType], out: DType,
                     params: dict) -> str:
    return ELEMENTWISE_RULES[op](args, in_dtypes, out, params)
