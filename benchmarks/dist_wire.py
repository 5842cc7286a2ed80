"""What the distributed benchmark measures besides time: bytes on the wire, and how
long a tracejit parameter server is busy.

Bytes are counted by the kernel, not by either framework: ``ss -tin`` reports each TCP
socket's ``bytes_sent`` / ``bytes_received`` (payload, headers of the protocols above
TCP included), so tracejit over ZeroMQ and TensorFlow over gRPC are measured the same
way. tracejit's own counters (``Connection.sent_bytes``...) are kept beside them as a
cross-check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time

__all__ = ["tcp_bytes", "PsRecorder"]

_PID = re.compile(r"pid=(\d+),")
_FIELD = re.compile(r"\b(bytes_sent|bytes_received):(\d+)")


def tcp_bytes(pid: int | None = None) -> tuple[int, int]:
    """(sent, received) payload bytes of the open TCP sockets of process ``pid``."""
    pid = os.getpid() if pid is None else pid
    try:
        out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True,
                             timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return (-1, -1)         # the table says "n/a" rather than a wrong zero
    sent = received = 0
    mine = False
    for line in out.splitlines():
        if not line.startswith(("\t", " ")):        # a socket line; its details follow
            mine = any(int(p) == pid for p in _PID.findall(line))
            continue
        if mine:
            fields = dict(_FIELD.findall(line))
            sent += int(fields.get("bytes_sent", 0))
            received += int(fields.get("bytes_received", 0))
    return sent, received


class PsRecorder:
    """Wraps a tracejit ``Server``'s handling of one request to note when it started, how
    long it took and the request's kind; ``dump(path)`` writes the list as JSON.

    The server handles requests one at a time (server.py), so the sum of these
    durations in a window is the time the parameter server was busy: the quantity that
    bounds how many workers one ps can serve."""

    def __init__(self, server):
        self.records: list[tuple[float, float, str]] = []
        self._lock = threading.Lock()
        self._kind = ""
        serve_one, handle = server._serve_one, server.service.handle

        def noted(request, waiter=None):
            self._kind = request.kind.name
            return handle(request, waiter)

        def timed(router):
            started = time.time()
            t0 = time.perf_counter()
            self._kind = ""
            try:
                return serve_one(router)
            finally:
                with self._lock:
                    self.records.append((started, time.perf_counter() - t0, self._kind))
        # NOTE: the serving loop looks these methods up on every request, so instance
        # attributes set before start() are what it calls; tracejit itself is unchanged.
        server._serve_one = timed
        server.service.handle = noted

    def dump(self, path: str) -> None:
        with self._lock:
            records = list(self.records)
        with open(path + ".tmp", "w") as out:
            json.dump({"requests": records}, out)
        os.replace(path + ".tmp", path)
