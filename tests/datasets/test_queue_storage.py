"""The queues' batch storage (tracejit/data/queues.py): fixed-shape numeric elements in
the CPU device's native storage (codegen_cpu/host/queue_ring.py) or, with
TRACEJIT_NATIVE_QUEUES=off, in NumPy columns (a ring for FIFO order, a compact set for the
random queue); other elements in a list. Every test runs on both kinds of storage for
rows: they give the same elements in the same order a one-at-a-time queue would."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tracejit.data.ordered_queues import PaddingFIFOQueue, PriorityQueue
from tracejit.data.queues import (
    NATIVE_ENV,
    Queue,
    QueueCancelledError,
    QueueClosedError,
    QueueTimeoutError,
    RandomShuffleQueue,
)


@pytest.fixture(params=["native", "columns"], autouse=True)
def storage(request, monkeypatch):
    if request.param == "columns":
        monkeypatch.setenv(NATIVE_ENV, "off")
    return request.param


def _rows(start, stop):
    ids = np.arange(start, stop, dtype=np.int32)
    return [ids, np.stack([np.full((2, 3), i, np.float32) for i in ids])]


@pytest.mark.parametrize("shapes", [[[], [2, 3]], None], ids=["columns", "list"])
def test_fifo_order_survives_wrapping_and_growing(shapes, storage):
    q = Queue(7, [np.int32, np.float32], shapes)
    assert q.storage == (storage if shapes is not None else "list")
    seen = []
    nxt = 0
    for step in range(40):                 # puts and takes of varying sizes: the ring wraps
        room = 7 - q.size()
        put = min(room, 1 + step % 5)
        q.enqueue_many(_rows(nxt, nxt + put))
        nxt += put
        ids, blocks = q.dequeue_many(min(q.size(), 1 + step % 3))
        assert blocks.shape[1:] == (2, 3)
        np.testing.assert_array_equal(blocks[:, 0, 0], ids)
        seen += ids.tolist()
    seen += q.dequeue_many(q.size())[0].tolist()
    assert seen == list(range(nxt))


def test_single_elements_and_empty_batches_keep_the_element_shape():
    q = Queue(4, [np.float32], [[2, 3]])
    q.enqueue([np.ones((2, 3))])
    (row,) = q.dequeue()
    assert row.shape == (2, 3) and row.dtype == np.float32
    (empty,) = q.dequeue_many(0)
    assert empty.shape == (0, 2, 3) and empty.dtype == np.float32
    q.close()
    with pytest.raises(QueueClosedError):
        q.dequeue_up_to(5)


def test_the_random_queue_gives_each_element_once_and_keeps_its_floor():
    q = RandomShuffleQueue(100, 20, [np.int32, np.float32], [[], [2, 3]], seed=5)
    q.enqueue_many(_rows(0, 100))
    taken = []
    while q.size() - 10 >= 20:
        ids, blocks = q.dequeue_many(10)
        np.testing.assert_array_equal(blocks[:, 1, 2], ids)
        taken += ids.tolist()
    with pytest.raises(QueueTimeoutError):
        q.dequeue_many(10, timeout=0.05)    # would leave fewer than min_after_dequeue
    q.close()
    taken += q.dequeue_up_to(1000)[0].tolist()
    assert sorted(taken) == list(range(100))
    assert taken != sorted(taken)             # shuffled (1 in 100! to fail by chance)


def test_the_random_queue_is_uniform():
    # each position of the first dequeue of 1 from 10 held elements: about 1/10 each
    counts = np.zeros(10)
    q = RandomShuffleQueue(10, 0, [np.int32], [[]], seed=11)
    for _ in range(2000):
        q.enqueue_many([np.arange(10, dtype=np.int32)])
        (first,) = q.dequeue()
        counts[int(first)] += 1
        q.dequeue_many(9)
    assert counts.min() > 150 and counts.max() < 250     # 200 expected, 4.7 sigma bounds


def test_a_seeded_random_queue_repeats_its_order():
    def order():
        q = RandomShuffleQueue(50, 0, [np.int32], [[]], seed=3)
        q.enqueue_many([np.arange(50, dtype=np.int32)])
        return q.dequeue_many(50)[0].tolist()
    assert order() == order()


def test_dequeue_available_takes_what_is_there_without_waiting_for_more():
    q = Queue(10, [np.int32], [[]])
    q.enqueue_many([np.arange(3, dtype=np.int32)])
    assert q.dequeue_available(8)[0].tolist() == [0, 1, 2]
    got = []
    thread = threading.Thread(target=lambda: got.append(q.dequeue_available(8)))
    thread.start()
    q.enqueue([7])                            # wakes the waiting dequeue with one
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert got[0][0].tolist() == [7]
    r = RandomShuffleQueue(10, 4, [np.int32], [[]], seed=0)
    r.enqueue_many([np.arange(6, dtype=np.int32)])
    assert len(r.dequeue_available(8)[0]) == 2          # leaves min_after_dequeue
    q.close()
    with pytest.raises(QueueClosedError):
        q.dequeue_available(8)


def test_an_enqueue_larger_than_the_room_fills_as_room_frees():
    q = Queue(4, [np.int32], [[]])
    thread = threading.Thread(target=q.enqueue_many, args=([np.arange(10, dtype=np.int32)],))
    thread.start()
    got = []
    while len(got) < 10:
        got += q.dequeue_many(2, timeout=10)[0].tolist()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert got == list(range(10))


@pytest.mark.parametrize("queue", [lambda: Queue(2, [np.int32], [[]]),
                                   lambda: RandomShuffleQueue(2, 0, [np.int32], [[]], seed=1)],
                         ids=["fifo", "random"])
def test_room_wakes_enqueuers_one_after_another_until_it_is_used(queue):
    # a take wakes one waiting enqueuer; one that leaves room wakes the next: three
    # blocked enqueuers of one element each, room for two made at once, two get in
    q = queue()
    q.enqueue_many([np.array([0, 1], np.int32)])
    done = []
    threads = [threading.Thread(target=lambda i=i: (q.enqueue([np.int32(10 + i)], timeout=20),
                                                    done.append(i)))
               for i in range(3)]
    for thread in threads:
        thread.start()
    while q.waiting_enqueuers() < 3:        # all three waiting for room
        threading.Event().wait(0.005)
    assert sorted(q.dequeue_many(2, timeout=10)[0].tolist()) == [0, 1]
    for _ in range(2000):
        if len(done) == 2:
            break
        threading.Event().wait(0.005)
    assert len(done) == 2 and q.size() == 2
    q.dequeue(timeout=10)                   # and the last one gets the next room
    for thread in threads:
        thread.join(timeout=10)
    assert len(done) == 3 and not any(t.is_alive() for t in threads)


def test_an_enqueuer_that_timed_out_leaves_the_room_to_the_next():
    q = Queue(1, [np.int32], [[]])
    q.enqueue([np.int32(0)])
    late = threading.Thread(target=lambda: q.enqueue([np.int32(2)], timeout=20))
    with pytest.raises(QueueTimeoutError):
        q.enqueue([np.int32(1)], timeout=0.05)
    late.start()
    while q.waiting_enqueuers() < 1:
        threading.Event().wait(0.005)
    assert q.dequeue(timeout=10)[0] == 0
    late.join(timeout=10)
    assert not late.is_alive() and q.dequeue(timeout=10)[0] == 2


def test_queues_that_order_or_pad_keep_elements_in_a_list():
    assert PriorityQueue(5, [np.int64], [[]]).storage == "list"
    assert PaddingFIFOQueue(5, [np.float32], [[None]]).storage == "list"
    assert Queue(5, [object], [[]]).storage == "list"
    p = PriorityQueue(5, [np.int64, np.int32], [[], []])
    p.enqueue_many([np.array([3, 1, 2]), np.array([30, 10, 20], np.int32)])
    assert p.dequeue_many(3)[1].tolist() == [10, 20, 30]


def test_a_large_capacity_reserves_memory_only_as_it_fills():
    q = Queue(10**6, [np.float32], [[256, 256]])
    q.enqueue([np.zeros((256, 256), np.float32)])
    assert q.allocated_rows() < 100


def _pump_queues(capacity=100):
    source = Queue(8, [np.int32], [[]])
    sink = Queue(capacity, [np.float32, np.int32], [[2], []])
    table = np.arange(20, dtype=np.float32).reshape(10, 2)
    return source, sink, [table, np.arange(10, dtype=np.int32) * 10]


def _pump_in_thread(source, sink, tables, **kwargs):
    outcome = []

    def pump():
        try:
            outcome.append(source.pump_rows(sink, tables, 4, **kwargs))
        except Exception as exc:        # noqa: BLE001 - the test looks at it
            outcome.append(exc)
    thread = threading.Thread(target=pump)
    thread.start()
    return thread, outcome


def test_a_pump_moves_the_rows_its_indices_pick_until_its_input_closes(storage):
    # what a queue runner's loop of dequeue -> row gathers -> enqueue_many does
    source, sink, tables = _pump_queues()
    if storage != "native":
        assert source.pump_rows(sink, tables, 4) is False       # nothing moved
        return
    thread, outcome = _pump_in_thread(source, sink, tables)
    order = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7]
    for start in range(0, len(order), 5):                        # in several puts
        source.enqueue_many([np.array(order[start:start + 5], np.int32)])
    source.close()
    thread.join(timeout=20)
    assert not thread.is_alive() and isinstance(outcome[0], QueueClosedError)
    rows, scaled = sink.dequeue_many(len(order))
    assert scaled.tolist() == [10 * i for i in order]            # in order, FIFO to FIFO
    np.testing.assert_array_equal(rows, tables[0][order])
    assert sink.size() == 0


def test_a_pump_ends_when_its_output_closes_and_on_a_bad_index(storage):
    if storage != "native":
        return
    source, sink, tables = _pump_queues(capacity=3)
    thread, outcome = _pump_in_thread(source, sink, tables)
    source.enqueue_many([np.arange(6, dtype=np.int32)])         # more than fits: it waits
    while sink.waiting_enqueuers() < 1:
        threading.Event().wait(0.005)
    sink.close(cancel_pending_enqueues=True)                    # a coordinator's stop
    thread.join(timeout=20)
    assert not thread.is_alive() and isinstance(outcome[0], QueueCancelledError)
    source, sink, tables = _pump_queues()
    source.enqueue_many([np.array([2, 10], np.int32)])
    with pytest.raises(ValueError, match=r"indices\[0\] = 10 is not in \[0, 10\)"):
        source.pump_rows(sink, tables, 4)
    thread, outcome = _pump_in_thread(source, sink, tables, timeout=0.1)
    thread.join(timeout=20)
    assert isinstance(outcome[0], QueueTimeoutError)            # nothing came in time
    # tables that do not fit the output queue: no pump, nothing taken
    assert source.pump_rows(sink, [tables[0].astype(np.float64), tables[1]], 4) is False
    assert source.pump_rows(sink, tables[:1], 4) is False


def _replay(kind, moves, native: bool, monkeypatch):
    """What a queue hands out over ``moves`` (single-threaded: nothing waits)."""
    if native:
        monkeypatch.delenv(NATIVE_ENV, raising=False)
    else:
        monkeypatch.setenv(NATIVE_ENV, "off")
    q = Queue(9, [np.int32, np.float32], [[], [2]]) if kind == "fifo" else \
        RandomShuffleQueue(9, 2, [np.int32, np.float32], [[], [2]], seed=7)
    assert q.storage == ("native" if native else "columns")
    floor = 0 if kind == "fifo" else 2
    out, next_id = [], 0
    for move, n in moves:
        if move == "put":
            n = min(n, 9 - q.size())
            ids = np.arange(next_id, next_id + n, dtype=np.int32)
            q.enqueue_many([ids, np.stack([ids, -ids], axis=1).astype(np.float32)])
            next_id += n
            continue
        n = min(n, q.size() - floor)
        if n <= 0:
            continue
        ids, pairs = q.dequeue_available(n) if move == "available" else q.dequeue_many(n)
        np.testing.assert_array_equal(pairs[:, 0], ids)
        out.append(ids.tolist())
    q.close()
    if q.size():
        out.append(q.dequeue_up_to(100)[0].tolist())
    with pytest.raises(QueueClosedError):
        q.dequeue_up_to(1)                  # closed and empty
    return out


@pytest.mark.parametrize("kind", ["fifo", "random"])
def test_native_and_numpy_storage_hand_out_the_same_rows(kind, storage, monkeypatch):
    # random sequences of puts and takes: the native ring (a seeded random queue draws the
    # same uniforms the NumPy one does) gives the same batches, element for element
    if storage != "native":
        return
    from hypothesis import given, settings
    from hypothesis import strategies as st
    moves = st.lists(st.tuples(st.sampled_from(["put", "take", "available"]),
                               st.integers(0, 9)), max_size=30)

    @settings(max_examples=60, deadline=None)
    @given(moves)
    def check(moves):
        with pytest.MonkeyPatch.context() as patch:
            assert _replay(kind, moves, True, patch) == _replay(kind, moves, False, patch)
    check()


def test_a_blocked_dequeue_still_sees_the_main_threads_signals(storage):
    # the native wait runs in slices: a signal handler (Ctrl-C's KeyboardInterrupt) runs
    # within a slice, and its exception leaves the dequeue
    import signal
    import time

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    q = RandomShuffleQueue(4, 0, [np.int32], [[]], seed=0)
    old = signal.signal(signal.SIGALRM, interrupt)
    start = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Interrupted):
            q.dequeue_many(2)                       # empty: waits until interrupted
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - start < 5
    q.enqueue_many([np.arange(3, dtype=np.int32)])  # the queue still works
    assert sorted(q.dequeue_many(3)[0].tolist()) == [0, 1, 2]
