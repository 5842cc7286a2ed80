"""Linear algebra: matmul, which backends lower to BLAS (CPU) or tiled kernels (GPU), and
int8_matmul, the 8-bit integer product with exact int32 sums that quantized models run."""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from . import vjp_rules
from .core import TensorType
from .errors import ShapeError
from .opdef import ParamSpec, Tag, bool_param, declare, require_dtype, require_same_dtype

__all__ = ["MATMUL", "INT8_MATMUL"]

# The operand types of the 8-bit integer products (int8_matmul, int8_conv2d).
EIGHT_BIT_DTYPES = (dt.int8, dt.uint8)


def _operand_shape(t: TensorType, transposed: bool) -> tuple[int, ...]:
    """The shape an operand has as a matrix: its last two axes swapped when transposed."""
    return t.shape[:-2] + (t.shape[-1], t.shape[-2]) if transposed else t.shape


def product_shape(op: str, a: TensorType, b: TensorType, params) -> tuple[int, ...]:
    """The result shape of ``op(a) @ op(b)`` with np.matmul's batch broadcasting (the
    transposes from ``params``); a ShapeError names ``op`` when the shapes do not fit."""
    if a.ndim < 2 or b.ndim < 2:
        # NOTE: no 1-d special cases (np.matmul's vector promotion) in the IR; the front
        # end reshapes vectors to matrices so that every backend has one case to lower.
        raise ShapeError(f"operands must have rank >= 2, got {a} and {b}", op=op)
    a = TensorType(_operand_shape(a, params["transpose_a"]), a.dtype)
    b = TensorType(_operand_shape(b, params["transpose_b"]), b.dtype)
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"inner dimensions differ: {a} @ {b} "
                         f"({a.shape[-1]} != {b.shape[-2]})", op=op)
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    ndim = max(len(batch_a), len(batch_b))
    pa = (1,) * (ndim - len(batch_a)) + batch_a
    pb = (1,) * (ndim - len(batch_b)) + batch_b
    if any(x != y and 1 not in (x, y) for x, y in zip(pa, pb, strict=True)):
        raise ShapeError(f"batch dimensions of {a} and {b} cannot be broadcast together",
                         op=op)
    batch = tuple(y if x == 1 else x for x, y in zip(pa, pb, strict=True))
    return batch + (a.shape[-2], b.shape[-1])


def _matmul_infer(types, params):
    a, b = types
    dtype = require_same_dtype("matmul", types)
    require_dtype("matmul", a, dt.NUMERIC_DTYPES, "numeric (non-bool) operands")
    return (TensorType(product_shape("matmul", a, b, params), dtype),)


def _int8_matmul_infer(types, params):
    a, b = types
    require_same_dtype("int8_matmul", types)
    require_dtype("int8_matmul", a, EIGHT_BIT_DTYPES, "int8 or uint8 operands")
    return (TensorType(product_shape("int8_matmul", a, b, params), dt.int32),)


def _oriented(a, b, transpose_a, transpose_b):
    """The operands as the product reads them: each one's last two axes swapped if asked."""
    return (np.swapaxes(a, -1, -2) if transpose_a else a,
            np.swapaxes(b, -1, -2) if transpose_b else b)


def _matmul_impl(a, b, transpose_a, transpose_b):
    """Integers accumulate in their own type (wrapping); halves accumulate in float32
    and round once; float32/float64 use their own type."""
    dtype = dt.as_dtype(a.dtype)
    a, b = _oriented(a, b, transpose_a, transpose_b)
    compute = np.float32 if dtype.is_half else dtype.np_dtype
    with np.errstate(all="ignore"):
        out = np.matmul(a.astype(compute, copy=False), b.astype(compute, copy=False))
    return np.asarray(out).astype(dtype.np_dtype, copy=False)


# NOTE: the transpose flags are BLAS's: the gradient of a matmul needs a^T @ ct and
# ct @ b^T, and with the flags those are single BLAS calls instead of a copy each.
_TRANSPOSES = {"transpose_a": ParamSpec(bool_param, False),
               "transpose_b": ParamSpec(bool_param, False)}
MATMUL = declare("matmul", vjp=vjp_rules.matmul_vjp, arity=2, infer=_matmul_infer,
                 impl=_matmul_impl, params=_TRANSPOSES, tags={Tag.LINALG},
                 doc="matmul[transpose_a, transpose_b](a, b): [..., m, k] @ [..., k, n] -> "
                     "[..., m, n], each operand's last two axes swapped first when its flag "
                     "is set; batch dimensions broadcast as in np.matmul")


def _int8_matmul_impl(a, b, transpose_a, transpose_b):
    """Exact sums in int64, wrapped to int32 as the kernels' int32 additions wrap."""
    a, b = _oriented(a, b, transpose_a, transpose_b)
    out = np.matmul(a.astype(np.int64), b.astype(np.int64))
    return np.asarray(out).astype(np.int32)


# NOTE: LINALG, so fusion builds a matmul_epilogue kernel around it: the requantization
# that follows (int32 -> float32, per-channel scale, bias, activation, the next layer's
# quantize) runs over the product in the same kernel. No gradient: integer results.
INT8_MATMUL = declare("int8_matmul", arity=2, infer=_int8_matmul_infer, impl=_int8_matmul_impl,
                      params=_TRANSPOSES, tags={Tag.LINALG},
                      doc="int8_matmul[transpose_a, transpose_b](a, b): matmul of int8 or "
                          "uint8 operands (one dtype) with exact int32 sums (wrapping past "
                          "int32); the product of quantized models")
