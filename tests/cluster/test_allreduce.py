"""Ring all-reduce (tracejit/cluster/allreduce.py, buckets.py, replicated.py): workers
are separate processes on 127.0.0.1 (allreduce_worker.py), except where a test plays a
worker's neighbour itself with raw sockets to send it what a broken peer would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from tracejit.cluster import ClusterError, ClusterSpec, Keys, free_port, generate_keys
from tracejit.cluster.allreduce import RingAllReduce
from tracejit.cluster.buckets import AllReduceError, BucketPlan, chunk_bounds, reference_allreduce
from tracejit.cluster.wire import Kind, Message, encode
from tracejit.runtime.partitions import StepTimeout

from .allreduce_worker import build_mlp, reduce_inputs, shard

WORKER = Path(__file__).with_name("allreduce_worker.py")
ROOT = Path(__file__).resolve().parents[2]
BOUND_S = 75


def cluster_of(n: int) -> ClusterSpec:
    return ClusterSpec({"worker": [f"127.0.0.1:{free_port()}" for _ in range(n)]})


@pytest.fixture
def spawn():
    """Start worker processes; every one is killed when the test ends."""
    started: list[subprocess.Popen] = []

    def start(config: dict) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, str(WORKER), json.dumps(config)],
                                   cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def finish(processes, deadline_s: float = BOUND_S) -> None:
    """Wait for the workers, all within ``deadline_s`` seconds."""
    end = time.monotonic() + deadline_s
    for process in processes:
        try:
            process.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"a worker ran past {deadline_s} s")


def run_ring(spawn, tmp_path, n: int, mode: str, ranks=None, **config) -> dict:
    spec = cluster_of(n)
    base = {"cluster": spec.to_json(), "out": str(tmp_path), "seed": 5, "mode": mode,
            # NOTE: generous: one CI run (full suite, 2 busy cores) saw a 3-worker ring
            # starve past 20 s; the bound below still catches a hang
            "bucket_bytes": 1024, "timeout_ms": 60_000, "steps": 4, **config}
    processes = [spawn({**base, "rank": r}) for r in (range(n) if ranks is None else ranks)]
    finish(processes)
    return {"spec": spec, "outputs": [p.stdout.read() for p in processes]}


def results(tmp_path, rank: int) -> dict:
    error = tmp_path / f"rank{rank}.error.json"
    if error.exists():
        pytest.fail(f"worker {rank} failed: {error.read_text()}")
    with np.load(tmp_path / f"rank{rank}.npz") as data:
        return dict(data)


# ---- bucketing and the reference order, in this process ------------------------------------

def test_buckets_are_per_dtype_in_reverse_order_and_at_most_bucket_bytes():
    arrays = [np.arange(10, dtype=np.float32), np.arange(3, dtype=np.float64),
              np.arange(6, dtype=np.float32).reshape(2, 3), np.zeros(0, np.float32),
              np.float64(7.0) * np.ones(())]
    plan = BucketPlan.of(arrays, bucket_bytes=16)
    # the last array comes first: float64 (array 4) opens the first group
    assert [g.dtype for g in plan.groups] == [np.float64, np.float32]
    assert plan.groups[0].members == (4, 1) and plan.groups[1].members == (3, 2, 0)
    assert all(b.nbytes <= 16 for b in plan.buckets)
    assert [(b.group, b.start, b.size) for b in plan.buckets] == [
        (0, 0, 2), (0, 2, 2), (1, 0, 4), (1, 4, 4), (1, 8, 4), (1, 12, 4)]
    buffers = plan.pack(arrays)
    # float32 stream in reverse order: the 2x3 array, then arange(10)
    assert buffers[1].tolist() == [0, 1, 2, 3, 4, 5] + list(range(10))
    back = plan.unpack(buffers)
    assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(back, arrays,
                                                                          strict=True))
    # the pieces a chunk is read from in place are exactly the packed elements
    for bucket, chunks in zip(plan.buckets, plan.chunk_pieces(3), strict=True):
        view = plan.bucket_view(buffers, bucket)
        for (lo, hi), pieces in zip(chunk_bounds(bucket.size, 3), chunks, strict=True):
            got = np.empty(hi - lo, bucket.dtype)
            for i, start, stop, at in pieces:
                got[at:at + stop - start] = arrays[i].reshape(-1)[start:stop]
            assert np.array_equal(got, view[lo:hi])
    assert chunk_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert chunk_bounds(2, 3) == [(0, 1), (1, 2), (2, 2)]


def test_reference_sums_each_chunk_in_ring_order_from_its_position():
    # values where float32 addition is not associative: the order is visible
    big, small = np.float32(1e8), np.float32(3.0)
    workers = [[np.array([big, small, small], np.float32)],
               [np.array([small, big, small], np.float32)],
               [np.array([-big, -big, big], np.float32)]]
    total = reference_allreduce(workers, bucket_bytes=1 << 20, average=False)[0]
    # chunk c starts at worker c: ((x_c + x_c+1) + x_c+2)
    expected = [(workers[0][0][0] + workers[1][0][0]) + workers[2][0][0],
                (workers[1][0][1] + workers[2][0][1]) + workers[0][0][1],
                (workers[2][0][2] + workers[0][0][2]) + workers[1][0][2]]
    assert total.tolist() == [float(e) for e in expected]
    mean = reference_allreduce(workers, bucket_bytes=1 << 20)[0]
    assert np.array_equal(mean, total / np.float32(3))


def test_one_worker_is_the_identity_without_sockets():
    ring = RingAllReduce({"worker": [f"127.0.0.1:{free_port()}"]}, "worker", 0)
    arrays = [np.arange(5, dtype=np.float32), np.ones((2, 2))]
    out = ring.allreduce(arrays)
    assert ring._pull is None and ring.bytes_sent == 0
    assert all(np.array_equal(a, b) and a is not b for a, b in zip(out, arrays, strict=True))
    ring.close()


def test_mistakes_are_named():
    spec = cluster_of(2)
    with pytest.raises(ClusterError, match="rank 5 is not a task of job 'worker'"):
        RingAllReduce(spec, "worker", 5)
    with pytest.raises(ClusterError, match="job 'ps' is not a job"):
        RingAllReduce(spec, "ps", 0)
    with pytest.raises(ClusterError, match="which is /job:worker/task:1's address"):
        port0 = 20000
        RingAllReduce({"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port0 + 7}"]},
                      "worker", 0, port_offset=7)
    with pytest.raises(ValueError, match="bucket_bytes must be a positive"):
        RingAllReduce(spec, "worker", 0, bucket_bytes=0)
    ring = RingAllReduce({"worker": ["127.0.0.1:1"]}, "worker", 0)
    with pytest.raises(AllReduceError, match="array 1 is int32, which has no mean"):
        ring.allreduce([np.ones(2), np.ones(2, np.int32)])
    with pytest.raises(TypeError, match="takes a list of arrays"):
        ring.allreduce(np.ones(3))


# ---- a neighbour played by the test: what a broken peer sends is refused ----------------------

class FakeLeft:
    """Worker 0 of a two-worker ring, as raw sockets: it says hello, then sends
    whatever the test asks (worker 1 is the real RingAllReduce)."""

    def __init__(self, spec: ClusterSpec):
        context = zmq.Context.instance()
        self.pull = context.socket(zmq.PULL)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.pull.bind(f"tcp://{spec.task_address('worker', 0)}")
        self.push = context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(f"tcp://{spec.task_address('worker', 1)}")

    def hello(self, bucket_bytes: int) -> None:
        self.send(Message(Kind.RING_HELLO, {"origin": 0, "size": 2, "job": "worker",
                                            "bucket_bytes": bucket_bytes}))

    def chunk(self, step: int, sig: str, data, **text) -> None:
        fields = {"op": "sum", "from": 0, "b": 0, "s": 0, "c": 0, "sig": sig, **text}
        self.send(Message(Kind.RING_DATA, fields, [("chunk", data)], step=step))

    def send(self, message: Message) -> None:
        self.push.send_multipart(encode(message))

    def close(self) -> None:
        self.pull.close(0)
        self.push.close(0)


@pytest.fixture
def fake_ring():
    spec = cluster_of(2)
    left = FakeLeft(spec)
    ring = RingAllReduce(spec, "worker", 1, bucket_bytes=64, timeout_ms=3000)
    left.hello(64)
    yield left, ring
    ring.close()
    left.close()


def test_a_late_message_of_an_earlier_step_is_dropped(fake_ring):
    left, ring = fake_ring
    arrays = [np.ones(4, np.float32)]
    sig = BucketPlan.of(arrays, 64).signature
    # a straggler of a failed step 0 (the hello's) arrives first; then the real step 1
    left.chunk(0, sig, np.full(2, 9, np.float32))
    left.chunk(1, sig, np.full(2, 2, np.float32))               # reduce-scatter, chunk 0
    left.chunk(1, sig, np.full(2, 5, np.float32), s=1, c=1)     # all-gather, chunk 1
    out = ring.allreduce(arrays, average=False)
    # worker 1 finishes chunk 0 (its own 1 + the 2 that came) and is given chunk 1
    assert out[0].tolist() == [3, 3, 5, 5] and ring.late_messages == 1


@pytest.mark.parametrize("wrong, message", [
    ({"step": 2}, "sent a RING_DATA of step 2 while this worker is at step 1"),
    ({"b": 3}, "has bucket 3, expected a bucket of this step"),
    ({"c": 1}, "has c=1, expected c=0"),
    ({"s": 1}, "has s=1, expected s=0"),
    ({"data": np.ones(3, np.float32)}, r"is float32\[3\], expected float32\[2\]"),
    ({"data": np.ones(2, np.float64)}, r"is float64\[2\], expected float32\[2\]"),
    ({"sig": "9:00000000"}, "is reducing a different list of arrays"),
])
def test_a_message_that_does_not_fit_the_step_is_an_error(fake_ring, wrong, message):
    left, ring = fake_ring
    arrays = [np.ones(4, np.float32)]
    sig = wrong.pop("sig", BucketPlan.of(arrays, 64).signature)
    data = wrong.pop("data", np.full(2, 2, np.float32))
    step = wrong.pop("step", 1)
    left.chunk(step, sig, data, **wrong)
    with pytest.raises(AllReduceError, match=message) as caught:
        ring.allreduce(arrays)
    assert "/job:worker/task:0 (127.0.0.1:" in str(caught.value)


# ---- workers as processes ---------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3])
def test_sum_and_mean_equal_the_reference_bit_for_bit_on_every_worker(spawn, tmp_path, n):
    run_ring(spawn, tmp_path, n, "reduce")
    inputs = [reduce_inputs(r, 5) for r in range(n)]
    mean = reference_allreduce(inputs, 1024)
    total = reference_allreduce(inputs, 1024, average=False)
    assert len(BucketPlan.of(inputs[0], 1024).buckets) > 10
    payload = sum(a.nbytes for a in inputs[0])
    for r in range(n):
        got = results(tmp_path, r)
        for i, (m, t) in enumerate(zip(mean, total, strict=True)):
            assert got[f"mean{i}"].dtype == m.dtype and got[f"mean{i}"].shape == m.shape
            assert np.array_equal(got[f"mean{i}"], m), (r, i)
            assert np.array_equal(got[f"sum{i}"], t), (r, i)
            direct = np.mean([inputs[k][i] for k in range(n)], axis=0)
            np.testing.assert_allclose(m, direct, rtol=1e-5, atol=1e-6)
        # two all-reduces, each 2 (n - 1) / n of the payload, plus small headers
        ideal = 2 * 2 * (n - 1) / n * payload
        assert ideal <= got["bytes_sent"] < ideal * 1.35


def test_a_worker_that_never_joins_is_named_within_the_deadline(spawn, tmp_path):
    deadline_ms = 2000
    out = run_ring(spawn, tmp_path, 3, "reduce", ranks=[0, 2], timeout_ms=deadline_ms)
    missing = f"/job:worker/task:1 ({out['spec'].task_address('worker', 1)})"
    for rank in (0, 2):
        error = json.loads((tmp_path / f"rank{rank}.error.json").read_text())
        assert error["type"] == "StepTimeout"
        assert f"{missing} has not joined the ring of 3 workers" in error["message"]
        assert f"within {deadline_ms} ms" in error["message"]
        assert deadline_ms / 1000 <= error["waited_s"] < deadline_ms / 1000 + 1.5
    # worker 0 heard worker 2's hello (its left neighbour) before giving up on 1
    assert "the hellos of [2] arrived" in json.loads(
        (tmp_path / "rank0.error.json").read_text())["message"]


def test_distributed_optimizer_equals_one_process_averaging_the_shards(spawn, tmp_path):
    steps = 4
    run_ring(spawn, tmp_path, 2, "train", steps=steps)
    got = [results(tmp_path, r) for r in range(2)]
    for key in got[0]:
        assert np.array_equal(got[0][key], got[1][key]), key       # the same bits
    import tracejit.compat.v1 as tf

    with tf.Graph().as_default():
        x, y, loss, variables = build_mlp(tf, seed=7)       # worker 0's start
        step = tf.train.get_or_create_global_step()
        opt = tf.train.MomentumOptimizer(0.1, 0.9)
        grads = [g for g, _ in opt.compute_gradients(loss, variables)]
        fed = [tf.placeholder(tf.float32, v.shape) for v in variables]
        apply = opt.apply_gradients(list(zip(fed, variables, strict=True)), global_step=step)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for batches in zip(shard(0, steps), shard(1, steps), strict=True):
                local = [sess.run(grads, {x: bx, y: by}) for bx, by in batches]
                # the documented order: with two workers, (g0 + g1) / 2 elementwise
                mean = reference_allreduce(local, bucket_bytes=1024)
                sess.run(apply, dict(zip(fed, mean, strict=True)))
            expected = sess.run(variables + [step])
    assert got[0][f"v{len(variables)}"] == steps
    # NOTE: exactly: the same compiled programs on the same batches give the same
    # gradients here as in the workers, and the ring's order is the reference's
    for i, value in enumerate(expected):
        assert np.array_equal(got[0][f"v{i}"], value), (i, got[0][f"v{i}"] - value)


def test_a_chunk_past_the_deadline_names_the_neighbour_bucket_and_chunk(fake_ring):
    left, ring = fake_ring
    ring.timeout_ms = 500
    started = time.monotonic()
    with pytest.raises(StepTimeout) as caught:
        ring.allreduce([np.ones(4, np.float32)])
    assert 0.5 <= time.monotonic() - started < 2.0
    assert re.search(r"/job:worker/task:1 \(127\.0\.0\.1:\d+\): /job:worker/task:0 "
                     r"\(127\.0\.0\.1:\d+\) did not send bucket 0 of 1 \(float32, 4 "
                     r"elements\) chunk 0 \(elements 0\.\.2\), reduce-scatter step 1 of 1, "
                     r"of all-reduce step 1 within 500 ms", str(caught.value))


def test_a_ring_with_curve_keys(tmp_path):
    generate_keys(tmp_path, clients=1)
    spec = cluster_of(2)
    out: list = [None, None]

    def work(rank: int) -> None:
        with RingAllReduce(spec, "worker", rank, timeout_ms=10_000,
                           keys=Keys.load(tmp_path, "server")) as ring:
            out[rank] = ring.allreduce([np.full(6, rank, np.float32)])[0]

    # NOTE: threads, not processes: what is tested is the sockets' CURVE set-up
    threads = [threading.Thread(target=work, args=(r,)) for r in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND_S)
    assert all(o is not None and o.tolist() == [0.5] * 6 for o in out)
