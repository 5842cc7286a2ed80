"""``tracejit.data.Dataset``: input pipelines as Python iterables of NumPy elements.

The same methods as ``tf.data.Dataset``: sources (``from_tensor_slices``,
``from_tensors``, ``from_generator``, ``range``, ``zip``, ``TextLineDataset``,
``TFRecordDataset``) and transformations that return new datasets (``map``, ``filter``,
``batch``, ``padded_batch``, ``shuffle``, ``repeat``, ``take``, ``skip``, ``prefetch``,
``cache``, ``interleave``, ``flat_map``, ...). A dataset is a description: iterating it
(``for element in dataset``) starts a fresh pass, which a ``prefetch`` runs ahead on a
thread of its own. ``map`` and ``filter`` functions are compiled with ``tracejit.jit``.

>>> import numpy as np, tracejit as tj
>>> ds = Dataset.from_tensor_slices((np.arange(5.0, dtype=np.float32), np.arange(5)))
>>> ds = ds.map(lambda x, y: (x * 2.0, y)).batch(2)
>>> [x.tolist() for x, y in ds]
[[0.0, 2.0], [4.0, 6.0], [8.0]]
"""

from __future__ import annotations

import numpy as np

from . import structure as st
from .file_cache import FileCache
from .functions import AUTOTUNE, ElementFunction, call_with_element, parallelism
from .grouping import GroupByWindow, WindowElements, window_sizes
from .prefetch import Prefetch
from .sources import (
    Concatenate,
    GeneratorSource,
    Range,
    Tensors,
    TensorSlices,
    TextLines,
    TFRecords,
    Zip,
)
from .transforms import (
    Batch,
    Cache,
    Filter,
    Interleave,
    Map,
    PaddedBatch,
    Repeat,
    Shard,
    Shuffle,
    Skip,
    Take,
    Unbatch,
)

__all__ = ["Dataset", "DatasetIterator", "TextLineDataset", "TFRecordDataset", "AUTOTUNE"]


class Dataset:
    """A sequence of elements (nested tuples/dicts of NumPy arrays) and how to make them.
    Build one with the static constructors; each method returns a new Dataset."""

    def __init__(self, node):
        self.node = node            # the source or transformation (sources.py, transforms.py)

    # ---- sources --------------------------------------------------------------------------------

    @staticmethod
    def from_tensor_slices(tensors) -> Dataset:
        """One element per row (first dimension) of ``tensors``, a structure of arrays."""
        return Dataset(TensorSlices(tensors))

    @staticmethod
    def from_tensors(tensors) -> Dataset:
        """One element: ``tensors`` itself."""
        return Dataset(Tensors(tensors))

    @staticmethod
    def from_generator(generator, output_types, output_shapes=None, args=None) -> Dataset:
        """The values ``generator(*args)`` yields (called anew for each pass), converted
        to ``output_types`` (NumPy dtypes) and checked against ``output_shapes``."""
        return Dataset(GeneratorSource(generator, output_types, output_shapes, args))

    @staticmethod
    def range(*args, output_type=np.int64) -> Dataset:
        """``range(stop)``, ``range(start, stop[, step])`` as int64 scalars."""
        return Dataset(Range(args, output_type))

    @staticmethod
    def zip(datasets) -> Dataset:
        """Elements of several datasets side by side (a tuple or dict of datasets), until
        the shortest ends."""
        treedef, parts = st.flatten(datasets)
        for part in parts:
            if not isinstance(part, Dataset):
                raise TypeError(f"zip expects a structure of datasets, got a "
                                f"{type(part).__name__} in {datasets!r}")
        return Dataset(Zip(treedef, [p.node for p in parts]))

    # ---- structure --------------------------------------------------------------------------

    @property
    def element_spec(self):
        """The element's structure of ``TensorSpec(shape, dtype)`` (None: a dimension
        that varies)."""
        return self.node.spec

    def __iter__(self) -> DatasetIterator:
        return DatasetIterator(self.node.elements())

    def as_numpy_iterator(self) -> DatasetIterator:
        return iter(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} element_spec={self.element_spec}>"

    # ---- transformations --------------------------------------------------------------------

    def map(self, map_func, num_parallel_calls=None, deterministic=None,
            compile: bool = True) -> Dataset:
        """``map_func`` applied to each element (a tuple element is unpacked into its
        arguments), compiled with ``tracejit.jit`` unless ``compile=False`` (or the
        element holds strings). ``num_parallel_calls`` threads (AUTOTUNE: one a CPU)
        compute elements ahead; the order is kept."""
        function = map_func if isinstance(map_func, ElementFunction) else \
            ElementFunction(map_func, "Dataset.map", compile)
        return Dataset(Map(self.node, function, parallelism(num_parallel_calls)))

    def filter(self, predicate, compile: bool = True) -> Dataset:
        """The elements for which ``predicate`` returns a scalar True."""
        function = predicate if isinstance(predicate, ElementFunction) else \
            ElementFunction(predicate, "Dataset.filter", compile)
        return Dataset(Filter(self.node, function))

    def batch(self, batch_size, drop_remainder=False) -> Dataset:
        return Dataset(Batch(self.node, batch_size, drop_remainder))

    def padded_batch(self, batch_size, padded_shapes=None, padding_values=None,
                     drop_remainder=False) -> Dataset:
        """Batches of elements padded to ``padded_shapes`` (None dimensions: the batch's
        longest) with ``padding_values`` (0 or b'' by default)."""
        return Dataset(PaddedBatch(self.node, batch_size, padded_shapes, padding_values,
                                   drop_remainder))

    def unbatch(self) -> Dataset:
        return Dataset(Unbatch(self.node))

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=None) -> Dataset:
        return Dataset(Shuffle(self.node, buffer_size, seed, reshuffle_each_iteration))

    def repeat(self, count=None) -> Dataset:
        return Dataset(Repeat(self.node, count))

    def take(self, count) -> Dataset:
        return Dataset(Take(self.node, count))

    def skip(self, count) -> Dataset:
        return Dataset(Skip(self.node, count))

    def shard(self, num_shards, index) -> Dataset:
        return Dataset(Shard(self.node, num_shards, index))

    def concatenate(self, dataset: Dataset) -> Dataset:
        return Dataset(Concatenate(self.node, dataset.node))

    def prefetch(self, buffer_size=AUTOTUNE) -> Dataset:
        """Elements computed ahead by a background thread into a buffer of
        ``buffer_size``; the thread ends with the iteration."""
        return Dataset(Prefetch(self.node, buffer_size))

    def cache(self, filename: str = "") -> Dataset:
        """Elements kept after the first complete pass: in memory, or with a
        ``filename`` in the file ``filename + ".tjcache"``, which later passes and later
        runs of the program read instead of the input (file_cache.py)."""
        if isinstance(filename, np.ndarray):
            filename = filename.item()
        if isinstance(filename, bytes):
            filename = filename.decode()
        if filename:
            return Dataset(FileCache(self.node, filename))
        return Dataset(Cache(self.node))

    def interleave(self, map_func, cycle_length=None, block_length=None,
                   num_parallel_calls=None, deterministic=None) -> Dataset:
        """Elements of the datasets ``map_func`` makes from input elements, taken
        ``block_length`` at a time from ``cycle_length`` open datasets in turn."""
        cycle = cycle_length if cycle_length not in (None, AUTOTUNE) else \
            _default_cycle_length()
        return Dataset(Interleave(self.node, _dataset_function(map_func, "interleave"), cycle,
                                  1 if block_length is None else block_length,
                                  lambda: _made_spec(map_func, self.element_spec)))

    def flat_map(self, map_func) -> Dataset:
        """The elements of each dataset ``map_func`` makes, one dataset after another."""
        return Dataset(Interleave(self.node, _dataset_function(map_func, "flat_map"), 1, 1,
                                  lambda: _made_spec(map_func, self.element_spec)))

    def group_by_window(self, key_func, reduce_func, window_size=None,
                        window_size_func=None) -> Dataset:
        """Elements gathered by ``key_func(element)`` (an int64 scalar) into windows of
        ``window_size`` (or ``window_size_func(key)``); each full window, and at the end
        each partial one in key order, becomes the elements of
        ``reduce_func(key, window_dataset)`` (grouping.py)."""
        sizes = window_sizes(window_size, window_size_func)
        spec = self.element_spec

        def made(key, elements) -> Dataset:
            out = reduce_func(np.int64(key), Dataset(WindowElements(elements, spec)))
            if not isinstance(out, Dataset):
                raise TypeError(f"group_by_window: reduce_func must return a Dataset, got "
                                f"{type(out).__name__}")
            return out
        return Dataset(GroupByWindow(self.node, lambda e: call_with_element(key_func, e),
                                     lambda key, elements: made(key, elements).node.elements(),
                                     sizes, made(0, []).element_spec))

    def apply(self, transformation_func) -> Dataset:
        return transformation_func(self)


class TextLineDataset(Dataset):
    """The lines of text files (without line endings) as bytes scalars."""

    def __init__(self, filenames, compression_type=None, buffer_size=None):
        super().__init__(TextLines(filenames, compression_type))


class TFRecordDataset(Dataset):
    """The records of TFRecord files (``tracejit.io.records``) as bytes scalars."""

    def __init__(self, filenames, compression_type=None, buffer_size=None,
                 num_parallel_reads=None):
        super().__init__(TFRecords(filenames, compression_type))


class DatasetIterator:
    """One pass over a dataset: ``next()`` gives elements; ``close()`` (or dropping it,
    or leaving a ``with`` block) stops the pass and any threads it started."""

    def __init__(self, elements):
        self._elements = elements

    def __iter__(self) -> DatasetIterator:
        return self

    def __next__(self):
        if self._elements is None:
            raise StopIteration
        return next(self._elements)

    def get_next(self):
        return next(self)

    def close(self) -> None:
        elements, self._elements = self._elements, None
        if elements is not None:
            elements.close()

    def __enter__(self) -> DatasetIterator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def _default_cycle_length() -> int:
    import os
    return os.cpu_count() or 1


def _dataset_function(map_func, what: str):
    """``map_func`` as interleave calls it: element -> an iterator over a dataset's
    elements."""
    if not callable(map_func):
        raise TypeError(f"{what} expects a function, got {type(map_func).__name__}")

    def make(element):
        made = call_with_element(map_func, element)
        if not isinstance(made, Dataset):
            raise TypeError(f"{what}: the function {getattr(map_func, '__name__', map_func)} "
                            f"must return a Dataset, got {type(made).__name__}")
        return iter(made)
    return make


def _made_spec(map_func, input_spec):
    """The element spec of the datasets ``map_func`` makes, from one made of zeros."""
    treedef, specs = st.flatten(input_spec)
    probe = st.unflatten(treedef, [
        np.full(tuple(1 if d is None else d for d in (s.shape or ())), b"", object)
        if s.dtype == st.STRING else
        np.zeros(tuple(1 if d is None else d for d in (s.shape or ())), s.dtype)
        for s in specs])
    return call_with_element(map_func, probe).element_spec
