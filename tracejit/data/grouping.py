"""``group_by_window``: elements gathered into windows by a key, each full window turned
into a dataset by a reduce function (``tf.data.experimental.group_by_window``, the
bucketing of sequences by length in TensorFlow's NMT tutorial).

Each input element's key (``key_fn``, an int64 scalar) picks its window; a window of
``size_fn(key)`` elements is handed to ``reduce_fn(key, elements)`` and the elements of
the dataset it returns come out before the next input element is read. When the input
ends, the windows not yet full are reduced in increasing key order, as TensorFlow's
kernel (a map ordered by key) does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GroupByWindow", "WindowElements", "window_sizes"]


class WindowElements:
    """A dataset node holding one window's elements (what ``reduce_fn`` receives)."""

    def __init__(self, elements: list, spec):
        self.kept = elements
        self.spec = spec

    def elements(self):
        yield from self.kept


def window_sizes(window_size, window_size_func):
    """``key -> window size`` from exactly one of the two ways to give it."""
    if (window_size is None) == (window_size_func is None):
        raise ValueError("Either the `window_size` argument or the `window_size_func` "
                         "argument must be specified.")
    if window_size is not None:
        return lambda key: window_size
    return window_size_func


class GroupByWindow:
    """See the module's text. ``reduce_fn(key, elements)`` returns an iterable of output
    elements; ``spec`` is their structure."""

    def __init__(self, input, key_fn, reduce_fn, size_fn, spec):
        self.input = input
        self.key_fn, self.reduce_fn, self.size_fn = key_fn, reduce_fn, size_fn
        self.spec = spec

    def _key(self, element) -> int:
        key = np.asarray(self.key_fn(element))
        if key.shape != () or key.dtype != np.int64:
            raise TypeError(f"group_by_window: the key function must return an int64 "
                            f"scalar, got {key.dtype} of shape {list(key.shape)}")
        return int(key)

    def _size(self, key: int) -> int:
        size = int(np.asarray(self.size_fn(key)))
        if size <= 0:
            raise ValueError(f"Window size must be greater than zero, but got {size}.")
        return size

    def elements(self):
        windows: dict[int, list] = {}
        source = self.input.elements()
        try:
            for element in source:
                key = self._key(element)
                window = windows.setdefault(key, [])
                window.append(element)
                if len(window) >= self._size(key):
                    del windows[key]
                    yield from self.reduce_fn(key, window)
        finally:
            source.close()
        for key in sorted(windows):
            yield from self.reduce_fn(key, windows[key])
