"""``tf.train.Coordinator`` and ``tf.train.QueueRunner``: the threads that fill TF1
input queues, and the object that stops them together.

A QueueRunner's threads each run one enqueue op in a loop on the session. A thread ends
when its op fails with OutOfRangeError (its input ran out: the runner closes the queue
when its last thread ends, so the consumer drains it and then sees OutOfRangeError
itself), when the coordinator is asked to stop (a cancel thread closes the queue with
``cancel_pending_enqueues``, waking enqueues blocked on a full queue), or with any
other error, which it reports to the coordinator: ``Coordinator.join`` re-raises it.

Where the enqueue op is fed by a dequeue through host ops that have batched forms (the
rows of in-memory data that ``slice_input_producer`` gathers by a dequeued index, into
``batch`` or ``shuffle_batch``), a thread runs up to ``RUNNER_BATCH`` of its runs as one
(``Session.run_batched``): the same elements reach the queue, moved by one Python call
per op instead of one ``Session.run`` per element.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

from .errors import CancelledError, OutOfRangeError
from .graph import get_default_graph
from .variables import GraphKeys

__all__ = ["Coordinator", "QueueRunner", "add_queue_runner", "start_queue_runners",
           "LooperThread", "RUNNER_BATCH"]

# The most runs of its enqueue op a queue runner's thread makes as one batch: a typical
# training batch, so one call refills what one step takes.
RUNNER_BATCH = 32


class Coordinator:
    """``Coordinator(clean_stop_exception_types=(OutOfRangeError,))``."""

    def __init__(self, clean_stop_exception_types=None):
        self._clean = tuple(clean_stop_exception_types
                            if clean_stop_exception_types is not None
                            else (OutOfRangeError,))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._exc_info = None
        self._threads: list[threading.Thread] = []
        self._joined = False

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def request_stop(self, ex=None) -> None:
        """Ask every thread to stop; ``ex`` (an exception, or ``sys.exc_info()``) is
        re-raised by ``join`` unless it is a clean stop (OutOfRangeError)."""
        with self._lock:
            if ex is not None and self._exc_info is None and not self._joined:
                info = ex if isinstance(ex, tuple) else (type(ex), ex, ex.__traceback__)
                if not issubclass(info[0], self._clean):
                    self._exc_info = info
            self._stop.set()

    def clear_stop(self) -> None:
        with self._lock:
            self._joined = False
            self._exc_info = None
            self._stop.clear()

    def wait_for_stop(self, timeout=None) -> bool:
        return self._stop.wait(timeout)

    def stop_on_exception(self):
        """``with coord.stop_on_exception():`` -- an exception in the block requests a
        stop (and is kept for ``join``) instead of propagating."""
        coordinator = self

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except Exception:          # noqa: BLE001 - reported to the coordinator
                coordinator.request_stop(sys.exc_info())
        return guard()

    def register_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.append(thread)

    @property
    def joined(self) -> bool:
        return self._joined

    def raise_requested_exception(self) -> None:
        with self._lock:
            if self._exc_info is not None:
                _, value, traceback = self._exc_info
                raise value.with_traceback(traceback)

    def join(self, threads=None, stop_grace_period_secs=120, ignore_live_threads=False):
        """Wait for the threads (the registered ones and ``threads``) once a stop is
        requested, giving them ``stop_grace_period_secs`` to end; then re-raise the first
        exception a thread reported. Threads still alive after the grace period are a
        RuntimeError naming them (unless ``ignore_live_threads``)."""
        with self._lock:
            threads = list(set(self._threads) | set(threads or []))
        while any(t.is_alive() for t in threads) and not self.wait_for_stop(0.05):
            pass
        deadline = time.monotonic() + stop_grace_period_secs
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        with self._lock:
            self._joined = True
            self._threads = []
        self.raise_requested_exception()
        if alive and not ignore_live_threads:
            raise RuntimeError(f"Coordinator stopped with threads still running: "
                               f"{' '.join(alive)}")


class LooperThread(threading.Thread):
    """``tf.train.LooperThread(coord, timer_interval_secs, target=None, args=None)``:
    calls ``target(*args)`` every ``timer_interval_secs`` until the coordinator stops."""

    def __init__(self, coord, timer_interval_secs, target=None, args=None, kwargs=None):
        super().__init__(daemon=True)
        self._coord = coord
        self._interval = timer_interval_secs
        self._target_fn = target
        self._args = args or ()
        self._kwargs = kwargs or {}
        coord.register_thread(self)

    def run(self):
        with self._coord.stop_on_exception():
            while not self._coord.should_stop():
                self._target_fn(*self._args, **self._kwargs)
                if self._interval is None:
                    continue
                if self._coord.wait_for_stop(self._interval):
                    break


class QueueRunner:
    """``tf.train.QueueRunner(queue, enqueue_ops, close_op=None, cancel_op=None)``."""

    def __init__(self, queue=None, enqueue_ops=None, close_op=None, cancel_op=None,
                 queue_closed_exception_types=None, queue_runner_def=None, import_scope=None):
        if queue is None or not enqueue_ops:
            raise ValueError("QueueRunner needs a queue and at least one enqueue op")
        self.queue = queue
        self.enqueue_ops = list(enqueue_ops)
        self.close_op = close_op if close_op is not None else queue.close()
        self.cancel_op = cancel_op if cancel_op is not None else \
            queue.close(cancel_pending_enqueues=True)
        self._closed_types = tuple(queue_closed_exception_types or
                                   (OutOfRangeError, CancelledError))
        self._lock = threading.Lock()
        self._running = 0
        self.exceptions_raised: list[BaseException] = []

    @property
    def name(self) -> str:
        return self.queue.name

    def _run(self, sess, enqueue_op, coord) -> None:
        decremented = False
        try:
            batched = getattr(sess, "run_batched", None)
            pump = getattr(sess, "run_pump", None)
            while coord is None or not coord.should_stop():
                try:
                    # NOTE: a chain native code can run moves rows without Python until a
                    # queue closes (a coordinator's stop closes them); a chain with a
                    # batched form moves up to RUNNER_BATCH elements per Python call, where
                    # one run moves one: what lets a queue feed a compiled step from
                    # threads without stalling it
                    if pump is not None and pump(enqueue_op, RUNNER_BATCH):
                        continue
                    pump = None
                    if batched is None or not batched(enqueue_op, RUNNER_BATCH):
                        batched = None
                        sess.run(enqueue_op)
                except self._closed_types:
                    # this input ran out: the last thread to end closes the queue
                    with self._lock:
                        self._running -= 1
                        decremented = True
                        last = self._running == 0
                    if last:
                        try:
                            sess.run(self.close_op)
                        except Exception as exc:     # noqa: BLE001 - session closing
                            self._report(exc, coord)
                    return
        except Exception as exc:            # noqa: BLE001 - reported, not lost
            self._report(exc, coord)
        finally:
            if not decremented:
                with self._lock:
                    self._running -= 1

    def _report(self, exc, coord) -> None:
        if isinstance(exc, RuntimeError) and "closed Session" in str(exc):
            return                       # the session closed under the thread: done
        with self._lock:
            self.exceptions_raised.append(exc)
        if coord is not None:
            coord.request_stop(exc)
        else:
            raise exc

    def _close_on_stop(self, sess, coord) -> None:
        coord.wait_for_stop()
        try:
            sess.run(self.cancel_op)
        except Exception:                   # noqa: BLE001 - the session may be gone
            pass

    def create_threads(self, sess, coord=None, daemon=False, start=False):
        """One thread per enqueue op (and, with a coordinator, one that cancels the
        queue when it stops); registered with ``coord``; started with ``start=True``."""
        with self._lock:
            self._running = len(self.enqueue_ops)
            self.exceptions_raised = []
        threads = [threading.Thread(target=self._run, args=(sess, op, coord), daemon=daemon,
                                    name=f"QueueRunnerThread-{self.name}-{op.name}")
                   for op in self.enqueue_ops]
        if coord is not None:
            threads.append(threading.Thread(target=self._close_on_stop, args=(sess, coord),
                                            daemon=True,
                                            name=f"QueueRunnerCancel-{self.name}"))
        for thread in threads:
            if coord is not None:
                coord.register_thread(thread)
            if start:
                thread.start()
        return threads


def add_queue_runner(qr, collection=GraphKeys.QUEUE_RUNNERS) -> None:
    get_default_graph().add_to_collection(collection, qr)


def start_queue_runners(sess=None, coord=None, daemon=True, start=True,
                        collection=GraphKeys.QUEUE_RUNNERS):
    """Start the threads of every QueueRunner in the graph's collection; returns them."""
    from .default_session import get_default_session
    sess = sess or get_default_session()
    if sess is None:
        raise ValueError("Cannot start queue runners: No default session is registered. "
                         "Use `with sess.as_default()` or pass an explicit session to "
                         "tf.start_queue_runners(sess=sess)")
    threads = []
    for runner in sess.graph.get_collection(collection):
        threads.extend(runner.create_threads(sess, coord=coord, daemon=daemon, start=start))
    return threads
