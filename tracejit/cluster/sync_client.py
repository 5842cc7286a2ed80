"""The replicas' side of synchronous training with parameter servers (sync.py keeps the
servers' side), the exchange TensorFlow's ``SyncReplicasOptimizer`` runs each step:

1. every replica computes its gradients at its ``local_step`` and ACCUMULATEs them on
   the parameter servers holding their variables (a set from an older step is dropped
   there as stale);
2. the chief TAKEs the mean of ``replicas_to_aggregate`` sets from each server (summed
   in replica order: the same bits whatever the arrival order), applies it with the
   wrapped optimizer, and PUSHes one token per other replica, each the new global step;
3. every other replica waits for a TOKEN and continues from the step it names.

A replica that dies only makes the chief's TAKE wait, until the operation deadline
ends that step with an error naming the server and the accumulator; a restarted
replica reads the global step and rejoins.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .remote import Connection, current_timeout_ms
from .wire import Kind, Message

__all__ = ["SyncReplicas"]


class SyncReplicas:
    """The exchange of one synchronous optimizer (``name``), for one replica."""

    def __init__(self, name: str, replica: int, replicas_to_aggregate: int,
                 total_replicas: int, is_chief: bool):
        self.name = name
        self.replica = replica
        self.replicas_to_aggregate = replicas_to_aggregate
        self.total_replicas = total_replicas
        self.is_chief = is_chief
        self.stale = 0          # gradient sets the servers dropped as stale

    def accumulate(self, groups: dict[Connection, list[tuple[str, np.ndarray]]],
                   step: int) -> bool:
        """Send each server its variables' gradients; whether every set was accepted."""
        accepted = True
        for connection, tensors in groups.items():
            reply = connection.request(
                Message(Kind.ACCUMULATE, {"name": self.name, "replica": self.replica,
                                          "step": step}, tensors),
                f"ACCUMULATE into {self.name!r}")
            accepted &= bool(reply.text.get("accepted"))
        if not accepted:
            self.stale += 1
        return accepted

    def take(self, connections: Sequence[Connection], next_step: int) -> dict[str, np.ndarray]:
        """The chief: the mean gradients of every server's accumulator, by key."""
        means: dict[str, np.ndarray] = {}
        for connection in connections:
            reply = connection.request(
                Message(Kind.TAKE, {"name": self.name, "count": self.replicas_to_aggregate,
                                    "step": next_step, "timeout_ms": current_timeout_ms()}),
                f"TAKE of {self.replicas_to_aggregate} gradient sets from {self.name!r} "
                f"(waiting for the other replicas)")
            means.update(reply.tensors)
        return means

    def push_tokens(self, connection: Connection, step: int) -> None:
        connection.request(Message(Kind.PUSH, {"name": self.name + "/tokens",
                                               "count": self.total_replicas - 1,
                                               "step": step}),
                           f"PUSH of tokens to {self.name!r}")

    def wait_token(self, connection: Connection, at_least: int) -> int:
        """A replica other than the chief: the global step the chief's next token names.
        A token older than ``at_least`` was left by a replica that died before taking
        it; it is dropped, or a restarted replica would run ahead of its step."""
        while True:
            reply = connection.request(
                Message(Kind.TOKEN, {"name": self.name + "/tokens",
                                     "timeout_ms": current_timeout_ms()}),
                f"TOKEN of {self.name!r} (waiting for the chief to apply the step)")
            step = int(reply.text["step"])
            if step >= at_least:
                return step
