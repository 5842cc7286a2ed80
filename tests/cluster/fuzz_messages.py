"""Fuzzing a task's server: known state, thousands of messages it must refuse, checks.

:func:`prepare` gives a server known state (a registered graph, variables of several
types, an accumulator holding one gradient set, a token queue); :func:`snapshot` reads
that state back through ordinary requests; :func:`fuzz_server` sends messages the
server must refuse (malformed.py builds them, by category) one at a time from a DEALER
socket and checks that every one is answered within ``REPLY_BOUND_S`` by a well-formed
ERROR reply to that very message, and none of them ``Internal`` (an exception that
escaped validation). It raises :class:`FuzzFailure` naming the category and the
message otherwise.
"""

from __future__ import annotations

import time

import zmq

from tracejit.cluster.remote import Connection
from tracejit.cluster.wire import Kind, Message, WireError, decode

from .malformed import (
    ACCUMULATOR,
    FEED,
    GENERATORS,
    GRADIENT,
    GRAPH,
    QUEUE,
    VARIABLES,
    MessageSource,
    oversize_text,
)

__all__ = ["FuzzFailure", "prepare", "snapshot", "fuzz_server", "REPLY_BOUND_S"]

REPLY_BOUND_S = 5.0          # a refusal is answered at once; 5 s allows a loaded machine
NAME = "/job:fuzz/replica:0/task:0"


class FuzzFailure(AssertionError):
    """The server answered a message it must refuse otherwise than with an ERROR reply
    to it, or not in time."""


def prepare(address: str) -> str:
    """Give the server at ``address`` the state the fuzzer corrupts; the graph's handle."""
    conn = Connection(address, NAME)
    handle = conn.request(Message(Kind.REGISTER, {"graph": GRAPH}), "REGISTER", 60_000)
    conn.request(Message(Kind.WRITE, {}, list(VARIABLES.items())), "WRITE", 10_000)
    conn.request(Message(Kind.ACCUMULATE, {"name": ACCUMULATOR, "replica": 0, "step": 0},
                         [("g", GRADIENT)]), "ACCUMULATE", 10_000)
    conn.request(Message(Kind.PUSH, {"name": QUEUE, "count": 2, "step": 7}), "PUSH", 10_000)
    return handle.text["handle"]


def snapshot(address: str, handle: str) -> dict[str, bytes]:
    """The variables (READ) and the graph's outputs on them (RUN without stores), each
    as its dtype, shape and bytes, to compare bit for bit."""
    conn = Connection(address, NAME)
    read = conn.request(Message(Kind.READ, {"names": sorted(VARIABLES)}), "READ", 10_000)
    run = conn.request(Message(Kind.RUN, {"handle": handle, "args": [
        {"variable": "w"}, {"tensor": "x"}], "stores": {}}, [("x", FEED)]), "RUN", 10_000)
    return {key: f"{a.dtype}{list(a.shape)}".encode() + a.tobytes()
            for key, a in read.tensors + run.tensors}


def _prepared_handle(address: str) -> str:
    """The handle of GRAPH on a server :func:`prepare` prepared (registering it again
    compiles nothing and changes nothing), or FuzzFailure."""
    conn = Connection(address, NAME)
    handle = conn.request(Message(Kind.REGISTER, {"graph": GRAPH}), "REGISTER", 60_000)
    found = conn.request(Message(Kind.STATUS, {"names": list(VARIABLES)}), "STATUS", 10_000)
    if not all(found.text["initialized"]):
        raise FuzzFailure(f"{address} was not prepared (fuzz_messages.prepare): the fuzzer "
                          "would create the variables it means to corrupt")
    return handle.text["handle"]


def _describe(category: str, frames: list[bytes]) -> str:
    shown = ", ".join(f"{f[:80]!r}{'...' if len(f) > 80 else ''}" for f in frames[:6])
    more = f" (+{len(frames) - 6} frames)" if len(frames) > 6 else ""
    return f"[{category}] {len(frames)} frame(s): {shown}{more}"


def _expected_request(frames: list[bytes]) -> int:
    """The request id the reply must carry: the message's own once it decodes (it was
    refused for its content), else 0 (nothing in it could be trusted)."""
    try:
        return decode(frames).request
    except Exception:               # noqa: BLE001 - any refusal of the envelope alike
        return 0


def _exchange(sock: zmq.Socket, category: str, frames: list[bytes]) -> str:
    """Send one message, check its reply; the reply's error type."""
    expected = _expected_request(frames)
    sock.send_multipart(frames)
    if not sock.poll(int(REPLY_BOUND_S * 1000), zmq.POLLIN):
        raise FuzzFailure(f"no reply within {REPLY_BOUND_S} s to {_describe(category, frames)}")
    answer = sock.recv_multipart()
    try:
        reply = decode(answer)
    except WireError as exc:
        raise FuzzFailure(f"malformed reply ({exc}) to {_describe(category, frames)}") from None
    if reply.kind is not Kind.ERROR:
        raise FuzzFailure(f"{reply.kind.name} reply {reply.text!r:.200} to "
                          f"{_describe(category, frames)}")
    if reply.request != expected:
        raise FuzzFailure(f"the reply names request {reply.request}, not {expected} "
                          f"(a reply to another message?): {_describe(category, frames)}")
    kind = str(reply.text.get("type", ""))
    if kind == "Internal":
        raise FuzzFailure(f"refused by an exception, not by validation: "
                          f"{reply.text.get('error')!r:.300} for {_describe(category, frames)}")
    return kind


def fuzz_server(target_address: str, count: int, seed: int, deadline_s: float
                ) -> dict[str, int]:
    """Send ``count`` messages the server at ``target_address`` (``host:port``, prepared
    by :func:`prepare`) must refuse, chosen by ``seed``; the number sent of each
    category. FuzzFailure if one is not refused (see the module), or if they take
    longer than ``deadline_s`` in all."""
    source = MessageSource(seed, _prepared_handle(target_address))
    names = list(GENERATORS)
    weights = [GENERATORS[n][0] for n in names]
    counts = dict.fromkeys([*names, "text_oversize"], 0)
    replies: dict[str, int] = {}
    skipped = 0
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{target_address}")
    start = time.monotonic()
    try:
        sent = 0
        while sent < count:
            if time.monotonic() - start > deadline_s:
                raise FuzzFailure(f"only {sent} of {count} messages answered within "
                                  f"{deadline_s} s")
            if sent == count // 2:
                category, frames = "text_oversize", oversize_text(source)
            else:
                category = source.rng.choices(names, weights)[0]
                frames = GENERATORS[category][1](source)
                if frames is None:
                    skipped += 1
                    continue
            kind = _exchange(sock, category, frames)
            replies[kind] = replies.get(kind, 0) + 1
            counts[category] += 1
            sent += 1
        if sock.poll(100, zmq.POLLIN):
            raise FuzzFailure("a reply came that answered no message")
    finally:
        sock.close(0)
    print(f"fuzz_server({target_address}, seed={seed}): {count} messages in "
          f"{time.monotonic() - start:.1f} s; by category {counts}; error types {replies}; "
          f"{skipped} bit-flipped messages still decoded as requests and were not sent")
    return counts
