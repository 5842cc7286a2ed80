"""One worker of a ring all-reduce test, run as its own process by test_allreduce.py:
``python allreduce_worker.py CONFIG_JSON``. It writes ``rank<r>.npz`` (results) or
``rank<r>.error.json`` (the error it met, its type and how long it waited) into the
config's ``out`` folder.

The inputs come from seeds (:func:`reduce_inputs`, :func:`shard`), so the test builds
the same arrays in its own process to compute the reference.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

SHAPES = [(3, 5), (700,), (), (7, 11, 2), (1500,), (0,), (33, 17)]


def reduce_inputs(rank: int, seed: int) -> list[np.ndarray]:
    """A worker's arrays: float32 and float64 mixed, large enough for several buckets."""
    rng = np.random.default_rng([seed, rank])
    return [rng.standard_normal(shape).astype(np.float64 if i % 3 == 1 else np.float32)
            for i, shape in enumerate(SHAPES)]


def shard(rank: int, steps: int, batch: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """Worker ``rank``'s batches of a regression problem: y = sin(x . w)."""
    rng = np.random.default_rng([99, rank])
    w = np.linspace(-1.0, 1.0, 4).astype(np.float32)
    out = []
    for _ in range(steps):
        x = rng.standard_normal((batch, 4)).astype(np.float32)
        out.append((x, np.sin(x @ w)[:, None].astype(np.float32)))
    return out


def build_mlp(tf, seed: int):
    """A 4-8-1 tanh MLP with fixed initial values; returns (x, y, loss, variables)."""
    rng = np.random.default_rng(seed)
    x = tf.placeholder(tf.float32, [None, 4], name="x")
    y = tf.placeholder(tf.float32, [None, 1], name="y")
    w1 = tf.Variable(rng.standard_normal((4, 8)).astype(np.float32) * 0.5, name="w1")
    b1 = tf.Variable(np.zeros(8, np.float32), name="b1")
    w2 = tf.Variable(rng.standard_normal((8, 1)).astype(np.float32) * 0.5, name="w2")
    b2 = tf.Variable(np.zeros(1, np.float32), name="b2")
    hidden = tf.tanh(tf.matmul(x, w1) + b1)
    loss = tf.reduce_mean(tf.square(tf.matmul(hidden, w2) + b2 - y))
    return x, y, loss, [w1, b1, w2, b2]


def run_reduce(config: dict, ring) -> dict:
    arrays = reduce_inputs(config["rank"], config["seed"])
    mean = ring.allreduce(arrays)
    total = ring.allreduce(arrays, average=False)
    out = {f"mean{i}": a for i, a in enumerate(mean)}
    out.update({f"sum{i}": a for i, a in enumerate(total)})
    out["bytes_sent"] = np.int64(ring.bytes_sent)
    return out


def run_train(config: dict, ring) -> dict:
    import tracejit.compat.v1 as tf
    from tracejit.cluster.replicated import DistributedOptimizer, broadcast_variables

    # NOTE: worker 1 starts from other values: broadcast_variables must fix that
    x, y, loss, variables = build_mlp(tf, seed=7 + config["rank"])
    step = tf.train.get_or_create_global_step()
    opt = DistributedOptimizer(tf.train.MomentumOptimizer(0.1, 0.9), ring)
    train_op = opt.minimize(loss, global_step=step)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        broadcast_variables(sess, ring, root=0)
        for bx, by in shard(config["rank"], config["steps"]):
            sess.run(train_op, {x: bx, y: by})
        values = sess.run(variables + [step])
    return {f"v{i}": np.asarray(v) for i, v in enumerate(values)}


def main() -> None:
    config = json.loads(sys.argv[1])
    from tracejit.cluster import ClusterSpec
    from tracejit.cluster.allreduce import RingAllReduce

    out = Path(config["out"])
    rank = config["rank"]
    started = time.monotonic()
    try:
        ring = RingAllReduce(ClusterSpec.from_json(config["cluster"]), "worker", rank,
                             bucket_bytes=config["bucket_bytes"],
                             timeout_ms=config["timeout_ms"])
        started = time.monotonic()
        with ring:
            result = (run_train if config["mode"] == "train" else run_reduce)(config, ring)
    except Exception as exc:  # noqa: BLE001 - the test reads what went wrong
        (out / f"rank{rank}.error.json").write_text(json.dumps(
            {"type": type(exc).__name__, "message": str(exc),
             "waited_s": time.monotonic() - started}))
        sys.exit(3)
    np.savez(out / f"rank{rank}.npz", **result)


if __name__ == "__main__":
    main()
