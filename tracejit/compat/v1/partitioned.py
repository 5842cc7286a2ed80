"""Partitioned variables: ``get_variable(..., partitioner=...)`` and the partitioners.

A partitioner maps a variable's full shape and dtype to how many pieces each axis is cut
into (one axis only). The variable is then several variables ``<name>/part_0``,
``<name>/part_1``, ... (cut as TensorFlow cuts: the first ``size % n`` parts one row
longer), each in the variable collections, and a ``PartitionedVariable`` that iterates
over them and stands for their concatenation wherever a tensor is expected.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     w = tf.get_variable("w", [5, 2], partitioner=tf.fixed_size_partitioner(2))
...     [v.name for v in w], w.shape.as_list()
(['w/part_0:0', 'w/part_1:0'], [5, 2])
"""

from __future__ import annotations

import math

import numpy as np

from ...ir import dtypes as dt
from .ops import graph_arg, ops
from .shapes import TensorShape

__all__ = ["PartitionedVariable", "fixed_size_partitioner", "min_max_variable_partitioner",
           "variable_axis_size_partitioner"]


def _element_size(dtype, bytes_per_string_element: int) -> int:
    dtype = dt.as_dtype(dtype) if getattr(dtype, "name", dtype) != "string" else None
    return bytes_per_string_element if dtype is None else np.dtype(dtype.np_dtype).itemsize


def fixed_size_partitioner(num_shards, axis=0):
    """``num_shards`` pieces along ``axis`` (fewer if the axis is shorter)."""
    def partitioner(shape, dtype):
        partitions = [1] * len(shape)
        partitions[axis] = min(int(num_shards), int(TensorShape(shape).as_list()[axis]))
        return partitions
    return partitioner


def min_max_variable_partitioner(max_partitions=1, axis=0, min_slice_size=256 << 10,
                                 bytes_per_string_element=16):
    """As many pieces along ``axis`` as keep each at least ``min_slice_size`` bytes, at
    most ``max_partitions`` and at most the axis' length."""
    def partitioner(shape, dtype):
        dims = TensorShape(shape).as_list()
        if axis >= len(dims):
            raise ValueError(f"cannot partition a variable of shape {dims} along axis {axis}")
        total = int(np.prod(dims)) * _element_size(dtype, bytes_per_string_element)
        partitions = [1] * len(dims)
        partitions[axis] = max(1, min(dims[axis], int(max_partitions),
                                      int(math.ceil(total / min_slice_size))))
        return partitions
    return partitioner


def variable_axis_size_partitioner(max_shard_bytes, axis=0, bytes_per_string_element=16,
                                   max_shards=None):
    """Pieces along ``axis`` of at most ``max_shard_bytes`` each (at least one slice of
    the axis each), at most ``max_shards``."""
    if max_shard_bytes < 1:
        raise ValueError(f"max_shard_bytes must be positive, got {max_shard_bytes}")

    def partitioner(shape, dtype):
        dims = TensorShape(shape).as_list()
        slice_bytes = np.prod(dims) / dims[axis] * _element_size(dtype,
                                                                  bytes_per_string_element)
        per_shard = max(1, math.floor(max_shard_bytes / slice_bytes))
        shards = int(math.ceil(dims[axis] / per_shard))
        partitions = [1] * len(dims)
        partitions[axis] = min(int(max_shards), shards) if max_shards else shards
        return partitions
    return partitioner


def part_sizes(size: int, count: int) -> list[int]:
    """TensorFlow's cut of ``size`` rows into ``count`` parts."""
    return [size // count + (1 if i < size % count else 0) for i in range(count)]


class PartitionedVariable:
    """A variable kept as parts along one axis; a tensor (their concatenation) in ops."""

    def __init__(self, name: str, shape, dtype, parts: list, partitions: list[int]):
        self.name = name
        self._shape = TensorShape(shape)
        self.dtype = dtype
        self._parts = parts
        self._partitions = partitions
        self._axis = next((i for i, p in enumerate(partitions) if p > 1), 0)

    def __iter__(self):
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    @property
    def shape(self) -> TensorShape:
        return self._shape

    def get_shape(self) -> TensorShape:
        return self._shape

    def _get_variable_list(self) -> list:
        return list(self._parts)

    def _get_partitions(self) -> list[int]:
        return list(self._partitions)

    def as_tensor(self):
        if len(self._parts) == 1:
            return graph_arg(self._parts[0])
        return ops["concat"](list(self._parts), self._axis, name=f"{self.name}/ConcatPartitions")

    def _graph_element(self):
        return self.as_tensor()

    def __repr__(self) -> str:
        return (f"<tf.PartitionedVariable '{self.name}' shape={self._shape} "
                f"parts={len(self._parts)}>")


def _forward(name):
    return lambda self, *args: getattr(self.as_tensor(), name)(*args)


for _name in ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "matmul",
              "rmatmul", "neg", "getitem"):
    setattr(PartitionedVariable, f"__{_name}__", _forward(f"__{_name}__"))


def partitioned_variable(name: str, initial, dtype, partitioner, make_part):
    """The parts of ``name`` (``make_part(initial_slice, part_name)`` makes each) cut by
    what ``partitioner(shape, dtype)`` says, or one plain variable if it says 1 piece."""
    shape = list(initial.shape.as_list() if hasattr(initial, "get_shape") else
                 np.shape(initial))
    partitions = [int(p) for p in partitioner(shape=TensorShape(shape), dtype=dtype)]
    if len(partitions) != len(shape) or min(partitions, default=1) < 1 or \
            sum(p > 1 for p in partitions) > 1:
        raise ValueError(f"the partitioner of {name} returned {partitions} for shape "
                         f"{shape}: it must give one positive count per axis, more than 1 on "
                         "at most one axis")
    axis = next((i for i, p in enumerate(partitions) if p > 1), 0)
    count = partitions[axis] if shape else 1
    parts, offset = [], 0
    for i, size in enumerate(part_sizes(shape[axis], count) if shape else [None]):
        if size is None:
            piece = initial
        else:
            index = tuple([slice(None)] * axis + [slice(offset, offset + size)])
            piece = initial[index]
            offset += size
        parts.append(make_part(piece, f"{name}/part_{i}"))
    return PartitionedVariable(name, shape, dtype, parts, partitions)
