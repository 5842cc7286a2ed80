"""One process of the distributed benchmark: a parameter server, a worker, a single
process without a cluster (``local``: the compute-only baseline), or the tracejit
``probe`` of message latency and loopback bandwidth.

``python -m benchmarks.dist_task --framework tracejit|tensorflow --job ps|worker|local
--task I --ps_hosts ... --worker_hosts ... --workload W4 --mode async|sync|allreduce
--steps N --warmup W --rundir DIR`` (benchmarks/distributed.py starts these).

The program is the TF1 one of examples/distributed_mnist.py, with ``tf`` either
``tracejit.compat.v1`` or TensorFlow's ``tf.compat.v1`` (eager off): ClusterSpec, a
``tf.train.Server`` per task, ``replica_device_setter``, ``Session(server.target)``,
``SyncReplicasOptimizer`` under ``MonitoredTrainingSession`` for sync mode. The
ps-free mode is tracejit's Horovod-like ``DistributedOptimizer`` over a ring.

Workers meet at file barriers in ``rundir`` (every wait bounded): a worker other than
the chief builds its session only once the chief has written ``inited``; after the
warm-up each writes ``ready<i>`` and waits for the driver's ``go``, so that the timed
steps of all workers overlap; after writing ``worker<i>.json`` each waits for ``done``.
Each waits by training on (``step_until``), so that every timed step runs while all n
workers train, and no replica of a synchronous step is left waiting for one that
stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from .dist_graphs import batches, build, optimizer
from .dist_wire import PsRecorder, tcp_bytes

BARRIER_S = 600.0        # the longest any file barrier waits (a whole W5 warm-up at 4x)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--framework", choices=["tracejit", "tensorflow"], default="tracejit")
    p.add_argument("--job", choices=["ps", "worker", "local", "probe"], required=True)
    p.add_argument("--task", type=int, default=0)
    p.add_argument("--ps_hosts", default="")
    p.add_argument("--worker_hosts", default="")
    p.add_argument("--workload", default="W4")
    p.add_argument("--mode", choices=["async", "sync", "allreduce", "local"], default="async")
    p.add_argument("--batch", type=int, default=0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rundir", required=True)
    p.add_argument("--timeout_ms", type=int, default=120_000)
    p.add_argument("--fetch", choices=["loss", "train"], default="loss",
                   help="loss: sess.run([train_op, loss]) as the TF1 program does; "
                        "train: sess.run(train_op) alone")
    return p.parse_args(argv)


def import_tf(framework: str):
    if framework == "tracejit":
        import tracejit.compat.v1 as tf
        return tf
    import tensorflow as tf2     # noqa: I001 - only in the TensorFlow peer's processes
    tf = tf2.compat.v1
    tf.disable_eager_execution()
    tf.logging.set_verbosity(tf.logging.ERROR)
    return tf


def session_config(tf, args, spec):
    if args.framework == "tracejit":
        # NOTE: one thread per process, as set by TRACEJIT_THREADS in the driver
        return tf.ConfigProto(intra_op_parallelism_threads=1,
                              operation_timeout_in_ms=args.timeout_ms)
    config = tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=2,
                            operation_timeout_in_ms=args.timeout_ms)
    if args.job == "worker" and spec.get("ps"):
        # NOTE: what TensorFlow's guides recommend for between-graph replication: a
        # worker's session talks only to the ps and itself, not to the other workers
        config.device_filters.extend(["/job:ps", f"/job:worker/task:{args.task}"])
    return config


def wait_file(path: Path, what: str, timeout: float = BARRIER_S) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what} ({path})")
        time.sleep(0.01)


def step_until(step, path: Path, what: str, timeout: float = BARRIER_S) -> None:
    """Keep training (untimed) until ``path`` exists. A worker must not stop stepping
    while others still count on it: a synchronous step waits for every replica's
    gradients (and TensorFlow drops a set computed at a stale step, so a replica can
    need more calls than the others to finish its own), and a ring step for every
    worker. So the workers wait for the driver's go and done by stepping on."""
    deadline = time.monotonic() + timeout
    i = 0
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"trained {timeout:.0f} s waiting for {what} ({path})")
        step(i)
        i += 1


def touch(path: Path) -> None:
    path.write_text(str(time.time()))


def cluster_spec(args) -> dict:
    spec = {"worker": [h for h in args.worker_hosts.split(",") if h]}
    ps = [h for h in args.ps_hosts.split(",") if h]
    if ps:
        spec["ps"] = ps
    return spec


# ---- parameter server -----------------------------------------------------------------------

def run_ps(tf, args) -> int:
    spec = cluster_spec(args)
    rundir = Path(args.rundir)
    if args.framework == "tracejit":
        server = tf.train.Server(tf.train.ClusterSpec(spec), job_name="ps",
                                 task_index=args.task, start=False)
        recorder = PsRecorder(server)
        server.start()

        def finish(*_):
            recorder.dump(str(rundir / f"ps{args.task}.json"))
            os._exit(0)
        signal.signal(signal.SIGTERM, finish)
    else:
        server = tf.train.Server(tf.train.ClusterSpec(spec), job_name="ps",
                                 task_index=args.task, config=session_config(tf, args, spec))
    touch(rundir / f"ps{args.task}.up")
    server.join()
    return 0


# ---- workers --------------------------------------------------------------------------------

def build_worker(tf, args, spec):
    """The graph of one worker: (target, x, y, loss, train_op, extras)."""
    n = len(spec["worker"])
    extras: dict = {}
    if args.mode in ("async", "sync"):
        cluster = tf.train.ClusterSpec(spec)
        config = session_config(tf, args, spec)
        server = tf.train.Server(cluster, job_name="worker", task_index=args.task,
                                 config=config)
        extras["server"] = server
        setter = tf.train.replica_device_setter(
            worker_device=f"/job:worker/task:{args.task}", cluster=cluster)
        with tf.device(setter):
            x, y, loss, params = build(tf, args.workload, args.batch)
            step = tf.train.get_or_create_global_step()
            opt = optimizer(tf)
            if args.mode == "sync":
                opt = tf.train.SyncReplicasOptimizer(opt, replicas_to_aggregate=n,
                                                     total_num_replicas=n)
                extras["sync"] = opt
            train = opt.minimize(loss, global_step=step)
        return server.target, x, y, loss, train, extras
    x, y, loss, params = build(tf, args.workload, args.batch)
    step = tf.train.get_or_create_global_step()
    opt = optimizer(tf)
    if args.mode == "allreduce":
        from tracejit.cluster.allreduce import RingAllReduce
        from tracejit.cluster.replicated import DistributedOptimizer
        ring = RingAllReduce(spec, "worker", args.task, timeout_ms=args.timeout_ms)
        extras["ring"] = ring
        opt = DistributedOptimizer(opt, ring)
    return "", x, y, loss, opt.minimize(loss, global_step=step), extras


def open_session(tf, args, spec, target, extras):
    rundir = Path(args.rundir)
    chief = args.task == 0
    config = session_config(tf, args, spec)
    if not chief and args.mode in ("async", "sync"):
        wait_file(rundir / "inited", "the chief to initialize the variables")
    if args.mode == "sync":
        hook = extras["sync"].make_session_run_hook(chief)
        sess = tf.train.MonitoredTrainingSession(master=target, is_chief=chief,
                                                 hooks=[hook], config=config)
    else:
        sess = tf.Session(target, config=config)
        if chief or args.mode == "allreduce":
            sess.run(tf.global_variables_initializer())
        if args.mode == "allreduce":
            from tracejit.cluster.replicated import broadcast_variables
            broadcast_variables(sess, extras["ring"], root=0)
    if chief:
        touch(rundir / "inited")
    return sess


def counters(sess, extras) -> dict:
    """Bytes so far: the kernel's count for this process, and tracejit's own."""
    out = {"tcp": list(tcp_bytes())}
    cluster = getattr(getattr(sess, "_session", sess), "_cluster", None)
    if cluster is not None:
        out["connections"] = list(cluster.bytes_on_the_wire())
        out["requests"] = sum(c.requests for c in cluster.devices.connections())
    ring = extras.get("ring")
    if ring is not None:
        # NOTE: frames of an earlier, failed step (a warm-up step that timed out on a
        # loaded machine) arrive late and are dropped: traffic, but not this step's
        out["ring"] = [ring.bytes_sent, ring.bytes_received - ring.late_bytes]
        out["ring_late"] = [ring.late_messages, ring.late_bytes]
    return out


def run_worker(tf, args) -> int:
    spec = cluster_spec(args)
    rundir = Path(args.rundir)
    with tf.Graph().as_default():
        target, x, y, loss, train, extras = build_worker(tf, args, spec)
        global_step = tf.train.get_or_create_global_step()
        data = batches(args.workload, args.batch, args.task)
        started = time.perf_counter()
        sess = open_session(tf, args, spec, target, extras)
        session_s = time.perf_counter() - started
        losses = []

        def step(i: int) -> None:
            bx, by = data[i % len(data)]
            if args.fetch == "loss" or i == 0:
                _, value = sess.run([train, loss], {x: bx, y: by})
                losses.append(float(value))
            else:
                sess.run(train, {x: bx, y: by})

        warm = []
        for i in range(args.warmup):
            t0 = time.perf_counter()
            step(i)
            warm.append(time.perf_counter() - t0)
        if args.job == "worker":
            touch(rundir / f"ready{args.task}")
            step_until(step, rundir / "go", "the driver's go (the other workers' warm-up)")
        before = counters(sess, extras)
        step_before = int(sess.run(global_step))
        stamps = []
        started = time.perf_counter()
        for i in range(args.steps):
            wall = time.time()
            t0 = time.perf_counter()
            step(args.warmup + i)
            stamps.append((wall, time.perf_counter() - t0))
        timed_s = time.perf_counter() - started
        after = counters(sess, extras)
        step_after = int(sess.run(global_step))
        if args.fetch == "train":       # the loss after training, outside the timing
            bx, by = data[0]
            losses.append(float(sess.run(loss, {x: bx, y: by})))
        result = {"task": args.task, "steps": stamps, "warmup_s": warm,
                  "session_s": session_s, "before": before, "after": after,
                  "global_step": [step_before, step_after], "timed_s": timed_s,
                  "loss_first": losses[0], "loss_last": losses[-1], "pid": os.getpid()}
        out = rundir / f"worker{args.task}.json"
        out.with_suffix(".tmp").write_text(json.dumps(result))
        os.replace(out.with_suffix(".tmp"), out)
        if args.job == "worker":
            step_until(step, rundir / "done", "the driver's done (the other workers' last "
                       "steps)")
    sys.stdout.flush()
    # NOTE: no teardown: gRPC's and ZeroMQ's shutdown can wait on peers that the driver
    # is about to kill anyway, and nothing is left to save
    os._exit(0)


# ---- probe ----------------------------------------------------------------------------------

PROBE_SIZES = [4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20]


def run_probe(args) -> int:
    """Round trips to the (tracejit) ps at ``--ps_hosts``: PING for the per-message
    latency, WRITE and READ of 4 KiB-16 MiB for the per-byte cost of loopback plus the
    wire format, each the median of ``--steps`` tries."""
    from tracejit.cluster.remote import Connection
    from tracejit.cluster.wire import Kind, Message
    address = args.ps_hosts.split(",")[0]
    conn = Connection(address, "/job:ps/replica:0/task:0")
    conn.request(Message(Kind.PING), "PING", timeout_ms=args.timeout_ms)

    def median_time(make) -> float:
        times = []
        for _ in range(args.steps):
            message = make()
            t0 = time.perf_counter()
            conn.request(message, "probe", timeout_ms=args.timeout_ms)
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    result = {"ping_s": median_time(lambda: Message(Kind.PING)), "write": [], "read": []}
    for size in PROBE_SIZES:
        name = f"probe{size}"
        value = np.ones(size // 4, np.float32)
        result["write"].append((size, median_time(
            lambda v=value, n=name: Message(Kind.WRITE, {}, [(n, v)]))))
        result["read"].append((size, median_time(
            lambda n=name: Message(Kind.READ, {"names": [n]}))))
    out = Path(args.rundir) / "probe.json"
    out.with_suffix(".tmp").write_text(json.dumps(result))
    os.replace(out.with_suffix(".tmp"), out)
    return 0


def main(argv=None) -> int:
    args = parse(argv)
    if args.job == "probe":
        return run_probe(args)
    tf = import_tf(args.framework)
    if args.job == "ps":
        return run_ps(tf, args)
    return run_worker(tf, args)


if __name__ == "__main__":
    sys.exit(main())
