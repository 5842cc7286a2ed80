"""TF1's readers: ``tf.TextLineReader``, ``tf.FixedLengthRecordReader``,
``tf.TFRecordReader``, ``tf.WholeFileReader`` and ``tf.IdentityReader``.

A reader turns a queue of file names into records. ``reader.read(queue)`` is a host op
(host_ops.py) whose outputs are a ``key`` and a ``value`` string: each ``Session.run``
that needs it gives the next record, taking the next file name from the queue when the
current file ends, and raising ``tf.errors.OutOfRangeError`` once the queue is closed and
empty. A reader keeps its place per session, across runs; ``reader.reset()`` starts
over. The queue may be any object with ``dequeue_host(session) -> bytes`` (tf.train's
queues and input producers have it).

>>> import os, tempfile
>>> import tracejit.compat.v1 as tf
>>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
>>> _ = open(path, "w").write("x\\ny\\n")
>>> class Names:                                   # a stand-in for a queue of names
...     def __init__(self, names): self.names = list(names)
...     def dequeue_host(self, session):
...         if not self.names:
...             raise tf.errors.OutOfRangeError("no more files")
...         return self.names.pop(0).encode()
>>> with tf.Graph().as_default():
...     key, value = tf.TextLineReader().read(Names([path]))
...     with tf.Session() as sess:
...         [sess.run(value).item() for _ in range(2)]
[b'x', b'y']
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ...io import records
from ...ir import dtypes as dt
from ...ir.source import user_location
from .errors import DataLossError, NotFoundError, UnimplementedError
from .host_ops import host_op, host_tensor
from .reader_state import ReaderState, decode_state, encode_state
from .strings import string


def _text(path) -> str:
    return path.decode(errors="replace") if isinstance(path, bytes) else str(path)


class _Source:
    """One open file's records: ``next()`` -> ``(key, value)`` or None at its end."""

    whole = False               # one record per work item (the file, or its name)

    def next(self) -> tuple[bytes, bytes] | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Lines(_Source):
    def __init__(self, name: bytes, skip: int):
        self.name = name
        self._file = open(_text(name), "rb")  # noqa: SIM115 -- closed by close()
        self.line = 0
        for _ in range(skip):
            if not self._file.readline():
                break
            self.line += 1

    def next(self):
        line = self._file.readline()
        if not line:
            return None
        self.line += 1
        line = line[:-1] if line.endswith(b"\n") else line
        line = line[:-1] if line.endswith(b"\r") else line
        return self.name + b":%d" % self.line, line

    def close(self):
        self._file.close()


class _FixedLength(_Source):
    def __init__(self, name: bytes, reader: FixedLengthRecordReader):
        self.name = name
        self._reader = reader
        self._file = None
        if reader.encoding:
            # NOTE: a compressed file cannot seek: its uncompressed bytes are held
            stream = records.open_stream(_text(name), reader.encoding)
            try:
                self._data = _read_all(stream)
            finally:
                stream.close()
            size = len(self._data)
        else:
            self._file = open(_text(name), "rb")  # noqa: SIM115 -- closed by close()
            size = os.fstat(self._file.fileno()).st_size
        self._end = size - reader.footer_bytes
        self.number = 0

    def next(self):
        r = self._reader
        start = r.header_bytes + self.number * (r.hop_bytes or r.record_bytes)
        if start + r.record_bytes > self._end:
            return None     # NOTE: a partial record before the footer is dropped, as TF's
        self.number += 1
        if self._file is None:
            value = self._data[start:start + r.record_bytes]
        else:
            self._file.seek(start)
            value = self._file.read(r.record_bytes)
        return self.name + b":%d" % (self.number - 1), value

    def close(self):
        if self._file is not None:
            self._file.close()


def _read_all(stream) -> bytes:
    chunks = []
    while chunk := stream.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


class _Records(_Source):
    def __init__(self, name: bytes, compression):
        self.name = name
        self._reader = records.RecordReader(_text(name), compression)

    def next(self):
        offset = self._reader.offset
        data = self._reader.read()
        return None if data is None else (self.name + b":%d" % offset, data)

    def close(self):
        self._reader.close()


class _WholeFile(_Source):
    whole = True

    def __init__(self, name: bytes, identity: bool = False):
        self.name, self._identity, self._done = name, identity, False

    def next(self):
        if self._done:
            return None
        self._done = True
        if self._identity:
            return self.name, self.name
        with open(_text(self.name), "rb") as file:
            return self.name, file.read()


class _State:
    """A reader's place in one session."""

    def __init__(self):
        self.lock = threading.Lock()
        self.source: _Source | None = None
        self.produced = 0
        self.completed = 0
        self.current = b""              # the name of the last work item started

    def close(self) -> None:
        """The session closed: the open file is closed."""
        with self.lock:
            if self.source is not None:
                self.source.close()
                self.source = None


class ReaderBase:
    """The shared machinery: per-session state, the ``read``/``read_up_to`` host ops
    and the counters. Subclasses say how a file opens (``_open``)."""

    _type = "Reader"

    def __init__(self, name: str | None = None):
        self.name = name or self._type
        self._key = ("reader", object())     # NOTE: this reader's state in a session
        self._recent = threading.local()

    _serializable = False           # whole-item readers: see reader_state.py

    @property
    def supports_serialize(self) -> bool:
        return self._serializable

    def _open(self, name: bytes) -> _Source:
        raise NotImplementedError

    def _state(self, session) -> _State:
        return session.resource(self._key, _State, _State.close)

    def _next_file(self, state: _State, queue, session) -> None:
        name = queue.dequeue_host(session)
        name = name.encode() if isinstance(name, str) else bytes(name)
        self._start(state, name)

    def _start(self, state: _State, name: bytes) -> None:
        try:
            state.source = self._open(name)
            state.current = name
        except FileNotFoundError:
            raise NotFoundError(f"{_text(name)}; No such file or directory (read by "
                                f"{self.name})") from None
        except (OSError, records.RecordError) as exc:
            raise DataLossError(f"{_text(name)}: cannot be read by {self.name}: {exc}") \
                from None

    def _finish(self, state: _State) -> None:
        if state.source is not None:
            state.source.close()
        state.source = None
        state.completed += 1

    def _read(self, session, queue, limit: int) -> tuple[list, list]:
        """Up to ``limit`` records of one file (fewer where it ends), taking files from
        the queue until one has a record."""
        state = self._state(session)
        keys, values = [], []
        with state.lock:
            while not keys:
                if state.source is None:
                    self._next_file(state, queue, session)
                try:
                    while len(keys) < limit:
                        record = state.source.next()
                        if record is None:
                            self._finish(state)
                            break
                        keys.append(record[0])
                        values.append(record[1])
                        if state.source.whole:
                            # NOTE: one record is the whole work item: it is finished
                            # now, as TensorFlow counts it (num_work_units_completed)
                            self._finish(state)
                            break
                except records.RecordError as exc:
                    # NOTE: nothing after a bad record can be found again: the file is
                    # given up and the next read starts the queue's next file
                    self._finish(state)
                    raise DataLossError(f"{exc} (read by {self.name})") from None
            state.produced += len(keys)
        self._recent.last = (session, tuple(values), tuple(keys))
        return keys, values

    def _check_queue(self, queue) -> None:
        if not callable(getattr(queue, "dequeue_host", None)):
            raise TypeError(f"{self.name}.read: {queue!r} is not a queue of file names "
                            "(it has no dequeue_host(session) method)")

    def read(self, queue, name=None):
        """``(key, value)``: the next record, a scalar string each."""
        self._check_queue(queue)

        def compute(session, values):
            keys, records_ = self._read(session, queue, 1)
            return [np.array(keys[0], dtype=object), np.array(records_[0], dtype=object)]

        def batched(session, batches, limit):
            # the next records of one file: what reads in a row give until it ends
            keys, records_ = self._read(session, queue, limit)
            return [_strings(keys), _strings(records_)]

        op = host_op("ReaderReadV2", compute, (), [(string, []), (string, [])],
                     name=name or f"{self.name}_read", batched=batched)
        op.reader = self
        return op.outputs[0], op.outputs[1]

    def read_up_to(self, queue, num_records, name=None):
        """``(keys, values)``: up to ``num_records`` records, fewer where a file ends."""
        self._check_queue(queue)
        count = int(num_records)
        if count < 1:
            raise ValueError(f"{self.name}.read_up_to: num_records must be at least 1, "
                             f"not {count}")

        def compute(session, values):
            keys, records_ = self._read(session, queue, count)
            return [_strings(keys), _strings(records_)]

        op = host_op("ReaderReadUpToV2", compute, (), [(string, [None]), (string, [None])],
                     name=name or f"{self.name}_read_up_to")
        op.reader = self
        return op.outputs[0], op.outputs[1]

    def _counter(self, what: str, field: str, name):
        def compute(session, values):
            state = self._state(session)
            with state.lock:
                return [np.int64(getattr(state, field))]
        return host_op(what, compute, (), [(dt.int64, [])], name=name).outputs[0]

    def num_records_produced(self, name=None):
        """How many records this reader has given in the session."""
        return self._counter("ReaderNumRecordsProducedV2", "produced", name)

    def num_work_units_completed(self, name=None):
        """How many files this reader has finished in the session."""
        return self._counter("ReaderNumWorkUnitsCompletedV2", "completed", name)

    def reset(self, name=None):
        """An op that puts the reader back at its start (no file, counters zero)."""
        def compute(session, values):
            state = self._state(session)
            with state.lock:
                if state.source is not None:
                    state.source.close()
                state.source, state.produced, state.completed = None, 0, 0
            return []
        return host_op("ReaderResetV2", compute, (), [], name=name)

    def serialize_state(self, name=None):
        """A scalar string: this reader's place in the session (TensorFlow's
        ReaderBaseState proto), for ``restore_state``."""
        if not self._serializable:
            raise UnimplementedError(f"{self.name} does not support serializing its state",
                                     location=user_location())

        def compute(session, values):
            state = self._state(session)
            with state.lock:
                started = state.completed + (state.source is not None)
                return encode_state(ReaderState(started, state.completed, state.produced,
                                                state.current))
        return host_tensor("ReaderSerializeStateV2", compute, (), shape=(),
                           name=name or "ReaderSerializeStateV2")

    def restore_state(self, state, name=None):
        """An op that puts this reader where ``state`` (a ``serialize_state`` value) says;
        the queue of work items keeps its own place."""
        if not self._serializable:
            raise UnimplementedError(f"{self.name} does not support restoring its state",
                                     location=user_location())
        location = user_location()
        described = f"{type(self).__name__} '{self.name}'"

        def compute(session, values):
            text = values[0].item() if isinstance(values[0], np.ndarray) else values[0]
            text = text.encode() if isinstance(text, str) else text
            found = decode_state(text, described, location)
            current = self._state(session)
            with current.lock:
                if current.source is not None:
                    current.source.close()
                current.source = None
                current.produced, current.completed = found.produced, found.finished
                current.current = found.current
                if found.started > found.finished:      # in the middle of a work item
                    self._start(current, found.current)
            return []
        return host_op("ReaderRestoreStateV2", compute, [state], [],
                       name=name or "ReaderRestoreStateV2")

    def recent_keys(self, session, values) -> list[bytes] | None:
        """The keys of the records ``values`` (an array of them), when they are what this
        reader last gave in this thread's run of ``session``; else None."""
        last = getattr(self._recent, "last", None)
        if last is None or last[0] is not session:
            return None
        flat = list(np.asarray(values, dtype=object).reshape(-1))
        if len(flat) != len(last[1]) or any(a is not b for a, b in zip(flat, last[1],
                                                                         strict=True)):
            return None
        return list(last[2])


def _strings(items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def record_keys(tensor, session, values) -> list[bytes] | None:
    """Where the records ``values`` of ``tensor`` came from (a reader's keys, such as
    ``b"data.csv:3"``), for an error message; None when they were not read by a reader."""
    reader = getattr(getattr(tensor, "op", None), "reader", None)
    if reader is None or tensor.value_index != 1:
        return None
    return reader.recent_keys(session, values)


class TextLineReader(ReaderBase):
    """Lines of text files (without their ``\\n`` or ``\\r\\n``); keys
    ``b"name:line"``, counting lines from 1, the skipped header lines included."""

    _type = "TextLineReaderV2"

    def __init__(self, skip_header_lines=None, name=None):
        super().__init__(name)
        self.skip_header_lines = int(skip_header_lines or 0)

    def _open(self, name):
        return _Lines(name, self.skip_header_lines)


class FixedLengthRecordReader(ReaderBase):
    """Records of ``record_bytes`` bytes between ``header_bytes`` and ``footer_bytes``;
    ``hop_bytes`` (when nonzero) is the step from one record's start to the next;
    keys ``b"name:n"`` from 0. ``encoding`` may be "ZLIB" or "GZIP"."""

    _type = "FixedLengthRecordReaderV2"

    def __init__(self, record_bytes, header_bytes=None, footer_bytes=None, hop_bytes=None,
                 name=None, encoding=None):
        super().__init__(name)
        self.record_bytes = int(record_bytes)
        self.header_bytes = int(header_bytes or 0)
        self.footer_bytes = int(footer_bytes or 0)
        self.hop_bytes = int(hop_bytes or 0)
        self.encoding = records.compression_name(encoding)
        if self.record_bytes < 1 or min(self.header_bytes, self.footer_bytes,
                                        self.hop_bytes) < 0:
            raise ValueError(f"FixedLengthRecordReader: record_bytes must be positive and "
                             f"header_bytes, footer_bytes, hop_bytes not negative (got "
                             f"{self.record_bytes}, {self.header_bytes}, "
                             f"{self.footer_bytes}, {self.hop_bytes})")

    def _open(self, name):
        return _FixedLength(name, self)


class TFRecordReader(ReaderBase):
    """The records of TFRecord files; keys ``b"name:offset"`` (the record's byte offset,
    uncompressed). ``options``: a ``tf.python_io.TFRecordOptions`` or a compression
    name."""

    _type = "TFRecordReaderV2"

    def __init__(self, name=None, options=None):
        super().__init__(name)
        self.compression = records.compression_name(options)

    def _open(self, name):
        return _Records(name, self.compression)


class WholeFileReader(ReaderBase):
    """Each file as one record: key the file's name, value its contents."""

    _type = "WholeFileReaderV2"
    _serializable = True

    def _open(self, name):
        return _WholeFile(name)


class IdentityReader(ReaderBase):
    """Each queued name as one record: key and value both the name itself."""

    _type = "IdentityReaderV2"
    _serializable = True

    def _open(self, name):
        return _WholeFile(name, identity=True)

