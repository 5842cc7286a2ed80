"""Vectorizable math: functions that emit LLVM IR for float math into an ``ir.IRBuilder``.

Every ``emit_*`` function takes the builder and ``float``/``double`` operands -- scalars or
``<N x float>``/``<N x double>`` vectors -- and returns the result value of the same type.
The emitted code is straight-line: selects instead of branches, and no calls except LLVM
intrinsics that lower to instructions (``fmuladd``, ``fma``, ``roundeven``, ``floor``,
``fabs``, ``copysign``, ``sqrt``, ...). So a scalar loop body that uses them is vectorized
by LLVM's loop vectorizer, and explicit vector code works the same. Nothing here calls
libm.

Accuracy (max error against the exact value, over all 2^32 float32 inputs; float64
figures in docs/cpu_math.md): float32 exp, expm1, log, log1p, tanh, sin, cos, erf and pow
below 1 ulp, sigmoid below 1.5 ulp; NaN, +-inf, +-0.0, subnormals, overflow and underflow
as NumPy. sin/cos reduce exactly for every finite input of both types (Payne-Hanek).

>>> from llvmlite import ir
>>> from tracejit.codegen_cpu import vmath
>>> from tracejit.codegen_cpu.host import target
>>> mod = target.new_module("demo")
>>> f32 = ir.FloatType()
>>> fn = ir.Function(mod, ir.FunctionType(f32, [f32]), "my_tanh")
>>> b = ir.IRBuilder(fn.append_basic_block())
>>> _ = b.ret(vmath.emit_tanh(b, fn.args[0]))
>>> import ctypes
>>> _, addr = target.compile_module(mod)
>>> round(ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_float)(addr["my_tanh"])(0.5), 6)
0.462117

:data:`UNARY` and :data:`BINARY` map IR op names to these functions.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from . import exp, fmod, log, trig
from .base import Emit, float_kind, intrinsic

__all__ = [
    "BINARY", "UNARY", "emit_ceil", "emit_copysign", "emit_cos", "emit_erf", "emit_exp",
    "emit_expm1", "emit_fabs", "emit_floor", "emit_fmod", "emit_log", "emit_log1p", "emit_maximum",
    "emit_maxnum", "emit_minimum", "emit_minnum", "emit_pow", "emit_reciprocal",
    "emit_round", "emit_rsqrt", "emit_sigmoid", "emit_sin", "emit_sqrt", "emit_tanh",
    "emit_trunc",
]

Value = ir.Value


def _emit(builder: ir.IRBuilder, x: Value) -> Emit:
    return Emit(builder, x.type)


def _same_type(x: Value, y: Value, what: str) -> None:
    if x.type != y.type:
        raise TypeError(f"vmath.{what}: operands must have one type, got {x.type} and {y.type}")


# ---- transcendentals -----------------------------------------------------------------------

def emit_exp(builder: ir.IRBuilder, x: Value) -> Value:
    """``exp(x)``: overflow to +inf, gradual underflow to +0."""
    return exp.emit_exp(_emit(builder, x), x)


def emit_expm1(builder: ir.IRBuilder, x: Value) -> Value:
    """``exp(x) - 1``, accurate near 0; -1 below about -17 (float32) / -38 (float64)."""
    return exp.emit_expm1(_emit(builder, x), x)


def emit_log(builder: ir.IRBuilder, x: Value) -> Value:
    """Natural log: ``-inf`` at +-0, NaN below 0, subnormals exact."""
    return log.emit_log(_emit(builder, x), x)


def emit_log1p(builder: ir.IRBuilder, x: Value) -> Value:
    """``log(1 + x)``, accurate near 0: ``-inf`` at -1, NaN below."""
    return log.emit_log1p(_emit(builder, x), x)


def emit_tanh(builder: ir.IRBuilder, x: Value) -> Value:
    """Hyperbolic tangent; +-1 for large |x|, odd (tanh(-0.0) = -0.0)."""
    return exp.emit_tanh(_emit(builder, x), x)


def emit_sigmoid(builder: ir.IRBuilder, x: Value) -> Value:
    """``1 / (1 + exp(-x))`` without overflow; exp(x) accuracy for very negative x."""
    return exp.emit_sigmoid(_emit(builder, x), x)


def emit_sin(builder: ir.IRBuilder, x: Value) -> Value:
    """Sine; every finite input reduced exactly (Payne-Hanek above 2^26 for float32,
    above pi/4 for float64); NaN for +-inf."""
    return trig.emit_sin(_emit(builder, x), x)


def emit_cos(builder: ir.IRBuilder, x: Value) -> Value:
    """Cosine; every finite input reduced exactly (Payne-Hanek above 2^26 for float32,
    above pi/4 for float64); NaN for +-inf."""
    return trig.emit_cos(_emit(builder, x), x)


def emit_erf(builder: ir.IRBuilder, x: Value) -> Value:
    """Error function; +-1 for large |x|, odd."""
    return trig.emit_erf(_emit(builder, x), x)


def emit_pow(builder: ir.IRBuilder, x: Value, y: Value) -> Value:
    """``x ** y`` with C99/NumPy special cases (``pow(x, 0) = 1``, ``pow(1, y) = 1``,
    ``pow(-8, 1/3) = NaN``, signed zeros and infinities for odd integer ``y``, ...).
    Computed through a double-double log in float64 (float32 inputs are widened)."""
    _same_type(x, y, "emit_pow")
    return log.emit_pow(_emit(builder, x), x, y)


def emit_fmod(builder: ir.IRBuilder, x: Value, y: Value) -> Value:
    """C ``fmod`` (``np.fmod``): exact, sign of ``x``; NaN for ``y = 0`` or infinite ``x``,
    ``x`` for infinite ``y``. float32: branch-free and vectorizable (computed in double);
    float64: LLVM ``frem`` (one libm call per element, not vectorized)."""
    _same_type(x, y, "emit_fmod")
    return fmod.emit_fmod(_emit(builder, x), x, y)


# ---- instructions / intrinsics that lower to instructions ----------------------------------

def _unary_intrinsic(name: str, builder: ir.IRBuilder, x: Value) -> Value:
    float_kind(x.type)
    return builder.call(intrinsic(builder.module, name, x.type, [x.type]), [x])


def _binary_intrinsic(name: str, builder: ir.IRBuilder, x: Value, y: Value) -> Value:
    float_kind(x.type)
    _same_type(x, y, name)
    return builder.call(intrinsic(builder.module, name, x.type, [x.type, x.type]), [x, y])


def emit_sqrt(builder: ir.IRBuilder, x: Value) -> Value:
    """Correctly rounded square root (``llvm.sqrt``): NaN below 0, -0.0 at -0.0."""
    return _unary_intrinsic("llvm.sqrt", builder, x)


def emit_rsqrt(builder: ir.IRBuilder, x: Value) -> Value:
    """``1 / sqrt(x)`` as a division (NumPy rounds twice too; no approximate rsqrt)."""
    e = _emit(builder, x)
    return e.div(1.0, emit_sqrt(builder, x))


def emit_reciprocal(builder: ir.IRBuilder, x: Value) -> Value:
    """``1 / x``."""
    return _emit(builder, x).div(1.0, x)


def emit_fabs(builder: ir.IRBuilder, x: Value) -> Value:
    return _unary_intrinsic("llvm.fabs", builder, x)


def emit_floor(builder: ir.IRBuilder, x: Value) -> Value:
    return _unary_intrinsic("llvm.floor", builder, x)


def emit_ceil(builder: ir.IRBuilder, x: Value) -> Value:
    return _unary_intrinsic("llvm.ceil", builder, x)


def emit_trunc(builder: ir.IRBuilder, x: Value) -> Value:
    return _unary_intrinsic("llvm.trunc", builder, x)


def emit_round(builder: ir.IRBuilder, x: Value) -> Value:
    """Round half to even, as ``np.round`` (``llvm.roundeven``)."""
    return _unary_intrinsic("llvm.roundeven", builder, x)


def emit_copysign(builder: ir.IRBuilder, mag: Value, sign: Value) -> Value:
    return _binary_intrinsic("llvm.copysign", builder, mag, sign)


def emit_minnum(builder: ir.IRBuilder, x: Value, y: Value) -> Value:
    """``np.fmin``: a NaN operand is ignored (``llvm.minnum``)."""
    return _binary_intrinsic("llvm.minnum", builder, x, y)


def emit_maxnum(builder: ir.IRBuilder, x: Value, y: Value) -> Value:
    """``np.fmax``: a NaN operand is ignored (``llvm.maxnum``)."""
    return _binary_intrinsic("llvm.maxnum", builder, x, y)


def emit_minimum(builder: ir.IRBuilder, x: Value, y: Value) -> Value:
    """``np.minimum``: NaN propagates (``llvm.minimum``; -0.0 counts as below +0.0, where
    NumPy may return either zero)."""
    return _binary_intrinsic("llvm.minimum", builder, x, y)


def emit_maximum(builder: ir.IRBuilder, x: Value, y: Value) -> Value:
    """``np.maximum``: NaN propagates (``llvm.maximum``; +0.0 counts as above -0.0)."""
    return _binary_intrinsic("llvm.maximum", builder, x, y)


UnaryEmitter = Callable[[ir.IRBuilder, Value], Value]
BinaryEmitter = Callable[[ir.IRBuilder, Value, Value], Value]

#: IR op name -> emitter, for float operands (the op table's names).
UNARY: dict[str, UnaryEmitter] = {
    "exp": emit_exp, "expm1": emit_expm1, "log": emit_log, "log1p": emit_log1p,
    "tanh": emit_tanh, "sigmoid": emit_sigmoid, "sin": emit_sin, "cos": emit_cos,
    "erf": emit_erf, "sqrt": emit_sqrt, "rsqrt": emit_rsqrt, "reciprocal": emit_reciprocal,
    "abs": emit_fabs, "floor": emit_floor, "ceil": emit_ceil, "round": emit_round,
    "trunc": emit_trunc,
}
BINARY: dict[str, BinaryEmitter] = {
    "pow": emit_pow, "fmod": emit_fmod, "maximum": emit_maximum, "minimum": emit_minimum,
    "fmax": emit_maxnum, "fmin": emit_minnum, "copysign": emit_copysign,
}
