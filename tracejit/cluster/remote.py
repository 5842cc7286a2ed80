"""The client side: a connection per task, remote devices, variables living on a task.

* :class:`Connection` sends a request to one task and waits for its reply, at most
  the operation timeout (``ConfigProto(operation_timeout_in_ms=...)``, default
  ``DEFAULT_TIMEOUT_MS``): past it, the request fails with :class:`StepTimeout` naming
  the task and what was asked, never a silent hang. Each thread has its own DEALER
  socket per task (ZeroMQ sockets are single-threaded); replies carry the request id,
  so a late answer to a request that timed out is recognized and dropped.
* :class:`RemoteDevice` is another task's CPU as a runtime Device: compiling a graph
  registers its IR text on the task (compiled there, cached by hash); its programs send
  the stage's inputs and receive its outputs. It declares ``concurrent`` (waiting on a
  socket releases the GIL) and ``resident-values``.
* :class:`RemoteVariable` is a variable's value kept on its task (a runtime Resident):
  stages there read and update it in place; anything else fetches it.
* :class:`ClusterDevices` resolves device strings of a cluster for a session.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import zmq

from ..ir import dtypes as dt
from ..ir.core import Eqn, Graph, Var, VarMeta
from ..ir.errors import TracejitError
from ..ir.printer import print_graph
from ..ir.source import user_location
from ..runtime.device import CAN_RUN, HOST_MEMORY, RESIDENT, Device, Resident
from ..runtime.devices import DeviceError, DeviceSpec
from ..runtime.partitions import CONCURRENT, StepTimeout
from ..runtime.registry import get_device
from .security import Keys, secure_client
from .spec import ClusterSpec
from .wire import Kind, Message, decode, encode

__all__ = ["Connection", "RemoteDevice", "RemoteVariable", "ClusterDevices", "RemoteError",
           "operation_timeout", "DEFAULT_TIMEOUT_MS"]

DEFAULT_TIMEOUT_MS = 300_000
_TIMEOUT: contextvars.ContextVar = contextvars.ContextVar("tracejit_operation_timeout",
                                                          default=DEFAULT_TIMEOUT_MS)


@contextlib.contextmanager
def operation_timeout(milliseconds: int | None) -> Iterator[None]:
    """Every request made inside waits at most ``milliseconds`` (None or 0: the default)."""
    token = _TIMEOUT.set(int(milliseconds) if milliseconds else DEFAULT_TIMEOUT_MS)
    try:
        yield
    finally:
        _TIMEOUT.reset(token)


def current_timeout_ms() -> int:
    return _TIMEOUT.get()


class RemoteError(TracejitError, RuntimeError):
    """A task refused a request; ``kind`` is its error type (``UninitializedVariable``,
    ``DeadlineExceeded``, ``Malformed``, ...)."""

    def __init__(self, message: str, kind: str = ""):
        super().__init__(message)
        self.kind = kind


_REQUEST_IDS = itertools.count(1)


class Connection:
    """Requests to the task at ``address`` (``host:port``)."""

    def __init__(self, address: str, name: str, keys: Keys | None = None):
        self.address = address
        self.name = name            # /job:ps/replica:0/task:0, for messages
        self.keys = keys
        self._local = threading.local()
        self.sent_bytes = 0
        self.received_bytes = 0
        self.requests = 0

    def _socket(self) -> zmq.Socket:
        sock = getattr(self._local, "socket", None)
        if sock is None:
            sock = zmq.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            if self.keys is not None:
                secure_client(sock, self.keys)
            host, port = self.address.rsplit(":", 1)
            sock.connect(f"tcp://{'127.0.0.1' if host == 'localhost' else host}:{port}")
            self._local.socket = sock
        return sock

    def _drop_socket(self) -> None:
        """After a timeout the socket may still get the late reply: start afresh."""
        sock = getattr(self._local, "socket", None)
        if sock is not None:
            sock.close(0)
            self._local.socket = None

    def request(self, message: Message, what: str, timeout_ms: int | None = None) -> Message:
        """Send ``message`` and return the reply; a task's ERROR reply raises
        RemoteError, no reply within the timeout raises StepTimeout naming ``what``."""
        return self.wait(self.send(message, what, timeout_ms))

    def send(self, message: Message, what: str, timeout_ms: int | None = None) -> tuple:
        """Send ``message`` now; :meth:`wait` for the reply later (requests to several
        tasks then overlap)."""
        message.request = next(_REQUEST_IDS)
        limit = timeout_ms if timeout_ms is not None else current_timeout_ms()
        frames = encode(message)
        self._socket().send_multipart(frames, copy=False)
        self.requests += 1
        self.sent_bytes += sum(len(f) if isinstance(f, bytes) else f.nbytes for f in frames)
        return message.request, what, limit, time.monotonic() + limit / 1000

    def wait(self, pending: tuple) -> Message:
        request, what, limit, deadline = pending
        sock = self._socket()
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                self._drop_socket()
                raise StepTimeout(f"{self.name} ({self.address}) did not answer {what} "
                                  f"within {limit} ms (operation_timeout_in_ms): is the "
                                  "task running?")
            received = sock.recv_multipart(copy=False)
            reply = decode(received)
            if reply.request != request:
                continue                # the late answer to a request that timed out
            self.received_bytes += sum(len(f.buffer) for f in received)
            if reply.kind is Kind.ERROR:
                raise RemoteError(str(reply.text.get("error", "error")),
                                  str(reply.text.get("type", "")))
            return reply


class RemoteVariable(Resident):
    """A variable's value on its task, by name (a runtime Resident)."""

    def __init__(self, device: RemoteDevice, name: str, shape, dtype):
        self.device = device
        self.device_key = str(device.spec)
        self.name = name
        self.shape = tuple(shape)
        self.dtype = dtype

    @classmethod
    def fetch_many(cls, residents: Sequence[RemoteVariable]) -> list[np.ndarray]:
        by_task: dict[int, list[int]] = {}
        for i, r in enumerate(residents):
            by_task.setdefault(id(r.device), []).append(i)
        out: list = [None] * len(residents)
        pending = []
        for where in by_task.values():      # every task's READ in flight at once
            connection = residents[where[0]].device.connection
            names = [residents[i].name for i in where]
            pending.append((where, connection, connection.send(
                Message(Kind.READ, {"names": names}), f"READ of {names}")))
        for where, connection, sent in pending:
            reply = connection.wait(sent)
            for i, (_, array) in zip(where, reply.tensors, strict=True):
                out[i] = array
        return out

    def store(self, array) -> None:
        self.device.connection.request(
            Message(Kind.WRITE, {}, [(self.name, np.asarray(array, order="C"))]),
            f"WRITE of {self.name!r}")

    def initialized(self) -> bool:
        reply = self.device.connection.request(Message(Kind.STATUS, {"names": [self.name]}),
                                               f"STATUS of {self.name!r}")
        return bool(reply.text["initialized"][0])

    def __repr__(self) -> str:
        return f"<RemoteVariable {self.name!r} on {self.device_key}>"


class RemoteDevice(Device):
    """The CPU of another task, reached through a :class:`Connection`."""

    kind = "remote"
    capabilities = frozenset({CAN_RUN, HOST_MEMORY, CONCURRENT, RESIDENT})

    def __init__(self, spec: DeviceSpec, connection: Connection):
        super().__init__(spec)
        self.name = str(spec)
        self.connection = connection
        self.lowering = get_device("cpu").lowering   # what the task's CPU runs
        self._handles: dict[str, str] = {}

    def compile(self, graph: Graph, *, donated: Sequence[int] = ()):
        text = print_graph(unplaced(graph))
        program = _RemoteProgram(self, text, graph.name)
        program.register()
        return program

    def resident(self, name: str, array: np.ndarray) -> RemoteVariable:
        variable = RemoteVariable(self, name, array.shape, dt.as_dtype(array.dtype))
        variable.store(array)
        return variable

    def run_op(self, op, args, params):
        raise DeviceError(f"{op.name} on {self.name}: eager operations run in this process; "
                          "place them on a task with a graph (Session, @jit)")


class _RemoteProgram:
    """A stage registered on its task: called with the stage's inputs (arrays, or
    RemoteVariables of that task by reference) and ``stores`` (output -> variable to
    keep it in); returns the outputs, the RemoteVariable in place of each one kept."""

    def __init__(self, device: RemoteDevice, text: str, name: str):
        self.device = device
        self.text = text
        self.name = name
        self.handle = ""

    def register(self) -> None:
        reply = self.device.connection.request(Message(Kind.REGISTER, {"graph": self.text}),
                                               f"REGISTER of stage '{self.name}'")
        self.handle = reply.text["handle"]

    def __call__(self, args: Sequence, stores: dict | None = None) -> list:
        stores = stores or {}
        specs, tensors = [], []
        for i, arg in enumerate(args):
            if isinstance(arg, RemoteVariable):
                specs.append({"variable": arg.name})
            else:
                specs.append({"tensor": f"in:{i}"})
                tensors.append((f"in:{i}", np.asarray(arg, order="C")))
        request = Message(Kind.RUN, {"handle": self.handle, "args": specs,
                                     "stores": {str(i): r.name for i, r in stores.items()}},
                          tensors)
        try:
            reply = self.device.connection.request(request, f"RUN of stage '{self.name}'")
        except RemoteError as exc:
            if "no graph registered" not in exc.bare_message:
                raise
            self.register()         # the task restarted: register the stage again
            request.text["handle"] = self.handle
            reply = self.device.connection.request(request, f"RUN of stage '{self.name}'")
        returned = iter(reply.tensors)
        count = len(stores) + len(reply.tensors)
        return [stores[i] if i in stores else next(returned)[1] for i in range(count)]


def unplaced(graph: Graph) -> Graph:
    """``graph`` with no device on any value: what a task compiles (the placement is
    the client's business, and equal stages from different workers hash alike)."""
    new: dict[int, Var] = {}

    def var(v: Var) -> Var:
        found = new.get(id(v))
        if found is None:
            found = new[id(v)] = Var(v.type, VarMeta(source=v.meta.source, name=v.meta.name))
        return found

    inputs = [var(v) for v in graph.inputs]
    eqns = [Eqn(e.op, tuple(var(v) for v in e.ins), tuple(var(v) for v in e.outs), e.params)
            for e in graph.eqns]
    return Graph(inputs, eqns, [var(v) for v in graph.outputs], name="stage",
                 stage="traced")


class ClusterDevices:
    """The devices of ``cluster`` as a session sees them: its own task's (``local``:
    (job, index) of the server in this process, if any) are this process's devices,
    every other task's CPU a RemoteDevice."""

    def __init__(self, cluster: ClusterSpec, local: tuple[str, int] | None = None,
                 keys: Keys | None = None):
        self.cluster = cluster
        self.local = local
        self.keys = keys
        self._remote: dict[tuple[str, int], RemoteDevice] = {}
        self._connections: dict[tuple[str, int], Connection] = {}
        self._lock = threading.Lock()

    def __call__(self, spec: DeviceSpec) -> Device | None:
        if spec.job is None or spec.job == "localhost" and "localhost" not in \
                self.cluster.jobs:
            return None
        if spec.job not in self.cluster.jobs:
            raise DeviceError(f"/job:{spec.job} is not a job of the cluster; it has "
                              f"{self.cluster.jobs}", location=user_location())
        task = spec.task if spec.task is not None else self.cluster.task_indices(spec.job)[0]
        if task not in self.cluster.task_indices(spec.job):
            raise DeviceError(f"/job:{spec.job}/task:{task} is not a task of the cluster; "
                              f"job {spec.job!r} has tasks "
                              f"{self.cluster.task_indices(spec.job)}",
                              location=user_location())
        if spec.device_type not in (None, "cpu"):
            raise DeviceError(f"/job:{spec.job}/task:{task}/device:"
                              f"{spec.device_type.upper()}:{spec.device_index}: tasks serve "
                              "their CPU (no GPU backend yet)", location=user_location())
        if (spec.job, task) == self.local:
            return get_device(f"/cpu:{spec.device_index or 0}")
        return self.remote(spec.job, task)

    def connection(self, job: str, task: int) -> Connection:
        with self._lock:
            found = self._connections.get((job, task))
            if found is None:
                found = self._connections[(job, task)] = Connection(
                    self.cluster.task_address(job, task), f"/job:{job}/replica:0/task:{task}",
                    self.keys)
            return found

    def remote(self, job: str, task: int) -> RemoteDevice:
        connection = self.connection(job, task)
        with self._lock:
            device = self._remote.get((job, task))
            if device is None:
                device = self._remote[(job, task)] = RemoteDevice(
                    DeviceSpec(job, 0, task, "cpu", 0), connection)
            return device

    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections.values())
