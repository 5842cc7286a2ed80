"""Math functions under TensorFlow's names (with NumPy aliases where TF has none).

Each function converts its arguments, promotes dtypes (see ir/dtypes.py), inserts
the casts the strictly-typed IR needs, and binds one op. They work the same on
traced values (inside ``jit``) and on concrete values (eager mode).
"""

from __future__ import annotations

import builtins

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.errors import DTypeError, TracejitError
from ..ir.opdef import normalize_axes
from ..ir.source import user_location
from .array_ops import expand_dims, reshape, squeeze, stop_gradient, zeros
from .tracing import bind, cast, promote, to_tensor
from .values import Tensor

# ---- promotion helpers -------------------------------------------------------------------------


def _to_float(x: Tensor) -> Tensor:
    """Integer and bool inputs of float-only functions become float32, like JAX."""
    return x if x.dtype.is_float else cast(x, dt.float32)


def _unary(op, float_only: bool = False):
    def fn(x, name=None):
        x = to_tensor(x)
        if float_only:
            x = _to_float(x)
        return bind(op, [x], weak=x.weak)
    fn.__name__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}``."
    return fn


def _binary(op, result_weak: bool = True):
    def fn(x, y, name=None):
        (x, y), weak = promote(x, y)
        return bind(op, [x, y], weak=weak and result_weak)
    fn.__name__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}`` with NumPy broadcasting."
    return fn


negative = _unary(ops.NEG)
abs = _unary(ops.ABS)           # noqa: A001 - TensorFlow's name
sign = _unary(ops.SIGN)
exp = _unary(ops.EXP, True)
expm1 = _unary(ops.EXPM1, True)
log = _unary(ops.LOG, True)
log1p = _unary(ops.LOG1P, True)
sqrt = _unary(ops.SQRT, True)
rsqrt = _unary(ops.RSQRT, True)
square = _unary(ops.SQUARE)
reciprocal = _unary(ops.RECIPROCAL, True)
tanh = _unary(ops.TANH, True)
sigmoid = _unary(ops.SIGMOID, True)
relu = _unary(ops.RELU)
sin = _unary(ops.SIN, True)
cos = _unary(ops.COS, True)
erf = _unary(ops.ERF, True)
isnan = _unary(ops.ISNAN, True)
is_nan = isnan
isfinite = _unary(ops.ISFINITE, True)
is_finite = isfinite
logical_not = _unary(ops.LOGICAL_NOT)
neg = negative


def _float_or_identity(op):
    def fn(x, name=None):
        x = to_tensor(x)
        return x if not x.dtype.is_float else bind(op, [x], weak=x.weak)
    fn.__name__ = op.name
    fn.__doc__ = f"Elementwise ``{op.name}``; integers are returned unchanged."
    return fn


floor = _float_or_identity(ops.FLOOR)
ceil = _float_or_identity(ops.CEIL)
round = _float_or_identity(ops.ROUND)   # noqa: A001 - half to even, like tf.round


def invert(x):
    x = to_tensor(x)
    if x.dtype.is_bool:
        return logical_not(x)
    raise DTypeError(f"~ is defined for bool tensors only, got {x.type}", op="invert",
                     location=user_location())


add = _binary(ops.ADD)
subtract = _binary(ops.SUB)
sub = subtract
multiply = _binary(ops.MUL)
mul = multiply
floordiv = _binary(ops.FLOORDIV)
floor_divide = floordiv
mod = _binary(ops.MOD)
floormod = mod
pow = _binary(ops.POW)          # noqa: A001
power = pow
maximum = _binary(ops.MAXIMUM)
minimum = _binary(ops.MINIMUM)
equal = _binary(ops.EQUAL, False)
not_equal = _binary(ops.NOT_EQUAL, False)
less = _binary(ops.LESS, False)
less_equal = _binary(ops.LESS_EQUAL, False)
greater = _binary(ops.GREATER, False)
greater_equal = _binary(ops.GREATER_EQUAL, False)
logical_and = _binary(ops.LOGICAL_AND, False)
logical_or = _binary(ops.LOGICAL_OR, False)
logical_xor = _binary(ops.LOGICAL_XOR, False)


def divide(x, y, name=None) -> Tensor:
    """True division. Integer operands give float32 (as JAX; NumPy would give float64)."""
    (x, y), weak = promote(x, y)
    if not x.dtype.is_float:
        x, y = cast(x, dt.float32), cast(y, dt.float32)
    return bind(ops.DIV, [x, y], weak=weak)


truediv = divide
div = divide


def truncatediv(x, y, name=None) -> Tensor:
    """Integer division rounding toward zero (C semantics); true division for floats."""
    (x, y), weak = promote(x, y)
    return bind(ops.DIV, [x, y], weak=weak)


def where(condition, x, y, name=None) -> Tensor:
    """``x`` where ``condition`` is true, else ``y``, broadcasting all three."""
    condition = to_tensor(condition)
    if not condition.dtype.is_bool:
        raise DTypeError(f"condition must be bool, got {condition.type}", op="where",
                         location=user_location())
    (x, y), weak = promote(x, y)
    return bind(ops.SELECT, [condition, x, y], weak=weak)


select = where


def clip_by_value(t, clip_value_min, clip_value_max, name=None) -> Tensor:
    (t, lo, hi), weak = promote(t, clip_value_min, clip_value_max)
    return bind(ops.CLIP, [t, lo, hi], weak=weak)


def clip(x, a_min, a_max) -> Tensor:
    return clip_by_value(x, a_min, a_max)


def squared_difference(x, y, name=None) -> Tensor:
    return square(subtract(x, y))


def add_n(inputs, name=None) -> Tensor:
    total = inputs[0]
    for value in inputs[1:]:
        total = add(total, value)
    return to_tensor(total)


# ---- reductions ---------------------------------------------------------------------------------

def _axes(x: Tensor, axis, op: str = "reduce") -> tuple[int, ...]:
    """Axes made non-negative and sorted (the IR's form); None means every axis."""
    if axis is None:
        return tuple(range(x.ndim))
    axes = tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else (int(axis),)
    try:
        return normalize_axes(op, axes, x.ndim)
    except TracejitError as err:
        raise err.at(user_location()) from None


def _reduction(op, prepare):
    def fn(input_tensor, axis=None, keepdims=False, name=None, keep_dims=None):
        x = prepare(to_tensor(input_tensor))
        if keep_dims is not None:   # the TF 1.x spelling
            keepdims = keep_dims
        return bind(op, [x], {"axes": _axes(x, axis, op.name), "keepdims": bool(keepdims)},
                    weak=x.weak)
    fn.__name__ = f"reduce_{op.name}"
    fn.__doc__ = f"``{op.name}`` over ``axis`` (all axes when None)."
    return fn


def _bool_as_int(x: Tensor) -> Tensor:
    return cast(x, dt.int32) if x.dtype.is_bool else x


def _as_bool(x: Tensor) -> Tensor:
    return x if x.dtype.is_bool else not_equal(x, 0)


reduce_sum = _reduction(ops.SUM, _bool_as_int)
reduce_prod = _reduction(ops.PROD, _bool_as_int)
reduce_mean = _reduction(ops.MEAN, _to_float)
reduce_max = _reduction(ops.MAX, lambda x: x)
reduce_min = _reduction(ops.MIN, lambda x: x)
reduce_any = _reduction(ops.ANY, _as_bool)
reduce_all = _reduction(ops.ALL, _as_bool)


def _arg_reduction(op_name):
    def fn(input, axis=None, output_type=dt.int64, name=None):
        x = to_tensor(input)
        # TensorFlow reduces axis 0 by default; negative axes count from the end.
        (axis,) = _axes(x, 0 if axis is None else axis, op_name)
        return bind(ops.OPS[op_name], [x], {"axis": axis, "index_dtype": output_type})
    fn.__name__ = op_name
    return fn


argmax = _arg_reduction("argmax")
argmin = _arg_reduction("argmin")


def _np_arg(op_name):
    """NumPy's spelling: axis=None flattens first; indices are int64."""
    def fn(x, axis=None):
        x = to_tensor(x)
        if axis is None:
            x, axis = reshape(x, (-1,)), 0
        (axis,) = _axes(x, axis, op_name)
        return bind(ops.OPS[op_name], [x], {"axis": axis, "index_dtype": dt.int64})
    return fn


np_argmax = _np_arg("argmax")
np_argmin = _np_arg("argmin")


def exp_shift(x: Tensor, axis, *, finite: bool = True) -> Tensor:
    """What softmax and logsumexp subtract before ``exp`` so it cannot overflow: the max
    over ``axis`` (kept as size-1 axes), gradient stopped; with ``finite``, 0 where the
    max is not finite (logsumexp of a row holding inf is inf; softmax keeps the raw max,
    so such a row is NaN, as TensorFlow's is). An empty axis has no max; any shift gives
    the same (empty or zero) sum there, so 0, and logsumexp over it is log(0) = -inf, as
    in NumPy and TensorFlow."""
    axes = _axes(x, axis)
    if any(x.shape[a] == 0 for a in axes):
        return zeros(tuple(1 if a in axes else n for a, n in enumerate(x.shape)), x.dtype)
    peak = stop_gradient(reduce_max(x, axis=axis, keepdims=True))
    return where(isfinite(peak), peak, 0.0) if finite else peak


def reduce_logsumexp(input_tensor, axis=None, keepdims=False, name=None) -> Tensor:
    x = _to_float(to_tensor(input_tensor))
    peak = exp_shift(x, axis)
    total = reduce_sum(exp(subtract(x, peak)), axis=axis, keepdims=True)
    out = add(log(total), peak)
    if not keepdims:
        out = squeeze(out, _axes(x, axis))
    return out


# ---- matmul -------------------------------------------------------------------------------------

def matmul(a, b, transpose_a=False, transpose_b=False, name=None) -> Tensor:
    """Matrix product with batching and broadcasting like ``np.matmul`` (1-D operands too)."""
    (a, b), weak = promote(a, b)
    if a.dtype.is_bool:
        raise DTypeError(f"matmul of bool tensors {a.type} and {b.type}", op="matmul",
                         location=user_location())
    if a.ndim == 0 or b.ndim == 0:
        raise DTypeError(f"matmul needs tensors of rank >= 1, got {a.type} and {b.type}",
                         op="matmul", location=user_location())
    # The flags go to the op (BLAS transposes for free); a vector has nothing to transpose.
    flags = {"transpose_a": bool(transpose_a) and a.ndim >= 2,
             "transpose_b": bool(transpose_b) and b.ndim >= 2}
    squeeze_axes = []
    if a.ndim == 1:
        a = expand_dims(a, 0)
        squeeze_axes.append(-2)
    if b.ndim == 1:
        b = expand_dims(b, -1)
        squeeze_axes.append(-1)
    out = bind(ops.MATMUL, [a, b], flags, weak=weak)
    if squeeze_axes:
        out = squeeze(out, tuple(builtins.sorted(ax + out.ndim for ax in squeeze_axes)))
    return out


# NOTE: ``tracejit/__init__.py`` star-imports this module; only the functions defined here
# belong in the namespace (not ``np``, ``math``, ``builtins`` or the helpers imported above).
__all__ = [name for name, value in list(globals().items())
           if not name.startswith("_") and callable(value) and not isinstance(value, type)
           and getattr(value, "__module__", None) == __name__ and name != "promote"]
