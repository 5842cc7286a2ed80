"""The ops of ``tf.TensorArray`` (tensor_array.py) on traced values: what the Session
replays for each method, on the array's buffer ``[capacity, *element_shape]``.

``size`` (a traced int32 scalar, or a Python int where the capacity is known) is known
when the step is traced: a constant or computed from shapes.
"""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as dt
from ...ir.errors import ShapeError
from ...ir.ops import OPS
from ...ir.source import user_location
from ...trace import array_ops, math_ops
from ...trace.tracing import bind, to_tensor
from .graph import known_value
from .ops import graph_op

__all__ = ["TENSOR_ARRAY_OPS", "is_unwritten", "put_rows"]



def _known(value):
    """A traced value's known value (Python numbers are known), else None."""
    return known_value(to_tensor(value))


def _known_int(value, what: str) -> int:
    known = _known(value)
    if known is None:
        raise ShapeError(f"the TensorArray's {what} must be known when the step is traced (a "
                         "constant or computed from shapes): tracejit gives every tensor a "
                         "static shape", op="TensorArray", location=user_location())
    return int(np.asarray(known).reshape(()))


def is_unwritten(buffer) -> bool:
    """Whether ``buffer`` is the stand-in ``[capacity, 0]`` of an array whose element
    shape the first write decides (only where the array says it may be: ``lazy``), or
    the scalar that stands for a tensor of unknown rank while the graph probes shapes."""
    return buffer.ndim == 0 or (buffer.ndim == 2 and buffer.shape[1] == 0)


def _zeros_buffer(size, element_shape: tuple, dtype):
    return array_ops.zeros((_known_int(size, "size"),) + tuple(element_shape), dtype)


def _unwritten_buffer(size, dtype):
    return array_ops.zeros((_known_int(size, "size"), 0), dtype)


def _ready(buffer, rows_shape: tuple, lazy: bool, size):
    """``buffer``, or zeros for ``rows_shape`` elements where it is still the stand-in."""
    if lazy and is_unwritten(buffer):
        # NOTE: rank 0 only while the graph probes shapes; write() sets the static shape
        capacity = buffer.shape[0] if buffer.ndim else max(_known_int(size, "size"), 1)
        return array_ops.zeros((capacity,) + tuple(rows_shape), buffer.dtype)
    return buffer


def _grown(buffer, indices, dynamic: bool):
    """A dynamic array padded with zero rows up to the largest index known now."""
    known = _known(indices)
    if not dynamic or known is None or np.asarray(known).size == 0:
        return buffer
    needed = int(np.max(known)) + 1
    if needed <= buffer.shape[0]:
        return buffer
    pads = [[0, needed - buffer.shape[0]]] + [[0, 0]] * (buffer.ndim - 1)
    return array_ops.pad(buffer, pads)


def put_rows(buffer, indices, rows):
    """``buffer`` with ``rows[k]`` in place of row ``indices[k]``: only those rows are
    read and written (the gradient of the old buffer is zero there, as an overwrite's)."""
    idx = math_ops.cast(indices, dt.int32)
    delta = math_ops.subtract(rows, array_ops.gather(buffer, idx))
    return bind(OPS["scatter_add"], [to_tensor(buffer), idx, delta], {"axis": 0})


def _count_after(count, indices):
    if count is None:
        return None
    last = math_ops.reduce_max(math_ops.cast(indices, dt.int32)) + 1
    return math_ops.maximum(count, last)


def _write(buffer, count, index, value, size, lazy, dynamic):
    value = to_tensor(value)
    buffer = _grown(_ready(buffer, value.shape, lazy, size), index, dynamic)
    out = put_rows(buffer, array_ops.reshape(index, (1,)), array_ops.expand_dims(value, 0))
    return [out, _count_after(count, array_ops.reshape(index, (1,)))]


def _scatter(buffer, count, indices, value, size, lazy, dynamic):
    value = to_tensor(value)
    buffer = _grown(_ready(buffer, value.shape[1:], lazy, size), indices, dynamic)
    return [put_rows(buffer, indices, value), _count_after(count, indices)]


def _read(buffer, index, lengths):
    row = array_ops.gather(buffer, math_ops.cast(index, dt.int32))
    if lengths is None:
        return row
    k = _known(index)
    if k is None:
        raise ShapeError("the elements of this TensorArray (from split) have different "
                         "lengths, so read() needs an index known while tracing",
                         op="TensorArrayReadV3", location=user_location())
    return row[:lengths[int(np.asarray(k))]]


def _gather(buffer, indices):
    return array_ops.gather(buffer, math_ops.cast(indices, dt.int32))


def _stack(buffer, count):
    known = None if count is None else _known(count)
    if known is not None and int(np.asarray(known)) < buffer.shape[0]:
        return buffer[:int(np.asarray(known))]
    return buffer


def _concat(buffer, count, lengths):
    rows = _stack(buffer, count)
    if lengths is not None:
        return array_ops.concat([rows[k, :n] for k, n in enumerate(lengths)], 0)
    if rows.ndim < 2:
        raise ShapeError(f"concat needs elements of rank 1 or more, the TensorArray's are "
                         f"scalars ({rows.shape})", op="TensorArrayConcatV3",
                         location=user_location())
    return array_ops.reshape(rows, (rows.shape[0] * rows.shape[1],) + tuple(rows.shape[2:]))


def _padded(value, capacity: int):
    """``value`` with zero rows appended up to ``capacity`` rows."""
    if value.shape[0] >= capacity:
        return value
    return array_ops.pad(value, [[0, capacity - value.shape[0]]] + [[0, 0]] * (value.ndim - 1))


def _unstack(value, size, dynamic):
    value = to_tensor(value)
    capacity = _known_int(size, "size")
    if value.shape[0] > capacity and not dynamic:
        raise ShapeError(f"Tried to write to index {value.shape[0] - 1} but array is not "
                         f"resizeable and size is: {capacity}", op="TensorArrayScatterV3",
                         location=user_location())
    return _padded(value, capacity)


def _split(value, lengths: tuple, size, dynamic):
    value = to_tensor(value)
    capacity = _known_int(size, "size")
    if len(lengths) > capacity and not dynamic:
        raise ShapeError(f"Tried to write to index {len(lengths) - 1} but array is not "
                         f"resizeable and size is: {capacity}", op="TensorArraySplitV3",
                         location=user_location())
    widest = max(lengths, default=0)
    rows, start = [], 0
    for n in lengths:
        part = value[start:start + n]
        rows.append(array_ops.pad(part, [[0, widest - n]] + [[0, 0]] * (value.ndim - 1)))
        start += n
    stacked = array_ops.stack(rows) if rows else \
        array_ops.zeros((0, widest) + tuple(value.shape[1:]), value.dtype)
    return _padded(stacked, capacity)


TENSOR_ARRAY_OPS = {name: graph_op(fn, kind) for name, fn, kind in [
    ("zeros", _zeros_buffer, "TensorArrayV3"), ("unwritten", _unwritten_buffer, "TensorArrayV3"),
    ("write", _write, "TensorArrayWriteV3"), ("scatter", _scatter, "TensorArrayScatterV3"),
    ("read", _read, "TensorArrayReadV3"), ("gather", _gather, "TensorArrayGatherV3"),
    ("stack", _stack, "TensorArrayGatherV3"), ("concat", _concat, "TensorArrayConcatV3"),
    ("unstack", _unstack, "TensorArrayScatterV3"), ("split", _split, "TensorArraySplitV3")]}
