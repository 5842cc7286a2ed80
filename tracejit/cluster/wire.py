"""The wire format between tasks: a fixed binary header, a JSON text, and raw tensors.

A message is one ZeroMQ multipart message of ``2 + 2 * n`` frames:

* frame 0, the **envelope** (``ENVELOPE``, 28 bytes little-endian): magic ``b"TJW1"``,
  format version, message kind, flags (0), tensor count ``n``, step id, request id;
* frame 1, the **text**: UTF-8 JSON of one object (what the kind needs besides tensors:
  a graph's IR text, a graph handle, variable names, an error message), at most
  ``MAX_TEXT`` bytes;
* then per tensor a **tensor header** (``TENSOR_HEAD``: dtype code, rank, key length,
  then ``rank`` uint64 dims, then the UTF-8 rendezvous key) and the tensor's **raw
  bytes**, C order, sent without a copy (``send_multipart(copy=False)``) and viewed
  without one on arrival (``np.frombuffer``).

Nothing here ever unpickles: the only things decoded are fixed structs, UTF-8, JSON and
raw numeric buffers whose dtype comes from a closed table. :func:`decode` validates
everything before anything is used -- magic, version, kind, frame count, sizes, dtype
codes, rank, the product of the dims times the itemsize equal to the buffer's length,
the JSON's shape -- and raises :class:`WireError` naming what was wrong; a server
answers such a message with an ERROR reply and goes on serving.
"""

from __future__ import annotations

import enum
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..ir import dtypes as dt
from ..ir.errors import TracejitError

__all__ = ["Kind", "Message", "WireError", "encode", "decode", "MAGIC", "VERSION",
           "MAX_TEXT", "MAX_RANK", "MAX_TENSORS", "DTYPE_CODES"]

MAGIC = b"TJW1"
VERSION = 1
ENVELOPE = struct.Struct("<4sBBHIQQ")         # magic, version, kind, flags, n, step, request
TENSOR_HEAD = struct.Struct("<BBH")           # dtype code, rank, key length
MAX_TEXT = 64 << 20         # a graph's IR text with its constants fits well within
MAX_RANK = 8
MAX_TENSORS = 4096
MAX_KEY = 1024
MAX_TENSOR_BYTES = 1 << 34  # 16 GiB: larger is a corrupt dim, not a tensor


class WireError(TracejitError, ValueError):
    """A message that is not what the wire format allows."""


class Kind(enum.IntEnum):
    """Message kinds. Requests go client -> server; OK/ERROR/RESULT come back."""

    PING = 1            # -> OK {"job", "task", "cluster"}
    REGISTER = 2        # {"graph": IR text} -> OK {"handle"}
    RUN = 3             # {"handle", "args", "stores"} + tensors -> RESULT + tensors
    READ = 4            # {"names"} -> RESULT + tensors keyed by name
    WRITE = 5           # tensors keyed by variable name -> OK
    STATUS = 6          # {"names"} -> OK {"initialized": [bool]}
    ACCUMULATE = 7      # {"name", "replica", "step"} + gradients -> OK {"accepted"}
    TAKE = 8            # {"name", "count", "timeout_ms"} -> RESULT + the mean, when ready
    TOKEN = 9           # {"name", "timeout_ms"} -> OK {"step"} once a token is there
    PUSH = 10           # {"name", "count", "step"} -> OK; count tokens of global step
    STOP = 11           # -> OK; the server stops serving (tests, join)
    OK = 64
    RESULT = 65
    ERROR = 66
    # Ring all-reduce between workers (allreduce.py): one-way messages to the ring's next
    # worker, never answered
    RING_HELLO = 80     # {"origin", "size", "job", "bucket_bytes"}: a worker joined the ring
    RING_DATA = 81      # {"op", "from", "b", "s", "c", "sig"} + one chunk of one bucket


# The closed table of dtypes a tensor may have on the wire: codes are the format's,
# never Python's or NumPy's names.
DTYPE_CODES: dict[int, dt.DType] = {
    1: dt.float32, 2: dt.float64, 3: dt.float16, 4: dt.bfloat16, 5: dt.int8, 6: dt.int32,
    7: dt.int64, 8: dt.uint8, 9: dt.bool_,
}
_CODE_OF = {dtype: code for code, dtype in DTYPE_CODES.items()}


@dataclass
class Message:
    kind: Kind
    text: dict = field(default_factory=dict)
    tensors: list[tuple[str, np.ndarray]] = field(default_factory=list)
    step: int = 0
    request: int = 0

    def tensor(self, key: str) -> np.ndarray:
        for name, array in self.tensors:
            if name == key:
                return array
        raise WireError(f"{self.kind.name} message has no tensor {key!r}")


def encode(message: Message) -> list:
    """The frames of ``message`` (tensor buffers are the arrays themselves: send them with
    ``copy=False`` and do not change them until sent)."""
    if len(message.tensors) > MAX_TENSORS:
        raise WireError(f"{len(message.tensors)} tensors in one message; at most "
                        f"{MAX_TENSORS}")
    text = json.dumps(message.text, separators=(",", ":")).encode()
    if len(text) > MAX_TEXT:
        raise WireError(f"message text of {len(text)} bytes; at most {MAX_TEXT}")
    frames: list = [ENVELOPE.pack(MAGIC, VERSION, int(message.kind), 0,
                                  len(message.tensors), message.step, message.request), text]
    for key, array in message.tensors:
        # NOTE: not ascontiguousarray, which makes a 0-d array 1-d
        array = np.asarray(array, order="C")
        try:
            code = _CODE_OF.get(dt.as_dtype(array.dtype)) if array.dtype != object else None
        except TypeError:       # a dtype tracejit has no name for (complex, strings)
            code = None
        if code is None:
            raise WireError(f"tensor {key!r} of dtype {array.dtype} cannot be sent; the "
                            f"wire carries {sorted(d.name for d in _CODE_OF)}")
        name = key.encode()
        if len(name) > MAX_KEY or array.ndim > MAX_RANK:
            raise WireError(f"tensor {key!r}: key or rank too long for the wire")
        frames.append(TENSOR_HEAD.pack(code, array.ndim, len(name))
                      + struct.pack(f"<{array.ndim}Q", *array.shape) + name)
        frames.append(array.reshape(-1).view(np.uint8) if array.size else b"")
    return frames


def _bytes(frame) -> memoryview:
    """A received frame's bytes (a zmq.Frame, bytes or a buffer) without a copy."""
    buffer = getattr(frame, "buffer", frame)
    return memoryview(buffer).cast("B")


def decode(frames: Sequence) -> Message:
    """The message ``frames`` carry, validated (see the module's list) -- or WireError."""
    if len(frames) < 2:
        raise WireError(f"a message has at least 2 frames (envelope, text); got "
                        f"{len(frames)}")
    head = _bytes(frames[0])
    if len(head) != ENVELOPE.size:
        raise WireError(f"envelope of {len(head)} bytes; expected {ENVELOPE.size}")
    magic, version, kind, flags, count, step, request = ENVELOPE.unpack(head)
    if magic != MAGIC:
        raise WireError(f"bad magic {bytes(magic)!r}; not a tracejit message")
    if version != VERSION:
        raise WireError(f"wire format version {version}; this task speaks {VERSION}")
    try:
        kind = Kind(kind)
    except ValueError:
        raise WireError(f"unknown message kind {kind}") from None
    if flags:
        raise WireError(f"unknown flags {flags:#x}")
    if count > MAX_TENSORS or len(frames) != 2 + 2 * count:
        raise WireError(f"the envelope announces {count} tensor(s), which needs "
                        f"{2 + 2 * count} frames; got {len(frames)}")
    text = _text(_bytes(frames[1]))
    tensors = [_tensor(i, _bytes(frames[2 + 2 * i]), frames[3 + 2 * i])
               for i in range(count)]
    return Message(kind, text, tensors, step, request)


def _text(raw: memoryview) -> dict:
    if len(raw) > MAX_TEXT:
        raise WireError(f"message text of {len(raw)} bytes; at most {MAX_TEXT}")
    try:
        value = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"message text is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        # NOTE: json's scanner recurses once per nesting level: a text of a million '['
        # must be refused like any bad text, not end the server's thread
        raise WireError("message text is JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise WireError(f"message text must be a JSON object, got {type(value).__name__}")
    return value


def _tensor(index: int, head: memoryview, data_frame) -> tuple[str, np.ndarray]:
    if len(head) < TENSOR_HEAD.size:
        raise WireError(f"tensor {index}: header of {len(head)} bytes is too short")
    code, rank, key_length = TENSOR_HEAD.unpack(head[:TENSOR_HEAD.size])
    dtype = DTYPE_CODES.get(code)
    if dtype is None:
        raise WireError(f"tensor {index}: unknown dtype code {code}")
    if rank > MAX_RANK or key_length > MAX_KEY:
        raise WireError(f"tensor {index}: rank {rank} or key length {key_length} too large")
    expected = TENSOR_HEAD.size + 8 * rank + key_length
    if len(head) != expected:
        raise WireError(f"tensor {index}: header of {len(head)} bytes; rank {rank} and a "
                        f"{key_length}-byte key make {expected}")
    shape = struct.unpack_from(f"<{rank}Q", head, TENSOR_HEAD.size)
    try:
        key = bytes(head[TENSOR_HEAD.size + 8 * rank:]).decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(f"tensor {index}: key is not UTF-8") from None
    size = extent = 1
    for dim in shape:
        size *= dim
        # NOTE: zeros aside too: NumPy refuses (ValueError) a zero-size shape such as
        # [0, 2**63] whose other dims overflow its sizes
        extent *= max(dim, 1)
        if extent * dtype.itemsize > MAX_TENSOR_BYTES:
            raise WireError(f"tensor {key!r}: shape {list(shape)} is larger than the wire "
                            "allows")
    data = _bytes(data_frame)
    if len(data) != size * dtype.itemsize:
        raise WireError(f"tensor {key!r}: shape {list(shape)} of {dtype.name} is "
                        f"{size * dtype.itemsize} bytes, but {len(data)} arrived")
    # NOTE: a view of the frame's own memory (zero-copy); read-only when the frame is
    array = np.frombuffer(data, dtype=dtype.np_dtype).reshape(shape)
    return key, array


def expect(text: dict, key: str, kind: type | tuple, what: str):
    """``text[key]``, checked to be a ``kind`` (a request's JSON fields, before use)."""
    value = text.get(key)
    # NOTE: JSON's true/false are Python bools, which are ints too
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise WireError(f"{what}: field {key!r} must be "
                        f"{getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value
