"""Embeddings in a TF1 graph: ``tf.nn.embedding_lookup`` (a table or a list of its
partitions), ``tf.gather`` with TF1's signature, and
``tf.IndexedSlices``, the row-sparse gradient ``tf.gradients`` gives a table read only
through lookups (see docs/embeddings.md)."""

from __future__ import annotations

from ...ir.errors import ParamError
from ...ir.source import user_location
from ...trace import array_ops, embedding_ops
from ...trace.indexed_slices import IndexedSlices
from .ops import graph_op
from .partitioned import PartitionedVariable

__all__ = ["IndexedSlices", "IndexedSlicesValue", "embedding_lookup", "gather"]

# NOTE: Session.run of an IndexedSlices gives one of NumPy arrays, TF's IndexedSlicesValue
IndexedSlicesValue = IndexedSlices


def _lookup(params, ids, partition_strategy="mod", max_norm=None):
    return embedding_ops.embedding_lookup(params, ids, partition_strategy,
                                          max_norm=max_norm)


_lookup_op = graph_op(_lookup, "EmbeddingLookup")


def embedding_lookup(params, ids, partition_strategy="mod", name=None, validate_indices=True,
                     max_norm=None):
    """``tf.nn.embedding_lookup``: the rows of ``params`` (a table, a list of its
    partitions, or a ``PartitionedVariable``, whose parts are the partitions) at
    ``ids``. TensorFlow's default strategy is ``"mod"`` even for a PartitionedVariable,
    whose parts hold contiguous rows: pass ``partition_strategy="div"`` for those."""
    if isinstance(params, PartitionedVariable):
        params = list(params)
    return _lookup_op(params, ids, partition_strategy, max_norm=max_norm,
                      name=name or "embedding_lookup")


def _gather(params, indices, validate_indices=None, name=None, axis=None, batch_dims=0):
    if batch_dims != 0:
        raise ParamError(f"gather: batch_dims={batch_dims} is not supported (only 0)",
                         op="gather", location=user_location())
    return array_ops.gather(params, indices, 0 if axis is None else axis)


gather = graph_op(_gather, "GatherV2")
