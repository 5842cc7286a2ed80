"""``tf.data.experimental.group_by_window`` (also ``Dataset.group_by_window`` and
``tf.contrib.data.group_by_window``) in a TF1 graph, on tracejit/data/grouping.py.

The key and window-size functions are recorded once on placeholders, as ``map``'s are
(data_functions.py). ``reduce_func(key, window)`` is recorded once too, on a key
placeholder and a stand-in dataset for the window: the dataset it returns is a
description that, each time a window is full, is built anew with the key fed and the
window's elements in place of the stand-in (handed over through a thread-local, since
the build happens right there, on the thread that reduces).
"""

from __future__ import annotations

import threading

import numpy as np

from ...data import structure as st
from ...data.dataset import Dataset as CoreDataset
from ...data.grouping import GroupByWindow, WindowElements, window_sizes
from ...ir import dtypes as dt
from .data_functions import GraphFunction, GraphSpec
from .errors import InvalidArgumentError
from .graph import Tensor
from .shapes import TensorShape
from .strings import string

__all__ = ["group_by_window", "bucket_by_sequence_length"]

_WINDOW = threading.local()        # .current: (elements, core spec) while a window builds
_KEY = GraphSpec(dt.int64, TensorShape([]))


def _core_spec(structure):
    return st.map_structure(lambda s: st.TensorSpec(
        s.shape.dims, st.STRING if s.dtype is string else s.dtype.np_dtype), structure)


def _window_dataset(structure, make_dataset):
    """The stand-in ``reduce_func`` receives: a dataset of the window being reduced."""
    def build(values, session):
        elements, spec = _WINDOW.current
        return CoreDataset(WindowElements(elements, spec))
    return make_dataset(structure, [], build)


def group_by_window(dataset, key_func, reduce_func, window_size=None, window_size_func=None,
                    make_dataset=None):
    """``dataset`` grouped (see the module's text); ``make_dataset(structure, captured,
    build)`` makes the graph dataset (data.py's class)."""
    window_sizes(window_size, window_size_func)          # exactly one of the two
    keys = GraphFunction(key_func, dataset.structure, "group_by_window")
    out = keys.outputs
    if len(out) != 1 or out[0].dtype is not dt.int64 or out[0].shape.dims != ():
        got = [f"{t.dtype.name}{t.shape.dims}" for t in out]
        raise ValueError(f"group_by_window: key_func {keys.name} must return one tf.int64 "
                         f"scalar, got {got}")
    window = _window_dataset(dataset.structure, make_dataset)
    reduce = GraphFunction(lambda key: reduce_func(key, window), _KEY, "group_by_window",
                           returns="dataset")
    sizes = None if window_size_func is None else \
        GraphFunction(window_size_func, _KEY, "group_by_window")
    size_tensors = [window_size] if isinstance(window_size, Tensor) else []
    structure = reduce.structure
    captured = (list(dataset.captured) + keys.captured + reduce.captured
                + (sizes.captured if sizes else []) + size_tensors)

    def build(values, session):
        core = dataset.build(values, session)
        spec = core.element_spec
        key_of = keys.bind(values, session)
        make = reduce.bind(values, session)
        if sizes is not None:
            size_of = sizes.bind(values, session)
        else:
            fixed = values[id(window_size)] if size_tensors else window_size
            size_of = lambda key: fixed  # noqa: E731

        def reduced(key, elements):
            _WINDOW.current = (elements, spec)
            try:
                return make(np.int64(key))
            finally:
                _WINDOW.current = None
        return CoreDataset(GroupByWindow(core.node, key_of, reduced, size_of,
                                         _core_spec(structure)))
    return make_dataset(structure, captured, build)


def bucket_by_sequence_length(dataset, element_length_func, bucket_boundaries,
                              bucket_batch_sizes, padded_shapes=None, padding_values=None,
                              pad_to_bucket_boundary=False, no_padding=False,
                              drop_remainder=False, make_dataset=None, resolve=None):
    """``tf.data.experimental.bucket_by_sequence_length``: elements grouped by which of
    the ranges ``[-inf, b0), [b0, b1), ..., [bn, inf)`` their length falls in, each bucket
    batched (padded) by its own size; with ``pad_to_bucket_boundary`` a bucket's unknown
    dimensions pad to its boundary - 1. On group_by_window's core node, the bucket and
    its batching computed on the host. ``resolve(value, values)`` evaluates graph
    tensors among ``padding_values``."""
    boundaries = [int(b) for b in bucket_boundaries]
    sizes = [int(b) for b in bucket_batch_sizes]
    if len(sizes) != len(boundaries) + 1:
        raise ValueError("len(bucket_batch_sizes) must equal len(bucket_boundaries) + 1")
    if boundaries != sorted(boundaries):
        raise ValueError(f"bucket_boundaries must be increasing, got {boundaries}")
    lengths = GraphFunction(element_length_func, dataset.structure,
                            "bucket_by_sequence_length")
    out = lengths.outputs
    if len(out) != 1 or not out[0].dtype.is_integer or out[0].shape.dims != ():
        raise ValueError(f"bucket_by_sequence_length: element_length_func {lengths.name} "
                         "must return one integer scalar")
    treedef, specs = st.flatten(dataset.structure)
    shapes = [s.shape.dims for s in specs] if padded_shapes is None else [
        TensorShape(st.as_shape(p)).dims for p in st.flatten_up_to(
            treedef, padded_shapes, "bucket_by_sequence_length: padded_shapes does not "
            "match the dataset's elements")]
    structure = st.unflatten(treedef, [
        GraphSpec(s.dtype, TensorShape(None if d is None else [None] + list(d)))
        for s, d in zip(specs, shapes, strict=True)])
    pads = [t for t in st.flatten(padding_values)[1] if isinstance(t, Tensor)] \
        if padding_values is not None else []

    def build(values, session):
        core = dataset.build(values, session)
        length_of = lengths.bind(values, session)
        padding = None if padding_values is None else resolve(padding_values, values)

        def bucket(element) -> np.int64:
            length = int(np.asarray(length_of(element)))
            return np.int64(sum(b <= length for b in boundaries))

        def batches(key, elements):
            window = CoreDataset(WindowElements(elements, core.element_spec))
            if no_padding:
                return window.batch(sizes[key], drop_remainder).node.elements()
            filler = None
            if pad_to_bucket_boundary:
                if key == len(boundaries):
                    raise InvalidArgumentError(
                        "assertion failed: [When pad_to_bucket_boundary=True, elements "
                        "must have length < max(bucket_boundaries).]")
                filler = boundaries[key] - 1
            filled = st.unflatten(treedef, [None if d is None else tuple(
                filler if x is None else x for x in d) for d in shapes])
            return window.padded_batch(sizes[key], filled, padding,
                                       drop_remainder).node.elements()
        return CoreDataset(GroupByWindow(core.node, bucket, batches,
                                         lambda key: sizes[key], _core_spec(structure)))
    captured = list(dataset.captured) + lengths.captured + pads
    return make_dataset(structure, captured, build)
