"""Elementwise ops: unary math, binary arithmetic with NumPy broadcasting, comparisons,
logic, select, cast and clip.

IR ops are strictly typed: the operands of a binary op share one dtype (the front
end inserts casts after promotion). float16 and bfloat16 are computed in float32
and rounded once at the end, which is what every backend does too.
"""

from __future__ import annotations

import math

import numpy as np

from . import dtypes as dt
from .core import TensorType
from .opdef import (
    OpDef,
    ParamSpec,
    Tag,
    broadcast_shapes,
    declare,
    dtype_param,
    require_dtype,
    require_same_dtype,
)

FLOATS = dt.FLOAT_DTYPES
NUMERIC = dt.NUMERIC_DTYPES
SIGNED = (dt.int8, dt.int32, dt.int64) + dt.FLOAT_DTYPES
ANY = dt.ALL_DTYPES
BOOL = (dt.bool_,)
INTEGER = dt.INT_DTYPES


def _compute_dtype(dtype: dt.DType) -> np.dtype:
    """Half-precision floats compute in float32; everything else in its own type."""
    return np.dtype(np.float32) if dtype.is_half else dtype.np_dtype


def _elementwise_impl(fn, out_dtype=None):
    """Wrap a NumPy function: upcast halves, silence FP warnings, cast to the IR dtype."""

    def impl(*arrays):
        in_dtype = dt.as_dtype(arrays[0].dtype)
        result_dtype = out_dtype or in_dtype
        compute = _compute_dtype(in_dtype)
        with np.errstate(all="ignore"):
            out = fn(*(np.asarray(a, dtype=compute) for a in arrays))
        return np.asarray(out).astype(result_dtype.np_dtype, copy=False)

    return impl


# ---- unary ---------------------------------------------------------------------------------

def _unary_rule(name, accepts, what, result=None):
    def infer(types, params):
        (t,) = types
        require_dtype(name, t, accepts, what)
        return (TensorType(t.shape, result or t.dtype),)
    return infer


def _unary(name, fn, accepts=FLOATS, what="a floating-point tensor", result=None, tags=()):
    return declare(name, arity=1, infer=_unary_rule(name, accepts, what, result),
                   impl=_elementwise_impl(fn, result),
                   tags={Tag.ELEMENTWISE, Tag.UNARY, *tags})


_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(x):
    # NOTE: exp(-logaddexp(0, -x)) never overflows, unlike 1 / (1 + exp(-x)).
    return np.exp(-np.logaddexp(0, -x))


def _int_safe_sign(x):
    return np.sign(x)


T = Tag.TRANSCENDENTAL
NEG = _unary("neg", np.negative, SIGNED + (dt.uint8,), "a numeric tensor")
ABS = _unary("abs", np.abs, NUMERIC, "a numeric tensor")
SIGN = _unary("sign", _int_safe_sign, NUMERIC, "a numeric tensor")
EXP = _unary("exp", np.exp, tags={T})
EXPM1 = _unary("expm1", np.expm1, tags={T})
LOG = _unary("log", np.log, tags={T})
LOG1P = _unary("log1p", np.log1p, tags={T})
SQRT = _unary("sqrt", np.sqrt)
RSQRT = _unary("rsqrt", lambda x: 1 / np.sqrt(x))
SQUARE = _unary("square", np.square, NUMERIC, "a numeric tensor")
RECIPROCAL = _unary("reciprocal", np.reciprocal)
TANH = _unary("tanh", np.tanh, tags={T})
SIGMOID = _unary("sigmoid", _sigmoid, tags={T})
RELU = _unary("relu", lambda x: np.maximum(x, x.dtype.type(0)), NUMERIC, "a numeric tensor")
SIN = _unary("sin", np.sin, tags={T})
COS = _unary("cos", np.cos, tags={T})
# NOTE: np.asarray because a ufunc from frompyfunc returns a bare float for 0-d input.
ERF = _unary("erf", lambda x: np.asarray(_erf(x), dtype=object).astype(x.dtype), tags={T})
FLOOR = _unary("floor", np.floor)
CEIL = _unary("ceil", np.ceil)
ROUND = _unary("round", np.round)          # half to even, like tf.round
LOGICAL_NOT = _unary("logical_not", np.logical_not, BOOL, "a bool tensor")
ISNAN = _unary("isnan", np.isnan, result=dt.bool_)
ISFINITE = _unary("isfinite", np.isfinite, result=dt.bool_)
# NOTE: an identity whose gradient is zero; autodiff needs to see it, passes then drop it.
STOP_GRADIENT = _unary("stop_gradient", lambda x: x.copy(), ANY, "a tensor")


# ---- binary --------------------------------------------------------------------------------

def _binary_rule(name, accepts, what, result=None):
    def infer(types, params):
        a, b = types
        dtype = require_same_dtype(name, types)
        require_dtype(name, a, accepts, what)
        return (TensorType(broadcast_shapes(name, a.shape, b.shape), result or dtype),)
    return infer


def _binary(name, fn, accepts=NUMERIC, what="numeric tensors", result=None, tags=()):
    return declare(name, arity=2, infer=_binary_rule(name, accepts, what, result),
                   impl=_elementwise_impl(fn, result),
                   tags={Tag.ELEMENTWISE, Tag.BINARY, *tags})


def _int_or_float(int_fn, float_fn):
    def fn(a, b):
        return int_fn(a, b) if a.dtype.kind in "iu" else float_fn(a, b)
    return fn


def _int_div(a, b):
    """Integer division truncating toward zero (C and XLA); x / 0 is 0."""
    # NOTE: not |a| // |b|: |INT_MIN| wraps to INT_MIN, which gave -128 / 3 == 43. Floor
    # division is exact, and differs from truncation by one when the remainder is
    # nonzero and the signs differ. INT_MIN / -1 wraps to INT_MIN.
    safe = np.where(b == 0, 1, b).astype(a.dtype)
    q = np.floor_divide(a, safe)
    q = np.where((np.mod(a, safe) != 0) & ((a < 0) != (safe < 0)), q + 1, q)
    return np.where(b == 0, 0, q).astype(a.dtype)


def _int_floordiv(a, b):
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, 0, np.floor_divide(a, safe)).astype(a.dtype)


def _int_mod(a, b):
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, 0, np.mod(a, safe)).astype(a.dtype)


def _int_pow(a, b):
    """Integer power; a negative exponent gives 0 except for bases 1 and -1."""
    out = np.power(a, np.maximum(b, 0)).astype(a.dtype)
    negative = b < 0
    if np.any(negative):
        odd = (b % 2) != 0
        special = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0))
        out = np.where(negative, special, out).astype(a.dtype)
    return out


C = Tag.COMMUTATIVE
ADD = _binary("add", np.add, tags={C})
SUB = _binary("sub", np.subtract)
MUL = _binary("mul", np.multiply, tags={C})
DIV = _binary("div", _int_or_float(_int_div, np.true_divide))
FLOORDIV = _binary("floordiv", _int_or_float(_int_floordiv, np.floor_divide))
MOD = _binary("mod", _int_or_float(_int_mod, np.mod))          # sign of the divisor
POW = _binary("pow", _int_or_float(_int_pow, np.power), tags={T})
MAXIMUM = _binary("maximum", np.maximum, ANY, "tensors", tags={C})
MINIMUM = _binary("minimum", np.minimum, ANY, "tensors", tags={C})

CMP = Tag.COMPARISON
EQUAL = _binary("equal", np.equal, ANY, "tensors", dt.bool_, {CMP, C})
NOT_EQUAL = _binary("not_equal", np.not_equal, ANY, "tensors", dt.bool_, {CMP, C})
LESS = _binary("less", np.less, ANY, "tensors", dt.bool_, {CMP})
LESS_EQUAL = _binary("less_equal", np.less_equal, ANY, "tensors", dt.bool_, {CMP})
GREATER = _binary("greater", np.greater, ANY, "tensors", dt.bool_, {CMP})
GREATER_EQUAL = _binary("greater_equal", np.greater_equal, ANY, "tensors", dt.bool_, {CMP})

L = Tag.LOGICAL
LOGICAL_AND = _binary("logical_and", np.logical_and, BOOL, "bool tensors", tags={L, C})
LOGICAL_OR = _binary("logical_or", np.logical_or, BOOL, "bool tensors", tags={L, C})
LOGICAL_XOR = _binary("logical_xor", np.logical_xor, BOOL, "bool tensors", tags={L, C})


# ---- select, cast, clip --------------------------------------------------------------------

def _select_infer(types, params):
    cond, a, b = types
    require_dtype("select", cond, BOOL, "a bool condition")
    dtype = require_same_dtype("select", (a, b))
    return (TensorType(broadcast_shapes("select", cond.shape, a.shape, b.shape), dtype),)


def _select_impl(cond, a, b):
    return np.where(cond, a, b).astype(a.dtype, copy=False)


SELECT = declare("select", arity=3, infer=_select_infer, impl=_select_impl,
                 tags={Tag.ELEMENTWISE}, doc="select(cond, a, b): a where cond else b")


def _cast_infer(types, params):
    (t,) = types
    return (TensorType(t.shape, params["dtype"]),)


def _cast_impl(x, dtype):
    """Float to int truncates toward zero; NaN and out-of-range values are undefined in C,
    so the reference saturates them (NaN gives 0) and every backend must do the same."""
    target = dtype.np_dtype
    # NOTE: ask the IR dtype, not NumPy's kind: bfloat16's NumPy kind is "V", not "f".
    if dt.as_dtype(x.dtype).is_float and dtype.is_integer:
        info = np.iinfo(target)
        with np.errstate(all="ignore"):
            wide = np.nan_to_num(x.astype(np.float64), nan=0.0)
            clipped = np.clip(np.trunc(wide), info.min, info.max)
        return clipped.astype(target)
    if dtype.is_bool:
        return x != 0
    with np.errstate(all="ignore"):
        return x.astype(target)


CAST = declare("cast", arity=1, infer=_cast_infer, impl=_cast_impl,
               params={"dtype": ParamSpec(dtype_param)}, tags={Tag.ELEMENTWISE, Tag.UNARY})


def _clip_infer(types, params):
    x, lo, hi = types
    dtype = require_same_dtype("clip", types)
    require_dtype("clip", x, NUMERIC, "a numeric tensor")
    shape = broadcast_shapes("clip", x.shape, lo.shape, hi.shape)
    return (TensorType(shape, dtype),)


def _clip_impl(x, lo, hi):
    return _elementwise_impl(lambda a, l, h: np.minimum(np.maximum(a, l), h))(x, lo, hi)


CLIP = declare("clip", arity=3, infer=_clip_infer, impl=_clip_impl, tags={Tag.ELEMENTWISE},
               doc="clip(x, lo, hi) = min(max(x, lo), hi)")


# NOTE: the star import in ops.py must see only the ops; without this it also exported
# helpers such as ANY (a dtype tuple, shadowing the reduction) and the one-letter tags.
__all__ = [name for name, value in list(globals().items())
           if isinstance(value, OpDef) and name.isupper()]
