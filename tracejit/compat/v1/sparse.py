"""``tf.SparseTensor``: a tensor given by the ``indices`` (int64, ``[n, rank]``) and
``values`` (``[n]``) of its set entries and its ``dense_shape`` (int64, ``[rank]``), as
``tf.VarLenFeature`` parses. ``Session.run`` of one gives a :class:`SparseTensorValue`
of arrays; ``tf.sparse_tensor_to_dense`` makes the dense tensor (a host op)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .graph import Tensor
from .host_ops import host_op
from .ops import convert_to_tensor


class SparseTensorValue(NamedTuple):
    """A fetched sparse tensor: NumPy ``indices``, ``values``, ``dense_shape``."""

    indices: Any
    values: Any
    dense_shape: Any


class SparseTensor(NamedTuple):
    """A sparse tensor of three graph tensors (a NamedTuple, so that ``Session.run``
    fetches its parts)."""

    indices: Any
    values: Any
    dense_shape: Any

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def shape(self):
        return self.dense_shape

    @property
    def op(self):
        return self.values.op

    @property
    def graph(self):
        return self.values.graph


def sparse_tensor_to_dense(sp_input, default_value=0, validate_indices=True, name=None):
    """The dense tensor of a :class:`SparseTensor`: ``default_value`` where no entry is
    set. The dense shape is known only when the graph runs (a host op)."""
    parts = [p if isinstance(p, Tensor) else convert_to_tensor(p) for p in sp_input]
    dtype = parts[1].dtype
    rank = parts[0].shape.dims[1] if parts[0].shape.dims and len(parts[0].shape.dims) == 2 \
        else None

    def compute(session, values):
        indices, entries, shape = (np.asarray(v) for v in values)
        base = np.asarray(default_value, dtype=entries.dtype if entries.dtype != object
                          else object)
        out = np.full(tuple(int(d) for d in shape), base, dtype=base.dtype)
        if len(entries):
            out[tuple(indices.T)] = entries
        return [out]

    op = host_op("SparseToDense", compute, parts,
                 [(dtype, None if rank is None else [None] * rank)],
                 name=name or "SparseToDense")
    return op.outputs[0]
