"""Input pipelines benchmark (issue 19): the digits CNN's training step fed four ways,
tracejit beside TensorFlow in the same run.

- ``memory``: one batch held in the graph as constants (the step alone: the ceiling);
- ``feed_dict``: NumPy batches fed through placeholders, as most TF1 tutorials do;
- ``queue``: ``slice_input_producer`` + ``shuffle_batch`` with 2 threads (QueueRunners);
- ``dataset``: ``tf.data`` ``from_tensor_slices().shuffle().repeat().batch().prefetch()``.

Each mode reports steps/s as the median of ``--windows`` timed windows of ``--steps``
steps after a warm-up, and its ratio to ``memory`` of the same framework (the median of
the ratios of windows timed in the same round). The modes'
windows are interleaved (all four sessions live at once), so a change in the machine's
load during the run falls on every mode alike. The network
is written with raw ops (conv2d, max_pool, matmul) so the same file runs on
``tracejit.compat.v1`` and on TensorFlow's ``tf.compat.v1``:

    python -m benchmarks.input_pipeline [--frameworks tracejit,tensorflow] [--json OUT]

TensorFlow runs in a child process of the Python named by ``TRACEJIT_TF_PYTHON`` (or
this one, when it can import tensorflow).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# NOTE: before NumPy loads OpenBLAS: its spinning worker threads starve the pipelines'
# Python threads on a 2-core machine (the tf.data mode fell to 30-60 steps/s with them),
# as examples/demo.py sets it for the same reason
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from .runner import peer_python  # noqa: E402

MODES = ("memory", "feed_dict", "queue", "dataset")
BATCH = 32


def load_tf(framework: str):
    if framework == "tensorflow":
        import tensorflow.compat.v1 as tf
        tf.disable_eager_execution()
        return tf
    import tracejit.compat.v1 as tf
    return tf


def digits(path=None):
    """The 1797 8x8 digits; a child process (TensorFlow's venv, which may lack
    tracejit's dependencies) reads the parent's copy from ``path``."""
    if path:
        with np.load(path) as saved:
            return saved["images"], saved["labels"]
    from tracejit.data.datasets import load_digits
    images, labels = load_digits()
    return images[..., None].astype(np.float32), labels.astype(np.int32)


def network(tf, x, labels):
    """conv 3x3x32 - relu - conv 3x3x64 - relu - maxpool 2 - dense 128 - relu - dense 10."""
    init = tf.glorot_uniform_initializer(seed=1)
    w1 = tf.get_variable("w1", [3, 3, 1, 32], initializer=init)
    w2 = tf.get_variable("w2", [3, 3, 32, 64], initializer=init)
    w3 = tf.get_variable("w3", [4 * 4 * 64, 128], initializer=init)
    w4 = tf.get_variable("w4", [128, 10], initializer=init)
    net = tf.nn.relu(tf.nn.conv2d(x, w1, [1, 1, 1, 1], "SAME"))
    net = tf.nn.relu(tf.nn.conv2d(net, w2, [1, 1, 1, 1], "SAME"))
    net = tf.nn.max_pool(net, [1, 2, 2, 1], [1, 2, 2, 1], "VALID")
    net = tf.nn.relu(tf.matmul(tf.reshape(net, [-1, 4 * 4 * 64]), w3))
    logits = tf.matmul(net, w4)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))
    return tf.train.AdamOptimizer(1e-3).minimize(loss)


def build(tf, mode: str, images, labels):
    """(train op, feed function or None, needs queue runners)."""
    if mode == "memory":
        x, y = tf.constant(images[:BATCH]), tf.constant(labels[:BATCH])
        return network(tf, x, y), None, False
    if mode == "feed_dict":
        x = tf.placeholder(tf.float32, [BATCH, 8, 8, 1])
        y = tf.placeholder(tf.int32, [BATCH])
        rng = np.random.default_rng(0)

        def feed():
            pick = rng.integers(0, len(images), BATCH)
            return {x: images[pick], y: labels[pick]}
        return network(tf, x, y), feed, False
    if mode == "queue":
        image, label = tf.train.slice_input_producer([images, labels], shuffle=True, seed=1)
        x, y = tf.train.shuffle_batch([image, label], batch_size=BATCH, capacity=1000,
                                      min_after_dequeue=500, num_threads=2, seed=2)
        return network(tf, x, y), None, True
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(1000, seed=3).repeat().batch(BATCH, drop_remainder=True)
    x, y = tf.data.make_one_shot_iterator(dataset.prefetch(2)).get_next()
    return network(tf, x, y), None, False


def measure(framework: str, modes, steps: int, windows: int, warmup: int,
            data=None) -> list[dict]:
    """Steps/s of each mode, its windows interleaved with the other modes' (memory,
    feed_dict, queue, dataset, memory, ...): every mode's graph and session live at
    once, an idle pipeline's threads wait on a full buffer, and a drift in the machine's
    load (other processes) falls on every mode alike instead of on whichever ran last."""
    tf = load_tf(framework)
    images, labels = digits(data)
    runs = {}
    try:
        for mode in modes:
            graph = tf.Graph()
            with graph.as_default():
                train, feed, runners = build(tf, mode, images, labels)
                sess = tf.Session(graph=graph)
                sess.run(tf.global_variables_initializer())
                sess.run(tf.local_variables_initializer())
                coord = tf.train.Coordinator()
                threads = tf.train.start_queue_runners(sess, coord) if runners else []
            runs[mode] = (sess, train, feed, coord, threads, [])
            for _ in range(warmup):
                sess.run(train, feed() if feed else None)
        for _ in range(windows):
            for mode in modes:
                sess, train, feed, _, _, rates = runs[mode]
                start = time.perf_counter()
                for _ in range(steps):
                    sess.run(train, feed() if feed else None)
                rates.append(steps / (time.perf_counter() - start))
    finally:
        for sess, _, _, coord, threads, _ in runs.values():
            coord.request_stop()
            if threads:
                coord.join(threads, stop_grace_period_secs=10)
            sess.close()
    return [{"framework": framework, "mode": mode, "steps_per_s": statistics.median(
        runs[mode][5]), "windows": [round(r, 1) for r in runs[mode][5]]} for mode in modes]


def paired_ratio(windows: list[float], memory: list[float]) -> float:
    """The median over windows of a mode's rate over the ``memory`` window of the same
    round: the rounds' windows ran back to back, so a drift in the machine's speed between
    rounds (other processes) cancels, where a ratio of two medians would keep it."""
    return statistics.median(w / m for w, m in zip(windows, memory, strict=True))


def run_framework(framework: str, args) -> list[dict]:
    if framework == "tracejit" or args.child:
        start = time.perf_counter()
        results = measure(framework, args.modes, args.steps, args.windows, args.warmup,
                          args.data)
        print(f"{framework}: " + ", ".join(f"{r['mode']} {r['steps_per_s']:.1f}"
                                           for r in results)
              + f" steps/s ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
        return results
    python = peer_python("tensorflow")
    if python is None:
        print("tensorflow: not installed (set TRACEJIT_TF_PYTHON)", file=sys.stderr)
        return []
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "digits.npz")
        images, labels = digits()
        np.savez(data, images=images, labels=labels)
        done = subprocess.run(
            [python, "-m", "benchmarks.input_pipeline", "--child", "--frameworks", framework,
             "--modes", ",".join(args.modes), "--steps", str(args.steps), "--windows",
             str(args.windows), "--warmup", str(args.warmup), "--data", data],
            cwd=here, capture_output=True, text=True, timeout=900,
            env={**os.environ, "PYTHONPATH": here, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return []
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="tracejit,tensorflow")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.modes = args.modes.split(",")
    results = []
    for framework in args.frameworks.split(","):
        results += run_framework(framework, args)
    if args.child:
        print(json.dumps(results))
        return 0
    base = {r["framework"]: r["windows"] for r in results if r["mode"] == "memory"}
    print(f"{'framework':<11} {'mode':<10} {'steps/s':>9} {'vs memory':>10}")
    for r in results:
        ratio = paired_ratio(r["windows"], base[r["framework"]]) \
            if r["framework"] in base else float("nan")
        r["vs_memory"] = ratio
        print(f"{r['framework']:<11} {r['mode']:<10} {r['steps_per_s']:9.1f} {ratio:10.3f}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)
    assert threading.active_count() >= 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
