"""Malformed messages a task's server must refuse, built on known state.

Every message here is refused *by construction*, never because a decoder says so: an
envelope with a bad magic, a tensor header whose rank disagrees with its length, a RUN
whose argument has the wrong shape, and so on, one generator per category
(``GENERATORS``). The one exception is ``bitflip_any``, which flips bits anywhere in a
valid message of any kind: what still decodes as a request is not sent (it could be a
valid WRITE or STOP), so that category leans on ``wire.decode``; ``bitflip_structural``
flips only fields in which any change is refused by the format's rules. No message is
a valid request that changes state (WRITE, RUN with stores, PUSH, ACCUMULATE, TAKE of
a ready accumulator, TOKEN of a filled queue, STOP).

The state the generators build on (``GRAPH``, ``VARIABLES``, the accumulator and the
token queue) is what ``fuzz_messages.prepare`` gives a server.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable

import numpy as np

from tracejit.cluster.sync import MAX_WAIT_MS
from tracejit.cluster.wire import (
    DTYPE_CODES,
    ENVELOPE,
    MAGIC,
    MAX_KEY,
    MAX_RANK,
    MAX_TENSORS,
    MAX_TEXT,
    TENSOR_HEAD,
    VERSION,
    Kind,
    Message,
    WireError,
    decode,
    encode,
)

__all__ = ["GRAPH", "VARIABLES", "FEED", "ACCUMULATOR", "GRADIENT", "QUEUE", "REQUESTS",
           "REPLIES", "MessageSource", "GENERATORS", "oversize_text"]

GRAPH = """func main(a:f32[3], b:f32[3]) stage=traced {
  c:f32[3] = mul a b
  d:f32[3] = add a b
  return c, d
}"""
VARIABLES = {
    "w": np.array([1.5, -2.0, 3.25], np.float32),
    "v": np.arange(4, dtype=np.float64).reshape(2, 2),
    "n": np.array([7, -1, 0, 2**31 - 1], np.int32),
    "s": np.array(0.5, np.float32),
}
FEED = np.array([2.0, 0.5, -1.0], np.float32)
ACCUMULATOR, GRADIENT = "grads", np.array([0.25, 0.5, 1.0], np.float32)
QUEUE = "tokens"
REPLIES = (Kind.OK, Kind.RESULT, Kind.ERROR)
REQUESTS = (Kind.PING, Kind.REGISTER, Kind.RUN, Kind.READ, Kind.WRITE, Kind.STATUS,
            Kind.ACCUMULATE, Kind.TAKE, Kind.TOKEN, Kind.PUSH, Kind.STOP)


# ---- building messages ----------------------------------------------------------------------


def _frames(kind: Kind, text: dict | None = None, tensors=(), request: int = 0) -> list[bytes]:
    """A well-formed message's frames as bytes (so they can be cut and flipped)."""
    frames = encode(Message(kind, text or {}, list(tensors), 0, request))
    return [f if isinstance(f, bytes) else bytes(f) for f in frames]


def _envelope(kind: int, count: int = 0, *, magic: bytes = MAGIC, version: int = VERSION,
              flags: int = 0, request: int = 0) -> bytes:
    return ENVELOPE.pack(magic, version, kind, flags, count, 0, request)


def _head(code: int, dims, key: bytes = b"t", rank: int | None = None,
          key_length: int | None = None) -> bytes:
    rank = len(dims) if rank is None else rank
    key_length = len(key) if key_length is None else key_length
    return (TENSOR_HEAD.pack(code, rank, key_length) + struct.pack(f"<{len(dims)}Q", *dims)
            + key)


_NOT_KINDS = [k for k in range(256) if k not in {int(k) for k in Kind}]


class MessageSource:
    """The random source and the known state the generators build on."""

    def __init__(self, seed: int, handle: str):
        self.rng = random.Random(seed)
        self.handle = handle
        self.request = 0

    def next_request(self) -> int:
        self.request += 1
        return self.request

    def choice(self, seq):
        return self.rng.choice(seq)

    def valid(self, kind: Kind) -> list[bytes]:
        """A valid message of ``kind`` (for flipping; the valid ones are never sent)."""
        texts = {
            Kind.PING: {}, Kind.REGISTER: {"graph": GRAPH}, Kind.STOP: {},
            Kind.RUN: {"handle": self.handle, "args": [{"variable": "w"}, {"tensor": "x"}],
                       "stores": {}},
            Kind.READ: {"names": ["w", "v"]}, Kind.STATUS: {"names": ["w"]}, Kind.WRITE: {},
            Kind.ACCUMULATE: {"name": ACCUMULATOR, "replica": 0, "step": 0},
            Kind.TAKE: {"name": ACCUMULATOR, "count": 1, "step": 1, "timeout_ms": 0},
            Kind.TOKEN: {"name": QUEUE, "timeout_ms": 0},
            Kind.PUSH: {"name": QUEUE, "count": 1, "step": 8},
            Kind.OK: {"job": "fuzz"}, Kind.RESULT: {}, Kind.ERROR: {"error": "e", "type": "t"},
        }
        tensors = {Kind.RUN: [("x", FEED)], Kind.WRITE: [("w", VARIABLES["w"])],
                   Kind.ACCUMULATE: [("g", GRADIENT)], Kind.RESULT: [("out:0", FEED)]}
        return _frames(kind, texts[kind], tensors.get(kind, ()), self.next_request())

    def any_valid(self) -> list[bytes]:
        return self.valid(self.choice(REQUESTS + REPLIES))

    def request_frames(self, kind: Kind, text: dict, tensors=()) -> list[bytes]:
        return _frames(kind, text, tensors, self.next_request())


# ---- the generators: each returns frames the server must refuse (None: skip) -------------


def _random_frames(g: MessageSource) -> list[bytes]:
    frames = [g.rng.randbytes(g.choice([0, 1, 4, 27, 28, 29, 64, 300]))
              for _ in range(g.rng.randint(1, 7))]
    if frames[0][:4] == MAGIC:
        frames[0] = b"X" + frames[0][1:]
    return frames


def _envelope_length(g: MessageSource) -> list[bytes]:
    frames = g.any_valid()
    if g.rng.random() < 0.5:
        frames[0] = frames[0][:g.rng.randrange(ENVELOPE.size)]
    else:
        frames[0] += g.rng.randbytes(g.rng.randint(1, 16))
    return frames


def _frame_count(g: MessageSource) -> list[bytes]:
    frames = g.any_valid()
    if g.rng.random() < 0.5 or len(frames) < 3:
        return frames + [g.rng.randbytes(g.rng.randint(0, 8))
                         for _ in range(g.rng.randint(1, 3))]
    return frames[:-g.rng.randint(1, len(frames) - 1)]


def _envelope_field(g: MessageSource) -> list[bytes]:
    """Bad magic, version, kind, flags or tensor count in an otherwise valid message."""
    frames = g.any_valid()
    magic, version, kind, flags, count, step, request = ENVELOPE.unpack(frames[0])
    field = g.choice(["magic", "version", "kind", "flags", "count"])
    if field == "magic":
        magic = g.choice([b"TJW0", b"TJW2", b"\0\0\0\0", b"tjw1", g.rng.randbytes(3) + b"!"])
    elif field == "version":
        version = g.choice([0, 2, 3, 255])
    elif field == "kind":
        kind = g.choice(_NOT_KINDS)
    elif field == "flags":
        flags = g.rng.randint(1, 0xFFFF)
    else:
        count = g.choice([count + 1, MAX_TENSORS + 1, 2**32 - 1, g.rng.randint(count + 1,
                                                                              2**32 - 1)])
    frames[0] = ENVELOPE.pack(magic, version, kind, flags, count, step, request)
    return frames


def _flip(g: MessageSource, data: bytes, start: int, stop: int) -> bytes:
    """``data`` with 1 to 3 distinct bits of ``data[start:stop]`` flipped."""
    flipped = bytearray(data)
    for bit in g.rng.sample(range(8 * start, 8 * stop), min(8 * (stop - start),
                                                             g.rng.randint(1, 3))):
        flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _bitflip_structural(g: MessageSource) -> list[bytes]:
    """Flips inside one field where any change is refused: magic, version, flags, tensor
    count; a tensor header's rank or key length (its length no longer matches)."""
    frames = g.any_valid()
    fields = [(0, 0, 4), (0, 4, 5), (0, 6, 8), (0, 8, 12)]
    fields += [(i, 1, 2) for i in range(2, len(frames), 2)]
    fields += [(i, 2, 4) for i in range(2, len(frames), 2)]
    index, start, stop = g.choice(fields)
    frames[index] = _flip(g, frames[index], start, stop)
    return frames


def _bitflip_any(g: MessageSource) -> list[bytes] | None:
    """Flips anywhere in the envelope, the text or a tensor header of a valid message of
    any kind; sent only if it no longer decodes, or decodes as a reply kind."""
    frames = g.any_valid()
    index = g.choice([0, 1, *range(2, len(frames), 2)])
    if not frames[index]:
        return None
    frames[index] = _flip(g, frames[index], 0, len(frames[index]))
    try:
        message = decode(frames)
    except WireError:
        return frames
    return frames if message.kind in REPLIES else None


def _text_frame(g: MessageSource) -> list[bytes]:
    """Texts that are not one UTF-8 JSON object (each unbalanced or wrong whatever the
    JSON parser's nesting limit)."""
    frames = g.valid(g.choice(REQUESTS))
    if g.rng.random() < 0.05:
        # NOTE: refused only for its 5,000-digit integer (Python's limit on int()); in a
        # READ, a parser without that limit still gets a refused request
        frames = g.valid(Kind.READ)
        frames[1] = b'{"names": 1' + b"1" * 5000 + b"}"
        return frames
    frames[1] = g.choice([
        lambda: b'{"names": "\xff\xfe"}', lambda: b"\xc3\x28" + g.rng.randbytes(8),
        lambda: b"", lambda: b"{", lambda: b"{'a': 1}", lambda: b'{"a":}', lambda: b'{"a",1}',
        lambda: b'{"a":1,}', lambda: b"NaN{", lambda: b"[]", lambda: b"[{}]", lambda: b"1",
        lambda: b'"text"', lambda: b"null", lambda: b"true", lambda: b"x" + bytes(
            g.rng.choices(range(32, 127), k=g.rng.randint(0, 40))),
        lambda: b"[" * g.choice([10, 1500, 100_000]) + b"]" * g.choice([0, 10, 1500]),
        lambda: b'{"names":' * g.choice([1500, 50_000]) + b"1" + b"}" * 1499,
        lambda: b'{"names": ["w"]}x' + g.rng.randbytes(3),
    ])()
    return frames


def _tensor_frames(g: MessageSource, head: bytes, data: bytes) -> list[bytes]:
    kind = g.choice(REQUESTS)
    return [_envelope(kind, 1, request=g.next_request()), b"{}", head, data]


def _tensor_header(g: MessageSource) -> list[bytes]:
    """Tensor headers the format refuses, each with matching data where it could."""
    case = g.rng.randrange(8)
    if case == 0:                       # dtype code outside the table
        code = g.choice([c for c in range(256) if c not in DTYPE_CODES])
        return _tensor_frames(g, _head(code, [2]), bytes(8))
    if case == 1:                       # rank over MAX_RANK, length consistent
        rank = g.rng.randint(MAX_RANK + 1, 255)
        return _tensor_frames(g, _head(1, [1] * rank), bytes(4))
    if case == 2:                       # key over MAX_KEY
        key = b"k" * g.rng.randint(MAX_KEY + 1, 4 * MAX_KEY)
        return _tensor_frames(g, _head(1, [1], key), bytes(4))
    if case == 3:                       # header shorter than its fixed part
        return _tensor_frames(g, g.rng.randbytes(g.rng.randrange(TENSOR_HEAD.size)), b"")
    if case == 4:                       # header length disagrees with rank and key length
        head = _head(1, [3], b"x")
        head = (head[:-g.rng.randint(1, 5)] if g.rng.random() < 0.5
                else head + g.rng.randbytes(g.rng.randint(1, 9)))
        return _tensor_frames(g, head, bytes(12))
    if case == 5:                       # key not UTF-8
        key = g.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"ok\x80", b"\xf8\x88\x80\x80"])
        return _tensor_frames(g, _head(1, [1], key), bytes(4))
    if case == 6:                       # data length is not shape x itemsize
        code = g.choice(list(DTYPE_CODES))
        dims = [g.rng.randint(0, 4) for _ in range(g.rng.randint(0, 3))]
        size = int(np.prod(dims, dtype=np.int64)) * DTYPE_CODES[code].itemsize
        wrong = g.choice([n for n in (size - 1, size + 1, size + 7, 2 * size + 1, 0)
                          if n >= 0 and n != size])
        return _tensor_frames(g, _head(code, dims), bytes(wrong))
    dims = g.choice([[2**64 - 1], [2**63], [2**32, 2**32], [0, 2**63], [2**40, 0],
                     [0, 2**62, 2**62], [1] * 7 + [2**40], [0, 2**64 - 1], [2**35]])
    return _tensor_frames(g, _head(g.choice(list(DTYPE_CODES)), dims), b"")


def oversize_text(source: MessageSource) -> list[bytes]:
    """A READ whose text is a valid object padded past MAX_TEXT: only the size rule
    refuses it (sent once a run: it is 64 MiB)."""
    text = b'{"names": ["w"]' + b" " * MAX_TEXT + b"}"
    return [_envelope(Kind.READ, request=source.next_request()), text]


def _not_a_request(g: MessageSource) -> list[bytes]:
    return g.valid(g.choice(REPLIES))


# What each request's text needs (mirrors the wire's documented fields) and values of
# every wrong JSON type for each.
_FIELDS = {
    Kind.REGISTER: {"graph": str}, Kind.RUN: {"handle": str, "args": list, "stores": dict},
    Kind.READ: {"names": list}, Kind.STATUS: {"names": list},
    Kind.ACCUMULATE: {"name": str, "replica": int, "step": int},
    Kind.TAKE: {"name": str, "count": int, "step": int, "timeout_ms": int},
    Kind.TOKEN: {"name": str, "timeout_ms": int}, Kind.PUSH: {"name": str, "count": int,
                                                             "step": int},
}
_NESTED = {"deep": {"deeper": [1, {"x": None, "y": [[[]]]}]}}
_WRONG = {
    str: [5, -1, 1.5, True, False, None, [], ["w"], {"a": "w"}, _NESTED, 10**30],
    int: ["1", "", "0x10", 1.5, 1.0, 1e300, True, False, None, [1], {"n": 1}, _NESTED],
    list: ["w", "", 3, 1.5, True, None, {"0": "w"}, _NESTED, [5], ["w", None], [["w"]],
           ["w", True], [{"name": "w"}]],
    dict: ["0", 0, 1.5, True, None, [["0", "w"]], [], ["w"]],
}


def _field_types(g: MessageSource) -> list[bytes]:
    """One field of a valid request given a wrong JSON type, or left out."""
    kind = g.choice(list(_FIELDS))
    text = json.loads(g.valid(kind)[1])
    name, expected = g.choice(list(_FIELDS[kind].items()))
    wrong = _WRONG[expected]
    if name == "stores" or g.rng.random() < 0.85:
        text[name] = g.choice(wrong)
    else:
        del text[name]
    tensors = {Kind.RUN: [("x", FEED)], Kind.ACCUMULATE: [("g", GRADIENT)]}
    return g.request_frames(kind, text, tensors.get(kind, ()))


def _field_ranges(g: MessageSource) -> list[bytes]:
    """TAKE/TOKEN timeouts and counts, PUSH counts out of range."""
    kind = g.choice([Kind.TAKE, Kind.TOKEN, Kind.PUSH])
    text = json.loads(g.valid(kind)[1])
    absurd = [-1, -(2**63), MAX_WAIT_MS + 1, 2**63, 10**30, -(10**30)]
    if kind is Kind.PUSH:
        text["count"] = g.choice([-1, -(2**31), (1 << 16) + 1, 10**12, 10**30])
    elif kind is Kind.TAKE and g.rng.random() < 0.4:
        text["count"] = g.choice([0, -1, -(2**63)])
    else:
        text["timeout_ms"] = g.choice(absurd)
    return g.request_frames(kind, text)


def _register(g: MessageSource) -> list[bytes]:
    """Graph texts that do not parse: cut short, an unknown op, a wrong output type,
    random characters."""
    text = g.choice([
        lambda: GRAPH[:g.rng.randrange(len(GRAPH) - 1)],
        lambda: GRAPH.replace("mul", "frobnicate"),
        lambda: GRAPH.replace("c:f32[3]", "c:f32[4]"),
        lambda: GRAPH.replace("return c, d", "return c, e"),
        lambda: GRAPH.replace("a:f32[3], b", "a:f32[3], a"),
        lambda: "".join(g.rng.choices("func main(){}:=[]f32 \n#@%", k=g.rng.randint(0, 80))),
    ])()
    return g.request_frames(Kind.REGISTER, {"graph": text})


def _run(g: MessageSource) -> list[bytes]:
    """RUNs of the registered graph with one thing wrong (stores only beside it)."""
    args: list = [{"variable": "w"}, {"tensor": "x"}]
    stores: dict = {}
    tensors = [("x", FEED)]
    handle = g.handle
    case = g.rng.randrange(8)
    if case == 0:
        handle = g.choice(["", "0" * 32, handle[:-1] + ("0" if handle[-1] != "0" else "1"),
                           handle.upper() if handle.upper() != handle else "X" + handle,
                           "../" + handle, handle + " "])
    elif case == 1:
        args = g.choice([[], args[:1], args + [{"tensor": "x"}], args * 3])
    elif case == 2:
        args[g.rng.randrange(2)] = g.choice([
            "x", 1, None, [], ["tensor", "x"], {}, {"tensor": "x", "variable": "w"},
            {"feed": "x"}, {"variable": 1}, {"tensor": None}, {"variable": "nope"},
            {"variable": "v"}, {"variable": "n"}, {"variable": "s"}, {"tensor": "y"}])
    elif case == 3:
        tensors = [("x", g.choice([np.zeros(4, np.float32), FEED.astype(np.float64),
                                   FEED.astype(np.int32), FEED.reshape(3, 1),
                                   np.float32(1.0).reshape(()), np.zeros(0, np.float32),
                                   FEED.astype(np.float16)]))]
    elif case == 4:
        tensors = []
    else:
        stores = g.choice([
            {"x": "w"}, {"-1": "w"}, {"2": "w"}, {"99999999999999999999": "w"},
            {"0": 5}, {"0": None}, {"\u00b2": "w"}, {" 0": "w"}, {"0.0": "w"}, {"": "w"},
            {"0": "v"}, {"1": "s"}, {"0": "n"}, {"0": "w", "7": "w"}, {"1": "w", "0": []}])
    if case < 5 and g.rng.random() < 0.3:
        stores = {"0": "w"}             # a valid store beside the fault: still refused
    return g.request_frames(Kind.RUN, {"handle": handle, "args": args, "stores": stores},
                            tensors)


def _variables(g: MessageSource) -> list[bytes]:
    """READ of an uninitialized variable; STATUS of non-names; WRITE changing a
    variable's shape or dtype (after a valid assignment in the same message)."""
    case = g.rng.randrange(3)
    if case == 0:
        names = g.choice([["nope"], ["w", "nope"], ["w", ""], ["W"], [" w"]])
        return g.request_frames(Kind.READ, {"names": names})
    if case == 1:
        return g.request_frames(Kind.STATUS, {"names": g.choice([["w", 1], [None], [["w"]],
                                                                 [{"w": 1}], [True]])})
    name = g.choice(list(VARIABLES))
    old = VARIABLES[name]
    new = g.choice([np.zeros(old.size + 1, old.dtype), old.astype(np.int64),
                    old.reshape(-1, 1), np.zeros((0,), old.dtype), np.zeros(old.shape, np.float16),
                    np.zeros((2, 3, 1), np.uint8)])
    tensors = [(name, new)]
    if g.rng.random() < 0.5:
        tensors.insert(0, g.choice([("w", -VARIABLES["w"]), ("fresh", FEED)]))
    return g.request_frames(Kind.WRITE, {}, tensors)


def _accumulate(g: MessageSource) -> list[bytes]:
    """Gradients that do not fit the accumulator (other keys, shapes, dtypes), none,
    twice under one key, or of integers (also into accumulators that do not exist)."""
    name = g.choice([ACCUMULATOR, ACCUMULATOR, "fresh"])
    good = ("g", GRADIENT)
    tensors = g.choice([
        [], [good, good], [("g", GRADIENT.astype(np.int32))], [("g", GRADIENT.astype(bool))],
    ] + ([] if name != ACCUMULATOR else [
        [("h", GRADIENT)], [("g", GRADIENT[:2])], [("g", GRADIENT.astype(np.float64))],
        [good, ("h", GRADIENT)], [("g", GRADIENT.reshape(3, 1))]]))
    return g.request_frames(Kind.ACCUMULATE, {"name": name, "replica": 0, "step": 0}, tensors)


def _deadline(g: MessageSource) -> list[bytes]:
    """Valid waits that cannot be met, with a deadline of a few milliseconds: TAKE of
    more sets than will ever come, TOKEN of an empty queue."""
    timeout = g.rng.randint(0, 3)
    if g.rng.random() < 0.5:
        return g.request_frames(Kind.TAKE, {"name": g.choice([ACCUMULATOR, "none"]),
                                            "count": 10**6, "step": 0, "timeout_ms": timeout})
    return g.request_frames(Kind.TOKEN, {"name": "no tokens", "timeout_ms": timeout})


# name -> (weight, generator); the weights favour what is cheap to answer
GENERATORS: dict[str, tuple[int, Callable[[MessageSource], list[bytes] | None]]] = {
    "random_frames": (8, _random_frames),
    "envelope_length": (5, _envelope_length),
    "frame_count": (5, _frame_count),
    "envelope_field": (8, _envelope_field),
    "bitflip_structural": (8, _bitflip_structural),
    "bitflip_any": (12, _bitflip_any),
    "text": (8, _text_frame),
    "tensor_header": (10, _tensor_header),
    "not_a_request": (3, _not_a_request),
    "field_types": (12, _field_types),
    "field_ranges": (5, _field_ranges),
    "register": (3, _register),
    "run": (8, _run),
    "variables": (6, _variables),
    "accumulate": (4, _accumulate),
    "deadline": (1, _deadline),
}
