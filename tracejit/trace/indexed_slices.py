"""``IndexedSlices``: a row-sparse tensor, the form TensorFlow gives the gradient of a
variable that is only read through ``gather`` (an embedding table): ``values[i]`` is row
``indices[i]`` of a tensor of shape ``dense_shape`` that is zero elsewhere, and repeated
indices add up.

``gradients(..., indexed_slices=True)`` (and every TF1 ``tf.gradients``) returns one for
such a variable; the optimizers apply it to the rows it names only. It is a NamedTuple
of its three parts, so it flattens like any container: ``jit`` returns it, a TF1
``Session.run`` fetches it as an ``IndexedSlices`` of NumPy arrays.

>>> import numpy as np, tracejit as tj
>>> table = np.arange(6, dtype=np.float32).reshape(3, 2)
>>> @tj.jit
... def grad_of_lookup(table, ids):
...     loss = tj.reduce_sum(tj.gather(table, ids))
...     return tj.gradients(loss, table, indexed_slices=True)
>>> g = grad_of_lookup(table, np.array([2, 0, 2], np.int32))
>>> np.asarray(g.indices).tolist(), np.asarray(g.dense_shape).tolist()
([2, 0, 2], [3, 2])
>>> np.asarray(to_dense(g)).tolist()
[[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.errors import DTypeError, ShapeError
from ..ir.source import user_location
from .array_ops import reshape, zeros, zeros_like
from .math_ops import greater, greater_equal, less, logical_and, where
from .tracing import bind, cast, static_ints, to_tensor


class IndexedSlices(NamedTuple):
    """``tf.IndexedSlices(values, indices, dense_shape=None)``."""

    values: Any
    indices: Any
    dense_shape: Any = None

    # NOTE: dtype, op, graph, name and device are those of ``values``, as in TensorFlow
    _OF_VALUES = frozenset({"dtype", "op", "graph", "name", "device"})

    def __getattr__(self, attr):
        if attr in IndexedSlices._OF_VALUES:
            return getattr(self.values, attr)
        raise AttributeError(f"'IndexedSlices' object has no attribute {attr!r}")

    def __repr__(self) -> str:
        return (f"IndexedSlices(values={self.values!r}, indices={self.indices!r}, "
                f"dense_shape={self.dense_shape!r})")


def _fail(error, message: str, op: str):
    raise error(message, op=op, location=user_location())


def scatter_add(operand, indices, updates, axis: int = 0):
    """``operand`` with ``updates[..., i, ...]`` added at index ``indices[i]`` along
    ``axis`` (repeats accumulate; indices wrap once and clamp, as ``gather``'s)."""
    operand, indices, updates = to_tensor(operand), to_tensor(indices), to_tensor(updates)
    return bind(ops.SCATTER_ADD, [operand, indices, cast(updates, operand.dtype)],
                {"axis": int(axis)})


def dense_shape_of(slices: IndexedSlices, op: str) -> tuple[int, ...]:
    """The static dense shape of ``slices``: from ``dense_shape``, which must be known."""
    if slices.dense_shape is None:
        _fail(ShapeError, "an IndexedSlices without dense_shape cannot become a dense tensor",
              op)
    return static_ints(slices.dense_shape, "dense_shape", op)


def checked(slices: IndexedSlices, op: str) -> IndexedSlices:
    """``slices`` with tensor parts whose shapes fit each other: ``indices`` a vector of
    integers, ``values`` one row per index, rows of the dense shape's row shape."""
    values, indices = to_tensor(slices.values), to_tensor(slices.indices)
    if not indices.dtype.is_integer or indices.ndim != 1:
        _fail(DTypeError, f"IndexedSlices indices must be a vector of integers, got "
              f"{indices.type}", op)
    shape = dense_shape_of(slices, op)
    if values.shape != (indices.shape[0],) + shape[1:]:
        _fail(ShapeError, f"IndexedSlices values of shape {list(values.shape)} do not fit "
              f"{indices.shape[0]} indices into a dense shape {list(shape)}", op)
    return IndexedSlices(values, indices, slices.dense_shape)


def in_range(slices: IndexedSlices):
    """Which indices name a row: ``-rows <= index < rows`` (a negative one counts from
    the end, as in ``gather``). Rows at other indices are padding: a partitioned lookup
    points the ids of other partitions there, and everything here skips them."""
    rows = dense_shape_of(slices, "IndexedSlices")[0]
    indices = to_tensor(slices.indices)
    return logical_and(greater_equal(indices, -rows), less(indices, rows))


def to_dense(slices: IndexedSlices):
    """The dense tensor: zeros with each row of ``values`` added at its index (rows at
    out-of-range indices skipped)."""
    slices = checked(slices, "IndexedSlices to dense")
    shape = dense_shape_of(slices, "IndexedSlices to dense")
    keep = reshape(in_range(slices), slices.indices.shape + (1,) * (len(shape) - 1))
    values = where(keep, slices.values, zeros_like(slices.values))
    return scatter_add(zeros(shape, slices.values.dtype), slices.indices, values)


def summed_rows(slices: IndexedSlices):
    """``(summed, touched)``: the dense gradient (rows of repeated indices summed, in
    index order, as TensorFlow's ``_deduplicate_indexed_slices``) and a bool tensor of
    shape ``[rows, 1, ...]`` saying which rows some (in-range) index names."""
    slices = checked(slices, "apply sparse gradient")
    shape = dense_shape_of(slices, "apply sparse gradient")
    count = scatter_add(zeros((shape[0],), dt.int32), slices.indices,
                        cast(in_range(slices), dt.int32))
    touched = reshape(greater(count, 0), (shape[0],) + (1,) * (len(shape) - 1))
    return to_dense(slices), touched


def dense_shape_tensor(shape) -> Any:
    """A dense shape as TensorFlow's gather gradient gives it: an int32 vector."""
    return to_tensor(np.asarray(shape, np.int32).reshape(-1))
