"""Synchronous TF1 training without parameter servers: each worker keeps its own copy
of the variables and the workers average their gradients with a ring all-reduce
before every update, as Horovod's ``hvd.DistributedOptimizer`` does.

Each worker process runs::

    ring = RingAllReduce(cluster, "worker", rank)
    opt = DistributedOptimizer(tf.train.AdamOptimizer(1e-3), ring)
    train_op = opt.minimize(loss, global_step=step)
    sess.run(tf.global_variables_initializer())
    broadcast_variables(sess, ring, root=0)       # all start from worker 0's values
    sess.run(train_op, {x: my_shard_x, y: my_shard_y})

The exchange with the other workers cannot be an op of the compiled step (it waits on
other processes), so ``apply_gradients`` returns a *host op*: fetching it makes the
Session run the gradients (one compiled program), all-reduce them, and run the wrapped
optimizer's update over them (another), fed through placeholders made once.
"""

from __future__ import annotations

import numpy as np

from ..compat.v1.graph import Operation, Tensor, get_default_graph
from ..compat.v1.ops import placeholder
from ..compat.v1.variables import GraphKeys
from .allreduce import RingAllReduce

__all__ = ["DistributedOptimizer", "broadcast_variables"]


class DistributedOptimizer:
    """``DistributedOptimizer(optimizer, allreduce, average=True)``: ``optimizer`` (a
    ``tf.train`` optimizer) applied to the gradients averaged (``average=False``:
    summed) over the workers of ``allreduce`` (a :class:`RingAllReduce`)."""

    def __init__(self, optimizer, allreduce: RingAllReduce, average: bool = True,
                 name: str = "DistributedOptimizer"):
        if not all(hasattr(optimizer, m) for m in ("compute_gradients", "apply_gradients")):
            raise TypeError(f"DistributedOptimizer wraps a tf.train optimizer, got "
                            f"{type(optimizer).__name__}")
        if not isinstance(allreduce, RingAllReduce):
            raise TypeError(f"allreduce must be a RingAllReduce, got "
                            f"{type(allreduce).__name__}")
        self._optimizer = optimizer
        self._allreduce = allreduce
        self._average = bool(average)
        self._name = name

    def compute_gradients(self, loss, var_list=None, **kwargs):
        """This worker's own gradients (graph tensors), as the wrapped optimizer gives
        them: the averaging happens in the op :meth:`apply_gradients` returns, since it
        waits on the other processes."""
        return self._optimizer.compute_gradients(loss, var_list=var_list, **kwargs)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None) -> Operation:
        """A host op that, run by ``session.run(op, feed_dict)``, computes the gradients
        with ``feed_dict``, all-reduces them, and applies the result with the wrapped
        optimizer (incrementing ``global_step``, if given)."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable: "
                             f"{[v.name for _, v in grads_and_vars]}")
        graph = get_default_graph()
        for g, v in pairs:
            if not isinstance(g, Tensor) or g.graph is not graph:
                raise TypeError(f"the gradient of {v.name} is {g!r}: DistributedOptimizer "
                                "takes gradient tensors of the default graph")
            if not g.shape.is_fully_defined():
                raise ValueError(f"the gradient of {v.name} has shape {g.shape}: the ring "
                                 "all-reduces gradients of known shapes")
        base = name or f"{self._name}/train"
        with graph.name_scope(f"{self._name}/reduced"):
            fed = [placeholder(g.dtype, g.shape, name=v.op.name.replace("/", "_"))
                   for g, v in pairs]
        update = self._optimizer.apply_gradients(list(zip(fed, [v for _, v in pairs],
                                                           strict=True)),
                                                 global_step=global_step, name=f"{base}_apply")
        grads = [g for g, _ in pairs]
        ring, average = self._allreduce, self._average

        def step(session, feed_dict) -> None:
            local = session.run(grads, feed_dict)
            reduced = ring.allreduce([np.asarray(g) for g in local], average=average)
            feeds = dict(feed_dict)
            # NOTE: the caller's feeds go along: a learning rate may be a placeholder
            feeds.update(zip(fed, reduced, strict=True))
            session.run(update, feeds)

        op = graph.create_op("DistributedOptimizer", None, name=base)
        op.host_run = step
        return op

    def minimize(self, loss, global_step=None, var_list=None, name=None, **unused) -> Operation:
        return self.apply_gradients(self.compute_gradients(loss, var_list), global_step, name)

    def get_slot(self, var, name):
        return self._optimizer.get_slot(var, name)

    def get_slot_names(self):
        return self._optimizer.get_slot_names()


def broadcast_variables(session, allreduce: RingAllReduce, root: int = 0,
                        var_list=None) -> None:
    """Give every worker worker ``root``'s values of ``var_list`` (default: all global
    variables of the session's graph, the optimizer's slots and global step included),
    as Horovod's ``broadcast_global_variables``: run it once on every worker, after
    initializing, so that they all start from the same model. Each worker must have
    initialized the variables (their values on workers other than ``root`` are not
    used, but their shapes must agree)."""
    variables = list(var_list) if var_list is not None else \
        session.graph.get_collection(GraphKeys.GLOBAL_VARIABLES)
    if not variables:
        return
    values = session.run(variables)
    received = allreduce.broadcast([np.asarray(v) for v in values], root=root)
    for variable, value in zip(variables, received, strict=True):
        variable.load(value, session)
