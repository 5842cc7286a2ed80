"""Running sums and products, top-k, sorting: TensorFlow's ``cumsum``, ``cumprod``,
``top_k``, ``in_top_k``, ``sort`` and ``argsort``.

``cumsum``/``cumprod`` and ``top_k`` are ops of the table (ir/ops_cumulative.py,
ir/ops_sort.py); ``sort``/``argsort`` are ``top_k`` of the whole row (moved to the last
axis and back), and ``in_top_k`` compares each row with its target's prediction.

>>> import numpy as np, tracejit as tj
>>> from tracejit.trace import sort_ops
>>> sort_ops.cumsum(np.array([1, 2, 3]), exclusive=True).tolist()
[0, 1, 3]
>>> values, indices = sort_ops.top_k(np.array([1.0, 3.0, 3.0, 2.0]), 2)
>>> values.tolist(), indices.tolist()
([3.0, 3.0], [1, 2])
"""

from __future__ import annotations

from typing import NamedTuple

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.errors import DTypeError, ParamError, ShapeError
from ..ir.source import user_location
from .array_ops import one_hot, transpose
from .math_ops import (
    cast,
    greater,
    isfinite,
    logical_and,
    reduce_all,
    reduce_any,
    reduce_sum,
    where,
)
from .tracing import bind, to_tensor
from .values import Tensor

__all__ = ["cumsum", "cumprod", "top_k", "in_top_k", "sort", "argsort", "TopKV2"]


def _fail(error, message: str, op: str):
    raise error(message, op=op, location=user_location())


def _static_int(value, what: str, op: str) -> int:
    """A Python int, a NumPy integer, or a tensor whose value is known while tracing
    (a shape computed from a fed tensor)."""
    try:
        return int(value)
    except TypeError as exc:
        _fail(ParamError, f"{what} must be an integer known while tracing: {exc}", op)


def _axis(x: Tensor, axis, op: str) -> int:
    axis = _static_int(axis, "axis", op)
    if not -x.ndim <= axis < max(x.ndim, 1):
        _fail(ParamError, f"axis {axis} is out of range for {x.type} of rank {x.ndim}", op)
    return axis % max(x.ndim, 1)


def _scan(op, name: str):
    def fn(x, axis=0, exclusive=False, reverse=False, name=None):
        x = to_tensor(x)
        if x.ndim == 0:
            _fail(ShapeError, f"needs a tensor of rank 1 or more, got {x.type}", op.name)
        if x.dtype.is_bool:
            _fail(DTypeError, f"takes a numeric tensor, got {x.type}", op.name)
        return bind(op, [x], {"axis": _axis(x, axis, op.name), "exclusive": bool(exclusive),
                              "reverse": bool(reverse)}, weak=x.weak)
    fn.__name__ = name
    fn.__doc__ = (f"The running {'sum' if op is ops.CUMSUM else 'product'} of ``x`` along "
                  "``axis``: ``exclusive`` leaves each element out of its own result, "
                  "``reverse`` runs from the end.")
    return fn


cumsum = _scan(ops.CUMSUM, "cumsum")
cumprod = _scan(ops.CUMPROD, "cumprod")


class TopKV2(NamedTuple):
    """What ``top_k`` returns (TensorFlow's name for it)."""

    values: Tensor
    indices: Tensor


def _top_k_last(x: Tensor, k: int, descending: bool, op: str) -> TopKV2:
    if x.ndim == 0:
        _fail(ShapeError, f"Shape must be at least rank 1 but is rank 0 ({x.type})", op)
    if x.dtype.is_bool:
        _fail(DTypeError, f"takes a numeric tensor, got {x.type}", op)
    if k < 0:
        _fail(ParamError, f"k must be non-negative but is {k}", op)
    if k > x.shape[-1]:
        _fail(ShapeError, f"input must have last dimension >= k = {k} but is "
                          f"{x.shape[-1]} ({x.type})", op)
    values, indices = bind(ops.TOP_K, [x], {"k": k, "descending": descending})
    return TopKV2(values, indices)


def top_k(input, k=1, sorted=True, name=None, index_type=dt.int32) -> TopKV2:  # noqa: A002
    """The ``k`` largest elements of each last-axis row and their positions, largest
    first; equal elements by position (the lower first), NaN above every number.
    (``sorted=False`` gives them sorted too: TensorFlow leaves that order open.)"""
    x = to_tensor(input)
    values, indices = _top_k_last(x, _static_int(k, "k", "top_k"), True, "top_k")
    if dt.as_dtype(index_type) is not dt.int32:
        indices = cast(indices, index_type)
    return TopKV2(values, indices)


def _direction(direction: str, op: str) -> bool:
    if direction not in ("ASCENDING", "DESCENDING"):
        _fail(ParamError, f"Unrecognized direction: {direction!r} (ASCENDING or "
                          "DESCENDING)", op)
    return direction == "DESCENDING"


def _along(x: Tensor, axis, descending: bool, op: str) -> TopKV2:
    """The whole row sorted along ``axis`` (moved last for top_k and back)."""
    if x.ndim == 0:
        _fail(ShapeError, f"needs a tensor of rank 1 or more, got {x.type}", op)
    axis = _axis(x, axis, op)
    last = x.ndim - 1
    perm = list(range(x.ndim))
    perm[axis], perm[last] = last, axis
    moved = x if axis == last else transpose(x, perm)
    values, indices = _top_k_last(moved, moved.shape[-1], descending, op)
    if axis != last:
        values, indices = transpose(values, perm), transpose(indices, perm)
    return TopKV2(values, indices)


def sort(values, axis=-1, direction="ASCENDING", name=None) -> Tensor:
    """``values`` sorted along ``axis`` (NaN after every number when ascending)."""
    return _along(to_tensor(values), axis, _direction(direction, "sort"), "sort").values


def argsort(values, axis=-1, direction="ASCENDING", stable=False, name=None) -> Tensor:
    """The int32 positions that sort ``values`` along ``axis``; always stable (equal
    elements keep their order), which is one of the orders ``stable=False`` allows."""
    return _along(to_tensor(values), axis, _direction(direction, "argsort"),
                  "argsort").indices


def in_top_k(predictions, targets, k, name=None) -> Tensor:
    """Whether each row's target class is among its ``k`` largest predictions, as
    TensorFlow decides it: fewer than ``k`` predictions strictly larger than the
    target's (so ties count in), and False for a target out of range or a row with a
    non-finite prediction."""
    pred, target = to_tensor(predictions), to_tensor(targets)
    if pred.ndim != 2 or target.ndim != 1 or target.shape[0] != pred.shape[0]:
        _fail(ShapeError, f"needs predictions [batch, classes] and targets [batch], got "
                          f"{pred.type} and {target.type}", "in_top_k")
    if not target.dtype.is_integer:
        _fail(DTypeError, f"targets must be integers, got {target.type}", "in_top_k")
    if not pred.dtype.is_float:
        _fail(DTypeError, f"predictions must be floats, got {pred.type}", "in_top_k")
    if isinstance(k, float) or (hasattr(k, "dtype") and not to_tensor(k).dtype.is_integer):
        _fail(DTypeError, f"k must be an integer, got {k!r}", "in_top_k")
    hot = one_hot(target, pred.shape[1], True, False, dtype=dt.bool_)
    zero = cast(0, pred.dtype)
    target_value = reduce_sum(where(hot, pred, zero), axis=1, keepdims=True)
    larger = reduce_sum(cast(greater(pred, target_value), dt.int32), axis=1)
    known = logical_and(reduce_any(hot, axis=1), reduce_all(isfinite(pred), axis=1))
    return logical_and(known, larger < cast(k, dt.int32))
