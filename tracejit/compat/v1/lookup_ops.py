"""Lookup tables: ``tf.contrib.lookup`` / ``tf.lookup`` (``HashTable`` /
``StaticHashTable``, ``KeyValueTensorInitializer``, ``StaticVocabularyTable``,
``index_table_from_tensor``, ``index_to_string_table_from_tensor``) and
``tf.tables_initializer``.

A table's contents belong to a session, as in TensorFlow: its initializer (an op in the
``TABLE_INITIALIZERS`` collection, run by ``tf.tables_initializer()``) fills the
session's copy, and ``lookup`` before that is TensorFlow's ``FailedPreconditionError``.
Both are host ops (host_ops.py): keys are usually strings, which live on the host; the
ids a lookup gives are ordinary int64 tensors the compiled step then uses (an embedding
lookup). A key not in the table gets ``default_value``, or with ``num_oov_buckets`` the id
``vocabulary size + Fingerprint64(key) % num_oov_buckets``, TensorFlow's hash
(fingerprint.py), so the buckets are TensorFlow's.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     table = tf.contrib.lookup.index_table_from_tensor(["emerson", "lake", "palmer"])
...     ids = table.lookup(tf.constant(["lake", "and", "palmer"]))
...     with tf.Session() as sess:
...         sess.run(tf.tables_initializer())
...         sess.run(ids).tolist()
[1, -1, 2]
"""

from __future__ import annotations

import types

import numpy as np

from ...ir import dtypes as dt
from ...ir.source import user_location
from .errors import FailedPreconditionError, InvalidArgumentError
from .fingerprint import fingerprint64
from .graph import get_default_graph
from .host_ops import host_op
from .ops import convert_to_tensor, graph_arg, group, no_op
from .parsing import byte_strings
from .strings import string
from .variables import GraphKeys

__all__ = ["KeyValueTensorInitializer", "HashTable", "StaticVocabularyTable",
           "index_table_from_tensor", "index_to_string_table_from_tensor",
           "tables_initializer"]


def _key(value, dtype):
    """A key as the table stores it: bytes for strings, a Python number otherwise."""
    if dtype is string:
        return value.encode() if isinstance(value, str) else bytes(value)
    return value.item() if hasattr(value, "item") else value


def _dtype(value):
    if value is string or getattr(value, "name", value) == "string":
        return string
    return dt.as_dtype(value)


class KeyValueTensorInitializer:
    """A table's contents: ``keys[i]`` maps to ``values[i]``."""

    def __init__(self, keys, values, key_dtype=None, value_dtype=None, name=None):
        self.keys = convert_to_tensor(graph_arg(keys),
                                      None if key_dtype is None else _dtype(key_dtype))
        self.values = convert_to_tensor(graph_arg(values),
                                        None if value_dtype is None else _dtype(value_dtype))
        self.key_dtype, self.value_dtype = self.keys.dtype, self.values.dtype
        self.name = name


class _TableState:
    """One session's copy of a table: None until its initializer runs."""

    def __init__(self):
        self.mapping: dict | None = None


class HashTable:
    """A static table (``tf.contrib.lookup.HashTable``, ``tf.lookup.StaticHashTable``):
    ``lookup(keys)`` gives each key's value, ``default_value`` for a missing one."""

    def __init__(self, initializer: KeyValueTensorInitializer, default_value,
                 shared_name=None, name=None):
        self._initializer = initializer
        self.key_dtype, self.value_dtype = initializer.key_dtype, initializer.value_dtype
        self.default_value = default_value
        self.name = name or "hash_table"
        self._location = user_location()
        graph = get_default_graph()
        with graph.outside_regions():
            self.initializer = host_op("LookupTableImportV2", self._fill,
                                       [initializer.keys, initializer.values],
                                       name=f"{self.name}/table_init")
        graph.add_to_collection(GraphKeys.TABLE_INITIALIZERS, self.initializer)

    @property
    def init(self):
        return self.initializer

    def _state(self, session) -> _TableState:
        return session.resource(("lookup_table", id(self)), _TableState)

    def _fill(self, session, values):
        keys, vals = values
        keys = byte_strings(keys) if self.key_dtype is string else np.asarray(keys)
        vals = byte_strings(vals) if self.value_dtype is string else np.asarray(vals)
        if keys.shape != vals.shape:
            raise InvalidArgumentError(f"Expected shape {list(keys.shape)} for value, got "
                                       f"{list(vals.shape)}", op=self.initializer,
                                       location=self._location)
        mapping: dict = {}
        for k, v in zip(keys.reshape(-1), vals.reshape(-1), strict=True):
            key = _key(k, self.key_dtype)
            if key in mapping and mapping[key] != v:
                raise FailedPreconditionError(
                    f"HashTable has different value for same key. Key {key!r} has "
                    f"{mapping[key]!r} and trying to add value {v!r}", op=self.initializer,
                    location=self._location)
            mapping[key] = v
        self._state(session).mapping = mapping
        return []

    def _missing(self, key):
        return self.default_value

    def lookup(self, keys, name=None):
        """The value of each key (any shape), ``default_value`` where it is missing."""
        tensor = convert_to_tensor(graph_arg(keys))
        if (tensor.dtype is string) != (self.key_dtype is string) or \
                (self.key_dtype is not string and not tensor.dtype.is_integer):
            raise TypeError(f"Signature mismatch. Keys must be dtype {self.key_dtype.name}, "
                            f"got {tensor.dtype.name}.")
        location = user_location()

        def compute(session, values):
            mapping = self._state(session).mapping
            if mapping is None:
                raise FailedPreconditionError(f"Table not initialized.\n  [[node {op.name}]]",
                                              op=op, location=location)
            given = byte_strings(values[0]) if tensor.dtype is string else \
                np.asarray(values[0])
            out = np.empty(given.shape, dtype=object if self.value_dtype is string
                           else self.value_dtype.np_dtype)
            for index, k in np.ndenumerate(given):
                key = _key(k, self.key_dtype)
                out[index] = mapping[key] if key in mapping else self._missing(key)
            return [out]

        op = host_op("LookupTableFindV2", compute, [tensor],
                     [(self.value_dtype, tensor.shape.dims)],
                     name=name or f"{self.name}_Lookup")
        return op.outputs[0]

    def size(self, name=None):
        """The number of entries (int64)."""
        def compute(session, values):
            mapping = self._state(session).mapping
            if mapping is None:
                raise FailedPreconditionError("Table not initialized.", op=op,
                                              location=self._location)
            return [np.int64(len(mapping))]

        op = host_op("LookupTableSizeV2", compute, [], [(dt.int64, [])],
                     name=name or f"{self.name}_Size")
        return op.outputs[0]


def _vocabulary_table(mapping, num_oov_buckets, default_value, dtype, name):
    """``index_table_from_tensor``'s table: key i of ``mapping`` -> i."""
    keys = convert_to_tensor(graph_arg(mapping), _dtype(dtype))
    count = keys.shape.dims[0] if keys.shape.dims else None
    if count is None:
        raise ValueError("index_table_from_tensor: the vocabulary must have a known size")
    ids = convert_to_tensor(np.arange(count, dtype=np.int64))
    init = KeyValueTensorInitializer(keys, ids)
    if num_oov_buckets:
        return _BucketedTable(init, int(num_oov_buckets), count, name)
    return HashTable(init, default_value, name=name)


class _BucketedTable(HashTable):
    """A vocabulary with out-of-vocabulary buckets after its ``size`` ids."""

    def __init__(self, initializer, buckets: int, size: int, name):
        super().__init__(initializer, -1, name=name)
        self._buckets, self._size = buckets, size

    def _missing(self, key):
        text = key if isinstance(key, bytes) else str(key).encode()
        return self._size + fingerprint64(text) % self._buckets


class StaticVocabularyTable(_BucketedTable):
    """``tf.lookup.StaticVocabularyTable``: the initializer's int64 ids; a missing key
    goes to one of ``num_oov_buckets`` ids after the vocabulary."""

    def __init__(self, initializer, num_oov_buckets, lookup_key_dtype=None, name=None):
        if num_oov_buckets <= 0:
            raise ValueError(f"oov_buckets must be > 0, got {num_oov_buckets}")
        size = initializer.keys.shape.dims[0] if initializer.keys.shape.dims else None
        if size is None:
            raise ValueError("StaticVocabularyTable: the keys must have a known size")
        super().__init__(initializer, int(num_oov_buckets), size, name or "hash_table")


def index_table_from_tensor(vocabulary_list=None, num_oov_buckets=0, vocab_size=None,
                            default_value=-1, hasher_spec=None, dtype=string, name=None,
                            mapping=None):
    """A table from the strings (or ints) of ``vocabulary_list`` (contrib's ``mapping``)
    to their positions, int64."""
    vocabulary = mapping if vocabulary_list is None else vocabulary_list
    if vocabulary is None:
        raise ValueError("vocabulary_list must be specified.")
    return _vocabulary_table(vocabulary, num_oov_buckets, default_value, dtype,
                             name or "string_to_index/hash_table")


def index_to_string_table_from_tensor(vocabulary_list=None, default_value="UNK", name=None,
                                      mapping=None):
    """A table from int64 positions to the strings of ``vocabulary_list``."""
    vocabulary = mapping if vocabulary_list is None else vocabulary_list
    if vocabulary is None:
        raise ValueError("vocabulary_list must be specified.")
    values = convert_to_tensor(graph_arg(vocabulary), string)
    count = values.shape.dims[0] if values.shape.dims else None
    if count is None:
        raise ValueError("index_to_string_table_from_tensor: the vocabulary must have a "
                         "known size")
    init = KeyValueTensorInitializer(convert_to_tensor(np.arange(count, dtype=np.int64)),
                                     values)
    default = default_value.encode() if isinstance(default_value, str) else default_value
    return HashTable(init, default, name=name or "index_to_string")


def tables_initializer(name="init_all_tables"):
    """An op that runs every table initializer of the graph (TABLE_INITIALIZERS)."""
    inits = get_default_graph().get_collection(GraphKeys.TABLE_INITIALIZERS)
    return group(*inits, name=name) if inits else no_op(name=name)


contrib_lookup = types.SimpleNamespace(
    HashTable=HashTable, KeyValueTensorInitializer=KeyValueTensorInitializer,
    index_table_from_tensor=index_table_from_tensor,
    index_to_string_table_from_tensor=index_to_string_table_from_tensor)
lookup_namespace = types.SimpleNamespace(
    StaticHashTable=HashTable, KeyValueTensorInitializer=KeyValueTensorInitializer,
    StaticVocabularyTable=StaticVocabularyTable)
