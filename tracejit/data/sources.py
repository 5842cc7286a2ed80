"""Where a dataset's elements come from: arrays in memory, a generator, a range of
numbers, lines of text files, records of TFRecord files, other datasets zipped or
concatenated.

Each source is a *node*: ``spec`` (the element's structure of ``TensorSpec``) and
``elements()``, a fresh Python iterator over NumPy elements each time it is called
(one epoch). ``dataset.py`` wraps nodes in the public ``Dataset``.
"""

from __future__ import annotations

import gzip
import zlib
from functools import cached_property

import numpy as np

from ..io.records import RecordReader, compression_name
from . import structure as st
from .rows import CHUNK

__all__ = ["TensorSlices", "Tensors", "Range", "GeneratorSource", "Zip", "Concatenate",
           "TextLines", "TFRecords", "file_names"]


class TensorSlices:
    """The slices of arrays along their first dimension, all of one length."""

    def __init__(self, tensors):
        element = st.normalize(tensors)
        self.treedef, self.arrays = st.flatten(element)
        if not self.arrays:
            raise ValueError("from_tensor_slices needs at least one array")
        for array in self.arrays:
            if array.ndim == 0:
                raise ValueError("from_tensor_slices: every component must have a first "
                                 f"dimension to slice, got a scalar {array!r}")
        sizes = {a.shape[0] for a in self.arrays}
        if len(sizes) > 1:
            shapes = [a.shape for a in self.arrays]
            raise ValueError(f"from_tensor_slices: all components must have the same size "
                             f"in their first dimension, got shapes {shapes}")
        self.length = sizes.pop()

    @cached_property
    def spec(self):
        return st.unflatten(self.treedef, [st.TensorSpec(a.shape[1:], a.dtype)
                                           for a in self.arrays])

    def row_table(self):
        return self.treedef, self.arrays

    def row_chunks(self):
        for start in range(0, self.length, CHUNK):
            yield np.arange(start, min(start + CHUNK, self.length), dtype=np.int64)

    def elements(self):
        for i in range(self.length):
            yield st.unflatten(self.treedef, [a[i, ...] for a in self.arrays])


class Tensors:
    """One element: the given structure."""

    def __init__(self, tensors):
        self.element = st.normalize(tensors)
        self.spec = st.spec_of(self.element)

    def elements(self):
        yield self.element


class Range:
    """``range(start, stop, step)`` as scalars of ``dtype`` (int64 by default)."""

    def __init__(self, args, dtype=np.int64):
        if not 1 <= len(args) <= 3:
            raise TypeError(f"range takes 1 to 3 arguments (stop | start, stop[, step]), got "
                            f"{len(args)}")
        self.range = range(*(int(a) for a in args))
        self.dtype = np.dtype(dtype)
        self.spec = st.TensorSpec((), self.dtype)

    def elements(self):
        for value in self.range:
            yield np.array(value, self.dtype)


class GeneratorSource:
    """The values ``generator(*args)`` yields, each converted to ``output_types`` and
    checked against ``output_shapes``."""

    def __init__(self, generator, output_types, output_shapes=None, args=None):
        if not callable(generator):
            raise TypeError("from_generator expects a callable that returns a generator "
                            f"(not the generator itself), got {type(generator).__name__}")
        self.generator = generator
        self.args = tuple(args or ())
        self.treedef, types = st.flatten(output_types)
        self.dtypes = [np.dtype(t) for t in types]
        if output_shapes is None:
            shapes = [None] * len(types)
        else:
            shapes = st.flatten_up_to(self.treedef, output_shapes,
                                      "from_generator: output_shapes does not match "
                                      "output_types")
        self.shapes = [st.as_shape(s) for s in shapes]
        self.spec = st.unflatten(self.treedef, [st.TensorSpec(s, d) for s, d in
                                                zip(self.shapes, self.dtypes, strict=True)])

    def elements(self):
        source = self.generator(*self.args)
        try:
            for index, value in enumerate(source):
                yield self._convert(value, index)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def _convert(self, value, index: int):
        if self.treedef is st.pytree.LEAF:
            leaves = [value]
        else:
            if isinstance(value, list) and self.treedef[0] is tuple:
                value = tuple(value)    # a generator yielding lists for a tuple structure
            treedef, leaves = st.flatten(value)
            st.check_same_structure(self.treedef, treedef,
                                    f"from_generator: element {index} of the generator")
        out = []
        for i, (leaf, dtype, spec) in enumerate(zip(leaves, self.dtypes, st.flatten(
                self.spec)[1], strict=True)):
            try:
                array = st.to_array(leaf, dtype)
                if dtype.kind in "iu":
                    given = np.asarray(leaf)
                    if given.dtype.kind == "f" and not np.all(np.mod(given, 1) == 0):
                        raise ValueError("fractional values cannot become integers")
            except (TypeError, ValueError) as exc:
                raise TypeError(f"from_generator: component {i} of element {index} "
                                f"({_short(leaf)}) cannot be converted to the declared "
                                f"dtype {dtype.name}: {exc}") from None
            if not spec.is_compatible_with(array):
                raise ValueError(f"from_generator: component {i} of element {index} has "
                                 f"shape {array.shape}, which is not compatible with the "
                                 f"declared shape {spec.shape}")
            out.append(array)
        return st.unflatten(self.treedef, out)


class Zip:
    """Tuples (or the given structure) of the datasets' elements, until one ends."""

    def __init__(self, structure, nodes):
        self.structure = structure
        self.nodes = nodes

    @cached_property
    def spec(self):
        return st.unflatten(self.structure, [n.spec for n in self.nodes])

    def elements(self):
        iterators = [n.elements() for n in self.nodes]
        try:
            while True:
                parts = []
                for iterator in iterators:
                    try:
                        parts.append(next(iterator))
                    except StopIteration:
                        return
                yield st.unflatten(self.structure, parts)
        finally:
            for iterator in iterators:
                iterator.close()


class Concatenate:
    """The first dataset's elements, then the second's (of a compatible structure)."""

    def __init__(self, first, second):
        a, b = st.flatten(first.spec), st.flatten(second.spec)
        st.check_same_structure(a[0], b[0], "concatenate: the datasets' elements differ")
        for x, y in zip(a[1], b[1], strict=True):
            if x.dtype != y.dtype:
                raise TypeError(f"concatenate: the datasets' dtypes differ ({x.dtype.name} "
                                f"and {y.dtype.name})")
        self.spec = st.unflatten(a[0], [st.most_specific(x, y)
                                        for x, y in zip(a[1], b[1], strict=True)])
        self.first, self.second = first, second

    def elements(self):
        yield from self.first.elements()
        yield from self.second.elements()


def file_names(filenames) -> list[str]:
    """One file name or a list of them (str, bytes or path-like) as strings."""
    if isinstance(filenames, (str, bytes)) or hasattr(filenames, "__fspath__"):
        filenames = [filenames]
    names = []
    for name in np.asarray(filenames, dtype=object).reshape(-1):
        names.append(name.decode() if isinstance(name, bytes) else str(name))
    return names


class FileRecords:
    """A source of ``bytes`` scalars read from a list of files, each perhaps GZIP or ZLIB
    compressed (what TextLines and TFRecords share)."""

    spec = st.TensorSpec((), st.STRING)

    def __init__(self, filenames, compression_type=None):
        self.files = file_names(filenames)
        self.compression = compression_name(compression_type)


class TextLines(FileRecords):
    """Each line of each file, without its line ending (``\\n`` or ``\\r\\n``), as a
    ``bytes`` scalar; files may be GZIP or ZLIB compressed."""

    def elements(self):
        for path in self.files:
            for line in _read_lines(path, self.compression):
                yield np.array(line, dtype=object)


def _read_lines(path: str, compression: str):
    if compression == "ZLIB":
        with open(path, "rb") as f:
            data = zlib.decompress(f.read())
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
        return
    opener = gzip.open if compression == "GZIP" else open
    with opener(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                line = line[:-1]
                if line.endswith(b"\r"):
                    line = line[:-1]
            yield line


class TFRecords(FileRecords):
    """The records of TFRecord files (``tracejit.io.records``), as ``bytes`` scalars."""

    def elements(self):
        for path in self.files:
            with RecordReader(path, self.compression) as reader:
                for record in reader:
                    yield np.array(record, dtype=object)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."
