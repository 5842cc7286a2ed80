"""What a session with a target (``Session(server.target)``) needs of the cluster.

The session's process is the *master* of its steps: it places and partitions the
graph, runs its own task's stages in-process and sends every other task's stage to
that task. :func:`connect` finds the cluster: from the server of this process whose
target it is (the usual ``tf.Session(server.target)``: this process is that task), or
else by asking the target task (PING) for its cluster spec -- then unpinned work runs
on the target's task, as TensorFlow's master places it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from ..runtime.registry import device_resolver
from .remote import ClusterDevices, Connection, RemoteDevice, RemoteVariable, operation_timeout
from .security import Keys
from .server import server_for
from .spec import ClusterSpec, split_target
from .wire import Kind, Message

__all__ = ["ClusterContext", "connect", "keys_from_environment", "KEYS_ENV"]


class ClusterContext:
    def __init__(self, target: str, devices: ClusterDevices, default: str | None):
        self.target = target
        self.devices = devices
        # the device unpinned work runs on: None for this process's default device
        self.default = default
        self._entered: list = []

    def __enter__(self) -> ClusterContext:
        """``with tj.cluster.connect(target):`` -- the cluster's device strings resolve
        inside: ``tj.device("/job:ps/task:0")`` places variables and computations there."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.running(None))
        self._entered.append(stack)
        return self

    def __exit__(self, *exc) -> None:
        self._entered.pop().close()

    @contextlib.contextmanager
    def running(self, timeout_ms: int | None) -> Iterator[None]:
        """Device strings of the cluster resolve, and requests wait at most
        ``timeout_ms``, inside."""
        with device_resolver(self.devices), operation_timeout(timeout_ms):
            yield

    def place_variable(self, core, device) -> None:
        """Let the variable ``core`` live on ``device``: a remote task's variable is
        kept there, by its name, from now on (shared with every session and worker that
        names it)."""
        if isinstance(device, RemoteDevice):
            value = core._value
            if not (isinstance(value, RemoteVariable) and value.device is device):
                core._value = RemoteVariable(device, core.name, core.type.shape,
                                             core.type.dtype)
            core.device = device.name
        elif device is not None:
            core.device = str(device.spec)

    def bytes_on_the_wire(self) -> tuple[int, int]:
        """(sent, received) bytes of every request this session's process made."""
        connections = self.devices.connections()
        return (sum(c.sent_bytes for c in connections),
                sum(c.received_bytes for c in connections))


KEYS_ENV = "TRACEJIT_CLUSTER_KEYS"


def keys_from_environment() -> Keys | None:
    """``TRACEJIT_CLUSTER_KEYS=DIR`` (or ``DIR:NAME``): the CURVE keys a process without
    a server of its own connects with (``NAME`` defaults to ``client0``)."""
    raw = os.environ.get(KEYS_ENV, "").strip()
    if not raw:
        return None
    directory, _, name = raw.partition(":")
    return Keys.load(directory, name or "client0")


def connect(target: str, keys: Keys | None = None, timeout_ms: int | None = None
            ) -> ClusterContext:
    """The cluster ``target`` belongs to (see the module's docstring)."""
    _, address = split_target(target)
    server = server_for(address)
    if server is not None:
        devices = ClusterDevices(server.cluster, (server.job_name, server.task_index),
                                 keys or server.keys)
        return ClusterContext(target, devices, None)
    keys = keys or keys_from_environment()
    probe = Connection(address, target, keys)
    with operation_timeout(timeout_ms):
        reply = probe.request(Message(Kind.PING), "PING (the session's target)")
    cluster = ClusterSpec.from_json(reply.text["cluster"])
    job, task = reply.text["job"], reply.text["task"]
    devices = ClusterDevices(cluster, None, keys)
    return ClusterContext(target, devices, f"/job:{job}/replica:0/task:{task}/device:CPU:0")
