"""``top_k``: the first ``k`` elements of each row in sorted order, and where they were.

``top_k[k, descending](x) -> (values, indices: int32)`` works on the last axis:
``values[..., j]`` is the ``j``-th element of the row ordered largest first
(``descending``) or smallest first, and ``indices[..., j]`` its position in the row.
The order is total and stable: equal elements keep their order (the lower index
first), ``-0.0`` equals ``0.0``, and NaN counts as larger than every number (so it
comes first in descending order, last in ascending order; every NaN is equal).
With ``k`` equal to the row length it is a stable sort (``tf.sort``, ``tf.argsort``).
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from .core import TensorType
from .errors import ShapeError
from .opdef import ParamSpec, bool_param, declare, int_param, require_dtype

__all__ = ["TOP_K"]


def _infer(types, params):
    (t,) = types
    require_dtype("top_k", t, dt.NUMERIC_DTYPES, "a numeric tensor")
    k = params["k"]
    if t.ndim == 0:
        raise ShapeError(f"needs a tensor of rank 1 or more, got {t}", op="top_k")
    if not 0 <= k <= t.shape[-1]:
        raise ShapeError(f"k={k} must be in [0, {t.shape[-1]}], the last dimension of {t}",
                         op="top_k")
    if t.shape[-1] > np.iinfo(np.int32).max:
        raise ShapeError(f"the last axis of {t} is too long for int32 indices", op="top_k")
    shape = t.shape[:-1] + (k,)
    return (TensorType(shape, t.dtype), TensorType(shape, dt.int32))


def order_of(x: np.ndarray, descending: bool) -> np.ndarray:
    """The stable sorted order of each row of ``x`` (positions along the last axis)."""
    wide = x.astype(np.float32) if dt.as_dtype(x.dtype).is_half else x
    # NOTE: ranks of the distinct values (np.unique puts one NaN after every number and
    # treats -0.0 as 0.0), so a stable argsort of the ranks, negated for descending order,
    # keeps equal elements in index order for every dtype without negating the values.
    _, rank = np.unique(wide, return_inverse=True)
    rank = rank.reshape(x.shape).astype(np.int64)
    return np.argsort(-rank if descending else rank, axis=-1, kind="stable")


def _impl(x, k, descending):
    order = order_of(x, descending)[..., :k]
    values = np.take_along_axis(x, order, axis=-1)
    return np.ascontiguousarray(values), order.astype(np.int32)


def _vjp(g, ins, outs, cts, params):
    """Each value's cotangent goes back to the position it came from: compare the
    indices with every position of the row and sum (no scatter, so it is one fused
    reduction on every backend)."""
    (x,), (_, indices) = ins, outs
    ct = cts[0]
    if ct is None or not x.dtype.is_float:
        return (None,)
    n, k = x.shape[-1], indices.shape[-1]
    lead = x.shape[:-1]
    grid = lead + (n, k)
    hit = g.op("iota", shape=grid, dimension=len(lead), dtype=dt.int32).eq(
        g.broadcast_to(g.reshape(indices, lead + (1, k)), grid))
    spread = g.broadcast_to(g.reshape(ct, lead + (1, k)), grid)
    return (g.op("sum", g.select(hit, spread, 0), axes=(len(lead) + 1,), keepdims=False),)


TOP_K = declare("top_k", arity=1, infer=_infer, impl=_impl, vjp=_vjp,
                params={"k": ParamSpec(int_param),
                        "descending": ParamSpec(bool_param, True)},
                doc="top_k[k, descending](x) -> (values, int32 indices): the first k "
                    "elements of each last-axis row in stable sorted order (equal ones by "
                    "index; NaN above every number)")
