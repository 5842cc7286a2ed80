"""Linear algebra: matmul, which backends lower to BLAS (CPU) or tiled kernels (GPU)."""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from . import vjp_rules
from .core import TensorType
from .errors import ShapeError
from .opdef import ParamSpec, Tag, bool_param, declare, require_dtype, require_same_dtype

__all__ = ["MATMUL"]


def _operand_shape(t: TensorType, transposed: bool) -> tuple[int, ...]:
    """The shape an operand has as a matrix: its last two axes swapped when transposed."""
    return t.shape[:-2] + (t.shape[-1], t.shape[-2]) if transposed else t.shape


def _matmul_infer(types, params):
    a, b = types
    dtype = require_same_dtype("matmul", types)
    require_dtype("matmul", a, dt.NUMERIC_DTYPES, "numeric (non-bool) operands")
    if a.ndim < 2 or b.ndim < 2:
        # NOTE: no 1-d special cases (np.matmul's vector promotion) in the IR; the front
        # end reshapes vectors to matrices so that every backend has one case to lower.
        raise ShapeError(f"operands must have rank >= 2, got {a} and {b}", op="matmul")
    a = TensorType(_operand_shape(a, params["transpose_a"]), a.dtype)
    b = TensorType(_operand_shape(b, params["transpose_b"]), b.dtype)
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"inner dimensions differ: {a} @ {b} "
                         f"({a.shape[-1]} != {b.shape[-2]})", op="matmul")
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    ndim = max(len(batch_a), len(batch_b))
    pa = (1,) * (ndim - len(batch_a)) + batch_a
    pb = (1,) * (ndim - len(batch_b)) + batch_b
    if any(x != y and 1 not in (x, y) for x, y in zip(pa, pb, strict=True)):
        raise ShapeError(f"batch dimensions of {a} and {b} cannot be broadcast together",
                         op="matmul")
    batch = tuple(y if x == 1 else x for x, y in zip(pa, pb, strict=True))
    return (TensorType(batch + (a.shape[-2], b.shape[-1]), dtype),)


def _matmul_impl(a, b, transpose_a, transpose_b):
    """Integers accumulate in their own type (wrapping); halves accumulate in float32
    and round once; float32/float64 use their own type."""
    dtype = dt.as_dtype(a.dtype)
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    compute = np.float32 if dtype.is_half else dtype.np_dtype
    with np.errstate(all="ignore"):
        out = np.matmul(a.astype(compute, copy=False), b.astype(compute, copy=False))
    return np.asarray(out).astype(dtype.np_dtype, copy=False)


# NOTE: the transpose flags are BLAS's: the gradient of a matmul needs a^T @ ct and
# ct @ b^T, and with the flags those are single BLAS calls instead of a copy each.
MATMUL = declare("matmul", vjp=vjp_rules.matmul_vjp, arity=2, infer=_matmul_infer,
                 impl=_matmul_impl,
                 params={"transpose_a": ParamSpec(bool_param, False),
                         "transpose_b": ParamSpec(bool_param, False)},
                 tags={Tag.LINALG},
                 doc="matmul[transpose_a, transpose_b](a, b): [..., m, k] @ [..., k, n] -> "
                     "[..., m, n], each operand's last two axes swapped first when its flag "
                     "is set; batch dimensions broadcast as in np.matmul")
