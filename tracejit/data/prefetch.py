"""``prefetch``: a background thread computes elements ahead into a bounded buffer.

The thread pulls from the input (running everything upstream: reads, maps, batches)
while the consumer works on earlier elements. It stops cleanly: when the consumer's
iterator ends, is closed or is garbage-collected, the thread is told to stop, the buffer
is drained so a blocked ``put`` returns, the input is closed and the thread joined (by
the consumer's thread: a pipeline another thread drops is only told to stop). An
error upstream is handed to the consumer at the place of the element it stopped.
"""

from __future__ import annotations

import queue
import threading

__all__ = ["Prefetch"]

_POLL_SECONDS = 0.05        # how often a producer blocked on a full buffer checks for stop
_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetch:
    """Up to ``buffer_size`` elements computed ahead by a thread of its own."""

    def __init__(self, input, buffer_size: int):
        self.input = input
        size = int(buffer_size)
        if size == -1:
            size = 2        # AUTOTUNE
        if size < 0:
            raise ValueError(f"prefetch: buffer_size must be >= 0 or AUTOTUNE (-1), got "
                             f"{buffer_size}")
        self.buffer_size = size

    @property
    def spec(self):
        return self.input.spec

    def elements(self):
        if self.buffer_size == 0:
            yield from self.input.elements()
            return
        buffer: queue.Queue = queue.Queue(self.buffer_size)
        stop = threading.Event()
        thread = threading.Thread(target=_produce, args=(self.input, buffer, stop),
                                  name="tracejit-data-prefetch", daemon=True)
        thread.start()
        owner = threading.current_thread()
        try:
            while True:
                item = buffer.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()
            # NOTE: only the consumer waits for the producer to end. A pipeline dropped
            # by another thread -- one of its own map workers letting go of the last
            # reference, say -- is only told to stop: the producer may be waiting on
            # that very thread, and ends by itself once it sees `stop`.
            while thread.is_alive() and threading.current_thread() is owner:
                try:
                    buffer.get_nowait()
                except queue.Empty:
                    thread.join(_POLL_SECONDS)


def _produce(input, buffer: queue.Queue, stop: threading.Event) -> None:
    """The thread: input elements into ``buffer`` until the input ends or ``stop``."""
    source = input.elements()
    try:
        for element in source:
            if not _put(buffer, element, stop):
                return
        _put(buffer, _END, stop)
    except BaseException as error:      # handed to the consumer, raised there
        _put(buffer, _Failure(error), stop)
    finally:
        source.close()


def _put(buffer: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            buffer.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
