"""``tf.train.SyncReplicasOptimizer``: synchronous data-parallel training through the
parameter servers (the exchange is cluster/sync_client.py's).

``opt = tf.train.SyncReplicasOptimizer(base, replicas_to_aggregate=N,
total_num_replicas=M)``; ``train_op = opt.minimize(loss, global_step)``. Running
``train_op`` in a cluster session computes this replica's gradients, accumulates them
on the parameter servers, and -- on the chief -- applies the mean of N replicas' sets
with ``base`` and releases the others; each non-chief replica waits for that. Which
replica a session is and whether it is the chief come from its task (``/job:worker/
task:0`` is the chief), or from ``make_session_run_hook(is_chief)``.
"""

from __future__ import annotations

import numpy as np

from ...cluster.remote import RemoteVariable
from ...cluster.sync_client import SyncReplicas
from .errors import FailedPreconditionError
from .graph import get_default_graph
from .monitored import SessionRunHook
from .ops import convert_to_tensor, placeholder

__all__ = ["SyncReplicasOptimizer"]


class SyncReplicasOptimizer:
    def __init__(self, opt, replicas_to_aggregate: int, total_num_replicas: int | None = None,
                 variable_averages=None, variables_to_average=None, use_locking=False,
                 name="sync_replicas"):
        if replicas_to_aggregate < 1:
            raise ValueError(f"replicas_to_aggregate must be at least 1, got "
                             f"{replicas_to_aggregate}")
        self._opt = opt
        self._replicas_to_aggregate = int(replicas_to_aggregate)
        self._total = int(total_num_replicas or replicas_to_aggregate)
        self._name = name
        self._is_chief: bool | None = None
        self._exchanges: dict[int, tuple[SyncReplicas, list]] = {}   # per session

    def compute_gradients(self, *args, **kwargs):
        return self._opt.compute_gradients(*args, **kwargs)

    def minimize(self, loss, global_step=None, var_list=None, name=None, **unused):
        return self.apply_gradients(self.compute_gradients(loss, var_list), global_step, name)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if global_step is None:
            raise ValueError("SyncReplicasOptimizer needs a global_step: it is how replicas "
                             "know which step a gradient belongs to")
        graph = get_default_graph()
        with graph.name_scope(None):
            fed = [placeholder(v.dtype, v.shape, name=f"{self._name}/grad_{i}")
                   for i, (_, v) in enumerate(pairs)]
            apply = self._opt.apply_gradients(list(zip(fed, [v for _, v in pairs],
                                                       strict=True)),
                                              global_step=global_step)
        # NOTE: the replicas exchange dense gradients: an embedding's IndexedSlices is
        # made dense here (the parameter servers sum and average whole tensors)
        grads = [convert_to_tensor(g) for g, _ in pairs]
        variables = [v for _, v in pairs]

        def step(session, feed_dict) -> None:
            self._step(session, feed_dict, grads, variables, fed, apply, global_step)

        op = graph.create_op("SyncReplicasOptimizer", None, name=name or f"{self._name}/train")
        op.host_run = step
        return op

    def make_session_run_hook(self, is_chief: bool, num_tokens: int = -1):
        """Says whether this replica is the chief; the hook itself does nothing (the
        exchange happens inside the train op)."""
        self._is_chief = bool(is_chief)
        return SessionRunHook()

    def get_chief_queue_runner(self):
        return None             # the chief applies in its own step; nothing to run

    def get_init_tokens_op(self, num_tokens: int = -1):
        return None

    # ---- one step --------------------------------------------------------------------------

    def _exchange(self, session, variables, global_step):
        found = self._exchanges.get(id(session))
        if found is None:
            cluster = getattr(session, "_cluster", None)
            local = cluster.devices.local if cluster is not None else None
            if local is None:
                raise FailedPreconditionError(
                    "SyncReplicasOptimizer runs in a session of a cluster task "
                    "(tf.Session(server.target) with the worker's tf.train.Server)")
            is_chief = self._is_chief if self._is_chief is not None else local[1] == 0
            exchange = SyncReplicas(self._name, local[1], self._replicas_to_aggregate,
                                    self._total, is_chief)
            local_step = int(session.run(global_step))
            found = self._exchanges[id(session)] = (exchange, [local_step])
        return found

    def _step(self, session, feed_dict, grads, variables, fed, apply, global_step) -> None:
        exchange, local_step = self._exchange(session, variables, global_step)
        values = session.run(grads, feed_dict)
        groups: dict = {}
        for variable, value in zip(variables, values, strict=True):
            home = variable.core._value
            if not isinstance(home, RemoteVariable):
                raise FailedPreconditionError(
                    f"SyncReplicasOptimizer: variable {variable.op.name} does not live on a "
                    "parameter server (place it with tf.device('/job:ps/...') or "
                    "tf.train.replica_device_setter)")
            groups.setdefault(home.device.connection, []).append(
                (variable.op.name, np.asarray(value)))
        exchange.accumulate(groups, local_step[0])
        step_home = global_step.core._value
        tokens = step_home.device.connection if isinstance(step_home, RemoteVariable) \
            else next(iter(groups))
        if exchange.is_chief:
            means = exchange.take(list(groups), local_step[0] + 1)
            session.run(apply, {p: means[v.op.name]
                                for p, v in zip(fed, variables, strict=True)})
            local_step[0] = int(session.run(global_step))
            exchange.push_tokens(tokens, local_step[0])
        else:
            local_step[0] = exchange.wait_token(tokens, local_step[0] + 1)
