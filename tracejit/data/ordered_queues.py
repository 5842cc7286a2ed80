"""The queue kinds that keep their elements in a list, in an order of their own: padding
(``dequeue_many`` pads each component to the batch's largest shape) and priority (the
element whose int64 first component is smallest first, ties in insertion order). They
share everything else -- blocking, closing, errors -- with ``queues.Queue``."""

from __future__ import annotations

import heapq
import itertools

import numpy as np

from .queues import Queue

__all__ = ["PaddingFIFOQueue", "PriorityQueue"]


class PaddingFIFOQueue(Queue):
    """First-in first-out; ``dequeue_many`` pads each component with zeros to the largest
    shape in the batch (unknown dimensions may differ between elements)."""

    kind = "PaddingFIFOQueue"
    columnar = False

    def _stack(self, elements: list[tuple]) -> tuple:
        out = []
        for i in range(len(self.dtypes)):
            parts = [e[i] for e in elements]
            if not parts:
                out.append(np.zeros((0,), self.dtypes[i]))
                continue
            shape = tuple(max(p.shape[d] for p in parts) for d in range(parts[0].ndim))
            batch = np.zeros((len(parts),) + shape, self.dtypes[i])
            if self.dtypes[i].kind == "O":
                batch[...] = b""
            for j, p in enumerate(parts):
                batch[(j,) + tuple(slice(0, s) for s in p.shape)] = p
            out.append(batch)
        return tuple(out)


class PriorityQueue(Queue):
    """The element with the smallest int64 first component first (ties: insertion
    order)."""

    kind = "PriorityQueue"
    columnar = False

    def _init_storage(self) -> None:
        self._items = []
        self._count = itertools.count()

    def _put(self, element: tuple) -> None:
        heapq.heappush(self._items, (int(element[0]), next(self._count), element))

    def _take(self) -> tuple:
        return heapq.heappop(self._items)[2]
