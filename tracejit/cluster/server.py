"""``Server``: one per task, serving its devices and variables over ZeroMQ.

A server binds a ROUTER socket at its task's address and answers requests in one
thread (service.py decides the answers): so requests are handled one at a time and a
stage's read-modify-write of its variables is atomic. Anything that is not a valid
message gets an ERROR reply, is logged, and changes nothing; the server keeps serving.

Servers made in this process are listed by target (``zmq://host:port``), so a
``Session(server.target)`` knows its own task and runs that task's work in-process.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import zmq

from .security import Keys, check_binding, secure_server
from .service import TaskService, error_reply
from .spec import ClusterError, ClusterSpec
from .wire import Kind, Message, WireError, decode, encode

__all__ = ["Server", "server_for", "free_port"]

log = logging.getLogger("tracejit.cluster")

_SERVERS: dict[str, Server] = {}
_SERVERS_LOCK = threading.Lock()
POLL_MS = 50


def server_for(target: str) -> Server | None:
    """The server of this process whose target is ``target`` (any scheme)."""
    address = target.split("://", 1)[-1]
    with _SERVERS_LOCK:
        return _SERVERS.get(address)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (for tests and local servers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``Server(cluster, job_name=None, task_index=None, protocol=None, config=None,
    start=True, keys=None)``: the server of one task of ``cluster``.

    ``keys`` (a :class:`security.Keys`) makes it require CURVE: a server bound to an
    address other than loopback refuses to start without them.
    """

    def __init__(self, server_or_cluster_def, job_name: str | None = None,
                 task_index: int | None = None, protocol: str | None = None, config=None,
                 start: bool = True, keys: Keys | None = None):
        if protocol not in (None, "grpc", "zmq"):
            raise ClusterError(f"protocol {protocol!r}: tracejit serves 'zmq' (TF's 'grpc' "
                               "is accepted as a synonym)")
        self.cluster = ClusterSpec(server_or_cluster_def)
        jobs = self.cluster.jobs
        if job_name is None:
            if len(jobs) != 1:
                raise ClusterError(f"job_name is needed: the cluster has jobs {jobs}")
            job_name = jobs[0]
        if job_name not in jobs:
            raise ClusterError(f"job_name {job_name!r} is not a job of the cluster {jobs}")
        if task_index is None:
            task_index = self.cluster.task_indices(job_name)[0]
        self.job_name = job_name
        self.task_index = int(task_index)
        self.address = self.cluster.task_address(job_name, self.task_index)
        self.config = config
        self.keys = keys
        check_binding(self.address, keys)
        self.service = TaskService(job_name, self.task_index, self.cluster.to_json())
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._failure: BaseException | None = None
        if start:
            self.start()

    # ---- TensorFlow's API ----------------------------------------------------------------------

    @property
    def target(self) -> str:
        return f"zmq://{self.address}"

    @property
    def server_def(self) -> dict:
        return {"cluster": self.cluster.as_dict(), "job_name": self.job_name,
                "task_index": self.task_index, "protocol": "zmq"}

    @staticmethod
    def create_local_server(config=None, start: bool = True) -> Server:
        """A server of a one-task cluster on a free loopback port (TF's in-process
        server for tests)."""
        cluster = ClusterSpec({"localhost": [f"127.0.0.1:{free_port()}"]})
        return Server(cluster, "localhost", 0, config=config, start=start)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"tj-server-{self.job_name}-{self.task_index}")
        self._thread.start()
        self._started.wait(30)
        if self._failure is not None:
            raise ClusterError(f"{self.target}: the server could not start: "
                               f"{self._failure}") from self._failure
        with _SERVERS_LOCK:
            _SERVERS[self.address] = self

    def join(self) -> None:
        """Serve until :meth:`stop` (or a STOP message) ends it, as ``server.join()``
        does for a parameter server's process."""
        if self._thread is None:
            self.start()
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
        with _SERVERS_LOCK:
            if _SERVERS.get(self.address) is self:
                del _SERVERS[self.address]

    def __repr__(self) -> str:
        return f"<tracejit Server /job:{self.job_name}/task:{self.task_index} {self.target}>"

    # ---- serving -------------------------------------------------------------------------------

    def _serve(self) -> None:
        context = zmq.Context.instance()
        router = context.socket(zmq.ROUTER)
        try:
            router.setsockopt(zmq.LINGER, 0)
            router.setsockopt(zmq.ROUTER_MANDATORY, 0)
            if self.keys is not None:
                secure_server(router, self.keys, context)
            host, port = self.address.rsplit(":", 1)
            router.bind(f"tcp://{_bind_host(host)}:{port}")
        except (zmq.ZMQError, ClusterError) as exc:
            self._failure = exc
            router.close(0)
            self._started.set()
            return
        self._started.set()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                if poller.poll(self._wait_ms()):
                    self._serve_one(router)
                for who, reply in self.service.ready(time.monotonic()):
                    self._send(router, who, reply)
        finally:
            router.close(0)

    def _wait_ms(self) -> int:
        deadline = self.service.sync.next_deadline()
        if deadline is None:
            return POLL_MS
        return max(0, min(POLL_MS, int((deadline - time.monotonic()) * 1000) + 1))

    def _serve_one(self, router) -> None:
        frames = router.recv_multipart(copy=False)
        who, body = frames[0].bytes, frames[1:]
        try:
            request = decode(body)
        except WireError as exc:
            self.service.errors += 1
            log.warning("%s: malformed message: %s", self.target, exc.bare_message)
            self._send(router, who, error_reply(None, f"{self.service.name}: malformed "
                                                f"message: {exc.bare_message}", "Malformed"))
            return
        except Exception as exc:       # noqa: BLE001 - nor may a message the decoder missed
            log.exception("%s: undecodable message", self.target)
            self._send(router, who, error_reply(None, f"{self.service.name}: malformed "
                                                f"message: {type(exc).__name__}: {exc}",
                                                "Internal"))
            return
        if request.kind is Kind.STOP:
            self._stopping.set()
            self._send(router, who, Message(Kind.OK, {}, [], request.step, request.request))
            return
        try:
            reply = self.service.handle(request, who)
        except Exception as exc:       # noqa: BLE001 - a request must never end the server
            log.exception("%s: %s request failed", self.target, request.kind.name)
            reply = error_reply(request, f"{self.service.name}: {type(exc).__name__}: {exc}",
                                "Internal")
        if reply is not None:
            self._send(router, who, reply)

    @staticmethod
    def _send(router, who: bytes, reply: Message) -> None:
        try:
            router.send_multipart([who, *encode(reply)], copy=False)
        except (zmq.ZMQError, WireError) as exc:
            log.warning("could not reply to a client: %s", exc)


def _bind_host(host: str) -> str:
    """What ZeroMQ binds for a task's host: loopback names as 127.0.0.1, a numeric
    address as it is, any other name on every interface (TensorFlow's 0.0.0.0)."""
    if host in ("localhost", "127.0.0.1") or host.startswith("127."):
        return "127.0.0.1"
    if host.replace(".", "").isdigit() or host.startswith("["):
        return host
    return "*"
