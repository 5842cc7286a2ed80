"""A task's server under 10,000 malformed and random messages (fuzz_messages.py).

The server runs in a subprocess, so a message that ended it (or its thread) would show
as a dead process or an unanswered message, never as a hung test. Its state is compared
twice: through ordinary requests (READ of every variable, RUN of the registered graph)
and through a fingerprint of everything the task keeps (variables, graphs,
accumulators, token queues, waiting requests) that the subprocess prints on request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tracejit.cluster import Server, free_port
from tracejit.cluster import server as server_module
from tracejit.cluster.wire import MAGIC, decode

from .fuzz_messages import FuzzFailure, fuzz_server, prepare, snapshot
from .malformed import FEED, VARIABLES

COUNT = 10_000
SEED = 20240611
REPO = Path(__file__).resolve().parents[2]

# The task's process: serves on the port it is given, prints "ready", then answers each
# "state" line on stdin with a JSON fingerprint of its service's state; EOF ends it.
TASK = r"""
import hashlib, json, logging, sys
import numpy as np
logging.getLogger("tracejit.cluster").setLevel(logging.ERROR)
from tracejit.cluster import Server

def fingerprint(value):
    if isinstance(value, np.ndarray):
        return [str(value.dtype), list(value.shape),
                hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()]
    if isinstance(value, dict):
        return {str(k): fingerprint(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    return repr(value)

server = Server({"fuzz": ["127.0.0.1:" + sys.argv[1]]}, "fuzz", 0)
print("ready", flush=True)
for line in sys.stdin:
    service = server.service
    with service.lock:
        state = {
            "variables": fingerprint(service.variables),
            "graphs": sorted(service.graphs),
            "accumulators": {name: fingerprint(vars(acc))
                             for name, acc in service.sync.accumulators.items()},
            "tokens": fingerprint(service.sync.tokens),
            "waiting": len(service.sync.waiting),
        }
    print(json.dumps(state, sort_keys=True), flush=True)
server.stop()
"""


class Task:
    """The task's process; ``state()`` asks it for its fingerprint."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", TASK, str(self.port)], cwd=REPO, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        if self._line(60) != "ready":
            raise RuntimeError(f"the task did not start; its log: {log.read_text()[-2000:]}")

    def _line(self, timeout: float) -> str:
        # NOTE: a reader thread, so a task that hangs fails the test instead of stalling it
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        return found[0].strip() if found else ""

    def state(self) -> dict:
        self.process.stdin.write("state\n")
        self.process.stdin.flush()
        return json.loads(self._line(30))

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self.log.close()


@pytest.fixture
def task(tmp_path):
    task = Task(tmp_path / "task.log")
    try:
        yield task
    finally:
        task.close()


def test_malformed_messages_are_refused_and_change_nothing(task):
    handle = prepare(task.address)
    before, state_before = snapshot(task.address, handle), task.state()
    w = VARIABLES["w"]
    assert before["out:0"] == b"float32[3]" + (w * FEED).tobytes()
    assert before["out:1"] == b"float32[3]" + (w + FEED).tobytes()
    assert state_before["waiting"] == 0 and set(state_before["accumulators"]) == {"grads"}
    start = time.monotonic()
    counts = fuzz_server(task.address, COUNT, SEED, deadline_s=300)
    elapsed = time.monotonic() - start
    print(f"{COUNT} messages in {elapsed:.1f} s: {counts}")
    assert sum(counts.values()) == COUNT
    assert all(counts.values()), f"a category was never sent: {counts}"
    assert task.process.poll() is None, "the task's process died"
    assert snapshot(task.address, handle) == before
    assert task.state() == state_before


def test_the_fuzzer_catches_a_server_that_accepts_a_bad_magic(monkeypatch):
    """A server whose decoder forgives a wrong magic answers such a PING with OK: the
    fuzzer must say so (its own check, run in-process)."""
    def lenient(frames):
        head = bytes(memoryview(getattr(frames[0], "buffer", frames[0])))
        if len(head) == 28:
            frames = [MAGIC + head[4:], *frames[1:]]
        return decode(frames)

    server = Server.create_local_server()
    try:
        prepare(server.address)
        monkeypatch.setattr(server_module, "decode", lenient)
        with pytest.raises(FuzzFailure, match=r"reply .* to \[(envelope_field|bitflip_st"
                                              r"ructural)\]"):
            fuzz_server(server.address, 2_000, SEED, deadline_s=60)
    finally:
        server.stop()
