"""``NativeRing``: a queue's rows in native storage (queue_ring.py), for Python callers.

One call moves a batch: ``put`` copies rows in as room allows, ``take`` copies rows out
into fresh NumPy arrays. Both wait without the GIL until ``deadline_ns``
(``time.time_ns()`` clock) and report how it went; what to do about a timeout or a closed
queue (wait again, raise TensorFlow's error) is the caller's (tracejit/data/queues.py).
"""

from __future__ import annotations

import ctypes

import numpy as np

from . import queue_ring as ring
from .queue_library import ring_functions

__all__ = ["NativeRing", "MAX_COLUMNS"]

MAX_COLUMNS = ring.MAX_COLUMNS


def _address(array: np.ndarray) -> int:
    # NOTE: the fastest way to an array's address (~0.9 us; .ctypes.data and
    # __array_interface__ build objects, 2-3 us); needs a writable array
    if not array.nbytes:
        return 0                # nothing is copied to or from it
    return ctypes.addressof(_BYTE.from_buffer(array)) if array.flags.writeable else \
        array.__array_interface__["data"][0]


_BYTE = ctypes.c_char


class NativeRing:
    """Rows of ``shapes``/``dtypes`` (fixed, numeric), up to ``capacity``; with
    ``random``, takes uniformly chosen rows and, while open, leaves ``min_after``."""

    # what put, take and pump_rows return, and take's modes: named here for callers that
    # reach the ring through the Device interface (tracejit/data/queues.py)
    OK, CLOSED, TIMEOUT, NO_MEMORY, BAD_INDEX = (ring.OK, ring.CLOSED, ring.TIMEOUT,
                                                 ring.NO_MEMORY, ring.BAD_INDEX)
    EXACT, UP_TO, AVAILABLE = ring.EXACT, ring.UP_TO, ring.AVAILABLE

    def __init__(self, capacity: int, dtypes, shapes, random: bool = False,
                 min_after: int = 0):
        self._fn = ring_functions()
        self.dtypes = [np.dtype(d) for d in dtypes]
        self.shapes = [tuple(s) for s in shapes]
        self.random = random
        columns = len(self.dtypes)
        self._state = np.zeros(ring.STATE_WORDS + 2 * columns, np.int64)
        state = self._state
        state[ring.W_CAPACITY] = capacity
        state[ring.W_RANDOM] = int(random)
        state[ring.W_MIN_AFTER] = min_after
        state[ring.W_COLUMNS] = columns
        state[ring.W_POINTERS + columns:] = [int(np.prod(s, dtype=np.int64)) * d.itemsize
                                             for s, d in zip(self.shapes, self.dtypes,
                                                             strict=True)]
        self._at = _address(state)

    def __del__(self):
        # NOTE: a thread inside put or take holds a reference: none is inside here
        fn = getattr(self, "_fn", None)
        if fn is not None:
            fn.release(self._at)

    def _word(self, index: int) -> int:
        return self._fn.read(self._at, index)

    def size(self) -> int:
        return self._word(ring.W_COUNT)

    def allocated_rows(self) -> int:
        return self._word(ring.W_ALLOCATED)

    def waiting_enqueuers(self) -> int:
        return self._word(ring.W_PUT_WAITERS)

    def put(self, arrays, done: int, count: int, deadline_ns: int) -> tuple[int, int]:
        """Rows ``done .. count`` of ``arrays`` (C-contiguous, the queue's dtypes) in, as
        room allows, until ``deadline_ns``; ``(status, rows done so far)``."""
        sources = (ctypes.c_void_p * len(arrays))(*map(_address, arrays))
        moved = ctypes.c_int64(done)        # NOTE: per call: threads put at once
        status = self._fn.put(self._at, sources, count, deadline_ns,
                              ctypes.byref(moved))
        return status, moved.value

    def take(self, n: int, mode: int, uniforms: np.ndarray | None, deadline_ns: int
             ) -> tuple[int, tuple | None, int]:
        """``(status, one array per component or None, rows)``: with status CLOSED, rows
        is how many the queue held."""
        outputs = [np.empty((n,) + s, d) for s, d in zip(self.shapes, self.dtypes,
                                                         strict=True)]
        pointers = (ctypes.c_void_p * len(outputs))(*map(_address, outputs))
        rows = ctypes.c_int64(0)
        status = self._fn.take(self._at, pointers, n, mode,
                               None if uniforms is None else _address(uniforms),
                               deadline_ns, ctypes.byref(rows))
        got = rows.value
        if status != ring.OK:
            return status, None, got
        if got < n:
            outputs = [a[:got].copy() for a in outputs]
        return status, tuple(outputs), got

    def pump_rows(self, sink: NativeRing, tables, limit: int, deadline_ns: int
                  ) -> tuple[int, int]:
        """A queue runner's loop, without the GIL: indices (this one-column ring's rows,
        up to ``limit`` at a time) gather rows of ``tables`` (C-contiguous, one per
        column of ``sink``, of its dtypes and row shapes) into ``sink``, until a ring
        closes, an index is out of range or ``deadline_ns`` passes. ``(status, info)``:
        CLOSED with info 0 (this ring, closed and empty) or 1 (``sink``); BAD_INDEX with
        the index; TIMEOUT."""
        index = np.empty(limit, self.dtypes[0])
        rows = [np.empty((limit,) + s, d) for s, d in zip(sink.shapes, sink.dtypes,
                                                          strict=True)]
        pointers = (ctypes.c_void_p * len(rows))(*map(_address, rows))
        sources = (ctypes.c_void_p * len(tables))(*map(_address, tables))
        info = ctypes.c_int64(0)
        status = self._fn.pump(self._at, sink._at, sources, len(tables[0]),
                               self.dtypes[0].itemsize, limit, _address(index), pointers,
                               deadline_ns, ctypes.byref(info))
        return status, info.value

    def close(self, cancel: bool) -> None:
        self._fn.close(self._at, int(cancel))

