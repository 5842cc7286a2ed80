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
(``dequeue_many`` pads each component to the batch's largest shape) and priority (the
element whose int64 first component is smallest first, ties in insertion order) are in
ordered_queues.py.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

# NOTE: "off" keeps every queue's rows in Python (the storage the native one is tested
# against); otherwise fixed-shape numeric rows live in the CPU device's native storage
NATIVE_ENV = "TRACEJIT_NATIVE_QUEUES"
# The longest a native wait runs before Python looks at its signals (Ctrl-C) and its own
# deadline, then waits again
WAIT_SLICE_S = 0.1


class QueueClosedError(Exception):
    """A dequeue from a closed queue without enough elements, or an enqueue to it."""


class QueueCancelledError(Exception):
    """An enqueue cancelled by ``close(cancel_pending_enqueues=True)``."""


class QueueTimeoutError(Exception):
    """A blocking operation ran past its timeout."""


class Queue:
    """First-in first-out. ``dtypes``: NumPy dtypes of the components; ``shapes``: their
    shapes (None entries for unknown dimensions; None for no checking).

    Elements move in batches: an enqueue puts as many as there is room for, then waits
    for more room; a dequeue takes its ``n`` at once. Where every component has a fixed
    shape and a numeric dtype, the elements live in arrays of up to ``capacity`` rows
    (a ring for FIFO order), so a batch moves with one copy per component, not one
    per element -- what keeps a training step's ``dequeue_many`` cheap."""

    kind = "FIFOQueue"
    columnar = True         # fixed-shape numeric elements may live in columns

    def __init__(self, capacity: int, dtypes, shapes=None, name: str = "queue"):
        if capacity is None or capacity <= 0:
            raise ValueError(f"{name}: capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.dtypes = [np.dtype(d) for d in dtypes]
        self.shapes = None if shapes is None else [None if s is None else tuple(s)
                                                   for s in shapes]
        self.name = name
        # NOTE: one lock, two conditions: a take wakes one waiting enqueuer (any of them can
        # use the room; it wakes the next while room is left), a put wakes the dequeuers.
        # One condition for both woke every thread at each move -- the producers of a
        # pipeline woke each other, and most of them found nothing to do.
        lock = threading.RLock()
        self._cond = threading.Condition(lock)      # dequeuers wait here
        self._room = threading.Condition(lock)      # enqueuers wait here
        self._closed = False
        self._cancelled = False
        self._items: list = []
        self._columns: list[np.ndarray] | None = None
        self._ring = None
        if self._fixed_rows():
            self._ring = self._native_storage()
            if self._ring is None:
                # NOTE: grown on demand (doubling, up to capacity): a large capacity of
                # large elements must not reserve its memory before it is used
                self._columns = [np.empty((0,) + shape, dtype) for shape, dtype in
                                 zip(self.shapes, self.dtypes, strict=True)]
        self._init_storage()

    def _native_storage(self):
        """The CPU device's native storage for these rows, or None (switched off, or no
        native code on this machine: the rows then live in NumPy columns)."""
        if os.environ.get(NATIVE_ENV, "").strip().lower() in ("off", "0", "no", "false"):
            return None
        from ..runtime.registry import get_device
        try:
            return get_device("cpu").queue_storage(self.capacity, self.dtypes, self.shapes,
                                                   **self._native_kind())
        except (RuntimeError, OSError, ImportError):
            return None

    def _native_kind(self) -> dict:
        return {}

    @property
    def storage(self) -> str:
        """Where the elements live: "native" (the CPU device's storage), "columns"
        (NumPy arrays of rows) or "list" (one tuple per element)."""
        return "native" if self._ring is not None else \
            "columns" if self._columns is not None else "list"

    def allocated_rows(self) -> int | None:
        """Rows of storage reserved so far (None where elements live in a list)."""
        if self._ring is not None:
            return self._ring.allocated_rows()
        return None if self._columns is None else len(self._columns[0])

    def waiting_enqueuers(self) -> int:
        """How many enqueues are waiting for room."""
        if self._ring is not None:
            return self._ring.waiting_enqueuers()
        return len(self._room._waiters)

    def _fixed_rows(self) -> bool:
        return (self.columnar and self.shapes is not None
                and all(s is not None and None not in s for s in self.shapes)
                and all(d.kind != "O" for d in self.dtypes))

    # ---- storage (what the kinds change) -------------------------------------------------

    def _init_storage(self) -> None:
        self._items = []
        self._head = self._count = 0        # the ring of columns: first row, rows held

    def _size(self) -> int:
        return self._count if self._columns is not None else len(self._items)

    def _put_rows(self, batch: tuple, start: int, stop: int) -> None:
        """Store rows ``start:stop`` of ``batch`` (one array per component)."""
        if self._columns is None:
            for i in range(start, stop):
                self._put(tuple(array[i] for array in batch))
            return
        self._reserve(self._count + stop - start)
        for lo, hi, at in self._ring_spans(self._head + self._count, stop - start):
            for column, array in zip(self._columns, batch, strict=True):
                column[lo:hi] = array[start + at:start + at + hi - lo]
        self._count += stop - start

    def _reserve(self, rows: int) -> None:
        """Columns of at least ``rows`` rows, the rows held moved to the front in order."""
        have = len(self._columns[0])
        if rows <= have:
            return
        size = min(self.capacity, max(rows, 2 * have, 16))
        spans = self._ring_spans(self._head, self._count)
        self._columns = [np.concatenate([column[lo:hi] for lo, hi, _ in spans] + [
            np.empty((size - self._count,) + column.shape[1:], column.dtype)])
            for column in self._columns]
        self._head = 0

    def _take_rows(self, n: int) -> tuple:
        """Remove ``n`` elements; one array of ``n`` rows per component."""
        if self._columns is None:
            return self._stack([self._take() for _ in range(n)])
        parts = self._ring_spans(self._head, n)
        out = tuple(np.concatenate([column[lo:hi] for lo, hi, _ in parts])
                    if len(parts) > 1 else column[parts[0][0]:parts[0][1]].copy()
                    for column in self._columns) if n else self._stack([])
        self._head = (self._head + n) % max(len(self._columns[0]), 1)
        self._count -= n
        return out

    def _ring_spans(self, first: int, n: int) -> list[tuple[int, int, int]]:
        """The slices ``(lo, hi, offset)`` of the ring holding ``n`` rows from ``first``."""
        rows = len(self._columns[0])
        lo = first % rows if rows else 0
        head = min(n, rows - lo)
        spans = [(lo, lo + head, 0)] if head else []
        if n > head:
            spans.append((0, n - head, head))
        return spans

    def _put(self, element: tuple) -> None:
        self._items.append(element)

    def _take(self) -> tuple:
        return self._items.pop(0)

    def _can_take(self, n: int) -> bool:
        return self._takeable() >= n

    def _takeable(self) -> int:
        """How many elements a dequeue may take now without waiting."""
        return self._size()

    # ---- the public operations ------------------------------------------------------------

    def size(self) -> int:
        if self._ring is not None:
            return self._ring.size()
        with self._cond:
            return self._size()

    @property
    def closed(self) -> bool:
        return self._closed

    def _checked_batch(self, components, batched: bool) -> tuple[tuple, int]:
        """The components as arrays of the queue's dtypes with a leading batch axis
        (added when not ``batched``), their element shapes checked; and the count."""
        if len(components) != len(self.dtypes):
            raise ValueError(f"{self.name}: expected {len(self.dtypes)} components, got "
                             f"{len(components)}")
        out = []
        for i, (value, dtype) in enumerate(zip(components, self.dtypes, strict=True)):
            array = np.asarray(value, dtype=object) if dtype.kind == "O" else \
                np.asarray(value)
            if dtype.kind != "O" and array.dtype != dtype:
                array = array.astype(dtype)
            if batched and array.ndim == 0:
                raise ValueError(f"{self.name}: enqueue_many needs components with a batch "
                                 "dimension")
            element = array.shape[1:] if batched else array.shape
            shape = None if self.shapes is None else self.shapes[i]
            if shape is not None and (len(shape) != len(element) or any(
                    s is not None and s != d for s, d in zip(shape, element, strict=True))):
                raise ValueError(f"{self.name}: component {i} has shape {list(element)}, "
                                 f"the queue's is {list(shape)}")
            out.append(array if batched else array[None])
        counts = {a.shape[0] for a in out}
        if len(counts) != 1:
            raise ValueError(f"{self.name}: enqueue_many components have different batch "
                             f"sizes {sorted(counts)}")
        return tuple(out), counts.pop()

    def _wait(self, ready, deadline, condition=None) -> None:
        condition = condition or self._cond
        while not ready():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise QueueTimeoutError(f"{self.name}: timed out")
            condition.wait(remaining)

    def enqueue(self, components, timeout: float | None = None) -> None:
        self._put_all(*self._checked_batch(list(components), False), timeout)

    def enqueue_many(self, components, timeout: float | None = None) -> None:
        """Enqueue the elements of ``components`` split along their first dimension."""
        self._put_all(*self._checked_batch(list(components), True), timeout)

    def _put_all(self, batch: tuple, count: int, timeout) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._ring is not None:
            self._native_put(batch, count, deadline)
            return
        done = 0
        with self._cond:
            while done < count:
                try:
                    self._wait(lambda: self._closed or self._size() < self.capacity,
                               deadline, self._room)
                except QueueTimeoutError:
                    self._room.notify()         # a wake-up this thread took goes on
                    raise
                if self._closed:
                    # NOTE: TensorFlow's CancelledError for any enqueue to a closed queue
                    raise QueueCancelledError(f"{self.kind} '{self.name}' is closed.")
                room = min(self.capacity - self._size(), count - done)
                self._put_rows(batch, done, done + room)
                done += room
                self._cond.notify_all()
            if self._size() < self.capacity:
                self._room.notify()             # room left: the next enqueuer's turn

    # ---- native storage: one call per batch, waiting in slices ------------------------------

    @staticmethod
    def _slice_end(deadline) -> int:
        """The end of the next native wait, on the clock the native code waits on."""
        wait = WAIT_SLICE_S if deadline is None else \
            max(0.0, min(WAIT_SLICE_S, deadline - time.monotonic()))
        return time.time_ns() + int(wait * 1e9)

    def _timed_out(self, deadline) -> bool:
        return deadline is not None and time.monotonic() >= deadline

    def _native_put(self, batch: tuple, count: int, deadline) -> None:
        batch = tuple(np.ascontiguousarray(a) for a in batch)
        done = 0
        ring = self._ring
        while True:
            status, done = ring.put(batch, done, count, self._slice_end(deadline))
            if status == ring.OK:
                return
            if status == ring.CLOSED:
                raise QueueCancelledError(f"{self.kind} '{self.name}' is closed.")
            if status != ring.TIMEOUT:
                raise MemoryError(f"{self.name}: no memory for {count - done} more rows")
            if self._timed_out(deadline):
                raise QueueTimeoutError(f"{self.name}: timed out")

    def pump_rows(self, sink: Queue, tables, limit: int, timeout: float | None = None
                  ) -> bool:
        """A queue runner's loop run without Python: take indices from this queue (up to
        ``limit`` at a time, as many as are there), put those rows of ``tables`` (one
        per component of ``sink``) into ``sink``; again, until this queue is closed and
        empty (QueueClosedError), ``sink`` is closed (QueueCancelledError) or an index
        is out of range (ValueError). What the same loop of ``dequeue_available``,
        row gathers and ``enqueue_many`` does. False, having moved nothing, where
        either queue keeps its rows in Python or the tables do not fit ``sink``."""
        if self._ring is None or sink._ring is None or len(self.dtypes) != 1 or \
                self.dtypes[0].kind != "i" or self.dtypes[0].itemsize not in (4, 8):
            return False
        tables = [np.asarray(t) for t in tables]
        if len(tables) != len(sink.dtypes) or len({len(t) for t in tables}) != 1 or any(
                t.dtype != d or t.shape[1:] != s
                for t, d, s in zip(tables, sink.dtypes, sink.shapes, strict=True)):
            return False
        tables = [np.ascontiguousarray(t) for t in tables]
        end = 2 ** 62 if timeout is None else time.time_ns() + int(timeout * 1e9)
        ring = self._ring
        status, info = ring.pump_rows(sink._ring, tables, int(limit), end)
        if status == ring.CLOSED and info == 0:
            raise QueueClosedError(f"{self.kind} '{self.name}' is closed and has "
                                   "insufficient elements (requested 1, current size 0)")
        if status == ring.CLOSED:
            raise QueueCancelledError(f"{sink.kind} '{sink.name}' is closed.")
        if status == ring.BAD_INDEX:
            raise ValueError(f"indices[0] = {info} is not in [0, {len(tables[0])})")
        if status == ring.TIMEOUT:
            raise QueueTimeoutError(f"{self.name}: timed out")
        raise MemoryError(f"{sink.name}: no memory for more rows")

    def _uniforms(self, n: int) -> np.ndarray | None:
        return None

    def _native_take(self, n: int, mode: int, deadline) -> tuple:
        # NOTE: drawn once per dequeue, not per wait: a seeded queue's order must not
        # depend on how long it waited
        uniforms = self._uniforms(n)
        ring = self._ring
        while True:
            status, taken, held = ring.take(n, mode, uniforms, self._slice_end(deadline))
            if status == ring.OK:
                return taken
            if status == ring.CLOSED:
                raise QueueClosedError(
                    f"{self.kind} '{self.name}' is closed and has insufficient elements "
                    f"(requested {1 if mode == ring.AVAILABLE else n}, current size {held})")
            if self._timed_out(deadline):
                raise QueueTimeoutError(f"{self.name}: timed out")

    def _dequeue_n(self, n: int, up_to: bool, timeout, at_least: int | None = None) -> tuple:
        """``n`` elements (fewer with ``up_to`` once closed; with ``at_least``, as many
        up to ``n`` as are there once ``at_least`` are), as one array per component."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._ring is not None:
            ring = self._ring
            mode = ring.AVAILABLE if at_least is not None else \
                ring.UP_TO if up_to else ring.EXACT
            return self._native_take(n, mode, deadline)
        with self._cond:
            self._wait(lambda: self._closed or self._can_take(at_least or n), deadline)
            if at_least is not None:
                n = max(1, min(n, self._takeable()))
            if not self._can_take(n):
                available = self._size()
                if not ((up_to or at_least is not None) and available > 0):
                    raise QueueClosedError(
                        f"{self.kind} '{self.name}' is closed and has insufficient "
                        f"elements (requested {n}, current size {available})")
                n = available
            taken = self._take_rows(n)
            self._room.notify()
            return taken

    def dequeue(self, timeout: float | None = None) -> tuple:
        return tuple(c[0] for c in self._dequeue_n(1, False, timeout))

    def dequeue_many(self, n: int, timeout: float | None = None) -> tuple:
        return self._dequeue_n(int(n), False, timeout)

    def dequeue_up_to(self, n: int, timeout: float | None = None) -> tuple:
        return self._dequeue_n(int(n), True, timeout)

    def dequeue_available(self, n: int, timeout: float | None = None) -> tuple:
        """Between 1 and ``n`` elements: waits for one, then takes as many as ``n``
        single dequeues in a row would get without waiting again (a queue runner's
        batched run; QueueClosedError once closed and empty)."""
        return self._dequeue_n(int(n), False, timeout, at_least=1)

    def _stack(self, elements: list[tuple]) -> tuple:
        return tuple(np.stack([e[i] for e in elements]) if elements else
                     np.zeros((0,) + (self._row_shape(i) or ()), self.dtypes[i])
                     for i in range(len(self.dtypes)))

    def _row_shape(self, i: int) -> tuple | None:
        shape = None if self.shapes is None else self.shapes[i]
        return shape if shape is not None and None not in shape else None

    def close(self, cancel_pending_enqueues: bool = False) -> None:
        if self._ring is not None:
            self._ring.close(cancel_pending_enqueues)
        with self._cond:
            self._closed = True
            self._cancelled = self._cancelled or cancel_pending_enqueues
            self._cond.notify_all()
            self._room.notify_all()


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

    def _native_kind(self) -> dict:
        return {"random": True, "min_after": self.min_after_dequeue}

    def _uniforms(self, n: int) -> np.ndarray:
        return self._rng.random(n)

    def _takeable(self) -> int:
        return self._size() - (0 if self._closed else self.min_after_dequeue)

    def _put_rows(self, batch: tuple, start: int, stop: int) -> None:
        if self._columns is None:
            super()._put_rows(batch, start, stop)
            return
        # unordered: the rows held are always 0 .. count-1
        self._reserve(self._count + stop - start)
        for column, array in zip(self._columns, batch, strict=True):
            column[self._count:self._count + stop - start] = array[start:stop]
        self._count += stop - start

    def _take_rows(self, n: int) -> tuple:
        if self._columns is None:
            return super()._take_rows(n)
        # n single dequeues, each taking a row uniformly chosen among those left, the last
        # row moving into its place (a partial Fisher-Yates shuffle of the rows held). It
        # is followed on row numbers, the arrays are touched once: the picked rows
        # gathered, then each hole filled by the row that ended up there.
        count = self._count
        keep = count - n
        at: dict[int, int] = {}            # slot -> the row now there, where it moved
        picked = []
        for step, u in enumerate(self._rng.random(n).tolist()):
            last = count - 1 - step
            slot = int(u * (last + 1))
            picked.append(at.get(slot, slot))
            at[slot] = at.get(last, last)
        out = tuple(column[picked] for column in self._columns)
        holes = [slot for slot, row in at.items() if slot < keep and row != slot]
        if holes:
            fillers = [at[slot] for slot in holes]
            for column in self._columns:
                column[holes] = column[fillers]
        self._count = keep
        return out

    def _take(self) -> tuple:
        i = int(self._rng.integers(len(self._items)))
        self._items[i], self._items[-1] = self._items[-1], self._items[i]
        return self._items.pop()
