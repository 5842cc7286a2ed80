"""``tf.FIFOQueue``, ``RandomShuffleQueue``, ``PaddingFIFOQueue``, ``PriorityQueue``: TF1's
queues as host ops (host_ops.py) over tracejit/data/queues.py.

Each Session has its own instance of a graph's queue (``Session.resource``), made on
first use and cancelled when the session closes. Enqueue ops take their values from the
graph (computed in a step of their own before the enqueue); dequeue ops block until
there is an element -- without the GIL -- and their outputs feed the compiled step like
fed values. TensorFlow's errors: a dequeue from a closed, drained queue is
``OutOfRangeError``, an enqueue to a closed queue ``CancelledError``, a wait past the
session's ``operation_timeout_in_ms`` ``DeadlineExceededError``.
"""

from __future__ import annotations

import itertools

import numpy as np

from ...data import ordered_queues
from ...data import queues as core
from ...ir import dtypes as dt
from ...ir.source import user_location
from .errors import CancelledError, DeadlineExceededError, InvalidArgumentError, OutOfRangeError
from .graph import Tensor, get_default_graph
from .host_ops import host_op
from .ops import convert_to_tensor
from .strings import string

__all__ = ["QueueBase", "FIFOQueue", "RandomShuffleQueue", "PaddingFIFOQueue",
           "PriorityQueue"]

_IDS = itertools.count()


def _np_dtype(dtype):
    return object if dtype is string else dt.as_dtype(dtype).np_dtype


def _as_tf_errors(call, location):
    """Run a core queue call, raising TensorFlow's error for what happened."""
    try:
        return call()
    except core.QueueClosedError as exc:
        raise OutOfRangeError(str(exc), location=location) from None
    except core.QueueCancelledError as exc:
        raise CancelledError(f"Enqueue operation was cancelled: {exc}",
                             location=location) from None
    except core.QueueTimeoutError as exc:
        raise DeadlineExceededError(f"Timed out waiting for notification: {exc}",
                                    location=location) from None
    except ValueError as exc:
        raise InvalidArgumentError(str(exc), location=location) from None


def _timeout_s(session):
    config = getattr(session, "config", None)
    ms = getattr(config, "operation_timeout_in_ms", 0) if config is not None else 0
    return ms / 1000 if ms and ms > 0 else None


class QueueBase:
    """The TF1 queue API shared by the kinds."""

    def __init__(self, dtypes, shapes, names, name: str, make):
        if not isinstance(dtypes, (list, tuple)):
            dtypes = [dtypes]
        self._dtypes = [string if d is string else dt.as_dtype(d) for d in dtypes]
        if shapes is not None:
            shapes = [list(s) if s is not None and not isinstance(s, int) else s
                      for s in shapes]
            if len(shapes) != len(self._dtypes):
                raise ValueError(f"{name}: {len(shapes)} shapes for {len(self._dtypes)} "
                                 "dtypes")
        self._shapes = shapes
        self._names = list(names) if names is not None else None
        graph = get_default_graph()
        self.name = graph.unique_name(name)
        self._graph = graph
        self._key = ("queue", next(_IDS))
        self._make = make
        self.queue_ref = self           # TF1 code passes queue.queue_ref to readers

    @property
    def dtypes(self):
        return list(self._dtypes)

    @property
    def shapes(self):
        return self._shapes

    @property
    def names(self):
        return self._names

    def instance(self, session) -> core.Queue:
        """This session's queue."""
        shapes = None if self._shapes is None else [tuple(s) for s in self._shapes]
        return session.resource(
            self._key, lambda: self._make([_np_dtype(d) for d in self._dtypes], shapes),
            lambda queue: queue.close(cancel_pending_enqueues=True))

    # ---- structure of values ---------------------------------------------------------------

    def _flatten(self, vals) -> list:
        if isinstance(vals, dict):
            if self._names is None:
                raise ValueError(f"{self.name}: a dict was given but the queue has no names")
            if set(vals) != set(self._names):
                raise ValueError(f"{self.name}: keys {sorted(vals)} do not match the "
                                 f"queue's names {sorted(self._names)}")
            vals = [vals[n] for n in self._names]
        elif not isinstance(vals, (list, tuple)):
            vals = [vals]
        if len(vals) != len(self._dtypes):
            raise ValueError(f"{self.name}: expected {len(self._dtypes)} components, got "
                             f"{len(vals)}")
        return [v if isinstance(v, Tensor) and v.dtype is d else
                convert_to_tensor(v, dtype=None if d is string else d)
                for v, d in zip(vals, self._dtypes, strict=True)]

    def _structured(self, tensors: list[Tensor]):
        if self._names is not None:
            return dict(zip(self._names, tensors, strict=True))
        return tensors[0] if len(tensors) == 1 else tensors

    def _shape(self, i: int) -> list | None:
        if self._shapes is None or self._shapes[i] is None:
            return None
        return list(self._shapes[i])

    # ---- ops ---------------------------------------------------------------------------------

    def enqueue(self, vals, name=None):
        tensors = self._flatten(vals)
        location = user_location()

        def compute(session, values):
            _as_tf_errors(lambda: self.instance(session).enqueue(values,
                                                                 _timeout_s(session)),
                          location)
            return []

        def batched(session, batches, limit):
            _as_tf_errors(lambda: self.instance(session).enqueue_many(
                batches, _timeout_s(session)), location)
            return []

        def pump(session, source, tables, limit):
            # the runs of a chain dequeue -> row gathers -> this enqueue, in native code
            # until a queue closes (host_ops.pump_plan); False where it cannot be
            return _as_tf_errors(lambda: source.instance(session).pump_rows(
                self.instance(session), tables, limit, _timeout_s(session)), location)
        op = host_op("QueueEnqueueV2", compute, tensors, (), name or f"{self.name}_enqueue",
                     batched=batched)
        op.host_pump = pump
        return op

    def enqueue_if(self, keep_input, vals, many=False, name=None):
        """An enqueue that happens only when the bool ``keep_input`` is true when it runs
        (``tf.train.maybe_batch``)."""
        tensors = [convert_to_tensor(keep_input, dtype=dt.bool_)] + self._flatten(vals)
        location = user_location()

        def compute(session, values):
            if bool(np.asarray(values[0])):
                queue = self.instance(session)
                put = queue.enqueue_many if many else queue.enqueue
                _as_tf_errors(lambda: put(values[1:], _timeout_s(session)), location)
            return []

        def batched(session, batches, limit):
            keep = np.asarray(batches[0], dtype=bool)
            _as_tf_errors(lambda: self.instance(session).enqueue_many(
                [np.asarray(b)[keep] for b in batches[1:]], _timeout_s(session)), location)
            return []
        return host_op("QueueEnqueueIf", compute, tensors, (),
                       name or f"{self.name}_maybe_enqueue",
                       batched=None if many else batched)

    def enqueue_many(self, vals, name=None):
        tensors = self._flatten(vals)
        location = user_location()

        def compute(session, values):
            _as_tf_errors(lambda: self.instance(session).enqueue_many(
                values, _timeout_s(session)), location)
            return []
        return host_op("QueueEnqueueManyV2", compute, tensors, (),
                       name or f"{self.name}_EnqueueMany")

    def _dequeue_op(self, kind, take, count, batch_dim, name):
        """``count``: the batch size input (None for one element); ``batch_dim``: the
        outputs' static leading dimension (absent for one element)."""
        location = user_location()

        def compute(session, values):
            n = int(values[0]) if values else None
            return list(_as_tf_errors(lambda: take(self.instance(session), n,
                                                   _timeout_s(session)), location))
        def batched(session, batches, limit):
            # one dequeue's runs in a row: as many elements as are there, at least one
            return list(_as_tf_errors(lambda: self.instance(session).dequeue_available(
                limit, _timeout_s(session)), location))
        inputs = [] if count is None else [convert_to_tensor(count, dtype=dt.int32)]
        outputs = []
        for i, d in enumerate(self._dtypes):
            shape = self._shape(i)
            if count is not None:
                shape = None if shape is None else [batch_dim] + shape
            outputs.append((d, shape))
        op = host_op(kind, compute, inputs, outputs, name or f"{self.name}_{kind[5:-2]}",
                     batched=batched if count is None else None)
        if count is None:
            op.source_queue = self          # one element: a pump may take its place
        return self._structured(op.outputs)

    def dequeue(self, name=None):
        return self._dequeue_op("QueueDequeueV2", lambda q, n, t: q.dequeue(t),
                                None, None, name)

    def dequeue_many(self, n, name=None):
        return self._dequeue_op("QueueDequeueManyV2", lambda q, n, t: q.dequeue_many(n, t),
                                n, n if isinstance(n, int) else None, name)

    def dequeue_up_to(self, n, name=None):
        return self._dequeue_op("QueueDequeueUpToV2",
                                lambda q, n, t: q.dequeue_up_to(n, t), n, None, name)

    def size(self, name=None):
        op = host_op("QueueSizeV2", lambda s, v: [np.int32(self.instance(s).size())], (),
                     [(dt.int32, [])], name or f"{self.name}_Size")
        return op.outputs[0]

    def is_closed(self, name=None):
        op = host_op("QueueIsClosedV2", lambda s, v: [np.bool_(self.instance(s).closed)],
                     (), [(dt.bool_, [])], name or f"{self.name}_IsClosed")
        return op.outputs[0]

    def close(self, cancel_pending_enqueues=False, name=None):
        def compute(session, values):
            self.instance(session).close(cancel_pending_enqueues)
            return []
        return host_op("QueueCloseV2", compute, (), (), name or f"{self.name}_Close")

    # ---- for readers (compat/v1/readers.py): the next element on the host ---------------------

    def dequeue_host(self, session):
        """The next element's first component (a filename for a reader), on the host."""
        element = _as_tf_errors(lambda: self.instance(session).dequeue(_timeout_s(session)),
                                user_location())
        value = element[0]
        return value.item() if isinstance(value, np.ndarray) else value


class FIFOQueue(QueueBase):
    """``tf.FIFOQueue(capacity, dtypes, shapes=None, names=None, name='fifo_queue')``."""

    def __init__(self, capacity, dtypes, shapes=None, names=None, shared_name=None,
                 name="fifo_queue"):
        super().__init__(dtypes, shapes, names, name,
                         lambda d, s: core.Queue(capacity, d, s, self.name))


class PaddingFIFOQueue(QueueBase):
    """``tf.PaddingFIFOQueue(capacity, dtypes, shapes, ...)``: ``dequeue_many`` pads the
    unknown (None) dimensions to the batch's largest."""

    def __init__(self, capacity, dtypes, shapes, names=None, shared_name=None,
                 name="padding_fifo_queue"):
        if shapes is None:
            raise ValueError("PaddingFIFOQueue needs shapes (None for unknown dimensions)")
        super().__init__(dtypes, shapes, names, name,
                         lambda d, s: ordered_queues.PaddingFIFOQueue(capacity, d, s, self.name))

    def _shape(self, i):
        return list(self._shapes[i])


class RandomShuffleQueue(QueueBase):
    """``tf.RandomShuffleQueue(capacity, min_after_dequeue, dtypes, shapes=None, seed=None,
    ...)``."""

    def __init__(self, capacity, min_after_dequeue, dtypes, shapes=None, names=None,
                 seed=None, shared_name=None, name="random_shuffle_queue"):
        if min_after_dequeue >= capacity:
            raise ValueError(f"min_after_dequeue ({min_after_dequeue}) must be less than "
                             f"capacity ({capacity})")
        self.capacity = capacity
        self.min_after_dequeue = min_after_dequeue
        super().__init__(dtypes, shapes, names, name,
                         lambda d, s: core.RandomShuffleQueue(capacity, min_after_dequeue,
                                                              d, s, seed, self.name))


class PriorityQueue(QueueBase):
    """``tf.PriorityQueue(capacity, types, shapes=None, ...)``: elements are
    ``(priority int64, *types)``; the smallest priority dequeues first."""

    def __init__(self, capacity, types, shapes=None, names=None, shared_name=None,
                 name="priority_queue"):
        if not isinstance(types, (list, tuple)):
            types = [types]
        shapes = None if shapes is None else [[]] + list(shapes)
        super().__init__([dt.int64] + list(types), shapes, names, name,
                         lambda d, s: ordered_queues.PriorityQueue(capacity, d, s, self.name))
