"""``tf.data`` in a TF1 graph: ``import tracejit.compat.v1 as tf; tf.data.Dataset``.

A graph dataset describes a pipeline over graph tensors (data_functions.py's
``Pipeline``). Nothing runs while the graph is built: an iterator's initializer (or a
one-shot iterator's first ``get_next``) evaluates the tensors the pipeline captured --
arrays, fed placeholders, file names -- and builds a ``tracejit.data.Dataset`` from
them, which that session's iterator then runs on the host (iterators.py).

>>> import numpy as np, tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     ds = tf.data.Dataset.from_tensor_slices(np.arange(6)).map(lambda x: x * 2).batch(4)
...     next_batch = tf.data.make_one_shot_iterator(ds).get_next()
...     with tf.Session() as sess:
...         sess.run(next_batch).tolist(), sess.run(next_batch).tolist()
([0, 2, 4, 6], [8, 10])
"""

from __future__ import annotations

import types

import numpy as np

from ...data import structure as st
from ...data.dataset import Dataset as CoreDataset
from ...data.dataset import TextLineDataset as CoreTextLines
from ...data.dataset import TFRecordDataset as CoreRecords
from ...data.functions import AUTOTUNE, ElementFunction
from ...data.transforms import Interleave
from . import ops as graph_ops
from .data_functions import GraphFunction, GraphSpec, OutputStructure, Pipeline, tf_dtype
from .data_grouping import bucket_by_sequence_length, group_by_window
from .graph import Tensor
from .iterators import Iterator
from .ops import graph_arg
from .shapes import TensorShape
from .strings import string

__all__ = ["Dataset", "TextLineDataset", "TFRecordDataset", "Iterator",
           "make_one_shot_iterator", "make_initializable_iterator", "get_output_types",
           "get_output_shapes", "get_output_classes", "experimental", "AUTOTUNE"]


def _resolve(value, values: dict):
    """A parameter or structure with graph tensors replaced by their values."""
    treedef, leaves = st.flatten(value)
    return st.unflatten(treedef, [values[id(leaf)] if isinstance(leaf, Tensor) else leaf
                                  for leaf in leaves])


def _tensors_in(value) -> list:
    return [leaf for leaf in st.flatten(value)[1] if isinstance(leaf, Tensor)]


def _scalar(value, values):
    found = _resolve(value, values)
    return found.item() if isinstance(found, np.ndarray) else found


def _graph_leaves(value):
    """A user's structure with variables as their tensors and other leaves as arrays."""
    treedef, leaves = st.flatten(value)
    out = []
    for leaf in leaves:
        leaf = graph_arg(leaf)
        out.append(leaf if isinstance(leaf, Tensor) else st.to_array(leaf))
    return st.unflatten(treedef, out)


def _spec_of_leaf(leaf, slice_first: bool) -> GraphSpec:
    if isinstance(leaf, Tensor):
        dims = leaf.shape.dims
        return GraphSpec(leaf.dtype, TensorShape(
            None if dims is None else (dims[1:] if slice_first else dims)))
    shape = leaf.shape[1:] if slice_first else leaf.shape
    return GraphSpec(tf_dtype(leaf.dtype), TensorShape(shape))


def _to_graph_spec(spec: st.TensorSpec) -> GraphSpec:
    return GraphSpec(tf_dtype(spec.dtype), TensorShape(spec.shape))


class Dataset(Pipeline, OutputStructure):
    """``tf.data.Dataset`` (TF1): the methods return new datasets; iterate with
    ``make_one_shot_iterator()``/``make_initializable_iterator()`` or
    ``tf.data.Iterator.from_structure``."""

    # ---- sources ----------------------------------------------------------------------------

    @staticmethod
    def from_tensor_slices(tensors) -> Dataset:
        element = _graph_leaves(tensors)
        for leaf in st.flatten(element)[1]:
            if leaf.shape.dims == () if isinstance(leaf, Tensor) else leaf.ndim == 0:
                raise ValueError(f"from_tensor_slices: every component must have a first "
                                 f"dimension to slice, got the scalar {leaf!r}")
        structure = st.map_structure(lambda leaf: _spec_of_leaf(leaf, True), element)
        return Dataset(structure, _tensors_in(element), lambda values, session:
                       CoreDataset.from_tensor_slices(_resolve(element, values)))

    @staticmethod
    def from_tensors(tensors) -> Dataset:
        element = _graph_leaves(tensors)
        structure = st.map_structure(lambda leaf: _spec_of_leaf(leaf, False), element)
        return Dataset(structure, _tensors_in(element), lambda values, session:
                       CoreDataset.from_tensors(_resolve(element, values)))

    @staticmethod
    def from_generator(generator, output_types, output_shapes=None, args=None) -> Dataset:
        treedef, types_ = st.flatten(output_types)
        dtypes = [tf_dtype(t) for t in types_]
        shapes = [None] * len(dtypes) if output_shapes is None else st.flatten_up_to(
            treedef, output_shapes, "from_generator: output_shapes does not match "
            "output_types")
        structure = st.unflatten(treedef, [GraphSpec(d, TensorShape(st.as_shape(s)))
                                           for d, s in zip(dtypes, shapes, strict=True)])
        core_types = st.map_structure(lambda s: s.core().dtype, structure)
        core_shapes = st.map_structure(lambda s: s.shape.dims, structure)
        arguments = tuple(graph_arg(a) for a in (args or ()))

        def build(values, session):
            return CoreDataset.from_generator(generator, core_types, core_shapes,
                                              [_resolve(a, values) for a in arguments])
        return Dataset(structure, _tensors_in(arguments), build)

    @staticmethod
    def range(*args, output_type=None) -> Dataset:
        dtype = tf_dtype(output_type or np.int64)
        arguments = tuple(graph_arg(a) for a in args)
        return Dataset(GraphSpec(dtype, TensorShape(())), _tensors_in(arguments),
                       lambda values, session: CoreDataset.range(
                           *(_scalar(a, values) for a in arguments),
                           output_type=dtype.np_dtype))

    @staticmethod
    def zip(datasets) -> Dataset:
        treedef, parts = st.flatten(datasets)
        for part in parts:
            if not isinstance(part, Pipeline):
                raise TypeError(f"zip expects a structure of datasets, got a "
                                f"{type(part).__name__}")
        structure = st.unflatten(treedef, [p.structure for p in parts])
        return Dataset(structure, [t for p in parts for t in p.captured],
                       lambda values, session: CoreDataset.zip(st.unflatten(
                           treedef, [p.build(values, session) for p in parts])))

    # ---- what it holds ----------------------------------------------------------------------

    def make_one_shot_iterator(self) -> Iterator:
        return Iterator.one_shot(self)

    def make_initializable_iterator(self, shared_name=None) -> Iterator:
        return Iterator.initializable(self)

    # ---- transformations --------------------------------------------------------------------

    def _then(self, structure, transform, params=(), captured=(), bound=None) -> Dataset:
        """A dataset made from this one by ``transform(core, *param values)``, or, with a
        GraphFunction ``bound``, ``transform(core, function, *param values)`` where the
        function runs in the iterator's session."""
        params = tuple(graph_arg(p) for p in params)

        def build(values, session):
            core = self.build(values, session)
            resolved = [_scalar(p, values) for p in params]
            if bound is not None:
                return transform(core, bound.bind(values, session), *resolved)
            return transform(core, *resolved)
        return Dataset(structure, self.captured + _tensors_in(params) + list(captured), build)

    def map(self, map_func, num_parallel_calls=None, deterministic=None) -> Dataset:
        fn = GraphFunction(map_func, self.structure, "map")
        return self._then(fn.structure, lambda core, call, parallel: core.map(
            ElementFunction(call, "map", compile=False, whole_element=True), parallel),
            (num_parallel_calls,), fn.captured, fn)

    def filter(self, predicate) -> Dataset:
        fn = GraphFunction(predicate, self.structure, "filter", returns="predicate")
        return self._then(self.structure, lambda core, call: core.filter(
            ElementFunction(call, "filter", compile=False, whole_element=True)),
            (), fn.captured, fn)

    def interleave(self, map_func, cycle_length=AUTOTUNE, block_length=1,
                   num_parallel_calls=None, deterministic=None) -> Dataset:
        fn = GraphFunction(map_func, self.structure, "interleave", returns="dataset")
        return self._then(fn.structure, lambda core, make, cycle, block: CoreDataset(
            Interleave(core.node, make, _cycle(cycle), block)),
            (cycle_length, block_length), fn.captured, fn)

    def flat_map(self, map_func) -> Dataset:
        return self.interleave(map_func, cycle_length=1, block_length=1)

    def group_by_window(self, key_func, reduce_func, window_size=None,
                        window_size_func=None) -> Dataset:
        return group_by_window(self, key_func, reduce_func, window_size, window_size_func,
                               make_dataset=Dataset)

    def batch(self, batch_size, drop_remainder=False) -> Dataset:
        static = batch_size if drop_remainder and isinstance(batch_size, int) else None
        structure = st.map_structure(lambda s: GraphSpec(s.dtype, _batched(s.shape, static)),
                                     self.structure)
        return self._then(structure, lambda core, size, drop: core.batch(size, drop),
                          (batch_size, drop_remainder))

    def padded_batch(self, batch_size, padded_shapes=None, padding_values=None,
                     drop_remainder=False) -> Dataset:
        treedef, specs = st.flatten(self.structure)
        if padded_shapes is None:
            shapes = [TensorShape(None if s.shape.dims is None else [None] * len(s.shape.dims))
                      for s in specs]
        else:
            shapes = [TensorShape(st.as_shape(p)) for p in st.flatten_up_to(
                treedef, padded_shapes, "padded_batch: padded_shapes does not match the "
                "dataset's elements")]
        static = batch_size if drop_remainder and isinstance(batch_size, int) else None
        structure = st.unflatten(treedef, [GraphSpec(s.dtype, _batched(p, static))
                                           for s, p in zip(specs, shapes, strict=True)])
        core_shapes = st.unflatten(treedef, [p.dims for p in shapes])
        return self._then(structure, lambda core, size, drop: core.padded_batch(
            size, core_shapes, padding_values, drop), (batch_size, drop_remainder))

    def unbatch(self) -> Dataset:
        structure = st.map_structure(lambda s: GraphSpec(s.dtype, TensorShape(
            None if s.shape.dims is None else s.shape.dims[1:])), self.structure)
        return self._then(structure, lambda core: core.unbatch())

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=None) -> Dataset:
        if seed is None:
            from .graph import get_default_graph
            graph = get_default_graph()
            if graph.seed is not None:      # tf.set_random_seed makes shuffles repeatable
                seed = graph_ops.op_seed_of(graph, None)
        return self._then(self.structure, lambda core, size: core.shuffle(
            size, seed, reshuffle_each_iteration), (buffer_size,))

    def repeat(self, count=None) -> Dataset:
        return self._then(self.structure, lambda core, n: core.repeat(n), (count,))

    def take(self, count) -> Dataset:
        return self._then(self.structure, lambda core, n: core.take(n), (count,))

    def skip(self, count) -> Dataset:
        return self._then(self.structure, lambda core, n: core.skip(n), (count,))

    def shard(self, num_shards, index) -> Dataset:
        return self._then(self.structure, lambda core, n, i: core.shard(n, i),
                          (num_shards, index))

    def prefetch(self, buffer_size) -> Dataset:
        return self._then(self.structure, lambda core, n: core.prefetch(n), (buffer_size,))

    def cache(self, filename="") -> Dataset:
        return self._then(self.structure, lambda core: core.cache(filename))

    def concatenate(self, dataset) -> Dataset:
        a, b = st.flatten(self.structure), st.flatten(dataset.structure)
        st.check_same_structure(a[0], b[0], "concatenate: the datasets' elements differ")
        for x, y in zip(a[1], b[1], strict=True):
            if x.dtype is not y.dtype:
                raise TypeError(f"concatenate: the datasets' dtypes differ ({x.dtype.name} "
                                f"and {y.dtype.name})")
        structure = st.unflatten(a[0], [GraphSpec(x.dtype, _most_specific(x.shape, y.shape))
                                        for x, y in zip(a[1], b[1], strict=True)])
        return Dataset(structure, self.captured + dataset.captured,
                       lambda values, session: self.build(values, session).concatenate(
                           dataset.build(values, session)))

    def apply(self, transformation_func) -> Dataset:
        return transformation_func(self)


def _cycle(cycle_length) -> int:
    import os
    if cycle_length in (None, AUTOTUNE):
        return os.cpu_count() or 1
    return int(cycle_length)


def _batched(shape: TensorShape, size) -> TensorShape:
    return TensorShape(None if shape.dims is None else (size,) + shape.dims)


def _most_specific(a: TensorShape, b: TensorShape) -> TensorShape:
    if a.dims is None or b.dims is None or len(a.dims) != len(b.dims):
        return TensorShape(None)
    return TensorShape([x if x == y else None for x, y in zip(a.dims, b.dims, strict=True)])


class TextLineDataset(Dataset):
    """``tf.data.TextLineDataset(filenames)``: the lines of text files as tf.string
    scalars; ``filenames`` may be a tf.string tensor (a placeholder fed at init)."""

    def __init__(self, filenames, compression_type=None, buffer_size=None):
        names = graph_arg(filenames)
        super().__init__(GraphSpec(string, TensorShape(())), _tensors_in(names),
                         lambda values, session: CoreTextLines(_resolve(names, values),
                                                               compression_type))


class TFRecordDataset(Dataset):
    """``tf.data.TFRecordDataset(filenames)``: the records of TFRecord files (NONE, ZLIB
    or GZIP) as tf.string scalars."""

    def __init__(self, filenames, compression_type=None, buffer_size=None,
                 num_parallel_reads=None):
        names = graph_arg(filenames)
        super().__init__(GraphSpec(string, TensorShape(())), _tensors_in(names),
                         lambda values, session: CoreRecords(_resolve(names, values),
                                                             compression_type))


def make_one_shot_iterator(dataset) -> Iterator:
    return Iterator.one_shot(dataset)


def make_initializable_iterator(dataset, shared_name=None) -> Iterator:
    return Iterator.initializable(dataset)


def get_output_types(dataset_or_iterator):
    return dataset_or_iterator.output_types


def get_output_shapes(dataset_or_iterator):
    return dataset_or_iterator.output_shapes


def get_output_classes(dataset_or_iterator):
    return dataset_or_iterator.output_classes


def _group_by_window(key_func, reduce_func, window_size=None, window_size_func=None):
    """``tf.data.experimental.group_by_window``: a transformation for ``apply``."""
    return lambda dataset: dataset.group_by_window(key_func, reduce_func, window_size,
                                                   window_size_func)


def _bucket_by_sequence_length(element_length_func, bucket_boundaries, bucket_batch_sizes,
                               padded_shapes=None, padding_values=None,
                               pad_to_bucket_boundary=False, no_padding=False,
                               drop_remainder=False):
    return lambda dataset: bucket_by_sequence_length(
        dataset, element_length_func, bucket_boundaries, bucket_batch_sizes, padded_shapes,
        padding_values, pad_to_bucket_boundary, no_padding, drop_remainder,
        make_dataset=Dataset, resolve=_resolve)


# NOTE: TF 1.x's fused transformations (tf.contrib.data, then tf.data.experimental): each
# gives what the plain transformations it fuses give, in the same order
experimental = types.SimpleNamespace(
    AUTOTUNE=AUTOTUNE, group_by_window=_group_by_window,
    bucket_by_sequence_length=_bucket_by_sequence_length,
    shuffle_and_repeat=lambda buffer_size, count=None, seed=None:
        lambda dataset: dataset.shuffle(buffer_size, seed).repeat(count),
    map_and_batch=lambda map_func, batch_size, num_parallel_batches=None,
        drop_remainder=False, num_parallel_calls=None:
        lambda dataset: dataset.map(map_func, num_parallel_calls).batch(batch_size,
                                                                        drop_remainder),
    parallel_interleave=lambda map_func, cycle_length, block_length=1, sloppy=False,
        buffer_output_elements=None, prefetch_input_elements=None:
        lambda dataset: dataset.interleave(map_func, cycle_length, block_length),
    unbatch=lambda: lambda dataset: dataset.unbatch())
