"""``scatter_add``: the transpose of ``gather`` (what its gradient needs).

``scatter_add[axis](operand, indices, updates)`` returns ``operand`` with each slice of
``updates`` added at its index along ``axis``; repeated indices accumulate. Indices are
normalized exactly as ``gather`` does (negative wraps once, then clamps), so
``scatter_add`` is gather's adjoint for every index.
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from . import vjp_rules
from .core import TensorType
from .errors import ShapeError
from .opdef import ParamSpec, Tag, declare, int_param, require_dtype
from .ops_movement import canonical_axis

__all__ = ["SCATTER_ADD"]


def _infer(types, params):
    operand, idx, updates = types
    require_dtype("scatter_add", idx, dt.INT_DTYPES, "integer indices")
    # NOTE: canonical (non-negative) as gather's: lowerings and the gradient rule (a
    # gather) use the param as it is; the front end resolves negative axes.
    axis = canonical_axis("scatter_add", params["axis"], operand.ndim)
    if operand.shape[axis] == 0 and idx.size:
        # NOTE: as gather (its adjoint) refuses to read them: no index can be clamped
        # into an empty axis.
        raise ShapeError(f"cannot scatter {idx} indices into the empty axis {axis} of "
                         f"{operand}", op="scatter_add")
    expected = operand.shape[:axis] + idx.shape + operand.shape[axis + 1:]
    if updates.shape != expected or updates.dtype is not operand.dtype:
        raise ShapeError(f"updates must be {TensorType(expected, operand.dtype)} for operand "
                         f"{operand} and indices {idx}, got {updates}", op="scatter_add")
    return (operand,)


def _impl(operand, indices, updates, axis):
    n = operand.shape[axis]
    idx = indices.astype(np.int64)
    idx = np.clip(np.where(idx < 0, idx + n, idx), 0, max(n - 1, 0))
    compute = np.float32 if dt.as_dtype(operand.dtype).is_half else operand.dtype
    out = np.moveaxis(operand.astype(compute, copy=True), axis, 0)
    moved = np.moveaxis(updates.astype(compute), list(range(axis, axis + idx.ndim)),
                        list(range(idx.ndim)))
    np.add.at(out, idx, moved)
    return np.ascontiguousarray(np.moveaxis(out, 0, axis)).astype(operand.dtype, copy=False)


SCATTER_ADD = declare("scatter_add", arity=3, infer=_infer, impl=_impl,
                      params={"axis": ParamSpec(int_param)}, tags={Tag.MOVEMENT},
                      vjp=vjp_rules.scatter_add_vjp,
                      doc="scatter_add[axis](operand, indices, updates): operand plus updates "
                          "added at indices along axis (repeats accumulate)")
