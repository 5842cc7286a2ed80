"""Event files: TensorBoard's own writer, with the bookkeeping TensorFlow's adds.

``EventWriter(logdir)`` opens a new ``events.out.tfevents.*`` file in ``logdir`` through
``tensorboard.summary.writer.event_file_writer.EventFileWriter`` (a background thread
writes queued events as TFRecords, flushing every ``flush_secs``), so the records are
written by the code that defines the format. Both front ends write through it: the
``@jit`` API (``tracejit.summary.create_file_writer``) and TF1's ``tf.summary.FileWriter``.
"""

from __future__ import annotations

import os
import time
import warnings

from tensorboard.compat.proto import event_pb2, graph_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


def as_summary(summary) -> summary_pb2.Summary:
    """A ``Summary`` message from one, or from its serialized bytes (what fetching a
    summary op gives)."""
    if isinstance(summary, summary_pb2.Summary):
        return summary
    if isinstance(summary, (bytes, bytearray, memoryview)):
        return summary_pb2.Summary.FromString(bytes(summary))
    # NOTE: a NumPy bytes scalar or 0-d object array from sess.run of a merged summary
    item = getattr(summary, "item", None)
    if item is not None and isinstance(item(), bytes):
        return summary_pb2.Summary.FromString(item())
    raise TypeError(f"a summary must be a Summary message or its serialized bytes, got "
                    f"{type(summary).__name__}")


def _step(global_step) -> int | None:
    if global_step is None:
        return None
    try:
        return int(global_step)
    except (TypeError, ValueError):
        raise TypeError(f"global_step must be an integer, got {global_step!r}") from None


class EventWriter:
    """Writes Events to a new event file in ``logdir``; a context manager.

    As TensorFlow's ``FileWriter``, plugin metadata is written only with the first value
    of each tag (TensorBoard remembers it), and writing after ``close`` is ignored with
    a warning until ``reopen``.
    """

    def __init__(self, logdir, max_queue: int = 10, flush_secs: float = 120,
                 filename_suffix: str | None = None):
        self._logdir = os.fspath(logdir)
        if not self._logdir:
            raise ValueError("a summary writer needs a log directory, got an empty path")
        self._options = (int(max_queue), float(flush_secs), filename_suffix or "")
        self._seen_tags: set[str] = set()
        self._writer = self._open()
        self._closed = False

    def _open(self) -> EventFileWriter:
        max_queue, flush_secs, suffix = self._options
        return EventFileWriter(self._logdir, max_queue_size=max_queue, flush_secs=flush_secs,
                               filename_suffix=suffix)

    @property
    def closed(self) -> bool:
        return self._closed

    def get_logdir(self) -> str:
        return self._logdir

    @property
    def event_file(self) -> str:
        """The path of the event file being written."""
        # NOTE: EventFileWriter keeps the name in a field of its own; read it here only
        return self._writer._file_name

    def add_event(self, event: event_pb2.Event) -> None:
        if not isinstance(event, event_pb2.Event):
            raise TypeError(f"add_event takes an Event message, got {type(event).__name__}")
        if self._closed:
            warnings.warn(f"the summary writer of {self._logdir!r} is closed: the event is "
                          "dropped (call reopen() to write again)", stacklevel=3)
            return
        self._writer.add_event(event)

    def _event(self, global_step, **fields) -> event_pb2.Event:
        event = event_pb2.Event(wall_time=time.time(), **fields)
        step = _step(global_step)
        if step is not None:
            event.step = step
        return event

    def add_summary(self, summary, global_step=None) -> None:
        """Write a Summary (a message or its bytes) at ``global_step``."""
        message = summary_pb2.Summary()
        message.CopyFrom(as_summary(summary))
        for value in message.value:
            if not value.HasField("metadata"):
                continue
            if value.tag in self._seen_tags:
                value.ClearField("metadata")
            else:
                self._seen_tags.add(value.tag)
        self.add_event(self._event(global_step, summary=message))

    def add_graph_def(self, graph_def: graph_pb2.GraphDef, global_step=None) -> None:
        if not isinstance(graph_def, graph_pb2.GraphDef):
            raise TypeError(f"expected a GraphDef, got {type(graph_def).__name__}")
        self.add_event(self._event(global_step, graph_def=graph_def.SerializeToString()))

    def add_session_log(self, session_log: event_pb2.SessionLog, global_step=None) -> None:
        if not isinstance(session_log, event_pb2.SessionLog):
            raise TypeError(f"add_session_log takes a SessionLog message, got "
                            f"{type(session_log).__name__}")
        self.add_event(self._event(global_step, session_log=session_log))

    def flush(self) -> None:
        if not self._closed:
            self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def reopen(self) -> None:
        """After ``close``: continue in a new event file of the same directory."""
        if self._closed:
            self._writer = self._open()
            self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # NOTE: the background thread holds events until flushed; a writer dropped
        # without close should still leave them on disk
        try:
            self.close()
        except Exception:       # noqa: BLE001 (interpreter shutdown)
            pass
