"""TF1 queues, queue runners and the queue-based input functions, as TF1 programs use
them. Expected values are derived by hand; shuffles are checked order-independently.
Every test that starts threads stops them through a Coordinator (join with a timeout)
and checks that none is left."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.compat.v1 import host_ops
from tracejit.compat.v1.coordinator import RUNNER_BATCH
from tracejit.data import ordered_queues
from tracejit.data import queues as core


@pytest.fixture
def graph():
    before = set(threading.enumerate())
    with tf.Graph().as_default() as g:
        yield g
    deadline = time.monotonic() + 10
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not set(threading.enumerate()) - before, "a test left threads running"


def _drain(sess, fetch, feed=None, limit=1000):
    got = []
    try:
        while len(got) < limit:
            got.append(sess.run(fetch, feed))
    except tf.errors.OutOfRangeError:
        pass
    return got


def _runners(sess):
    coord = tf.train.Coordinator()
    return coord, tf.train.start_queue_runners(sess, coord)


# ---- the core queues ------------------------------------------------------------------------

def test_core_fifo_blocks_and_closes():
    q = core.Queue(2, [np.int32])
    q.enqueue([1])
    q.enqueue([2])
    with pytest.raises(core.QueueTimeoutError):
        q.enqueue([3], timeout=0.05)                  # full
    got = []
    consumer = threading.Thread(target=lambda: got.extend(
        int(q.dequeue(timeout=5)[0]) for _ in range(3)))
    consumer.start()
    q.enqueue([3], timeout=5)                         # room once the consumer takes one
    consumer.join(5)
    assert got == [1, 2, 3]
    q.close()
    with pytest.raises(core.QueueClosedError, match="closed and has insufficient"):
        q.dequeue()
    with pytest.raises(core.QueueCancelledError):
        q.enqueue([4])


def test_core_cancel_wakes_a_blocked_enqueue():
    q = core.Queue(1, [np.int32])
    q.enqueue([1])
    errors = []

    def blocked():
        try:
            q.enqueue([2], timeout=5)
        except core.QueueCancelledError as exc:
            errors.append(exc)
    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.05)
    q.close(cancel_pending_enqueues=True)
    thread.join(5)
    assert len(errors) == 1 and not thread.is_alive()


def test_core_kinds():
    shuffle = core.RandomShuffleQueue(10, 3, [np.int32], seed=0)
    shuffle.enqueue_many([np.arange(5)])
    with pytest.raises(core.QueueTimeoutError):
        shuffle.dequeue_many(3, timeout=0.05)          # would leave fewer than 3
    taken = [int(shuffle.dequeue()[0]) for _ in range(2)]
    shuffle.close()                                     # closed: drains to the end
    taken += shuffle.dequeue_up_to(10)[0].tolist()
    assert sorted(taken) == [0, 1, 2, 3, 4]
    padding = ordered_queues.PaddingFIFOQueue(4, [np.int32], [[None]])
    padding.enqueue([[1, 2, 3]])
    padding.enqueue([[4]])
    np.testing.assert_array_equal(padding.dequeue_many(2)[0], [[1, 2, 3], [4, 0, 0]])
    priority = ordered_queues.PriorityQueue(4, [np.int64, object])
    for p, v in ((3, b"c"), (1, b"a"), (2, b"b"), (1, b"a2")):
        priority.enqueue([p, v])
    assert [priority.dequeue()[1].item() for _ in range(4)] == [b"a", b"a2", b"b", b"c"]
    with pytest.raises(ValueError, match="shape"):
        core.Queue(2, [np.float32], [[2]]).enqueue([np.zeros(3)])


# ---- graph queues ---------------------------------------------------------------------------

def test_graph_queue_ops(graph):
    q = tf.FIFOQueue(5, [tf.float32, tf.int32], shapes=[[2], []])
    x = tf.placeholder(tf.float32, [2])
    enqueue = q.enqueue([x * 2.0, 7])
    value, number = q.dequeue()
    doubled = value + 1.0
    many = q.dequeue_many(2)
    with tf.Session() as sess:
        for i in range(4):
            sess.run(enqueue, {x: [i, i]})
        assert sess.run(q.size()) == 4
        got, n = sess.run([doubled, number])
        np.testing.assert_array_equal(got, [1.0, 1.0])
        assert n == 7
        first, numbers = sess.run(many)
        np.testing.assert_array_equal(first, [[2.0, 2.0], [4.0, 4.0]])
        assert numbers.tolist() == [7, 7]
        assert not sess.run(q.is_closed())
        sess.run(q.close())
        assert sess.run(q.is_closed())
        with pytest.raises(tf.errors.OutOfRangeError, match="insufficient elements"):
            sess.run(many)                              # one left, two asked
        np.testing.assert_array_equal(sess.run(value), [6.0, 6.0])
        with pytest.raises(tf.errors.CancelledError):
            sess.run(enqueue, {x: [0, 0]})
    assert many[0].shape.as_list() == [2, 2]


def test_each_session_has_its_own_queue_and_dict_components(graph):
    q = tf.FIFOQueue(3, [tf.int32, tf.float32], shapes=[[], []], names=["id", "score"])
    enqueue = q.enqueue({"id": 1, "score": 0.5})
    out = q.dequeue()
    assert set(out) == {"id", "score"}
    with tf.Session() as a, tf.Session() as b:
        a.run(enqueue)
        assert a.run(q.size()) == 1 and b.run(q.size()) == 0
        assert a.run(out) == {"id": 1, "score": 0.5}


def test_a_dequeue_waits_past_the_operation_timeout(graph):
    q = tf.FIFOQueue(3, tf.float32, shapes=[[]])
    config = tf.ConfigProto(operation_timeout_in_ms=100)
    with tf.Session(config=config) as sess:
        with pytest.raises(tf.errors.DeadlineExceededError):
            sess.run(q.dequeue())


def test_priority_and_padding_queues_in_a_graph(graph):
    pq = tf.PriorityQueue(4, [tf.string], shapes=[[]])
    push = [pq.enqueue([np.int64(p), s]) for p, s in ((5, "late"), (1, "early"))]
    pop = pq.dequeue()
    padded = tf.PaddingFIFOQueue(4, [tf.int32], shapes=[[None]])
    x = tf.placeholder(tf.int32, [None])
    put = padded.enqueue([x])
    with tf.Session() as sess:
        sess.run(push)
        assert [sess.run(pop)[1] for _ in range(2)] == [b"early", b"late"]
        sess.run(put, {x: [1, 2]})
        sess.run(put, {x: [3]})
        np.testing.assert_array_equal(sess.run(padded.dequeue_many(2)), [[1, 2], [3, 0]])


# ---- runners, coordinator and producers -------------------------------------------------------

def test_fifo_queue_filled_by_a_queue_runner_drains_to_out_of_range(graph):
    data = np.arange(5, dtype=np.float32)
    queue = tf.train.input_producer(data, num_epochs=2, shuffle=False, capacity=3)
    value = queue.dequeue() * 10.0
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        coord, threads = _runners(sess)
        with coord.stop_on_exception():
            got = _drain(sess, value)
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    assert [float(v) for v in got] == [0.0, 10.0, 20.0, 30.0, 40.0] * 2


def test_num_epochs_needs_the_local_variables_initialized(graph):
    queue = tf.train.string_input_producer(["a.csv", "b.csv"], num_epochs=1, shuffle=False)
    queue.dequeue()
    with tf.Session() as sess:
        coord, threads = _runners(sess)
        with pytest.raises(tf.errors.FailedPreconditionError, match="epochs"):
            coord.join(threads, stop_grace_period_secs=10)


def test_shuffled_epochs_are_permutations(graph):
    queue = tf.train.range_input_producer(6, num_epochs=3, seed=4)
    index = queue.dequeue()
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        coord, threads = _runners(sess)
        got = [int(v) for v in _drain(sess, index)]
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    assert len(got) == 18
    epochs = [got[i:i + 6] for i in range(0, 18, 6)]
    assert all(sorted(e) == list(range(6)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1          # reshuffled each epoch


def test_shuffle_batch_over_slice_input_producer(graph):
    images = np.arange(24, dtype=np.float32).reshape(12, 2)
    labels = np.arange(12, dtype=np.int32)
    image, label = tf.train.slice_input_producer([images, labels], num_epochs=2, seed=1)
    batch_images, batch_labels = tf.train.shuffle_batch(
        [image, label], batch_size=5, capacity=20, min_after_dequeue=6, num_threads=2,
        seed=3, allow_smaller_final_batch=True)
    row_sums = tf.reduce_sum(batch_images, axis=1)
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        coord, threads = _runners(sess)
        batches = _drain(sess, [row_sums, batch_labels])
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    seen = []
    for sums, labs in batches:
        np.testing.assert_array_equal(sums, 4 * labs + 1)   # each image with its label
        seen += labs.tolist()
    assert sorted(seen) == sorted(list(range(12)) * 2)
    assert [len(b[1]) for b in batches][:-1] == [5] * (len(batches) - 1)
    assert batch_images.shape.as_list() == [None, 2]


def _enqueue_ops(queue_name_part):
    return [op for qr in tf.get_collection(tf.GraphKeys.QUEUE_RUNNERS)
            if queue_name_part in qr.name for op in qr.enqueue_ops]


@pytest.mark.parametrize("storage", ["native", "columns"])
def test_queue_runners_move_in_memory_rows_in_batches(graph, batched_runs, storage,
                                                      monkeypatch):
    # slice_input_producer -> batch: the runner's enqueue has a batched form, so one
    # Session.run_batched moves up to RUNNER_BATCH rows -- or, where both queues keep
    # their rows in native storage, a native pump moves them until the input closes;
    # each row once per epoch, each image with its label (the order between the test's
    # run and the runner's is open)
    if storage == "columns":
        monkeypatch.setenv(core.NATIVE_ENV, "off")
    pumped = []
    pump_rows = core.Queue.pump_rows

    def counted(self, *args):
        pumped.append(self.storage)
        return pump_rows(self, *args)
    monkeypatch.setattr(core.Queue, "pump_rows", counted)
    images = np.arange(100, dtype=np.float32).reshape(50, 2)
    labels = np.arange(50, dtype=np.int32)
    image, label = tf.train.slice_input_producer([images, labels], num_epochs=2,
                                                 shuffle=False)
    xs, ys = tf.train.batch([image, label], batch_size=8, capacity=64,
                            allow_smaller_final_batch=True)
    [enqueue] = _enqueue_ops("batch/")
    assert host_ops.batch_plan(enqueue) is not None
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        coord, threads = _runners(sess)
        batches = _drain(sess, [xs, ys])
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    got_x = np.concatenate([b[0] for b in batches])
    got_y = np.concatenate([b[1] for b in batches])
    assert sorted(got_y.tolist()) == sorted(list(range(50)) * 2)
    np.testing.assert_array_equal(got_x, images[got_y])
    assert host_ops.pump_plan(enqueue) is not None
    if storage == "native":
        assert pumped == ["native"] and not batched_runs      # one pump, to the end
    else:
        assert batched_runs and set(batched_runs) == {RUNNER_BATCH}   # the runner's calls


def test_a_chain_with_a_compiled_op_runs_one_element_at_a_time(graph):
    images = np.arange(20, dtype=np.float32).reshape(10, 2)
    image, label = tf.train.slice_input_producer([images, np.arange(10, dtype=np.int32)],
                                                 num_epochs=1, shuffle=False)
    xs, ys = tf.train.batch([image * 2.0, label], batch_size=4,
                            allow_smaller_final_batch=True)
    [enqueue] = _enqueue_ops("batch/")
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        assert host_ops.batch_plan(enqueue) is None
        assert sess.run_batched(enqueue, RUNNER_BATCH) is False   # nothing ran
        coord, threads = _runners(sess)
        batches = _drain(sess, [xs, ys])
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    got_y = np.concatenate([b[1] for b in batches])
    assert got_y.tolist() == list(range(10))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), images * 2)


def test_batch_dict_enqueue_many_and_dynamic_pad(graph):
    rows = tf.constant(np.arange(12, dtype=np.int32).reshape(6, 2))
    batched = tf.train.batch({"rows": rows, "n": tf.range(6)}, batch_size=4,
                             enqueue_many=True, capacity=8)
    with tf.Session() as sess:
        coord, threads = _runners(sess)
        first = sess.run(batched)
        np.testing.assert_array_equal(first["rows"], np.arange(8).reshape(4, 2))
        assert first["n"].tolist() == [0, 1, 2, 3]
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    with tf.Graph().as_default():
        x = tf.placeholder(tf.int32, [None])
        with pytest.raises(ValueError, match="fully defined"):
            tf.train.batch([x], batch_size=2)
        [padded] = tf.train.batch([x], batch_size=2, dynamic_pad=True)    # a list in, out
        assert padded.shape.as_list() == [2, None]


def test_batch_join_and_maybe_batch(graph):
    a = tf.train.input_producer(np.array([1, 2, 3], np.int32), num_epochs=1, shuffle=False)
    b = tf.train.input_producer(np.array([10, 20], np.int32), num_epochs=1, shuffle=False)
    [joined] = tf.train.batch_join([[a.dequeue()], [b.dequeue()]], batch_size=2,
                                   allow_smaller_final_batch=True)
    c = tf.train.input_producer(np.arange(6, dtype=np.int32), num_epochs=1, shuffle=False)
    value = c.dequeue()
    [evens] = tf.train.maybe_batch([value], tf.equal(value % 2, 0), batch_size=3,
                                   allow_smaller_final_batch=True)
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        coord, threads = _runners(sess)
        got = [v for batch in _drain(sess, joined) for v in batch.tolist()]
        kept = [v for batch in _drain(sess, evens) for v in batch.tolist()]
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    assert sorted(got) == [1, 2, 3, 10, 20]
    assert kept == [0, 2, 4]


def test_coordinator_reraises_a_threads_error(graph):
    q = tf.FIFOQueue(4, tf.float32, shapes=[[]])
    x = tf.placeholder(tf.float32, [])
    runner = tf.train.QueueRunner(q, [q.enqueue([x])])        # x is never fed
    tf.train.add_queue_runner(runner)
    with tf.Session() as sess:
        coord, threads = _runners(sess)
        with pytest.raises(tf.errors.InvalidArgumentError, match="must feed"):
            coord.join(threads, stop_grace_period_secs=10)
    assert coord.should_stop() and runner.exceptions_raised


def test_coordinator_stop_on_exception_and_clean_stop():
    coord = tf.train.Coordinator()
    with coord.stop_on_exception():
        raise tf.errors.OutOfRangeError("done")             # a clean stop
    assert coord.should_stop()
    coord.join([], stop_grace_period_secs=1)
    coord.clear_stop()
    with coord.stop_on_exception():
        raise ValueError("bad input")
    with pytest.raises(ValueError, match="bad input"):
        coord.join([], stop_grace_period_secs=1)
    coord.clear_stop()
    stuck = threading.Event()
    thread = threading.Thread(target=stuck.wait, args=(5,), name="stuck-thread")
    thread.start()
    coord.request_stop()
    with pytest.raises(RuntimeError, match="stuck-thread"):
        coord.join([thread], stop_grace_period_secs=0.1)
    stuck.set()
    thread.join(5)


def test_closing_the_session_ends_blocked_runner_threads(graph):
    q = tf.FIFOQueue(2, tf.int32, shapes=[[]])
    tf.train.add_queue_runner(tf.train.QueueRunner(q, [q.enqueue([1])]))
    sess = tf.Session()
    threads = tf.train.start_queue_runners(sess)              # no coordinator
    time.sleep(0.1)                                           # the queue fills, they block
    sess.close()
    for thread in threads:
        thread.join(5)
    assert not any(t.is_alive() for t in threads)


def test_input_queues_report_how_full_they_are_as_tensorflow_names_it(graph):
    images = np.arange(24, dtype=np.float32).reshape(12, 2)
    labels = np.arange(12, dtype=np.int32)
    image, label = tf.train.slice_input_producer([images, labels], seed=1)
    _, batch_labels = tf.train.shuffle_batch([image, label], batch_size=4, capacity=20,
                                             min_after_dequeue=6, seed=2)
    tf.train.batch([image], batch_size=3, capacity=10)
    tf.train.string_input_producer(["a"])
    # the names TensorFlow 2.21 gives these summaries in the same program
    assert [t.op.name for t in tf.get_collection(tf.GraphKeys.SUMMARIES)] == [
        "input_producer/input_producer/fraction_of_32_full",
        "shuffle_batch/fraction_over_6_of_14_full", "batch/fraction_of_10_full",
        "input_producer_1/fraction_of_32_full"]
    merged = tf.summary.merge_all()
    with tf.Session() as sess:
        coord, threads = _runners(sess)
        sess.run(batch_labels)
        values = {v.tag: v.simple_value for v in tf.Summary.FromString(sess.run(merged)).value}
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    assert set(values) == {t.op.name for t in tf.get_collection(tf.GraphKeys.SUMMARIES)}
    assert all(0.0 <= v <= 1.0 for v in values.values())
