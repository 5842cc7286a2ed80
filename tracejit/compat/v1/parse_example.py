"""``tf.parse_single_example`` and ``tf.parse_example``: serialized ``tf.train.Example``
protos into tensors, run as host ops. A ``tf.FixedLenFeature`` gives a dense tensor of its
shape (its default where an example lacks it), a ``tf.FixedLenSequenceFeature`` a dense
tensor of as many items of its shape as the example has (padded in a batch), a
``tf.VarLenFeature`` a :class:`SparseTensor` of the values each example has.

>>> import tracejit.compat.v1 as tf
>>> ex = tf.train.Example(features=tf.train.Features(feature={
...     "x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0]))}))
>>> with tf.Graph().as_default():
...     parsed = tf.parse_single_example(ex.SerializeToString(),
...                                      {"x": tf.FixedLenFeature([2], tf.float32)})
...     with tf.Session() as sess:
...         sess.run(parsed["x"] * 2).tolist()
[2.0, 4.0]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...io.example import DecodeError, Example
from ...ir import dtypes as dt
from ...ir.source import user_location
from .host_ops import host_op
from .parsing import byte_strings, fail, string_input
from .readers import record_keys
from .sparse import SparseTensor
from .strings import string


class FixedLenFeature(NamedTuple):
    """A feature with ``shape`` values of ``dtype`` (float32, int64 or string) in every
    example; ``default_value`` (when given) stands in where one lacks it."""

    shape: Any
    dtype: Any
    default_value: Any = None


class VarLenFeature(NamedTuple):
    """A feature with any number of ``dtype`` values per example (a SparseTensor)."""

    dtype: Any


class FixedLenSequenceFeature(NamedTuple):
    """A feature with any number of items of ``shape`` per example: a dense tensor of
    ``[items] + shape`` (``parse_example``: ``[batch, most items] + shape``, shorter
    examples padded with ``default_value``, 0 or b"" when None). For Examples TensorFlow
    requires ``allow_missing=True`` (a missing feature has no items)."""

    shape: Any
    dtype: Any
    allow_missing: bool = False
    default_value: Any = None


_LISTS = {"float32": ("float_list", "float"), "int64": ("int64_list", "int64"),
          "string": ("bytes_list", "string")}
_KIND_NAMES = {kind: name for kind, name in _LISTS.values()}


def _dtype_name(dtype) -> str:
    name = dtype.name if dtype is string else dt.as_dtype(dtype).name
    if name not in _LISTS:
        raise ValueError(f"Unsupported dtype {name} for a feature: it must be float32, "
                         "int64 or string")
    return name


class _Spec:
    """One requested feature, checked when the graph is built."""

    def __init__(self, key: str, feature):
        self.key = key
        # dense: one fixed shape per example; sequence: items of a fixed shape
        self.dense = self.sequence = False
        if isinstance(feature, VarLenFeature):
            self.dtype_name = _dtype_name(feature.dtype)
        elif isinstance(feature, (FixedLenFeature, FixedLenSequenceFeature)):
            self.sequence = isinstance(feature, FixedLenSequenceFeature)
            self.dense = not self.sequence
            kind = type(feature).__name__
            if self.sequence and not feature.allow_missing:
                raise ValueError("Unsupported: FixedLenSequenceFeature requires "
                                 "allow_missing to be True.")
            self.dtype_name = _dtype_name(feature.dtype)
            shape = feature.shape
            shape = [] if shape is None else [shape] if isinstance(shape, int) else \
                list(getattr(shape, "dims", shape))
            if any(d is None or int(d) < 0 for d in shape):
                raise ValueError(f"Feature {key!r}: {kind} needs a fully defined "
                                 f"shape, not {shape}")
            self.shape = tuple(int(d) for d in shape)
            if self.sequence:
                self.default = self._padding(feature.default_value)
            else:
                self.default = None if feature.default_value is None else \
                    self._default(feature.default_value)
        else:
            raise TypeError(f"Feature {key!r}: {feature!r} is not a FixedLenFeature, "
                            "FixedLenSequenceFeature or VarLenFeature")
        self.list_name, self.type_text = _LISTS[self.dtype_name]
        self.dtype = string if self.dtype_name == "string" else dt.as_dtype(self.dtype_name)

    def _padding(self, value):
        """A sequence feature's padding value (one scalar)."""
        if value is None:
            return b"" if self.dtype_name == "string" else 0
        array = byte_strings(value) if self.dtype_name == "string" else np.asarray(value)
        if array.size != 1:
            raise ValueError(f"Feature {self.key!r}: the default_value of a "
                             "FixedLenSequenceFeature pads shorter examples: one scalar, "
                             f"not {array.size} values")
        return array.reshape(-1)[0]

    def _default(self, value) -> np.ndarray:
        if self.dtype_name == "string":
            array = byte_strings(value)
        else:
            array = np.asarray(value, dtype=np.float32 if self.dtype_name == "float32"
                               else np.int64)
        if array.size == 1:
            return np.broadcast_to(array.reshape(()), self.shape).copy()
        if array.size != int(np.prod(self.shape)):
            raise ValueError(f"Feature {self.key!r}: default_value has {array.size} "
                             f"values, the shape {list(self.shape)} takes "
                             f"{int(np.prod(self.shape))}")
        return array.reshape(self.shape)

    def values(self, example: Example, row: int, fail_at):
        """This feature's values in one example (a flat list), or None when absent."""
        feature = example.features.feature.get(self.key)
        if feature is None:
            return None
        kind = feature.WhichOneof("kind")
        if kind is None:
            return []
        if kind != self.list_name:
            actual = _KIND_NAMES[kind]
            if self.dense or self.sequence:
                fail_at(f"Key: {self.key}.  Data types don't match. Data type: {actual} "
                        f"but expected type: {self.type_text}", row)
            fail_at(f"Key: {self.key}.  Data types don't match. Expected type: "
                    f"{self.type_text}, Actual type: {actual}", row)
        return getattr(feature, kind).value


def _parse(serialized: bytes, row: int, fail_at) -> Example:
    try:
        return Example.FromString(serialized)
    except DecodeError:
        text = serialized[:40].decode("latin-1") + ("..." if len(serialized) > 40 else "")
        fail_at(f"Could not parse example input, value: '{text}'", row)


def _parse_examples(specs, texts: list[bytes], batch: bool, fail_at) -> list[np.ndarray]:
    """The outputs, in the order of ``specs``: one dense array per FixedLenFeature,
    ``indices``, ``values``, ``dense_shape`` per VarLenFeature."""
    examples = [_parse(text, row, fail_at) for row, text in enumerate(texts)]
    outputs = []
    for spec in specs:
        found = [spec.values(example, row, fail_at)
                 for row, example in enumerate(examples)]
        if spec.dense:
            rows = []
            for row, values in enumerate(found):
                if values is None:
                    if spec.default is None:
                        prefix = "Name: <unknown>, " if batch else ""
                        fail_at(f"{prefix}Feature: {spec.key} (data type: {spec.type_text})"
                                " is required but could not be found.", row)
                    rows.append(spec.default)
                    continue
                size = int(np.prod(spec.shape))
                if len(values) != size:
                    fail_at(f"Key: {spec.key}.  Can't parse serialized Example: "
                            f"{len(values)} values in {spec.list_name}, but the shape "
                            f"{list(spec.shape)} takes {size}", row)
                rows.append(_array(values, spec).reshape(spec.shape))
            stacked = np.stack(rows) if rows else np.zeros((0,) + spec.shape,
                                                           _np_type(spec))
            outputs.append(stacked if batch else stacked[0])
        elif spec.sequence:
            outputs.append(_sequences(spec, found, batch, fail_at))
        else:
            lists = [values or [] for values in found]
            width = max((len(v) for v in lists), default=0)
            indices = [[row, i] if batch else [i] for row, values in enumerate(lists)
                       for i in range(len(values))]
            flat = [v for values in lists for v in values]
            outputs += [np.array(indices, np.int64).reshape(len(flat), 2 if batch else 1),
                        _array(flat, spec),
                        np.array([len(texts), width] if batch else [width], np.int64)]
    return outputs


def _sequences(spec, found, batch: bool, fail_at) -> np.ndarray:
    """A FixedLenSequenceFeature's items, ``[items] + shape`` (batched: every example
    padded to the most items)."""
    size = int(np.prod(spec.shape))
    rows = []
    for row, values in enumerate(found):
        values = values or []
        if len(values) % size:
            fail_at(f"Error while parsing feature with key {spec.key}: number of elements "
                    f"should be divisible by {size}, found {len(values)} instead", row)
        rows.append(_array(values, spec).reshape((len(values) // size,) + spec.shape))
    if not batch:
        return rows[0]
    longest = max((len(r) for r in rows), default=0)
    out = np.empty((len(rows), longest) + spec.shape, _np_type(spec))
    out[...] = spec.default
    for row, items in enumerate(rows):
        out[row, :len(items)] = items
    return out


def _np_type(spec):
    return object if spec.dtype_name == "string" else spec.dtype.np_dtype


def _array(values, spec) -> np.ndarray:
    if spec.dtype_name != "string":
        return np.asarray(values, dtype=spec.dtype.np_dtype)
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _parse_op(serialized, features, batch: bool, name):
    what = "parse_example" if batch else "parse_single_example"
    tensor = string_input(serialized, what)
    dims = tensor.shape.dims
    if dims is not None and len(dims) != (1 if batch else 0):
        raise ValueError(f"{what}: serialized must be a {'vector' if batch else 'scalar'} "
                         f"of strings, not of shape {list(dims)}")
    if not features:
        raise ValueError(f"{what}: features is empty: name at least one feature")
    specs = [_Spec(key, feature) for key, feature in sorted(features.items())]
    location = user_location()
    size = dims[0] if batch and dims else None
    outputs = []
    for spec in specs:
        if spec.dense:
            outputs.append((spec.dtype, ([size] if batch else []) + list(spec.shape)))
        elif spec.sequence:
            outputs.append((spec.dtype, ([size] if batch else []) + [None] + list(spec.shape)))
        else:
            rank = 2 if batch else 1
            outputs += [(dt.int64, [None, rank]), (spec.dtype, [None]), (dt.int64, [rank])]

    def compute(session, values):
        texts = byte_strings(values[0])
        keys = record_keys(tensor, session, values[0])

        def fail_at(message, row):
            fail(message, op, location, keys, row)
        return _parse_examples(specs, list(texts.reshape(-1)), batch, fail_at)

    def compute_batch(session, batches, limit):
        # a queue runner's batched run of parse_single_example: parse_example's rows
        texts = byte_strings(batches[0])
        keys = record_keys(tensor, session, batches[0])

        def fail_at(message, row):
            fail(message, op, location, keys, row)
        return _parse_examples(specs, list(texts.reshape(-1)), True, fail_at)

    # NOTE: only dense features batch: a batch's sparse parts would index examples
    # where each single run's index its own
    batchable = not batch and all(spec.dense for spec in specs)
    op = host_op("ParseExample" if batch else "ParseSingleExample", compute, [tensor],
                 outputs, name=name or ("ParseExample" if batch else "ParseSingleExample"),
                 batched=compute_batch if batchable else None)
    parsed, position = {}, 0
    for spec in specs:
        if spec.dense or spec.sequence:
            parsed[spec.key] = op.outputs[position]
            position += 1
        else:
            parsed[spec.key] = SparseTensor(*op.outputs[position:position + 3])
            position += 3
    return parsed


def parse_single_example(serialized, features, name=None, example_names=None):
    """A dict from each feature's key to its tensor (``FixedLenFeature``) or
    :class:`SparseTensor` (``VarLenFeature``), parsed from one serialized Example."""
    return _parse_op(serialized, features, False, name)


def parse_example(serialized, features, name=None, example_names=None):
    """As :func:`parse_single_example` over a vector of serialized Examples: dense
    features gain a leading batch dimension; sparse ones index ``[example, i]``."""
    return _parse_op(serialized, features, True, name)
