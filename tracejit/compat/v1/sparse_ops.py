"""Ops on ``tf.SparseTensor`` (sparse.py): ``tf.sparse_tensor_dense_matmul``,
``tf.sparse_to_dense``, ``tf.sparse_reduce_sum``, ``tf.sparse_add``,
``tf.sparse_placeholder``, and their ``tf.sparse.*`` names.

Their results' shapes come from the sparse tensor's ``dense_shape``, so it must be
known when the step is traced: a constant (``tf.SparseTensor(..., dense_shape=[3, 3])``),
something computed from shapes, or a ``tf.sparse_placeholder``'s, which the Session
passes as the shape of an empty array it feeds (each fed dense shape compiles once,
like each fed shape). The computation is in the step, from existing ops: a product
gathers the rows of ``b`` the entries name and scatter-adds ``value * row`` into the
result (O(nnz * columns)), and gradients flow to ``b`` and to ``values``.
``sparse_add`` of two sparse tensors (whose result has a data-dependent number of
entries) runs on the host.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     a = tf.SparseTensor([[0, 1], [1, 0]], [2.0, 3.0], [2, 2])
...     y = tf.sparse_tensor_dense_matmul(a, tf.constant([[1.0], [10.0]]))
...     with tf.Session() as sess:
...         sess.run(y).tolist()
[[20.0], [3.0]]
"""

from __future__ import annotations

import math

import numpy as np

from ...ir import dtypes as dt
from ...ir.errors import DTypeError, ParamError, ShapeError
from ...ir.source import user_location
from ...trace import array_ops, math_ops
from ...trace.autodiff import custom_gradient
from ...trace.indexed_slices import scatter_add
from ...trace.tracing import cast, static_ints, to_tensor
from .graph import Tensor
from .host_ops import host_op
from .ops import convert_to_tensor, graph_arg, graph_op, ops, placeholder
from .sparse import SparseTensor, sparse_tensor_to_dense

__all__ = ["sparse_tensor_dense_matmul", "sparse_to_dense", "sparse_reduce_sum",
           "sparse_add", "sparse_placeholder", "to_dense"]


def _fail(error, message: str, op: str):
    raise error(message, op=op, location=user_location())


def _parts(sp, op: str) -> list[Tensor]:
    if not isinstance(sp, SparseTensor):
        raise TypeError(f"{op}: expected a tf.SparseTensor, got {type(sp).__name__}")
    indices, values, shape = (convert_to_tensor(graph_arg(p)) for p in sp)
    if not indices.dtype.is_integer or not shape.dtype.is_integer:
        _fail(DTypeError, f"indices and dense_shape must be integers, got "
                          f"{indices.dtype.name} and {shape.dtype.name}", op)
    return [indices, values, shape]


def _dense_shape(shape, indices, op: str, rank: int | None = None):
    """``(dims, indices)``: the dense shape's values (``rank`` of them when the op needs
    that many) and the indices to use with them."""
    try:
        dims = static_ints(shape, "the dense_shape of the sparse tensor", op)
    except ParamError:
        _fail(ParamError, "the dense_shape of the sparse tensor must be known when the step "
                          "is traced: build the SparseTensor with a constant dense_shape or "
                          "feed it through tf.sparse_placeholder", op)
    if not dims:
        # NOTE: no sparse tensor has rank 0: this is the stand-in for a sparse_placeholder
        # of unknown rank while the graph is built. Its sizes are unknown (stand-ins too)
        # and it counts as a matrix there (static shapes only; a run knows the fed rank)
        rank = rank or 2
        n = indices.shape[0] if indices.ndim else 1
        return (n,) * rank, array_ops.zeros([n, rank], indices.dtype)
    return dims, indices


def _flat_index(indices, shape: tuple[int, ...], axes) -> object:
    """The row-major position of each entry in ``shape`` restricted to ``axes``."""
    flat = None
    stride = 1
    for axis in reversed(axes):
        term = cast(indices[:, axis], dt.int64) * stride
        flat = term if flat is None else flat + term
        stride *= shape[axis]
    return flat if flat is not None else array_ops.zeros([indices.shape[0]], dt.int64)


# ---- sparse x dense ----------------------------------------------------------------------

def _matmul(indices, values, shape, b, adjoint_a=False, adjoint_b=False):
    op = "sparse_tensor_dense_matmul"
    dims, indices = _dense_shape(shape, indices, op, rank=2)
    if len(dims) != 2 or b.ndim != 2:
        _fail(ShapeError, f"needs a sparse matrix and a dense matrix, got a sparse tensor of "
                          f"dense shape {list(dims)} and {b.type}", op)
    rows, cols = dims
    if not static_ints(shape, "dense_shape", op):
        # NOTE: the stand-in of an unknown dense shape (see _dense_shape): it fits b
        inner = b.shape[1] if adjoint_b else b.shape[0]
        rows, cols = (inner, rows) if adjoint_a else (rows, inner)
    if b.dtype is not values.dtype:
        _fail(DTypeError, f"values and b must have one dtype, got {values.dtype.name} and "
                          f"{b.dtype.name}", op)
    out_axis, in_axis = (1, 0) if adjoint_a else (0, 1)
    n_out, n_in = (cols, rows) if adjoint_a else (rows, cols)
    width = b.shape[0] if adjoint_b else b.shape[1]
    if (b.shape[1] if adjoint_b else b.shape[0]) != n_in:
        _fail(ShapeError, f"Dimensions must be equal, but are {n_in} and "
                          f"{b.shape[1] if adjoint_b else b.shape[0]} (the sparse matrix is "
                          f"[{rows}, {cols}], b is {list(b.shape)}, adjoint_a={adjoint_a}, "
                          f"adjoint_b={adjoint_b})", op)
    out_at, in_at = indices[:, out_axis], indices[:, in_axis]

    def oriented(dense):
        return array_ops.transpose(dense) if adjoint_b else dense

    @custom_gradient
    def product(vals, dense):
        rows_of_b = array_ops.gather(oriented(dense), in_at, axis=0)          # [nnz, k]
        out = scatter_add(array_ops.zeros([n_out, width], b.dtype), out_at,
                          array_ops.expand_dims(vals, 1) * rows_of_b)

        def gradient(ct):
            # NOTE: TensorFlow's: d values = <ct row, b row> per entry, d b = A^T ct (dense)
            ct_rows = array_ops.gather(ct, out_at, axis=0)
            d_vals = math_ops.reduce_sum(ct_rows * rows_of_b, axis=1)
            d_b = scatter_add(array_ops.zeros([n_in, width], b.dtype), in_at,
                              array_ops.expand_dims(vals, 1) * ct_rows)
            return d_vals, oriented(d_b)
        return out, gradient

    return product(values, b)


def sparse_tensor_dense_matmul(sp_a, b, adjoint_a=False, adjoint_b=False, name=None):
    """``A @ b`` for a sparse matrix ``A`` (``A^T``/``b^T`` with the adjoint flags; real
    values, so adjoint is transpose). Entries with equal indices add up."""
    parts = _parts(sp_a, "sparse_tensor_dense_matmul")
    return graph_op(_matmul, "SparseTensorDenseMatMul")(
        *parts, convert_to_tensor(graph_arg(b)), adjoint_a=bool(adjoint_a),
        adjoint_b=bool(adjoint_b), name=name or "SparseTensorDenseMatMul")


# ---- to dense ----------------------------------------------------------------------------

def _scatter_dense(indices, values, shape, default, op: str):
    """The dense tensor: ``values`` at ``indices`` (entries with equal indices add up),
    ``default`` elsewhere; entries outside ``shape`` are dropped."""
    size = math.prod(shape)
    flat = _flat_index(indices, shape, range(len(shape)))
    inside = None
    for axis, n in enumerate(shape):
        column = cast(indices[:, axis], dt.int64)
        ok = math_ops.logical_and(column >= 0, column < n)
        inside = ok if inside is None else math_ops.logical_and(inside, ok)
    if inside is not None:
        flat = math_ops.where(inside, flat, array_ops.zeros_like(flat))
        values = math_ops.where(inside, values, array_ops.zeros_like(values))
    hits = scatter_add(array_ops.zeros([size], dt.int32), flat,
                       cast(inside, dt.int32) if inside is not None else
                       array_ops.ones([flat.shape[0]], dt.int32))
    total = scatter_add(array_ops.zeros([size], values.dtype), flat, values)
    dense = math_ops.where(hits > 0, total, cast(default, values.dtype))
    return array_ops.reshape(dense, shape)


def _to_dense(indices, values, shape, default_value=0):
    op = "sparse_to_dense"
    values = to_tensor(values)
    indices = to_tensor(indices)
    if indices.ndim == 0:
        indices = array_ops.reshape(indices, [1, 1])
    elif indices.ndim == 1:
        indices = array_ops.expand_dims(indices, 1)
    shape, indices = _dense_shape(shape, indices, op)
    if indices.ndim != 2 or indices.shape[1] != len(shape):
        _fail(ShapeError, f"sparse_indices {indices.type} do not index a tensor of shape "
                          f"{list(shape)}", op)
    if values.ndim == 0:
        values = array_ops.broadcast_to(values, [indices.shape[0]])
    elif values.shape != (indices.shape[0],):
        _fail(ShapeError, f"sparse_values {values.type} must be a scalar or have one value "
                          f"per index ({indices.shape[0]})", op)
    return _scatter_dense(indices, values, shape, to_tensor(default_value), op)


def sparse_to_dense(sparse_indices, output_shape, sparse_values, default_value=0,
                    validate_indices=True, name=None):
    """TensorFlow's ``tf.sparse_to_dense``: a dense tensor of ``output_shape`` holding
    ``sparse_values`` at ``sparse_indices`` (a scalar, a vector, or [n, rank]) and
    ``default_value`` elsewhere."""
    args = [convert_to_tensor(graph_arg(v))
            for v in (sparse_indices, sparse_values, output_shape, default_value)]
    indices, values, shape, default = args
    _check_known_indices(indices, shape, "sparse_to_dense", validate_indices)
    return graph_op(_to_dense, "SparseToDense")(indices, values, shape, default,
                                                name=name or "SparseToDense")


def _check_known_indices(indices: Tensor, shape: Tensor, op: str, validate: bool) -> None:
    """TensorFlow's checks of indices known when the graph is built (constants): each in
    range, in row-major order, and none repeated."""
    known, dims = indices.probe_known.get(7), shape.probe_known.get(7)
    if not validate or known is None or dims is None or len(indices.probe_known) > 1:
        return
    known = np.asarray(known).reshape(len(np.asarray(known).reshape(-1)), -1) \
        if np.ndim(known) < 2 else np.asarray(known)
    dims = np.asarray(dims).reshape(-1)
    if known.shape[1] != len(dims):
        return
    for i, index in enumerate(known.tolist()):
        if any(not 0 <= v < d for v, d in zip(index, dims, strict=True)):
            _fail(ShapeError, f"indices[{i}] = {index} is out of bounds: need 0 <= index < "
                              f"{dims.tolist()}", op)
        if i and index == known[i - 1].tolist():
            _fail(ShapeError, f"indices[{i}] = {index} is repeated", op)
        if i and index < known[i - 1].tolist():
            _fail(ShapeError, f"indices[{i}] = {index} is out of order", op)


def to_dense(sp_input, default_value=0, validate_indices=True, name=None):
    """``tf.sparse.to_dense``: in the step when the dense shape is known there and the
    values are numbers (so it has a gradient); on the host otherwise (strings)."""
    parts = _parts(sp_input, "sparse.to_dense")
    indices, values, shape = parts
    if values.dtype.name == "string" or (not shape.probe_known and
                                          getattr(shape, "shape_carrier", None) is None):
        return sparse_tensor_to_dense(sp_input, default_value, validate_indices, name)
    return graph_op(_to_dense, "SparseToDense")(indices, values, shape,
                                                convert_to_tensor(default_value),
                                                name=name or "SparseToDense")


# ---- reductions ----------------------------------------------------------------------------

def _reduce_sum(indices, values, shape, axis=None, keepdims=False):
    op = "sparse_reduce_sum"
    if axis is None and not keepdims:
        return math_ops.reduce_sum(values)
    dims, indices = _dense_shape(shape, indices, op)
    if axis is None:
        return array_ops.reshape(math_ops.reduce_sum(values), [1] * len(dims))
    rank = len(dims)
    axes = sorted({a % rank for a in static_ints(axis, "axis", op)})
    kept = [a for a in range(rank) if a not in axes]
    kept_shape = [dims[a] for a in kept]
    flat = _flat_index(indices, dims, kept)
    summed = scatter_add(array_ops.zeros([math.prod(kept_shape)], values.dtype), flat, values)
    out_shape = [1 if a in axes else dims[a] for a in range(rank)] if keepdims else kept_shape
    return array_ops.reshape(summed, out_shape)


def sparse_reduce_sum(sp_input, axis=None, keepdims=None, reduction_axes=None,
                      keep_dims=None, name=None):
    """The sum of the entries over ``axis`` (all axes when None), as a dense tensor."""
    if reduction_axes is not None:      # the TF 1.x spellings
        axis = reduction_axes
    keepdims = bool(keep_dims if keepdims is None else keepdims)
    parts = _parts(sp_input, "sparse_reduce_sum")
    return graph_op(_reduce_sum, "SparseReduceSum")(*parts, axis=axis, keepdims=keepdims,
                                                    name=name or "SparseReduceSum")


# ---- sparse + sparse, sparse + dense -----------------------------------------------------

def _merge_on_host(thresh):
    def compute(session, values):
        ai, av, ashape, bi, bv, bshape = (np.asarray(v) for v in values)
        if ashape.tolist() != bshape.tolist():
            raise ValueError(f"sparse_add: operands have dense shapes {ashape.tolist()} and "
                             f"{bshape.tolist()}")
        merged: dict[tuple, list] = {}
        for index, value in zip(map(tuple, ai.tolist()), av, strict=True):
            merged[index] = [value, False]
        for index, value in zip(map(tuple, bi.tolist()), bv, strict=True):
            if index in merged:
                merged[index] = [merged[index][0] + value, True]
            else:
                merged[index] = [value, False]
        # NOTE: TensorFlow's rule: the threshold drops only sums of entries both have
        keep = sorted(k for k, (v, both) in merged.items() if not both or abs(v) >= thresh)
        indices = np.array(keep, np.int64).reshape(len(keep), len(ashape))
        out = np.array([merged[k][0] for k in keep], dtype=av.dtype)
        return [indices, out, ashape.astype(np.int64)]
    return compute


def sparse_add(a, b, thresh=0, name=None):
    """``a + b``: a dense tensor when one is dense; a SparseTensor (merged entries in
    row-major order, sums of shared entries below ``thresh`` in magnitude dropped) when
    both are sparse."""
    if isinstance(a, SparseTensor) and isinstance(b, SparseTensor):
        pa, pb = _parts(a, "sparse_add"), _parts(b, "sparse_add")
        rank = pa[0].shape.dims[1] if pa[0].shape.dims else None
        op = host_op("SparseAdd", _merge_on_host(float(thresh)), pa + pb,
                     [(dt.int64, [None, rank]), (pa[1].dtype, [None]), (dt.int64, [rank])],
                     name=name or "SparseAdd")
        return SparseTensor(*op.outputs)
    sparse, dense = (a, b) if isinstance(a, SparseTensor) else (b, a)
    if not isinstance(sparse, SparseTensor):
        raise TypeError("sparse_add needs at least one tf.SparseTensor")
    return ops["add"](to_dense(sparse), dense, name=name)


# ---- placeholders --------------------------------------------------------------------------

def sparse_placeholder(dtype, shape=None, name=None) -> SparseTensor:
    """A SparseTensor to feed (a ``tf.SparseTensorValue`` or an ``(indices, values,
    dense_shape)`` tuple). A fully known ``shape`` is its constant dense shape; else the
    fed dense shape reaches the step as the shape of an empty array (so it is known
    while tracing), one compile per dense shape."""
    from .shapes import TensorShape
    static = TensorShape(shape) if shape is not None and not isinstance(shape, Tensor) \
        else TensorShape(None)
    rank = static.ndims
    prefix = f"{name}/" if name else ""
    values = placeholder(dtype, [None], name=f"{prefix}values" if name else None)
    indices = placeholder(dt.int64, [None, rank], name=f"{prefix}indices" if name else None)
    if static.is_fully_defined():
        dense_shape = ops["identity"](convert_to_tensor(np.array(static.dims, np.int64)),
                                      name=f"{prefix}shape")
    else:
        carrier = placeholder(dt.bool_, None if rank is None else [0] + list(static.dims),
                              name=f"{prefix}shape_carrier")
        dense_shape = ops["cast"](ops["shape"](carrier)[1:], dt.int64, name=f"{prefix}shape")
        # NOTE: a vector of rank entries (what probing an unknown-rank carrier says, 0, is
        # not), as placeholder_with_default sets its static shape
        dense_shape._shape = TensorShape([rank])
        dense_shape.shape_carrier = carrier
    return SparseTensor(indices, values, dense_shape)
