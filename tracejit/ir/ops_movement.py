"""Movement ops: they rearrange, repeat or select elements without arithmetic.

Every parameter here is static and already resolved by the front end: shapes hold no
``-1``, axes are non-negative and sorted, slice bounds lie inside the tensor. The IR
keeps one spelling per meaning, so equal programs print, hash and cache equal.
Movement ops accept every dtype and copy bits exactly (NaN payloads and -0.0 too).

The references return fresh arrays, never views of their inputs, so a graph output
never aliases a caller's argument.
"""

from __future__ import annotations

import math

import numpy as np

from . import dtypes as dt
from . import vjp_rules
from .core import TensorType
from .errors import DTypeError, ParamError, ShapeError
from .opdef import (
    ParamSpec,
    Tag,
    declare,
    dtype_param,
    int_param,
    ints_param,
    normalize_axes,
    require_dtype,
    require_same_dtype,
)

__all__ = [
    "RESHAPE", "TRANSPOSE", "BROADCAST_TO", "EXPAND_DIMS", "SQUEEZE", "SLICE", "REVERSE",
    "CONCAT", "STACK", "PAD", "TILE", "GATHER", "ONE_HOT",
]

MOVE = {Tag.MOVEMENT}
INDEX_MAP = {Tag.MOVEMENT, Tag.INDEX_MAP}
RESHAPE_LIKE = {*INDEX_MAP, Tag.RESHAPE}


# ---- parameter helpers shared with the other ops_* modules -------------------------------

def axes_param(value) -> tuple[int, ...]:
    """A set of axes: ints, sorted so that ``(2, 0)`` and ``(0, 2)`` are one param value."""
    return tuple(sorted(ints_param(value)))


def canonical_axes(op: str, axes: tuple[int, ...], ndim: int, what: str = "axes"):
    """Check that ``axes`` are in range, distinct, sorted and already non-negative."""
    norm = normalize_axes(op, axes, ndim)
    if norm != tuple(axes):
        # NOTE: rejecting -1 keeps one spelling per graph (so CSE and compile caches see
        # equal graphs), and backends never re-normalize; the front end knows the rank.
        raise ParamError(f"{what} {list(axes)} must be non-negative and sorted (the front "
                         f"end normalizes them); for rank {ndim} write {list(norm)}", op=op)
    return norm


def canonical_axis(op: str, axis: int, ndim: int, what: str = "axis") -> int:
    return canonical_axes(op, (axis,), ndim, what)[0]


def shape_param(value) -> tuple[int, ...]:
    shape = ints_param(value)
    if any(d < 0 for d in shape):
        raise ValueError(f"sizes must be non-negative (no -1: the front end resolves it), "
                         f"got {list(shape)}")
    return shape


def _fresh(array: np.ndarray, dtype: dt.DType) -> np.ndarray:
    """A new C-contiguous array of exactly ``dtype`` (never a view of an input)."""
    return np.array(array, dtype=dtype.np_dtype, copy=True, order="C")


def _types(types) -> str:
    return ", ".join(str(t) for t in types)


# ---- reshape, transpose, broadcast_to, expand_dims, squeeze ------------------------------

def _reshape_infer(types, params):
    (t,) = types
    shape = params["shape"]
    if math.prod(shape) != t.size:
        raise ShapeError(f"cannot reshape {t} ({t.size} elements) to {list(shape)} "
                         f"({math.prod(shape)} elements)", op="reshape")
    return (TensorType(shape, t.dtype),)


RESHAPE = declare(
    "reshape", vjp=vjp_rules.reshape_like_input_vjp, arity=1, infer=_reshape_infer,
    impl=lambda x, shape: _fresh(np.reshape(x, shape), dt.as_dtype(x.dtype)),
    params={"shape": ParamSpec(shape_param)}, tags=RESHAPE_LIKE,
    doc="reshape[shape](x): the row-major elements of x in a new shape of equal size")


def _transpose_infer(types, params):
    (t,) = types
    perm = params["perm"]
    if sorted(perm) != list(range(t.ndim)):
        raise ParamError(f"perm {list(perm)} is not a permutation of the axes of {t}",
                         op="transpose")
    return (TensorType(tuple(t.shape[p] for p in perm), t.dtype),)


TRANSPOSE = declare(
    "transpose", vjp=vjp_rules.transpose_vjp, arity=1, infer=_transpose_infer,
    impl=lambda x, perm: _fresh(np.transpose(x, perm), dt.as_dtype(x.dtype)),
    params={"perm": ParamSpec(ints_param)}, tags=INDEX_MAP,
    doc="transpose[perm](x): out.shape[i] = x.shape[perm[i]]")


def _broadcast_to_infer(types, params):
    (t,) = types
    shape = params["shape"]
    lead = len(shape) - t.ndim
    if lead < 0 or any(d not in (1, s) for d, s in zip(t.shape, shape[lead:], strict=True)):
        raise ShapeError(f"cannot broadcast {t} to {list(shape)}", op="broadcast_to")
    return (TensorType(shape, t.dtype),)


BROADCAST_TO = declare(
    "broadcast_to", vjp=vjp_rules.broadcast_to_vjp, arity=1, infer=_broadcast_to_infer,
    impl=lambda x, shape: _fresh(np.broadcast_to(x, shape), dt.as_dtype(x.dtype)),
    params={"shape": ParamSpec(shape_param)}, tags={*INDEX_MAP, Tag.BROADCAST},
    doc="broadcast_to[shape](x): NumPy broadcasting (right-aligned; size-1 axes repeat)")


def _expand_dims_infer(types, params):
    (t,) = types
    axes = canonical_axes("expand_dims", params["axes"], t.ndim + len(params["axes"]))
    dims = iter(t.shape)
    shape = tuple(1 if i in axes else next(dims) for i in range(t.ndim + len(axes)))
    return (TensorType(shape, t.dtype),)


EXPAND_DIMS = declare(
    "expand_dims", vjp=vjp_rules.reshape_like_input_vjp, arity=1, infer=_expand_dims_infer,
    impl=lambda x, axes: _fresh(np.expand_dims(x, axes), dt.as_dtype(x.dtype)),
    params={"axes": ParamSpec(axes_param)}, tags=RESHAPE_LIKE,
    doc="expand_dims[axes](x): size-1 axes inserted at positions `axes` of the output")


def _squeeze_infer(types, params):
    (t,) = types
    axes = canonical_axes("squeeze", params["axes"], t.ndim)
    wide = [a for a in axes if t.shape[a] != 1]
    if wide:
        raise ShapeError(f"can only squeeze size-1 axes; axes {wide} of {t} are not",
                         op="squeeze")
    return (TensorType(tuple(d for i, d in enumerate(t.shape) if i not in axes), t.dtype),)


SQUEEZE = declare(
    "squeeze", vjp=vjp_rules.reshape_like_input_vjp, arity=1, infer=_squeeze_infer,
    impl=lambda x, axes: _fresh(np.squeeze(x, axes), dt.as_dtype(x.dtype)),
    params={"axes": ParamSpec(axes_param)}, tags=RESHAPE_LIKE,
    doc="squeeze[axes](x): removes the listed axes, each of size 1")


# ---- slice, reverse ---------------------------------------------------------------------

def _slice_infer(types, params):
    (t,) = types
    starts, limits, strides = params["starts"], params["limits"], params["strides"]
    if not len(starts) == len(limits) == len(strides) == t.ndim:
        raise ParamError(f"starts, limits and strides need {t.ndim} entries each for {t}, "
                         f"got {list(starts)}, {list(limits)}, {list(strides)}", op="slice")
    shape = []
    for axis, (lo, hi, step, size) in enumerate(zip(starts, limits, strides, t.shape,
                                                    strict=True)):
        if step < 1:
            raise ParamError(f"strides must be positive, got {list(strides)}", op="slice")
        if not 0 <= lo <= hi <= size:
            raise ParamError(f"axis {axis}: need 0 <= start <= limit <= {size}, got "
                             f"start {lo} and limit {hi} (tensor {t})", op="slice")
        shape.append(-(-(hi - lo) // step))    # ceil((limit - start) / stride)
    return (TensorType(tuple(shape), t.dtype),)


def _slice_impl(x, starts, limits, strides):
    index = tuple(slice(*b) for b in zip(starts, limits, strides, strict=True))
    return _fresh(x[index], dt.as_dtype(x.dtype))


SLICE = declare(
    "slice", vjp=vjp_rules.slice_vjp, arity=1, infer=_slice_infer, impl=_slice_impl,
    params={"starts": ParamSpec(ints_param), "limits": ParamSpec(ints_param),
            "strides": ParamSpec(ints_param)},
    tags=INDEX_MAP, doc="slice[starts, limits, strides](x) = x[start:limit:stride, ...]")


def _reverse_infer(types, params):
    (t,) = types
    canonical_axes("reverse", params["axes"], t.ndim)
    return (t,)


REVERSE = declare(
    "reverse", vjp=vjp_rules.reverse_vjp, arity=1, infer=_reverse_infer,
    impl=lambda x, axes: _fresh(np.flip(x, axes), dt.as_dtype(x.dtype)),
    params={"axes": ParamSpec(axes_param)}, tags=INDEX_MAP,
    doc="reverse[axes](x): x with the order of the listed axes reversed")


# ---- concat, stack ------------------------------------------------------------------------

def _concat_infer(types, params):
    dtype = require_same_dtype("concat", types)
    ndim = types[0].ndim
    if any(t.ndim != ndim for t in types):
        raise ShapeError(f"operands must have one rank, got {_types(types)}", op="concat")
    axis = canonical_axis("concat", params["axis"], ndim)
    rest = {t.shape[:axis] + t.shape[axis + 1:] for t in types}
    if len(rest) > 1:
        raise ShapeError(f"operands may differ only along axis {axis}, got {_types(types)}",
                         op="concat")
    shape = list(types[0].shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return (TensorType(tuple(shape), dtype),)


def _concat_impl(*xs, axis):
    return _fresh(np.concatenate(xs, axis=axis), dt.as_dtype(xs[0].dtype))


CONCAT = declare("concat", vjp=vjp_rules.concat_vjp, arity=None, infer=_concat_infer,
                 impl=_concat_impl,
                 params={"axis": ParamSpec(int_param)}, tags=MOVE,
                 doc="concat[axis](*xs): joins tensors of one rank along an existing axis")


def _stack_infer(types, params):
    dtype = require_same_dtype("stack", types)
    if len({t.shape for t in types}) > 1:
        raise ShapeError(f"operands must have one shape, got {_types(types)}", op="stack")
    shape = types[0].shape
    axis = canonical_axis("stack", params["axis"], len(shape) + 1)
    return (TensorType(shape[:axis] + (len(types),) + shape[axis:], dtype),)


def _stack_impl(*xs, axis):
    return _fresh(np.stack(xs, axis=axis), dt.as_dtype(xs[0].dtype))


STACK = declare("stack", vjp=vjp_rules.stack_vjp, arity=None, infer=_stack_infer, impl=_stack_impl,
                params={"axis": ParamSpec(int_param)}, tags=MOVE,
                doc="stack[axis](*xs): joins tensors of one shape along a new axis")


# ---- pad, tile ------------------------------------------------------------------------------

def _pad_infer(types, params):
    x, value = types
    dtype = require_same_dtype("pad", types)
    if value.ndim != 0:
        raise ShapeError(f"the pad value must be a 0-d tensor, got {value} (padding {x})",
                         op="pad")
    low, high = params["low"], params["high"]
    if not len(low) == len(high) == x.ndim:
        raise ParamError(f"low and high need {x.ndim} entries each for {x}, "
                         f"got {list(low)} and {list(high)}", op="pad")
    if any(p < 0 for p in low + high):
        raise ParamError(f"padding must be non-negative, got low {list(low)} and "
                         f"high {list(high)}", op="pad")
    shape = tuple(lo + d + hi for lo, d, hi in zip(low, x.shape, high, strict=True))
    return (TensorType(shape, dtype),)


def _pad_impl(x, value, low, high):
    shape = tuple(lo + d + hi for lo, d, hi in zip(low, x.shape, high, strict=True))
    out = np.full(shape, value, dtype=x.dtype)
    out[tuple(slice(lo, lo + d) for lo, d in zip(low, x.shape, strict=True))] = x
    return out


PAD = declare("pad", vjp=vjp_rules.pad_vjp, arity=2, infer=_pad_infer, impl=_pad_impl,
              params={"low": ParamSpec(ints_param), "high": ParamSpec(ints_param)}, tags=MOVE,
              doc="pad[low, high](x, value): x with low[i]/high[i] copies of the 0-d value "
                  "before/after it along axis i")


def _tile_infer(types, params):
    (t,) = types
    reps = params["reps"]
    if len(reps) != t.ndim or any(r < 0 for r in reps):
        raise ParamError(f"reps must hold {t.ndim} non-negative counts for {t}, "
                         f"got {list(reps)}", op="tile")
    return (TensorType(tuple(d * r for d, r in zip(t.shape, reps, strict=True)), t.dtype),)


TILE = declare("tile", vjp=vjp_rules.tile_vjp, arity=1, infer=_tile_infer,
               impl=lambda x, reps: _fresh(np.tile(x, reps), dt.as_dtype(x.dtype)),
               params={"reps": ParamSpec(ints_param)}, tags=INDEX_MAP,
               doc="tile[reps](x): x repeated reps[i] times along axis i")


# ---- gather, one_hot --------------------------------------------------------------------------

def _gather_infer(types, params):
    x, idx = types
    require_dtype("gather", idx, dt.INT_DTYPES, "integer indices")
    axis = canonical_axis("gather", params["axis"], x.ndim)
    if x.shape[axis] == 0 and idx.size:
        raise ShapeError(f"cannot gather {idx} indices from the empty axis {axis} of {x}",
                         op="gather")
    shape = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    return (TensorType(shape, x.dtype),)


def _gather_impl(x, indices, axis):
    """NOTE: an index i < 0 wraps once (i + n, as in NumPy); whatever is still out of
    range is clamped to [0, n-1] (as XLA does) rather than being an error, because a
    compiled kernel cannot raise. Backends must clamp the same way."""
    n = x.shape[axis]
    idx = indices.astype(np.int64)      # int8 + n could overflow in the index's own type
    idx = np.clip(np.where(idx < 0, idx + n, idx), 0, max(n - 1, 0))
    return _fresh(np.take(x, idx, axis=axis), dt.as_dtype(x.dtype))


GATHER = declare("gather", vjp=vjp_rules.gather_vjp, arity=2, infer=_gather_infer,
                 impl=_gather_impl, sparse_vjp=vjp_rules.gather_rows_vjp,
                 params={"axis": ParamSpec(int_param)}, tags=MOVE,
                 doc="gather[axis](x, indices) = take(x, indices, axis); negative indices "
                     "wrap once, out-of-range ones are clamped")


def _one_hot_infer(types, params):
    idx, on, off = types
    require_dtype("one_hot", idx, dt.INT_DTYPES, "integer indices")
    dtype, depth, axis = params["dtype"], params["depth"], params["axis"]
    for name, t in (("on_value", on), ("off_value", off)):
        if t.ndim != 0:
            raise ShapeError(f"{name} must be a 0-d tensor, got {t}", op="one_hot")
        if t.dtype is not dtype:
            raise DTypeError(f"{name} is {t} but dtype is {dtype.name}", op="one_hot")
    if depth < 0:
        raise ParamError(f"depth must be non-negative, got {depth}", op="one_hot")
    if not (axis == -1 or 0 <= axis <= idx.ndim):
        raise ParamError(f"axis {axis} must be -1 (last) or in [0, {idx.ndim}] for indices "
                         f"{idx}", op="one_hot")
    at = idx.ndim if axis == -1 else axis
    return (TensorType(idx.shape[:at] + (depth,) + idx.shape[at:], dtype),)


def _one_hot_impl(indices, on_value, off_value, depth, axis, dtype):
    # NOTE: an index outside [0, depth), negative ones included, matches no position and
    # gives an all-off row, as tf.one_hot does.
    hot = indices.astype(np.int64)[..., None] == np.arange(depth)
    hot = np.moveaxis(hot, -1, axis)
    return _fresh(np.where(hot, on_value, off_value), dtype)


ONE_HOT = declare(
    "one_hot", vjp=vjp_rules.one_hot_vjp, arity=3, infer=_one_hot_infer, impl=_one_hot_impl,
    params={"depth": ParamSpec(int_param), "axis": ParamSpec(int_param, -1),
            "dtype": ParamSpec(dtype_param)},
    tags=MOVE,
    doc="one_hot[depth, axis, dtype](indices, on_value, off_value): on where the new axis "
        "position equals the index, off elsewhere (out-of-range indices: all off)")
