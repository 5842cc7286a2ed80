"""Distributed TensorFlow (2016) on tracejit: parameter servers and workers over ZeroMQ.

The program of the "Distributed TensorFlow" talk and how-to -- a ClusterSpec of ``ps``
and ``worker`` jobs, one ``tf.train.Server`` per task, variables on the parameter
server through ``tf.train.replica_device_setter``, ``tf.Session(server.target)`` and a
``for`` loop of ``sess.run(train_op)`` -- with only the import changed. It trains an MLP
on the handwritten digits that ship with scikit-learn (8x8 images; MNIST needs a
download).

One command runs a whole cluster on this machine (1 ps and 2 workers as processes on
127.0.0.1)::

    python examples/distributed_mnist.py [--sync] [--workers 2] [--steps 200]

Each task can also be started by hand, as TF users do::

    python examples/distributed_mnist.py --job_name=ps --task_index=0 \\
        --ps_hosts=127.0.0.1:2222 --worker_hosts=127.0.0.1:2223,127.0.0.1:2224
    python examples/distributed_mnist.py --job_name=worker --task_index=0 ...

(or with ``TF_CONFIG``, Slurm or MPI variables: ``tracejit.cluster.resolve()``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

import tracejit.compat.v1 as tf
from tracejit.cluster import free_port, resolve
from tracejit.data.datasets import load_digits

HIDDEN = 128


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--job_name", default="")
    parser.add_argument("--task_index", type=int, default=0)
    parser.add_argument("--ps_hosts", default="")
    parser.add_argument("--worker_hosts", default="")
    parser.add_argument("--workers", type=int, default=2, help="launcher: worker count")
    parser.add_argument("--steps", type=int, default=200, help="steps per worker")
    parser.add_argument("--batch", type=int, default=64, help="per-worker batch")
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--sync", action="store_true", help="SyncReplicasOptimizer")
    parser.add_argument("--timeout_ms", type=int, default=60_000)
    parser.add_argument("--out", default="", help="the chief writes its results here (.npz)")
    parser.add_argument("--progress", default="", help="a worker appends each step here")
    return parser.parse_args(argv)


def data():
    images, labels = load_digits()
    return images.reshape(len(images), -1), labels.astype(np.int64)


def batch_for(step: int, worker: int, workers: int, batch: int, images, labels):
    """Worker ``worker``'s shard of the global batch of ``step`` (deterministic, so a
    single process can compute what the cluster does)."""
    start = (step * batch * workers + worker * batch) % (len(images) - batch)
    return images[start:start + batch], labels[start:start + batch]


def model():
    """The MLP, in the current device scope: placeholders, loss and global step."""
    x = tf.placeholder(tf.float32, [None, 64], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    w1 = tf.Variable(tf.truncated_normal([64, HIDDEN], stddev=0.1, seed=1), name="w1")
    b1 = tf.Variable(tf.zeros([HIDDEN]), name="b1")
    w2 = tf.Variable(tf.truncated_normal([HIDDEN, 10], stddev=0.1, seed=2), name="w2")
    b2 = tf.Variable(tf.zeros([10]), name="b2")
    hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
    logits = tf.matmul(hidden, w2) + b2
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                         logits=logits))
    global_step = tf.train.get_or_create_global_step()
    return x, y, loss, global_step, [w1, b1, w2, b2]


def run_task(args) -> int:
    info = resolve()
    cluster, job, task = info.cluster, info.job_name, info.task_index
    server = tf.train.Server(cluster, job_name=job, task_index=task)
    if job == "ps":
        server.join()
        return 0
    workers = cluster.num_tasks("worker")
    with tf.device(tf.train.replica_device_setter(
            worker_device=f"/job:worker/task:{task}", cluster=cluster)):
        x, y, loss, global_step, variables = model()
        opt = tf.train.GradientDescentOptimizer(args.learning_rate)
        if args.sync:
            opt = tf.train.SyncReplicasOptimizer(opt, replicas_to_aggregate=workers,
                                                 total_num_replicas=workers)
        train_op = opt.minimize(loss, global_step=global_step)
    images, labels = data()
    config = tf.ConfigProto(operation_timeout_in_ms=args.timeout_ms)
    with tf.Session(server.target, config=config) as sess:
        if task == 0:
            missing = sess.run(tf.report_uninitialized_variables())
            if len(missing):            # a restarted chief keeps what the ps trained
                sess.run(tf.global_variables_initializer())
        else:
            ready = tf.report_uninitialized_variables()
            while len(sess.run(ready)):
                time.sleep(0.1)
        losses = []
        started = time.perf_counter()
        for step in range(args.steps):
            bx, by = batch_for(step, task, workers, args.batch, images, labels)
            value, _ = sess.run([loss, train_op], {x: bx, y: by})
            losses.append(float(value))
            if args.progress:
                with open(args.progress, "a") as log:
                    log.write(f"{step}\n")
        seconds = time.perf_counter() - started
        print(f"worker {task}: {args.steps} steps in {seconds:.2f} s, loss "
              f"{losses[0]:.3f} -> {losses[-1]:.3f}, global step {sess.run(global_step)}",
              flush=True)
        if args.out:
            np.savez(args.out, losses=np.array(losses), global_step=sess.run(global_step),
                     seconds=seconds, **{v.op.name: sess.run(v) for v in variables})
    return 0


def reference(steps: int, workers: int, batch: int, learning_rate: float) -> dict:
    """What synchronous training computes, in one process: each step the mean of the
    workers' gradients (summed in worker order, as the parameter server does), applied
    by the same optimizer."""
    images, labels = data()
    with tf.Graph().as_default():
        x, y, loss, global_step, variables = model()
        opt = tf.train.GradientDescentOptimizer(learning_rate)
        grads = [g for g, _ in opt.compute_gradients(loss, variables)]
        fed = [tf.placeholder(v.dtype, v.shape) for v in variables]
        apply = opt.apply_gradients(list(zip(fed, variables, strict=True)),
                                    global_step=global_step)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for step in range(steps):
                sets = []
                for worker in range(workers):
                    bx, by = batch_for(step, worker, workers, batch, images, labels)
                    sets.append(sess.run(grads, {x: bx, y: by}))
                means = []
                for i in range(len(variables)):
                    total = np.array(sets[0][i], copy=True)
                    for other in sets[1:]:
                        total += other[i]
                    means.append(total / np.float32(workers))
                sess.run(apply, dict(zip(fed, means, strict=True)))
            return {v.op.name: sess.run(v) for v in variables}


def launch(args) -> int:
    """Start 1 ps and ``--workers`` workers on free loopback ports; wait for the workers."""
    ps = [f"127.0.0.1:{free_port()}"]
    workers = [f"127.0.0.1:{free_port()}" for _ in range(args.workers)]
    common = [f"--ps_hosts={','.join(ps)}", f"--worker_hosts={','.join(workers)}",
              f"--steps={args.steps}", f"--batch={args.batch}",
              f"--learning_rate={args.learning_rate}", f"--timeout_ms={args.timeout_ms}"]
    common += ["--sync"] if args.sync else []
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    me = os.path.abspath(__file__)
    procs = [subprocess.Popen([sys.executable, me, "--job_name=ps", "--task_index=0", *common],
                              env=env)]
    try:
        workers_procs = [subprocess.Popen(
            [sys.executable, me, "--job_name=worker", f"--task_index={i}", *common], env=env)
            for i in range(args.workers)]
        procs += workers_procs
        codes = wait_all(workers_procs, timeout=600)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    print(f"{'synchronous' if args.sync else 'asynchronous'} training on 1 ps + "
          f"{args.workers} workers: exit codes {codes}")
    return max(codes)


def wait_all(procs, timeout: float) -> list[int]:
    """The processes' exit codes; the first one that fails (or the deadline) stops the
    rest, so that a broken worker never leaves the others waiting."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    return [p.returncode for p in procs]


def main(argv=None) -> int:
    args = parse(argv)
    if args.job_name:
        return run_task(args)
    return launch(args)


if __name__ == "__main__":
    sys.exit(main())
