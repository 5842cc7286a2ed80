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
            # NOTE: inside errstate too: rounding a float32 result to float16 may overflow.
            return np.asarray(out).astype(result_dtype.np_dtype, copy=False)

    return impl


def signed_maximum(a, b):
    """``np.maximum`` with -0.0 ordered below +0.0, as IEEE 754-2019 ``maximum`` (and
    LLVM's ``llvm.maximum``, which the backends emit) define it. NumPy returns either
    operand of a -0.0/+0.0 pair depending on its code path, so a sign of zero, and the
    sign of a later ``1/x``, would differ between the reference and compiled code."""
    out = np.maximum(a, b)
    if out.dtype.kind != "f":
        return out
    # NOTE: for two zeros a + b is -0.0 only when both are -0.0: the larger one.
    return np.where((a == 0) & (b == 0), a + b, out)


def signed_minimum(a, b):
    """``np.minimum`` with -0.0 ordered below +0.0 (see :func:`signed_maximum`)."""
    out = np.minimum(a, b)
    if out.dtype.kind != "f":
        return out
    # NOTE: for two zeros -(-a - b) is -0.0 when either is -0.0: the smaller one.
    return np.where((a == 0) & (b == 0), -(-a - b), out)


# ---- unary ---------------------------------------------------------------------------------

def _unary_rule(name, accepts, what, result=None):
    def infer(types, params):
        (t,) = types
        require_dtype(name, t, accepts, what)
        return (TensorType(t.shape, result or t.dtype),)
    return infer


def _unary(name, fn, accepts=FLOATS, what="a floating-point tensor", result=None, tags=(),
           vjp=None, doc=None):
    return declare(name, arity=1, infer=_unary_rule(name, accepts, what, result), vjp=vjp,
                   doc=doc or f"{name}(x) elementwise; accepts {what}",
                   impl=_elementwise_impl(fn, result),
                   tags={Tag.ELEMENTWISE, Tag.UNARY, *tags})


_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(x):
    # NOTE: exp(-logaddexp(0, -x)) never overflows, unlike 1 / (1 + exp(-x)).
    return np.exp(-np.logaddexp(0, -x))


def _int_safe_sign(x):
    return np.sign(x)

# ---- gradient rules --------------------------------------------------------------------------
# Each rule gets (g: SymBuilder, ins, outs, cotangents, params) as Syms and returns one
# cotangent (or None) per input. ``_d(f)`` writes a unary rule as ct * f'(x, y).

def _d(derivative):
    def vjp(g, ins, outs, cts, params):
        return (cts[0] * derivative(g, ins[0], outs[0]),)
    return vjp


def _zero_grad(g, ins, outs, cts, params):
    return tuple(g.zeros(x.shape, x.dtype) for x in ins)


_TWO_OVER_SQRT_PI = 1.1283791670955126


T = Tag.TRANSCENDENTAL
NEG = _unary("neg", np.negative, SIGNED + (dt.uint8,), "a numeric tensor",
             vjp=lambda g, ins, outs, cts, p: (-cts[0],))
ABS = _unary("abs", np.abs, NUMERIC, "a numeric tensor",
             vjp=_d(lambda g, x, y: g.op("sign", x)))
SIGN = _unary("sign", _int_safe_sign, NUMERIC, "a numeric tensor",
              vjp=_zero_grad)
EXP = _unary("exp", np.exp, tags={T},
             vjp=_d(lambda g, x, y: y))
EXPM1 = _unary("expm1", np.expm1, tags={T},
               vjp=_d(lambda g, x, y: y + 1))
LOG = _unary("log", np.log, tags={T},
             vjp=lambda g, ins, outs, cts, p: (cts[0] / ins[0],))
LOG1P = _unary("log1p", np.log1p, tags={T},
               vjp=lambda g, ins, outs, cts, p: (cts[0] / (ins[0] + 1),))
SQRT = _unary("sqrt", np.sqrt,
              vjp=lambda g, ins, outs, cts, p: (cts[0] * 0.5 / outs[0],))
RSQRT = _unary("rsqrt", lambda x: 1 / np.sqrt(x),
               vjp=_d(lambda g, x, y: y * y * y * -0.5))
SQUARE = _unary("square", np.square, NUMERIC, "a numeric tensor",
                vjp=_d(lambda g, x, y: x * 2))
RECIPROCAL = _unary("reciprocal", np.reciprocal,
                    vjp=_d(lambda g, x, y: -(y * y)))
TANH = _unary("tanh", np.tanh, tags={T},
              vjp=_d(lambda g, x, y: 1 - y * y))
SIGMOID = _unary("sigmoid", _sigmoid, tags={T},
                 vjp=_d(lambda g, x, y: y * (1 - y)))
RELU = _unary("relu", lambda x: signed_maximum(x, x.dtype.type(0)), NUMERIC, "a numeric tensor",
              vjp=lambda g, ins, outs, cts, p: (g.select(ins[0] > 0, cts[0], 0),))
SIN = _unary("sin", np.sin, tags={T},
             vjp=_d(lambda g, x, y: g.op("cos", x)))
COS = _unary("cos", np.cos, tags={T},
             vjp=_d(lambda g, x, y: -g.op("sin", x)))
# NOTE: np.asarray because a ufunc from frompyfunc returns a bare float for 0-d input.
ERF = _unary("erf", lambda x: np.asarray(_erf(x), dtype=object).astype(x.dtype), tags={T},
             vjp=_d(lambda g, x, y: g.op("exp", -(x * x)) * _TWO_OVER_SQRT_PI))
FLOOR = _unary("floor", np.floor,
               vjp=_zero_grad)
CEIL = _unary("ceil", np.ceil,
              vjp=_zero_grad)
ROUND = _unary("round", np.round, vjp=_zero_grad,
               doc="round(x) to the nearest integer, halves to even (like tf.round)")
LOGICAL_NOT = _unary("logical_not", np.logical_not, BOOL, "a bool tensor")
ISNAN = _unary("isnan", np.isnan, result=dt.bool_)
ISFINITE = _unary("isfinite", np.isfinite, result=dt.bool_)
# NOTE: an identity whose gradient is zero; autodiff needs to see it, passes then drop it.
STOP_GRADIENT = _unary("stop_gradient", lambda x: x.copy(), ANY, "a tensor",
                       vjp=_zero_grad, tags=(Tag.INDEX_MAP,))     # the identity map


# ---- binary --------------------------------------------------------------------------------

def _binary_rule(name, accepts, what, result=None):
    def infer(types, params):
        a, b = types
        dtype = require_same_dtype(name, types)
        require_dtype(name, a, accepts, what)
        return (TensorType(broadcast_shapes(name, a.shape, b.shape), result or dtype),)
    return infer


def _binary(name, fn, accepts=NUMERIC, what="numeric tensors", result=None, tags=(),
            vjp=None, doc=None):
    return declare(name, arity=2, infer=_binary_rule(name, accepts, what, result), vjp=vjp,
                   doc=doc or f"{name}(a, b) elementwise with NumPy broadcasting; one dtype, "
                              f"{what}",
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


def _unb(g, ct, x):
    return g.sum_to_shape(ct, x.shape)


def _add_vjp(g, ins, outs, cts, params):
    return _unb(g, cts[0], ins[0]), _unb(g, cts[0], ins[1])


def _sub_vjp(g, ins, outs, cts, params):
    return _unb(g, cts[0], ins[0]), _unb(g, -cts[0], ins[1])


def _mul_vjp(g, ins, outs, cts, params):
    (a, b), ct = ins, cts[0]
    return _unb(g, ct * b, a), _unb(g, ct * a, b)


def _div_vjp(g, ins, outs, cts, params):
    (a, b), ct = ins, cts[0]
    return _unb(g, ct / b, a), _unb(g, -ct * outs[0] / b, b)


def _pow_vjp(g, ins, outs, cts, params):
    (a, b), ct = ins, cts[0]
    positive = a > 0
    # NOTE: d/db a**b = a**b log(a) is taken as 0 where a <= 0, as TensorFlow does;
    # the select runs before the log so no NaN reaches the product.
    log_a = g.select(positive, g.op("log", g.select(positive, a, 1)), 0)
    return _unb(g, ct * b * g.op("pow", a, b - 1), a), _unb(g, ct * outs[0] * log_a, b)


def _extremum_vjp(compare):
    # Ties send the whole gradient to the first operand, like TensorFlow.
    def vjp(g, ins, outs, cts, params):
        (a, b), ct = ins, cts[0]
        first = g.op(compare, a, b)
        return _unb(g, g.select(first, ct, 0), a), _unb(g, g.select(first, 0, ct), b)
    return vjp


def _mod_vjp(g, ins, outs, cts, params):
    (a, b), ct = ins, cts[0]
    return _unb(g, ct, a), _unb(g, -ct * g.op("floor", a / b), b)


C = Tag.COMMUTATIVE
ADD = _binary("add", np.add, tags={C}, vjp=_add_vjp)
SUB = _binary("sub", np.subtract, vjp=_sub_vjp)
MUL = _binary("mul", np.multiply, tags={C}, vjp=_mul_vjp)
DIV = _binary("div", _int_or_float(_int_div, np.true_divide), vjp=_div_vjp,
              doc="div(a, b): true division for floats; integers truncate toward zero, x/0 = 0")
FLOORDIV = _binary("floordiv", _int_or_float(_int_floordiv, np.floor_divide), vjp=_zero_grad,
                   doc="floordiv(a, b): floor of a/b (Python's //); integer x//0 = 0")
MOD = _binary("mod", _int_or_float(_int_mod, np.mod), vjp=_mod_vjp,
              doc="mod(a, b): remainder with the sign of the divisor (Python's %); x%0 = 0")
POW = _binary("pow", _int_or_float(_int_pow, np.power), tags={T}, vjp=_pow_vjp,
              doc="pow(a, b); integer negative powers give 0 except for bases 1 and -1")
MAXIMUM = _binary("maximum", signed_maximum, ANY, "tensors", tags={C},
                  vjp=_extremum_vjp("greater_equal"))
MINIMUM = _binary("minimum", signed_minimum, ANY, "tensors", tags={C},
                  vjp=_extremum_vjp("less_equal"))

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


def _select_vjp(g, ins, outs, cts, params):
    (cond, a, b), ct = ins, cts[0]
    return None, _unb(g, g.select(cond, ct, 0), a), _unb(g, g.select(cond, 0, ct), b)


SELECT = declare("select", arity=3, infer=_select_infer, impl=_select_impl, vjp=_select_vjp,
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
            whole = np.trunc(np.nan_to_num(x.astype(np.float64), nan=0.0))
            # NOTE: not np.clip(..., info.max): float(int64 max) is 2**63, which does not
            # fit int64, so +inf became INT64_MIN. Saturate by comparison instead.
            out = np.where(whole >= float(info.max), info.max,
                           np.where(whole <= float(info.min), info.min, whole.astype(target)))
        return np.asarray(out, dtype=target)
    if dtype.is_bool:
        return np.asarray(x != 0)       # NOTE: a 0-d comparison gives a NumPy scalar
    with np.errstate(all="ignore"):
        return x.astype(target)


def _cast_vjp(g, ins, outs, cts, params):
    (x,) = ins
    return (g.cast(cts[0], x.dtype) if x.dtype.is_float else None,)


CAST = declare("cast", arity=1, infer=_cast_infer, impl=_cast_impl, vjp=_cast_vjp,
               params={"dtype": ParamSpec(dtype_param)}, tags={Tag.ELEMENTWISE, Tag.UNARY},
               doc="cast[dtype](x); float to int truncates toward zero and saturates, NaN -> 0")


def _clip_infer(types, params):
    x, lo, hi = types
    dtype = require_same_dtype("clip", types)
    require_dtype("clip", x, NUMERIC, "a numeric tensor")
    shape = broadcast_shapes("clip", x.shape, lo.shape, hi.shape)
    return (TensorType(shape, dtype),)


def _clip_impl(x, lo, hi):
    return _elementwise_impl(lambda a, l, h: signed_minimum(signed_maximum(a, l), h))(x, lo, hi)


def _clip_vjp(g, ins, outs, cts, params):
    (x, lo, hi), ct = ins, cts[0]
    inside = g.op("logical_and", x >= lo, x <= hi)
    return (_unb(g, g.select(inside, ct, 0), x), _unb(g, g.select(x < lo, ct, 0), lo),
            _unb(g, g.select(x > hi, ct, 0), hi))


CLIP = declare("clip", arity=3, infer=_clip_infer, impl=_clip_impl, vjp=_clip_vjp,
               tags={Tag.ELEMENTWISE},
               doc="clip(x, lo, hi) = min(max(x, lo), hi)")


# NOTE: the star import in ops.py must see only the ops; without this it also exported
# helpers such as ANY (a dtype tuple, shadowing the reduction) and the one-letter tags.
__all__ = [name for name, value in list(globals().items())
           if isinstance(value, OpDef) and name.isupper()]
