"""What a task does with a request: the state a Server keeps and the answer to each
message, without sockets (server.py moves the bytes; this file decides).

A task keeps:

* its **variables** by name (TensorFlow's shared name: the variable's op name), which
  outlive every session and are shared by every worker that names them;
* the **graphs** sessions registered (IR text, parsed, verified and compiled on this
  task's CPU device), by the hash of their text, so a second worker registering the
  same partition compiles nothing;
* the **accumulators and token queues** of synchronous training (sync.py).

Requests are handled one at a time, so a RUN that reads a variable and stores its new
value is atomic with respect to every other request, as TensorFlow's ``use_locking``
updates are. A request that must wait (a TAKE before enough gradients arrived, a TOKEN
before the chief pushed one) is answered later: :meth:`TaskService.handle` returns
None and the waiter is answered by :meth:`TaskService.ready` when its condition holds,
or with an error when its deadline passes.

Every field of a request is checked before use (types, names, counts, shapes, dtypes);
a bad request gets an ERROR reply naming what was wrong and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable

import numpy as np

from ..ir.core import Graph
from ..ir.errors import TracejitError
from ..ir.parser import parse_graph
from ..ir.verifier import verify
from ..runtime.registry import get_device
from .sync import SyncState
from .wire import Kind, Message, WireError, expect

__all__ = ["TaskService", "error_reply"]

log = logging.getLogger("tracejit.cluster")

MAX_GRAPHS = 4096           # compiled partitions a task keeps (oldest dropped first)


def error_reply(request: Message | None, text: str, kind: str = "InvalidArgument") -> Message:
    return Message(Kind.ERROR, {"error": text, "type": kind},
                   step=request.step if request else 0,
                   request=request.request if request else 0)


class _Registered:
    __slots__ = ("graph", "program", "inputs", "outputs")

    def __init__(self, graph: Graph, program):
        self.graph = graph
        self.program = program
        self.inputs = [(v.shape, v.dtype) for v in graph.inputs]
        self.outputs = len(graph.outputs)


class TaskService:
    """The state of one task and its answers to requests."""

    def __init__(self, job: str, task: int, cluster_json: str):
        self.job = job
        self.task = task
        self.cluster_json = cluster_json
        self.variables: dict[str, np.ndarray] = {}
        self.graphs: dict[str, _Registered] = {}
        self.sync = SyncState(f"/job:{job}/replica:0/task:{task}")
        self.lock = threading.Lock()    # held for each request (the in-process callers too)
        self.requests = 0
        self.errors = 0
        self._handlers: dict[Kind, Callable[[Message], Message | None]] = {
            Kind.PING: self._ping, Kind.REGISTER: self._register, Kind.RUN: self._run,
            Kind.READ: self._read, Kind.WRITE: self._write, Kind.STATUS: self._status,
        }

    @property
    def name(self) -> str:
        return f"/job:{self.job}/replica:0/task:{self.task}"

    def handle(self, request: Message, waiter=None) -> Message | None:
        """The reply to ``request``; None when it waits (``waiter`` is answered later)."""
        with self.lock:
            self.requests += 1
            try:
                if request.kind in (Kind.ACCUMULATE, Kind.TAKE, Kind.TOKEN, Kind.PUSH):
                    return self.sync.handle(request, waiter)
                handler = self._handlers.get(request.kind)
                if handler is None:
                    raise WireError(f"{request.kind.name} is not a request")
                return handler(request)
            except TracejitError as exc:
                self.errors += 1
                log.warning("%s: refused %s request: %s", self.name, request.kind.name,
                            exc.bare_message)
                return error_reply(request, f"{self.name}: {exc.bare_message}",
                                   type(exc).__name__)

    def ready(self, now: float) -> list:
        """(waiter, reply) of every waiting request whose answer is now known."""
        with self.lock:
            return self.sync.ready(now)

    # ---- requests --------------------------------------------------------------------------

    def _ping(self, request: Message) -> Message:
        return self._ok(request, {"job": self.job, "task": self.task,
                                  "cluster": self.cluster_json})

    def _register(self, request: Message) -> Message:
        text = expect(request.text, "graph", str, "REGISTER")
        handle = hashlib.sha256(text.encode()).hexdigest()[:32]
        if handle not in self.graphs:
            try:
                graph = parse_graph(text)
                verify(graph)
            except TracejitError as exc:
                raise WireError(f"the graph does not parse: {exc.bare_message}") from None
            device = get_device("cpu")
            program = device.host_program(device.compile(graph), graph)
            if len(self.graphs) >= MAX_GRAPHS:
                self.graphs.pop(next(iter(self.graphs)))
            self.graphs[handle] = _Registered(graph, program)
        return self._ok(request, {"handle": handle})

    def _run(self, request: Message) -> Message:
        registered = self.graphs.get(expect(request.text, "handle", str, "RUN"))
        if registered is None:
            raise WireError(f"no graph registered as {request.text['handle']!r} (the task "
                            "restarted?); register it again")
        specs = expect(request.text, "args", list, "RUN")
        if len(specs) != len(registered.inputs):
            raise WireError(f"RUN of a graph of {len(registered.inputs)} input(s) with "
                            f"{len(specs)} argument(s)")
        fed = dict(request.tensors)
        args = []
        for i, (spec, (shape, dtype)) in enumerate(zip(specs, registered.inputs, strict=True)):
            args.append(self._argument(i, spec, fed, shape, dtype))
        stores = self._stores(request.text.get("stores", {}), registered)
        for i, name in stores.items():
            # NOTE: as WRITE refuses it: a store may not change a variable's type
            old, out = self.variables.get(name), registered.graph.outputs[i]
            if old is not None and (old.shape != out.shape or old.dtype != out.dtype.np_dtype):
                raise WireError(f"RUN: output {i} is {out.dtype.name}{list(out.shape)}; cannot "
                                f"store it in variable {name!r}, which is "
                                f"{old.dtype}{list(old.shape)} on {self.name}")
        outs = registered.program(args)
        # NOTE: all checks are done: from here the request changes state, all of it
        returned = []
        for i, value in enumerate(outs):
            name = stores.get(i)
            if name is None:
                returned.append((f"out:{i}", np.asarray(value)))
            else:
                self.variables[name] = _owned(value)
        return Message(Kind.RESULT, {}, returned, request.step, request.request)

    def _argument(self, i: int, spec, fed: dict, shape, dtype) -> np.ndarray:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise WireError(f"argument {i}: expected {{'tensor': key}} or "
                            f"{{'variable': name}}, got {spec!r:.80}")
        if "variable" in spec:
            name = expect(spec, "variable", str, f"argument {i}")
            value = self.variables.get(name)
            if value is None:
                raise UninitializedVariable(f"variable {name!r} is not initialized on {self.name}")
        else:
            key = expect(spec, "tensor", str, f"argument {i}")
            if key not in fed:
                raise WireError(f"argument {i}: no tensor {key!r} in the message")
            value = fed[key]
        if value.shape != shape or value.dtype != dtype.np_dtype:
            raise WireError(f"argument {i} ({spec!r:.60}) is {value.dtype}{list(value.shape)};"
                            f" the graph takes {dtype.name}{list(shape)}")
        return value

    @staticmethod
    def _stores(spec, registered: _Registered) -> dict[int, str]:
        if not isinstance(spec, dict):
            raise WireError(f"RUN: 'stores' must map output indices to variable names, got "
                            f"{type(spec).__name__}")
        stores = {}
        for key, name in spec.items():
            # NOTE: ASCII digits only: '²' is a digit to str.isdigit, not to int()
            if not (key.isascii() and key.isdigit()) or int(key) >= registered.outputs \
                    or not isinstance(name, str):
                raise WireError(f"RUN: bad store {key!r} -> {name!r:.60}: the graph has "
                                f"{registered.outputs} output(s)")
            stores[int(key)] = name
        return stores

    def _names(self, request: Message) -> list[str]:
        names = expect(request.text, "names", list, request.kind.name)
        if not all(isinstance(n, str) for n in names):
            raise WireError(f"{request.kind.name}: 'names' must be strings")
        return names

    def _read(self, request: Message) -> Message:
        names = self._names(request)
        missing = [n for n in names if n not in self.variables]
        if missing:
            raise UninitializedVariable(f"variable(s) {missing} not initialized on {self.name}")
        return Message(Kind.RESULT, {}, [(n, self.variables[n]) for n in names],
                       request.step, request.request)

    def _write(self, request: Message) -> Message:
        for name, value in request.tensors:
            old = self.variables.get(name)
            if old is not None and (old.shape != value.shape or old.dtype != value.dtype):
                raise WireError(f"variable {name!r} is {old.dtype}{list(old.shape)} on "
                                f"{self.name}; cannot assign {value.dtype}{list(value.shape)}")
        for name, value in request.tensors:
            self.variables[name] = np.array(value, copy=True)
        return self._ok(request, {})

    def _status(self, request: Message) -> Message:
        return self._ok(request, {"initialized": [n in self.variables
                                                  for n in self._names(request)]})

    @staticmethod
    def _ok(request: Message, text: dict) -> Message:
        return Message(Kind.OK, text, [], request.step, request.request)


class UninitializedVariable(TracejitError, ValueError):
    """A read of a variable no one initialized on this task (TF's FailedPrecondition)."""


def _owned(value) -> np.ndarray:
    """A value the store may keep: its own writable C-ordered memory (an output can be
    a view of a received frame)."""
    array = np.asarray(value)
    if not array.flags.owndata or not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, copy=True, order="C")
    return array
