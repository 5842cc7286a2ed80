"""A reader's state as TensorFlow serializes it: a ``tensorflow.ReaderBaseState`` proto
(work_started = 1, work_finished = 2, num_records_produced = 3, current_work = 4),
written and read with io/wire.py, so a state saved by TensorFlow restores here and back.
Only the readers whose records are whole work items (WholeFileReader, IdentityReader)
support it, as in TensorFlow."""

from __future__ import annotations

from typing import NamedTuple

from ...io import wire
from .errors import InvalidArgumentError

__all__ = ["ReaderState", "encode_state", "decode_state"]


class ReaderState(NamedTuple):
    started: int
    finished: int
    produced: int
    current: bytes


def encode_state(state: ReaderState) -> bytes:
    # NOTE: proto3: fields at their default (0, b"") are not written
    parts = [wire.field_varint(number, value) for number, value in
             ((1, state.started), (2, state.finished), (3, state.produced)) if value]
    if state.current:
        parts.append(wire.field_bytes(4, state.current))
    return b"".join(parts)


def decode_state(data: bytes, reader: str, location=None) -> ReaderState:
    """The state ``data`` holds; TensorFlow's InvalidArgumentError where it does not
    parse or does not hold together (``reader`` names the reader in the message)."""
    try:
        fields = wire.parse(bytes(data))
        state = ReaderState(*(wire.as_int64(wire.first(fields, n)) for n in (1, 2, 3)),
                            bytes(wire.first(fields, 4, b"")))
    except (wire.WireError, TypeError, ValueError):
        raise InvalidArgumentError(f"Could not parse state for {reader}: {data[:40]!r}",
                                   location=location) from None
    if min(state.started, state.finished, state.produced) < 0:
        raise InvalidArgumentError(f"Unexpected negative value when restoring in {reader}",
                                   location=location)
    if state.started > state.finished + (1 if state.current else 0):
        raise InvalidArgumentError(f"Inconsistent work started vs. finished when restoring "
                                   f"in {reader}", location=location)
    return state
