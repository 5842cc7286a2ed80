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
from .graph import Tensor
from .shapes import TensorShape
from .strings import string

__all__ = ["group_by_window"]

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
