"""Reductions: sum, mean, max, min, prod, any, all over a set of axes, and argmax/argmin.

Like every IR op they are strictly typed: ``sum`` and ``prod`` keep the input dtype
(integers wrap modulo 2**bits, as C and XLA do), ``mean`` takes floats only, ``any`` and
``all`` take bools only. Half-precision floats accumulate in float32 and round once.
``axes`` are non-negative and sorted (the front end normalizes them); ``axes=()``
reduces nothing.
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from . import vjp_rules
from .core import TensorType
from .errors import ParamError, ShapeError
from .opdef import ParamSpec, Tag, bool_param, declare, dtype_param, int_param, require_dtype
from .ops_movement import axes_param, canonical_axes, canonical_axis

__all__ = ["SUM", "MEAN", "MAX", "MIN", "PROD", "ANY", "ALL", "ARGMAX", "ARGMIN"]

REDUCE = {Tag.REDUCE}
_NUMERIC = dt.NUMERIC_DTYPES


def _compute_dtype(dtype: dt.DType) -> np.dtype:
    return np.dtype(np.float32) if dtype.is_half else dtype.np_dtype


def _result(value, dtype: dt.DType) -> np.ndarray:
    # NOTE: NumPy returns a scalar, not an array, when it reduces to 0-d. A half's
    # float32 accumulator past the half's range rounds to inf, as IEEE says: the op's
    # meaning, not a mistake to warn about.
    with np.errstate(over="ignore"):
        return np.asarray(value).astype(dtype.np_dtype, copy=False)


def _reduce_infer(name: str, accepts, what: str, needs_identity: bool = False):
    def infer(types, params):
        (t,) = types
        require_dtype(name, t, accepts, what)
        axes = canonical_axes(name, params["axes"], t.ndim)
        if needs_identity and any(t.shape[a] == 0 for a in axes):
            # NOTE: max/min have no identity; NumPy raises here too (even when the
            # result itself is empty), so the shape rule rejects it up front.
            raise ShapeError(f"cannot reduce {t} over axes {list(axes)}: an axis is empty "
                             "and the op has no identity", op=name)
        if params["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(t.shape))
        else:
            shape = tuple(d for i, d in enumerate(t.shape) if i not in axes)
        return (TensorType(shape, t.dtype),)
    return infer


def _reduce(name, impl, accepts, what, needs_identity=False, vjp=None):
    return declare(name, arity=1, infer=_reduce_infer(name, accepts, what, needs_identity),
                   impl=impl, vjp=vjp,
                   params={"axes": ParamSpec(axes_param),
                           "keepdims": ParamSpec(bool_param, False)},
                   tags=REDUCE, doc=f"{name}[axes, keepdims](x)")


def _accumulate(np_fn):
    """sum/prod: accumulate in the input's own type (halves: float32), wrapping integers."""
    def impl(x, axes, keepdims):
        dtype = dt.as_dtype(x.dtype)
        with np.errstate(all="ignore"):
            out = np_fn(x, axis=axes, dtype=_compute_dtype(dtype), keepdims=keepdims)
        return _result(out, dtype)
    return impl


def _mean_impl(x, axes, keepdims):
    dtype = dt.as_dtype(x.dtype)
    compute = _compute_dtype(dtype)
    count = int(np.prod([x.shape[a] for a in axes]))
    with np.errstate(all="ignore"):     # the mean of nothing is 0/0 = NaN, as in NumPy
        total = np.sum(x, axis=axes, dtype=compute, keepdims=keepdims)
        out = np.true_divide(total, compute.type(count), dtype=compute)
    return _result(out, dtype)


def _extremum(np_fn):
    """max/min: NaN wins (propagates), as np.max does. Halves go through float32 (exact)
    because not every NumPy reduction loop knows bfloat16."""
    def impl(x, axes, keepdims):
        dtype = dt.as_dtype(x.dtype)
        xc = x.astype(_compute_dtype(dtype), copy=False)
        with np.errstate(all="ignore"):
            out = np_fn(xc, axis=axes, keepdims=keepdims)
        if dtype.is_float and xc.size:
            # NOTE: -0.0 below +0.0, as the backends' llvm.maximum/minimum (IEEE 754-2019)
            # order them; NumPy returns whichever zero its loop met first.
            wanted = np_fn is np.min     # the sign bit of the zero min/max must return
            signed = np.any((xc == 0) & (np.signbit(xc) == wanted), axis=axes,
                            keepdims=keepdims)
            zero = np.asarray(-0.0 if wanted else 0.0, xc.dtype)
            out = np.where((out == 0) & signed, zero, out)
        return _result(out, dtype)
    return impl


def _logical(np_fn):
    def impl(x, axes, keepdims):
        return _result(np_fn(x, axis=axes, keepdims=keepdims), dt.bool_)
    return impl


SUM = _reduce("sum", _accumulate(np.sum), _NUMERIC, "a numeric tensor",
              vjp=vjp_rules.sum_vjp)
PROD = _reduce("prod", _accumulate(np.prod), _NUMERIC, "a numeric tensor",
               vjp=vjp_rules.prod_vjp)
MEAN = _reduce("mean", _mean_impl, dt.FLOAT_DTYPES, "a floating-point tensor",
               vjp=vjp_rules.mean_vjp)
MAX = _reduce("max", _extremum(np.max), dt.ALL_DTYPES, "a tensor", needs_identity=True,
              vjp=vjp_rules.extremum_vjp)
MIN = _reduce("min", _extremum(np.min), dt.ALL_DTYPES, "a tensor", needs_identity=True,
              vjp=vjp_rules.extremum_vjp)
ANY = _reduce("any", _logical(np.any), (dt.bool_,), "a bool tensor")
ALL = _reduce("all", _logical(np.all), (dt.bool_,), "a bool tensor")


# ---- argmax, argmin -----------------------------------------------------------------------

_INDEX_DTYPES = (dt.int32, dt.int64)


def _arg_infer(name: str):
    def infer(types, params):
        (t,) = types
        axis = canonical_axis(name, params["axis"], t.ndim)
        index_dtype = params["index_dtype"]
        if index_dtype not in _INDEX_DTYPES:
            raise ParamError(f"index_dtype must be int32 or int64, got {index_dtype.name}",
                             op=name)
        if t.shape[axis] == 0:
            raise ShapeError(f"cannot take {name} of {t} over the empty axis {axis}", op=name)
        if t.shape[axis] - 1 > np.iinfo(index_dtype.np_dtype).max:
            raise ShapeError(f"axis {axis} of {t} is too long for {index_dtype.name} indices",
                             op=name)
        return (TensorType(t.shape[:axis] + t.shape[axis + 1:], index_dtype),)
    return infer


def _arg_impl(np_fn):
    """The index of the first extreme element; a NaN counts as the extreme, so the first
    NaN wins, as in NumPy."""
    def impl(x, axis, index_dtype):
        wide = x.astype(_compute_dtype(dt.as_dtype(x.dtype)), copy=False)
        return _result(np_fn(wide, axis=axis), index_dtype)
    return impl


def _arg(name, np_fn):
    return declare(name, arity=1, infer=_arg_infer(name), impl=_arg_impl(np_fn),
                   params={"axis": ParamSpec(int_param),
                           "index_dtype": ParamSpec(dtype_param, dt.int64)},
                   tags=REDUCE, doc=f"{name}[axis, index_dtype](x): first index of the "
                                    "extreme along axis (the first NaN, if any)")


ARGMAX = _arg("argmax", np.argmax)
ARGMIN = _arg("argmin", np.argmin)
