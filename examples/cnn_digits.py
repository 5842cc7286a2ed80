"""A convolutional network on real handwritten digits, in the 2016 slides' TF1 style.

scikit-learn's 1797 8×8 digits (read from the file it ships; `pip install -e .[demo]`),
a fixed stratified 80/20 split, and the classic net written with tf.contrib.layers:
conv 3×3×32 → max-pool → conv 3×3×64 → max-pool → flatten → fully connected 128 →
dropout → linear 10, softmax cross-entropy, Adam. Prints a progress bar, the test
accuracy, and saves the trained weights with np.savez.

    python examples/cnn_digits.py [--epochs 30] [--out results/cnn_digits.npz]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import tracejit
import tracejit.compat.v1 as tf
from tracejit.data.datasets import load_digits, train_test_split

DEFAULT_OUT = Path("results") / "cnn_digits.npz"


def digits_split(seed=0):
    """(x_train, y_train, x_test, y_test): images [n, 8, 8, 1] in [0, 1], int32 labels."""
    images, labels = load_digits()
    x_train, y_train, x_test, y_test = train_test_split(images[..., None], labels, 0.2, seed)
    return x_train, y_train, x_test, y_test


class ProgressBar:
    """One terminal line redrawn with \\r: epoch, steps, loss, accuracy and steps/s."""

    def __init__(self, total_steps: int, width: int = 24, stream=sys.stdout):
        self.total, self.width, self.stream = total_steps, width, stream
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def update(self, step: int, epoch: int, loss: float, accuracy: float, force=False):
        now = time.perf_counter()
        if not force and now - self.last_draw < 0.1 and step < self.total:
            return
        self.last_draw = now
        done = int(self.width * step / self.total)
        rate = step / max(now - self.start, 1e-9)
        bar = "#" * done + "." * (self.width - done)
        self.stream.write(f"\r[{bar}] epoch {epoch:>2} step {step:>4}/{self.total} "
                          f"loss {loss:.4f} acc {accuracy:6.2%} {rate:6.1f} steps/s")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def save_weights(path, named_arrays: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **named_arrays)
    return path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where to save the trained weights (.npz)")
    return parser.parse_args(argv)


def main(argv=None) -> float:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    x_train, y_train, x_test, y_test = digits_split()
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8×8")

    tf.reset_default_graph()
    tf.set_random_seed(args.seed)
    tracejit.initializers.set_seed(args.seed)

    x = tf.placeholder(tf.float32, [None, 8, 8, 1], name='x')
    y_label = tf.placeholder(tf.int32, [None], name='y_label')
    is_training = tf.placeholder_with_default(False, [], name='is_training')

    net = tf.contrib.layers.conv2d(x, 32, [3, 3])                  # SAME, ReLU
    net = tf.contrib.layers.max_pool2d(net, [2, 2])                # 4×4×32
    net = tf.contrib.layers.conv2d(net, 64, [3, 3])
    net = tf.contrib.layers.max_pool2d(net, [2, 2])                # 2×2×64
    net = tf.contrib.layers.flatten(net)
    net = tf.contrib.layers.fully_connected(net, 128)
    net = tf.contrib.layers.dropout(net, keep_prob=0.5, is_training=is_training)
    logits = tf.contrib.layers.linear(net, 10)

    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y_label, logits=logits))
    train = tf.train.AdamOptimizer(args.learning_rate).minimize(loss)
    correct = tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y_label)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))

    steps_per_epoch = len(x_train) // args.batch_size       # full batches: one compile
    rng = np.random.default_rng(args.seed)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        bar = ProgressBar(args.epochs * steps_per_epoch)
        step = 0
        start = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            order = rng.permutation(len(x_train))
            for i in range(steps_per_epoch):
                batch = order[i * args.batch_size:(i + 1) * args.batch_size]
                _, batch_loss, batch_acc = sess.run(
                    [train, loss, accuracy],
                    feed_dict={x: x_train[batch], y_label: y_train[batch], is_training: True})
                step += 1
                bar.update(step, epoch, batch_loss, batch_acc, force=i == steps_per_epoch - 1)
        bar.close()
        seconds = time.perf_counter() - start
        test_accuracy = sess.run(accuracy, feed_dict={x: x_test, y_label: y_test})
        weights = {v.name.split(':')[0]: sess.run(v) for v in tf.trainable_variables()}

    path = save_weights(args.out, weights)
    print(f"{step} training steps in {seconds:.1f} s ({step / seconds:.0f} steps/s)")
    print(f"test accuracy: {test_accuracy:.2%} on {len(x_test)} images")
    print(f"saved {len(weights)} weight arrays to {path}")
    return float(test_accuracy)


if __name__ == "__main__":
    if main() < 0.97:
        raise SystemExit("the network did not reach 97% test accuracy")
