"""Embedding lookups (``tf.nn.embedding_lookup``): rows of a table, or of a table split
into several partitions, at integer ids.

A table given as a list of partitions is addressed as TensorFlow addresses it: with
``partition_strategy="mod"`` id ``i`` is row ``i // n`` of partition ``i % n``; with
``"div"`` the ids are cut into contiguous ranges, the first ``total % n`` partitions one
row longer than the others. Each partition is read with one ``gather`` of every id,
those of other partitions pointed one past its last row; a select keeps each id's own
partition's row. So the gradient of partition ``p`` is a row gradient
(``IndexedSlices``) whose rows for other partitions' ids are zero and whose indices
for them are out of range, which ``to_dense`` and the optimizers skip.

>>> import numpy as np, tracejit as tj
>>> parts = [np.array([[0.], [2.], [4.]], np.float32), np.array([[1.], [3.]], np.float32)]
>>> np.asarray(embedding_lookup(parts, np.array([3, 0, 4]))).ravel().tolist()
[3.0, 0.0, 4.0]
"""

from __future__ import annotations

from ..ir.errors import DTypeError, ParamError, ShapeError
from ..ir.source import user_location
from . import math_ops as m
from .array_ops import gather, reshape
from .clip_ops import clip_by_norm
from .tracing import to_tensor


def _fail(error, message: str, op: str = "embedding_lookup"):
    raise error(message, op=op, location=user_location())


def _partition_of(flat_ids, sizes: list[int], strategy: str):
    """(partition, row within it) of each id, by TensorFlow's ``mod`` or ``div`` rule."""
    count = len(sizes)
    if strategy == "mod":
        return flat_ids % count, flat_ids // count
    if strategy == "div":
        total = sum(sizes)
        per_partition, extras = total // count, total % count
        if per_partition == 0:
            _fail(ShapeError, f"partition_strategy 'div' needs at least one row per "
                  f"partition: {total} rows in {count} partitions")
        partition = m.maximum(flat_ids // (per_partition + 1),
                              (flat_ids - extras) // per_partition)
        row = m.where(m.less(partition, extras), flat_ids % (per_partition + 1),
                      (flat_ids - extras) % per_partition)
        return partition, row
    _fail(ParamError, f"Unrecognized partition strategy: {strategy!r}; must be 'mod' or "
          "'div'")


def _checked_tables(params) -> list:
    tables = [to_tensor(p) for p in (params if isinstance(params, (list, tuple)) else [params])]
    if not tables:
        _fail(ParamError, "Need at least one param")
    first = tables[0]
    for table in tables:
        if table.ndim < 1:
            _fail(ShapeError, f"params must have at least one dimension, got {table.type}")
        if table.dtype is not first.dtype or table.shape[1:] != first.shape[1:]:
            _fail(ShapeError, f"all partitions of params must share a dtype and a row shape: "
                  f"{first.type} and {table.type}")
    return tables


def embedding_lookup(params, ids, partition_strategy="mod", name=None, validate_indices=True,
                     max_norm=None):
    """The rows of ``params`` at ``ids``: shape ``ids.shape + params.shape[1:]``.

    ``params`` is a table or a list of its partitions (see the module's note on
    ``partition_strategy``). With ``max_norm``, each row looked up whose l2 norm exceeds
    it is scaled down to it. Ids outside the table read its nearest row (a compiled
    kernel cannot raise), and their gradient rows are dropped."""
    tables = _checked_tables(params)
    ids = to_tensor(ids)
    if not ids.dtype.is_integer:
        _fail(DTypeError, f"ids must be integers, got {ids.type}")
    row_shape = tables[0].shape[1:]
    if len(tables) == 1:
        result = gather(tables[0], ids)
    else:
        flat = reshape(ids, (-1,))
        partition, row = _partition_of(flat, [t.shape[0] for t in tables], partition_strategy)
        result = None
        for p, table in enumerate(tables):
            mine = m.equal(partition, p)
            # NOTE: other partitions' ids point one past the last row: the read clamps,
            # the select drops it, and the gradient's index for it is out of range
            rows = gather(table, m.where(mine, row, table.shape[0]))
            if result is None:
                result = rows
            else:
                keep = reshape(mine, mine.shape + (1,) * len(row_shape))
                result = m.where(keep, rows, result)
        result = reshape(result, ids.shape + row_shape)
    if max_norm is not None:
        result = clip_by_norm(result, max_norm, axes=tuple(range(ids.ndim, result.ndim)))
    return result
