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

    def feed_items(self, value) -> list[tuple]:
        """What feeding ``value`` (a SparseTensorValue or an ``(indices, values,
        dense_shape)`` tuple) to this sparse tensor feeds: its parts; a
        sparse_placeholder's dense shape as the shape of an empty array (sparse_ops.py),
        a constant one is checked instead."""
        if not isinstance(value, tuple) or len(value) != 3:
            raise TypeError(f"a SparseTensor is fed a SparseTensorValue or an (indices, "
                            f"values, dense_shape) tuple, not {type(value).__name__}")
        indices, values, shape = value
        shape = [int(d) for d in np.asarray(shape).reshape(-1)]
        items = [(self.indices, indices), (self.values, values)]
        carrier = getattr(self.dense_shape, "shape_carrier", None)
        known = getattr(self.dense_shape, "probe_known", {})
        if carrier is not None:
            items.append((carrier, np.zeros([0] + shape, bool)))
        elif len(known) == 1:
            fixed = [int(d) for d in np.asarray(next(iter(known.values()))).reshape(-1)]
            if fixed != shape:
                raise ValueError(f"fed a dense shape {shape} to a SparseTensor of dense "
                                 f"shape {fixed}")
        else:
            items.append((self.dense_shape, shape))
        return items


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
