"""Thread-safe queues of tensors: the buffers of TF1 input pipelines.

An element is a tuple of NumPy arrays (one per component). ``enqueue`` blocks while the
queue is full, ``dequeue`` while it is empty; waits are on a condition variable, so a
blocked thread holds no GIL and the threads filling or draining the queue run. After
``close()`` enqueues fail and dequeues drain what is left, then fail with
``QueueClosedError`` (TensorFlow's OutOfRangeError); an enqueue to a closed queue fails
with ``QueueCancelledError`` (TensorFlow's CancelledError), and
``close(cancel_pending_enqueues=True)`` also fails the enqueues waiting for room.

Kinds: first-in first-out; random (``RandomShuffleQueue``: a uniformly chosen element,
and never fewer than ``min_after_dequeue`` left while the queue is open); padding
(``dequeue_many`` pads each component to the batch's largest shape); priority (the
element whose int64 first component is smallest first, ties in insertion order).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time

import numpy as np


class QueueClosedError(Exception):
    """A dequeue from a closed queue without enough elements, or an enqueue to it."""


class QueueCancelledError(Exception):
    """An enqueue cancelled by ``close(cancel_pending_enqueues=True)``."""


class QueueTimeoutError(Exception):
    """A blocking operation ran past its timeout."""


class Queue:
    """First-in first-out. ``dtypes``: NumPy dtypes of the components; ``shapes``: their
    shapes (None entries for unknown dimensions; None for no checking)."""

    kind = "FIFOQueue"

    def __init__(self, capacity: int, dtypes, shapes=None, name: str = "queue"):
        if capacity is None or capacity <= 0:
            raise ValueError(f"{name}: capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.dtypes = [np.dtype(d) for d in dtypes]
        self.shapes = None if shapes is None else [None if s is None else tuple(s)
                                                   for s in shapes]
        self.name = name
        self._cond = threading.Condition()
        self._closed = False
        self._cancelled = False
        self._items: list = []
        self._init_storage()

    # ---- storage (what the kinds change) -------------------------------------------------

    def _init_storage(self) -> None:
        self._items = []

    def _size(self) -> int:
        return len(self._items)

    def _put(self, element: tuple) -> None:
        self._items.append(element)

    def _take(self) -> tuple:
        return self._items.pop(0)

    def _can_take(self, n: int) -> bool:
        return self._size() >= n

    # ---- the public operations ------------------------------------------------------------

    def size(self) -> int:
        with self._cond:
            return self._size()

    @property
    def closed(self) -> bool:
        return self._closed

    def _checked(self, components) -> tuple:
        if len(components) != len(self.dtypes):
            raise ValueError(f"{self.name}: expected {len(self.dtypes)} components, got "
                             f"{len(components)}")
        out = []
        for i, (value, dtype) in enumerate(zip(components, self.dtypes, strict=True)):
            array = np.asarray(value)
            if dtype.kind == "O":
                array = array.astype(object)
            elif array.dtype != dtype:
                array = array.astype(dtype)
            shape = None if self.shapes is None else self.shapes[i]
            if shape is not None and (len(shape) != array.ndim or any(
                    s is not None and s != d for s, d in zip(shape, array.shape, strict=True))):
                raise ValueError(f"{self.name}: component {i} has shape {list(array.shape)}, "
                                 f"the queue's is {list(shape)}")
            out.append(array)
        return tuple(out)

    def _wait(self, ready, deadline) -> None:
        while not ready():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise QueueTimeoutError(f"{self.name}: timed out")
            self._cond.wait(remaining)

    def enqueue(self, components, timeout: float | None = None) -> None:
        self._put_all([self._checked(list(components))], timeout)

    def enqueue_many(self, components, timeout: float | None = None) -> None:
        """Enqueue the elements of ``components`` split along their first dimension."""
        if len(components) != len(self.dtypes):
            raise ValueError(f"{self.name}: expected {len(self.dtypes)} components, got "
                             f"{len(components)}")
        arrays = [np.asarray(c, dtype=object) if d.kind == "O" else np.asarray(c)
                  for c, d in zip(components, self.dtypes, strict=True)]
        if any(a.ndim == 0 for a in arrays):
            raise ValueError(f"{self.name}: enqueue_many needs components with a batch "
                             "dimension")
        counts = {a.shape[0] for a in arrays}
        if len(counts) != 1:
            raise ValueError(f"{self.name}: enqueue_many components have different batch "
                             f"sizes {sorted(counts)}")
        self._put_all([self._checked([a[i] for a in arrays]) for i in range(counts.pop())],
                      timeout)

    def _put_all(self, elements: list[tuple], timeout) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            for element in elements:
                self._wait(lambda: self._closed or self._size() < self.capacity, deadline)
                if self._closed:
                    # NOTE: TensorFlow's CancelledError for any enqueue to a closed queue
                    raise QueueCancelledError(f"{self.kind} '{self.name}' is closed.")
                self._put(element)
                self._cond.notify_all()

    def _dequeue_n(self, n: int, up_to: bool, timeout) -> list[tuple]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._wait(lambda: self._closed or self._can_take(n), deadline)
            if not self._can_take(n):
                available = self._size()
                if not (up_to and available > 0):
                    raise QueueClosedError(
                        f"{self.kind} '{self.name}' is closed and has insufficient "
                        f"elements (requested {n}, current size {available})")
                n = available
            taken = [self._take() for _ in range(n)]
            self._cond.notify_all()
            return taken

    def dequeue(self, timeout: float | None = None) -> tuple:
        return self._dequeue_n(1, False, timeout)[0]

    def dequeue_many(self, n: int, timeout: float | None = None) -> tuple:
        return self._stack(self._dequeue_n(int(n), False, timeout))

    def dequeue_up_to(self, n: int, timeout: float | None = None) -> tuple:
        return self._stack(self._dequeue_n(int(n), True, timeout))

    def _stack(self, elements: list[tuple]) -> tuple:
        return tuple(np.stack([e[i] for e in elements]) if elements else
                     np.zeros((0,), self.dtypes[i]) for i in range(len(self.dtypes)))

    def close(self, cancel_pending_enqueues: bool = False) -> None:
        with self._cond:
            self._closed = True
            self._cancelled = self._cancelled or cancel_pending_enqueues
            self._cond.notify_all()


class RandomShuffleQueue(Queue):
    """Dequeues a uniformly chosen element; while open, keeps ``min_after_dequeue``."""

    kind = "RandomShuffleQueue"

    def __init__(self, capacity, min_after_dequeue, dtypes, shapes=None, seed=None,
                 name="random_shuffle_queue"):
        if min_after_dequeue >= capacity:
            raise ValueError(f"{name}: min_after_dequeue ({min_after_dequeue}) must be less "
                             f"than capacity ({capacity})")
        self.min_after_dequeue = int(min_after_dequeue)
        self._rng = np.random.default_rng(seed)
        super().__init__(capacity, dtypes, shapes, name)

    def _can_take(self, n: int) -> bool:
        keep = 0 if self._closed else self.min_after_dequeue
        return self._size() - n >= keep

    def _take(self) -> tuple:
        i = int(self._rng.integers(len(self._items)))
        self._items[i], self._items[-1] = self._items[-1], self._items[i]
        return self._items.pop()


class PaddingFIFOQueue(Queue):
    """First-in first-out; ``dequeue_many`` pads each component with zeros to the largest
    shape in the batch (unknown dimensions may differ between elements)."""

    kind = "PaddingFIFOQueue"

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

    def _init_storage(self) -> None:
        self._items = []
        self._count = itertools.count()

    def _put(self, element: tuple) -> None:
        heapq.heappush(self._items, (int(element[0]), next(self._count), element))

    def _take(self) -> tuple:
        return heapq.heappop(self._items)[2]
