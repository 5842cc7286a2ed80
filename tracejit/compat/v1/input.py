"""TF1's queue-based input functions: ``tf.train.input_producer`` and its string, range
and slice forms, and ``tf.train.batch`` / ``shuffle_batch`` / ``batch_join`` /
``shuffle_batch_join`` / ``maybe_batch``. Each makes a queue, the enqueue op that fills
it, and a QueueRunner (in the graph's QUEUE_RUNNERS collection, started by
``tf.train.start_queue_runners``) that runs that op on its threads; it returns the
dequeue.

``num_epochs`` counts passes over the input in a local variable ``epochs`` (run
``tf.local_variables_initializer()``, as in TensorFlow); past the last epoch the
producer's runner ends, its queue closes, and the consumer gets OutOfRangeError once
the queue is drained.
"""

from __future__ import annotations

import itertools

import numpy as np

from ...ir import dtypes as dt
from .coordinator import QueueRunner, add_queue_runner
from .errors import OutOfRangeError
from .graph import Tensor, get_default_graph
from .host_ops import host_op, host_tensor
from .ops import convert_to_tensor, ops
from .queues import FIFOQueue, PaddingFIFOQueue, RandomShuffleQueue
from .variables import GraphKeys, Variable

__all__ = ["limit_epochs", "input_producer", "string_input_producer", "range_input_producer",
           "slice_input_producer", "batch", "shuffle_batch", "batch_join",
           "shuffle_batch_join", "maybe_batch", "maybe_shuffle_batch", "maybe_batch_join",
           "maybe_shuffle_batch_join"]

_SEEDS = itertools.count(87654321)


def limit_epochs(tensor, num_epochs=None, name=None):
    """``tensor``, each time it is evaluated, until it has been ``num_epochs`` times;
    then OutOfRangeError."""
    if num_epochs is None:
        return tensor
    if num_epochs <= 0:
        raise ValueError(f"num_epochs must be > 0 not {num_epochs}.")
    graph = get_default_graph()
    with graph.name_scope(name or "limit_epochs"):
        epochs = Variable(np.int64(0), trainable=False, name="epochs",
                          collections=[GraphKeys.LOCAL_VARIABLES])
        count = epochs.assign_add(np.int64(1))
    tensor = convert_to_tensor(tensor)

    def compute(session, values):
        if int(session.run(count)) > num_epochs:
            raise OutOfRangeError(f"Reached limit of {num_epochs}")
        return values[0]
    return host_tensor("LimitEpochs", compute, [tensor], tensor.dtype,
                       tensor.shape.as_list() if tensor.shape.dims is not None else None)


def _shuffled(tensor: Tensor, seed) -> Tensor:
    """``tensor`` with its first dimension shuffled anew each time it is evaluated (a
    generator per session, from ``seed``)."""
    key = ("random_shuffle", next(_SEEDS))
    seed = seed if seed is not None else key[1]

    def compute(session, values):
        rng = session.resource(key, lambda: np.random.default_rng(seed))
        return values[0][rng.permutation(len(values[0]))]
    return host_tensor("RandomShuffle", compute, [tensor], tensor.dtype,
                       tensor.shape.as_list() if tensor.shape.dims is not None else None)


def input_producer(input_tensor, element_shape=None, num_epochs=None, shuffle=True,
                   seed=None, capacity=32, shared_name=None, summary_name=None, name=None,
                   cancel_op=None):
    """A FIFOQueue that a QueueRunner fills with the rows of ``input_tensor``, epoch after
    epoch (each shuffled with ``shuffle``)."""
    graph = get_default_graph()
    with graph.name_scope(name or "input_producer"):
        input_tensor = convert_to_tensor(input_tensor)
        if input_tensor.shape.dims is None or not input_tensor.shape.dims:
            raise ValueError("input_producer needs an input with a first dimension, got "
                             f"shape {input_tensor.shape}")
        if element_shape is None:
            element_shape = input_tensor.shape.as_list()[1:]
        if shuffle:
            input_tensor = _shuffled(input_tensor, seed)
        input_tensor = limit_epochs(input_tensor, num_epochs)
        queue = FIFOQueue(capacity, [input_tensor.dtype], shapes=[list(element_shape)])
        enqueue = queue.enqueue_many([input_tensor])
        add_queue_runner(QueueRunner(queue, [enqueue], cancel_op=cancel_op))
        _fullness(summary_name or f"fraction_of_{capacity}_full", queue.size(), capacity)
        return queue


def _fullness(name: str, size: Tensor, capacity: int, floor: int = 0) -> None:
    """TensorFlow's summary of how full an input queue is (in SUMMARIES, so
    ``merge_all`` and MonitoredTrainingSession's summaries include it):
    ``max(0, size - floor) / (capacity - floor)``, computed in the step."""
    from .summary import scalar
    filled = ops["maximum"](size - floor, 0) if floor else size
    scalar(name, ops["cast"](filled, dt.float32) * (1.0 / (capacity - floor)))


def string_input_producer(string_tensor, num_epochs=None, shuffle=True, seed=None,
                          capacity=32, shared_name=None, name=None, cancel_op=None):
    """A queue of file names (``string_tensor``), for readers."""
    from .strings import string
    values = string_tensor
    if not isinstance(values, Tensor):
        values = np.array([v.encode() if isinstance(v, str) else v for v in values],
                          dtype=object)
        if values.size == 0:
            raise ValueError("string_input_producer requires a non-null input tensor")
        from .ops import constant
        values = constant(values, dtype=string)
    return input_producer(values, [], num_epochs, shuffle, seed, capacity, shared_name,
                          None, name or "input_producer", cancel_op)


def range_input_producer(limit, num_epochs=None, shuffle=True, seed=None, capacity=32,
                         shared_name=None, name=None):
    """A queue of the integers 0 .. limit-1."""
    return input_producer(np.arange(int(limit), dtype=np.int32), [], num_epochs, shuffle,
                          seed, capacity, shared_name, None, name or "input_producer")


def slice_input_producer(tensor_list, num_epochs=None, shuffle=True, seed=None, capacity=32,
                         shared_name=None, name=None):
    """One row of each tensor of ``tensor_list`` at a time (the same row of each): a
    range producer's indices gather them."""
    tensors = [convert_to_tensor(t) for t in tensor_list]
    if not tensors:
        raise ValueError("Expected at least one tensor in slice_input_producer().")
    sizes = {t.shape.as_list()[0] if t.shape.dims else None for t in tensors}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"slice_input_producer needs tensors of one known first dimension, "
                         f"got {sorted(map(str, sizes))}")
    graph = get_default_graph()
    with graph.name_scope(name or "input_producer"):
        queue = range_input_producer(sizes.pop(), num_epochs, shuffle, seed, capacity,
                                     shared_name)
        index = queue.dequeue()
        return [_row(t, index) for t in tensors]


def _row(tensor: Tensor, index: Tensor) -> Tensor:
    """``tensor[index]``: taken on the host when ``tensor`` is a constant (the usual
    in-memory dataset), so a queue runner's enqueue needs no compiled step; a gather op
    otherwise."""
    constant = None
    if tensor.op.type == "Const":
        host_value = getattr(tensor.op, "host_value", None)
        constant = host_value(None) if host_value is not None else \
            next(iter(tensor.probe_known.values()), None)
    if constant is None:
        return ops["gather"](tensor, index)
    constant = np.asarray(constant)
    op = host_op("GatherConstant", lambda session, values: [constant[int(values[0])]],
                 [index], [(tensor.dtype, tensor.shape.as_list()[1:])],
                 batched=lambda session, batches, limit: [
                     constant[np.asarray(batches[0], dtype=np.int64)]])
    op.gather_table = constant          # what a queue runner's pump gathers from
    return op.outputs[0]


# ---- batching --------------------------------------------------------------------------------

def _flat(tensors):
    """(list of tensors, rebuild) for a tensor, a list/tuple or a dict of them."""
    if isinstance(tensors, dict):
        keys = sorted(tensors)
        return [convert_to_tensor(tensors[k]) for k in keys], \
            lambda out: dict(zip(keys, out, strict=True))
    if isinstance(tensors, (list, tuple)):
        return [convert_to_tensor(t) for t in tensors], list
    return [convert_to_tensor(tensors)], lambda out: out[0]


def _shapes(tensors, shapes, enqueue_many, dynamic_pad):
    if shapes is not None:
        return [list(s) for s in shapes]
    found = []
    for t in tensors:
        dims = t.shape.as_list() if t.shape.dims is not None else None
        if dims is not None and enqueue_many:
            dims = dims[1:]
        if dims is None or (None in dims and not dynamic_pad):
            raise ValueError(f"All shapes must be fully defined: {t.name} has shape "
                             f"{t.shape} (pass shapes=, or dynamic_pad=True)")
        found.append(dims)
    return found


def _batch(tensors_list, batch_size, capacity, enqueue_many, shapes, make_queue,
           allow_smaller_final_batch, dynamic_pad, name, keep_input=None):
    graph = get_default_graph()
    with graph.name_scope(name):
        flats = [_flat(tensors) for tensors in tensors_list]
        first, rebuild = flats[0]
        for other, _ in flats[1:]:
            if [t.dtype for t in other] != [t.dtype for t in first]:
                raise ValueError("batch_join: every list of tensors needs the same dtypes")
        shapes = _shapes(first, shapes, enqueue_many, dynamic_pad)
        queue = make_queue([t.dtype for t in first], shapes)
        enqueues = []
        for tensors, _ in flats:
            if keep_input is not None:
                enqueues.append(queue.enqueue_if(keep_input, tensors, many=enqueue_many))
            elif enqueue_many:
                enqueues.append(queue.enqueue_many(tensors))
            else:
                enqueues.append(queue.enqueue(tensors))
        add_queue_runner(QueueRunner(queue, enqueues))
        if isinstance(queue, RandomShuffleQueue):
            floor = queue.min_after_dequeue
            _fullness(f"fraction_over_{floor}_of_{queue.capacity - floor}_full",
                      queue.size(), queue.capacity, floor)
        else:
            _fullness(f"fraction_of_{capacity}_full", queue.size(), capacity)
        take = queue.dequeue_up_to if allow_smaller_final_batch else queue.dequeue_many
        out = take(batch_size)
        out = out if isinstance(out, list) else [out]
        return rebuild(out)


def _padding_or_fifo(capacity, dynamic_pad):
    if dynamic_pad:
        return lambda dtypes, shapes: PaddingFIFOQueue(capacity, dtypes, shapes)
    return lambda dtypes, shapes: FIFOQueue(capacity, dtypes, shapes)


def _shuffling(capacity, min_after_dequeue, seed):
    return lambda dtypes, shapes: RandomShuffleQueue(capacity, min_after_dequeue, dtypes,
                                                     shapes, seed=seed)


def batch(tensors, batch_size, num_threads=1, capacity=32, enqueue_many=False, shapes=None,
          dynamic_pad=False, allow_smaller_final_batch=False, shared_name=None, name=None):
    """Batches of ``batch_size`` of ``tensors`` (each evaluation of them one element, or
    a batch of them with ``enqueue_many``), filled by ``num_threads`` threads."""
    return _batch([tensors] * num_threads, batch_size, capacity, enqueue_many, shapes,
                  _padding_or_fifo(capacity, dynamic_pad), allow_smaller_final_batch,
                  dynamic_pad, name or "batch")


def maybe_batch(tensors, keep_input, batch_size, num_threads=1, capacity=32,
                enqueue_many=False, shapes=None, dynamic_pad=False,
                allow_smaller_final_batch=False, shared_name=None, name=None):
    """``batch`` of only the elements for which the bool ``keep_input`` is true."""
    return _batch([tensors] * num_threads, batch_size, capacity, enqueue_many, shapes,
                  _padding_or_fifo(capacity, dynamic_pad), allow_smaller_final_batch,
                  dynamic_pad, name or "batch", keep_input=keep_input)


def batch_join(tensors_list, batch_size, capacity=32, enqueue_many=False, shapes=None,
               dynamic_pad=False, allow_smaller_final_batch=False, shared_name=None,
               name=None):
    """``batch`` with one thread per entry of ``tensors_list`` (e.g. one reader each)."""
    return _batch(list(tensors_list), batch_size, capacity, enqueue_many, shapes,
                  _padding_or_fifo(capacity, dynamic_pad), allow_smaller_final_batch,
                  dynamic_pad, name or "batch_join")


def shuffle_batch(tensors, batch_size, capacity, min_after_dequeue, num_threads=1, seed=None,
                  enqueue_many=False, shapes=None, allow_smaller_final_batch=False,
                  shared_name=None, name=None):
    """Batches drawn at random from a RandomShuffleQueue that keeps at least
    ``min_after_dequeue`` elements to mix."""
    return _batch([tensors] * num_threads, batch_size, capacity, enqueue_many, shapes,
                  _shuffling(capacity, min_after_dequeue, seed), allow_smaller_final_batch,
                  False, name or "shuffle_batch")


def maybe_shuffle_batch(tensors, batch_size, capacity, min_after_dequeue, keep_input,
                        num_threads=1, seed=None, enqueue_many=False, shapes=None,
                        allow_smaller_final_batch=False, shared_name=None, name=None):
    return _batch([tensors] * num_threads, batch_size, capacity, enqueue_many, shapes,
                  _shuffling(capacity, min_after_dequeue, seed), allow_smaller_final_batch,
                  False, name or "shuffle_batch", keep_input=keep_input)


def shuffle_batch_join(tensors_list, batch_size, capacity, min_after_dequeue, seed=None,
                       enqueue_many=False, shapes=None, allow_smaller_final_batch=False,
                       shared_name=None, name=None):
    return _batch(list(tensors_list), batch_size, capacity, enqueue_many, shapes,
                  _shuffling(capacity, min_after_dequeue, seed), allow_smaller_final_batch,
                  False, name or "shuffle_batch_join")


def maybe_batch_join(tensors_list, keep_input, batch_size, capacity=32, enqueue_many=False,
                     shapes=None, dynamic_pad=False, allow_smaller_final_batch=False,
                     shared_name=None, name=None):
    """``batch_join`` of only the elements for which the bool ``keep_input`` is true."""
    return _batch(list(tensors_list), batch_size, capacity, enqueue_many, shapes,
                  _padding_or_fifo(capacity, dynamic_pad), allow_smaller_final_batch,
                  dynamic_pad, name or "batch_join", keep_input=keep_input)


def maybe_shuffle_batch_join(tensors_list, batch_size, capacity, min_after_dequeue,
                             keep_input, seed=None, enqueue_many=False, shapes=None,
                             allow_smaller_final_batch=False, shared_name=None, name=None):
    """``shuffle_batch_join`` of only the elements for which ``keep_input`` is true."""
    return _batch(list(tensors_list), batch_size, capacity, enqueue_many, shapes,
                  _shuffling(capacity, min_after_dequeue, seed), allow_smaller_final_batch,
                  False, name or "shuffle_batch_join", keep_input=keep_input)
