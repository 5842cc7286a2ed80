"""``tf.TensorArray``: a list of same-shaped tensors that a ``tf.while_loop`` can fill.

TensorFlow 1 keeps a TensorArray in a runtime resource and threads a scalar "flow"
through the ops that touch it. tracejit compiles static shapes, so a TensorArray here
*is* its values: one tensor ``[capacity, *element_shape]`` (the *buffer*). Each method
records ordinary differentiable ops on it and returns a new TensorArray object, as TF's
methods do: ``write`` puts one row (gather/scatter_add, so only that row is touched),
``read`` and ``gather`` take rows, ``stack`` is the buffer, ``unstack`` makes it.
``tf.while_loop`` carries the buffer as a loop variable (loop_arrays.py), so a loop that
writes one element per iteration compiles to one native loop, and ``tf.gradients``
flows through ``write``/``read``/``stack``/``unstack`` like through any other op.

>>> import numpy as np, tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2))
...     ta = tf.TensorArray(tf.float32, size=3)
...     _, ta = tf.while_loop(lambda i, ta: i < 3,
...                           lambda i, ta: (i + 1, ta.write(i, x[i] * 2.0)), [0, ta])
...     with tf.Session() as sess:
...         sess.run(ta.stack()).tolist()
[[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]]

Where it differs from TensorFlow (static shapes): every element has one shape (``split``
into unequal lengths keeps them padded and needs static indices to read); an index
outside the array that only the running program knows is clamped, not an error; a
``dynamic_size`` array grows at writes whose index is known while the graph is built,
and inside a ``tf.while_loop`` it holds ``maximum_iterations`` more elements (see
docs/rnn.md). Writing an index twice keeps the last value (TF 1 refuses).
"""

from __future__ import annotations

import copy

import numpy as np

from ...ir import dtypes as dt
from ...trace import array_ops, math_ops
from .graph import Tensor, ancestor_ops, get_default_graph
from .ops import convert_to_tensor, graph_arg, graph_op
from .ops import ops as tf_ops
from .shapes import TensorShape
from .tensor_array_ops import TENSOR_ARRAY_OPS as _OPS

__all__ = ["TensorArray", "static_value"]


def static_value(value):
    """The value of ``value`` known while the graph is built (a Python number, a
    constant, something computed from known shapes) as a NumPy array, else None."""
    value = graph_arg(value)
    if not isinstance(value, Tensor):
        return None if value is None else np.asarray(value)
    if any(op.type == "PlaceholderWithDefault" for op in ancestor_ops([value.op], set())):
        return None      # its default, unless it is fed
    found = list(value.probe_known.values())
    if found and all(np.array_equal(found[0], other) for other in found[1:]):
        return np.asarray(found[0])
    return None


def _static_int(value):
    found = static_value(value)
    return None if found is None or found.size != 1 else int(found.reshape(()))


_KEEP = object()     # with_flows: the capacity stays


# ---- the TensorArray ---------------------------------------------------------------------------

class TensorArray:
    """``tf.TensorArray(dtype, size, dynamic_size=False, element_shape=None, ...)``.

    ``size``: the number of elements (an int or an int32 scalar known when the graph
    runs: a constant or computed from shapes). ``clear_after_read``, ``infer_shape``
    (elements always share one shape here) and ``colocate_with_first_write_call`` are
    accepted. Without a fully known ``element_shape`` the first write decides it."""

    def __init__(self, dtype, size=None, dynamic_size=None, clear_after_read=None,
                 tensor_array_name=None, handle=None, flow=None, infer_shape=True,
                 element_shape=None, colocate_with_first_write_call=True, name=None):
        if handle is not None or flow is not None:
            raise ValueError("tracejit's TensorArray holds its values itself: build it with "
                             "size= (and element_shape=), not from another's handle or flow")
        if size is None:
            raise ValueError("Size must be provided if handle is not provided")
        self._dtype = dt.as_dtype(dtype)
        self._dynamic = bool(dynamic_size)
        self._element_shape = TensorShape(element_shape)
        self._lengths = None          # the elements' lengths after an uneven split
        graph = get_default_graph()
        with graph.name_scope(name or tensor_array_name or "TensorArray"):
            self._size = convert_to_tensor(size, dt.int32)
            if self._size.shape.ndims not in (None, 0):
                raise ValueError(f"TensorArray size must be a scalar, got shape "
                                 f"{self._size.shape}")
            self._count = self._size if self._dynamic else None
            # its number of rows where known while the graph is built (a dynamic
            # array's grows), for the buffer's static shape
            self._capacity = _static_int(self._size)
            if self._element_shape.is_fully_defined():
                self._lazy = False
                self._buffer = _OPS["zeros"](self._size, tuple(self._element_shape.dims),
                                             self._dtype)
            else:
                # NOTE: the first write (or, in a loop, a probe of the body: loop_arrays.py)
                # decides the element shape; the buffer is a stand-in until then.
                self._lazy = True
                self._buffer = _OPS["unwritten"](self._size, self._dtype)
                self._buffer._shape = self._buffer_shape(self._element_shape)

    # ---- what it is ---------------------------------------------------------------------

    @property
    def dtype(self) -> dt.DType:
        return self._dtype

    @property
    def element_shape(self) -> TensorShape:
        return self._element_shape

    @property
    def dynamic_size(self) -> bool:
        return self._dynamic

    @property
    def flow(self) -> Tensor:
        """The buffer ``[capacity, *element_shape]`` (TensorFlow's flow is a scalar that
        orders the ops; here the values themselves carry that order)."""
        return self._buffer

    handle = flow

    def flows(self) -> list[Tensor]:
        """What a loop carries: the buffer, and a dynamic array's element count."""
        return [self._buffer] + ([self._count] if self._dynamic else [])

    def with_flows(self, flows, lazy=None, capacity=_KEEP) -> TensorArray:
        """This array holding ``flows`` (a loop's results) instead of its own; a grown
        buffer has ``capacity`` rows (None: known only when the step is traced)."""
        flows = list(flows)
        out = self._derive(flows[0], flows[1] if self._dynamic else None, lazy=lazy)
        if capacity is not _KEEP:
            out._capacity = capacity
        return out

    @property
    def lazy(self) -> bool:
        """Whether the buffer is still the stand-in of an unwritten array whose element
        shape is not fully known."""
        return self._lazy

    def _derive(self, buffer, count=None, element_shape=None, lazy=False, lengths=None):
        out = copy.copy(self)
        out._buffer = buffer
        out._count = count
        out._lazy = self._lazy if lazy is None else lazy
        out._lengths = lengths
        if element_shape is not None:
            out._element_shape = TensorShape(element_shape)
        return out

    def _buffer_shape(self, element_shape: TensorShape) -> TensorShape:
        capacity = _static_int(self._size)
        if element_shape.dims is None:
            return TensorShape(None)
        return TensorShape([capacity, *element_shape.dims])

    def size(self, name=None) -> Tensor:
        """The number of elements: ``size``, or for a dynamic array one past the largest
        index written."""
        return graph_op(math_ops.cast, "TensorArraySizeV3")(
            self._count if self._dynamic else self._size, dt.int32, name=name)

    def identity(self) -> TensorArray:
        return self._derive(graph_op(array_ops.identity, "Identity")(self._buffer),
                            None if self._count is None else
                            graph_op(array_ops.identity, "Identity")(self._count),
                            lazy=self._lazy, lengths=self._lengths)

    def close(self, name=None):
        from .ops import no_op
        return no_op(name=name or "TensorArrayCloseV3")

    # ---- writing ------------------------------------------------------------------------

    def _value(self, value, what: str) -> Tensor:
        value = graph_arg(value)
        if isinstance(value, Tensor):
            if value.dtype is not self._dtype:
                raise TypeError(f"TensorArray dtype is {self._dtype.name} but Op is trying to "
                                f"{what} dtype {value.dtype.name}")
            return value
        return convert_to_tensor(value, dtype=self._dtype)

    def _merged_shape(self, shape: TensorShape) -> TensorShape:
        if not self._element_shape.is_compatible_with(shape):
            raise ValueError(f"Inconsistent shapes: saw {shape} but expected "
                             f"{self._element_shape} (tracejit's TensorArray stores elements "
                             "of one shape)")
        return self._element_shape.merge_with(shape)

    def _check_index(self, index, what: str) -> None:
        found = static_value(index)
        capacity = _static_int(self._size)
        if found is None or capacity is None or self._dynamic:
            return
        for k in np.asarray(found).reshape(-1).tolist():
            if k < 0 or k >= capacity:
                raise ValueError(f"Tried to {what} index {k} but array is not resizeable "
                                 f"and size is: {capacity}")

    def write(self, index, value, name=None) -> TensorArray:
        """Element ``index`` set to ``value``."""
        value = self._value(value, "write")
        shape = self._merged_shape(value.shape)
        self._check_index(index, "write to")
        buffer, count = _OPS["write"](self._buffer, self._count, index, value, self._rows(),
                                      self._lazy, self._dynamic, name=name)
        return self._grown_to(index, self._derive(self._static(buffer, shape), count, shape))

    def scatter(self, indices, value, name=None) -> TensorArray:
        """Elements ``indices[k]`` set to ``value[k]``."""
        value = self._value(value, "scatter")
        if value.shape.ndims == 0:
            raise ValueError("the value scattered into a TensorArray must have rank >= 1")
        shape = self._merged_shape(value.shape[1:] if value.shape.dims is not None
                                   else TensorShape(None))
        self._check_index(indices, "write to")
        buffer, count = _OPS["scatter"](self._buffer, self._count, indices, value,
                                        self._rows(), self._lazy, self._dynamic, name=name)
        return self._grown_to(indices, self._derive(self._static(buffer, shape), count,
                                                    shape))

    def _static(self, buffer: Tensor, element_shape: TensorShape) -> Tensor:
        """``buffer`` with its static shape, where this array's was unknown (the probe of
        a buffer of unknown rank does not know it)."""
        if self._lazy and self._buffer.shape.dims is None and element_shape.dims is not None:
            buffer._shape = TensorShape([self._capacity, *element_shape.dims])
        return buffer

    def _rows(self):
        """The buffer's number of rows: static where known, else the size tensor."""
        return self._size if self._capacity is None else self._capacity

    def _grown_to(self, indices, array: TensorArray) -> TensorArray:
        found = static_value(indices)
        if self._dynamic and array._capacity is not None and found is not None and found.size:
            array._capacity = max(array._capacity, int(found.max()) + 1)
        return array

    def unstack(self, value, name=None) -> TensorArray:
        """Element ``k`` set to ``value[k]`` for every ``k`` along the first axis."""
        value = self._value(value, "unstack")
        if value.shape.ndims == 0:
            raise ValueError("the value unstacked into a TensorArray must have rank >= 1")
        shape = self._merged_shape(value.shape[1:] if value.shape.dims is not None
                                   else TensorShape(None))
        rows, capacity = value.shape.dims[0] if value.shape.dims else None, \
            _static_int(self._size)
        if not self._dynamic and rows is not None and capacity is not None and rows > capacity:
            raise ValueError(f"Tried to write to index {rows - 1} but array is not "
                             f"resizeable and size is: {capacity}")
        buffer = _OPS["unstack"](value, self._size, self._dynamic, name=name)
        out = self._derive(buffer, None, shape)
        if self._dynamic:
            out._count = tf_ops["maximum"](self._count, tf_ops["shape"](value)[0])
            out._capacity = None if rows is None or capacity is None else max(rows, capacity)
        return out

    def split(self, value, lengths, name=None) -> TensorArray:
        """Element ``k`` set to the ``k``-th piece of ``value`` cut along its first axis
        into ``lengths`` (known while the graph is built)."""
        value = self._value(value, "split")
        found = static_value(lengths)
        if found is None:
            raise ValueError("split: lengths must be known while the graph is built (tracejit "
                             "gives every element a static shape)")
        lengths = tuple(int(n) for n in np.asarray(found).reshape(-1))
        capacity = _static_int(self._size)
        if not self._dynamic and capacity is not None and len(lengths) > capacity:
            raise ValueError(f"Tried to write to index {len(lengths) - 1} but array is not "
                             f"resizeable and size is: {capacity}")
        widest = max(lengths, default=0)
        rest = value.shape.dims[1:] if value.shape.dims is not None else None
        shape = self._merged_shape(TensorShape(None if rest is None else [widest, *rest]))
        uneven = len(set(lengths)) > 1
        buffer = _OPS["split"](value, lengths, self._size, self._dynamic, name=name)
        out = self._derive(buffer, None, None if uneven else shape,
                           lengths=lengths if uneven else None)
        if self._dynamic:
            out._count = tf_ops["maximum"](self._count, len(lengths))
            out._capacity = None if capacity is None else max(capacity, len(lengths))
        return out

    # ---- reading ------------------------------------------------------------------------

    def _check_written(self) -> None:
        if self._lazy:
            raise ValueError("this TensorArray is read before anything is written to it and "
                             f"its element_shape {self._element_shape} is not fully known, so "
                             "the shape of what it holds is unknown: give TensorArray(..., "
                             "element_shape=...)")

    def read(self, index, name=None) -> Tensor:
        """Element ``index``."""
        self._check_index(index, "read from")
        self._check_written()
        out = _OPS["read"](self._buffer, index, self._lengths, name=name)
        if self._lengths is None:
            out.set_shape(self._element_shape)
        return out

    def gather(self, indices, name=None) -> Tensor:
        """Elements ``indices``, stacked."""
        self._check_index(indices, "read from")
        self._check_written()
        return _OPS["gather"](self._buffer, indices, name=name)

    def stack(self, name=None) -> Tensor:
        """All elements stacked along a new first axis."""
        self._check_written()
        return _OPS["stack"](self._buffer, self._count, name=name)

    def concat(self, name=None) -> Tensor:
        """All elements concatenated along their first axis."""
        self._check_written()
        return _OPS["concat"](self._buffer, self._count, self._lengths, name=name)

    def __repr__(self) -> str:
        return (f"<tf.TensorArray dtype={self._dtype.name} size={_static_int(self._size)} "
                f"element_shape={self._element_shape}>")
