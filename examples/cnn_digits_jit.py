"""The network of cnn_digits.py written with tracejit.nn layers and a jitted train step.

The model is a `tracejit.nn.Sequential`; its Variables are created while the first
call of `train_step` is traced. Each step is one compiled call that computes the loss,
its gradients and the Adam update, and draws the dropout mask from the module-level
generator (a Variable advanced by the step itself, so no retrace).

    python examples/cnn_digits_jit.py [--epochs 40] [--out results/cnn_digits_jit.npz]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from cnn_digits import ProgressBar, digits_split, parse_args, save_weights

import tracejit as tj
from tracejit import nn


def build_model():
    return nn.Sequential([
        nn.Conv2D(32, 3, padding="same", activation="relu"),
        nn.MaxPool2D(2),
        nn.Conv2D(64, 3, padding="same", activation="relu"),
        nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Dense(128, activation="relu"),
        nn.Dropout(0.5),
        nn.Dense(10),
    ])


def main(argv=None) -> float:
    argv = sys.argv[1:] if argv is None else argv
    if not any(a.startswith("--out") for a in argv):
        argv = [*argv, "--out", str(Path("results") / "cnn_digits_jit.npz")]
    args = parse_args(argv)
    x_train, y_train, x_test, y_test = digits_split()
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8×8")
    tj.initializers.set_seed(args.seed)
    nn.set_dropout_seed(args.seed)

    model = build_model()
    optimizer = tj.train.AdamOptimizer(args.learning_rate)

    def loss_and_accuracy(x, labels, training):
        logits = model(x, training=training)
        loss = tj.reduce_mean(nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits))
        correct = tj.equal(tj.argmax(logits, 1, output_type=tj.int32), labels)
        return loss, tj.reduce_mean(tj.cast(correct, tj.float32))

    @tj.jit
    def train_step(x, labels):
        loss, accuracy = loss_and_accuracy(x, labels, training=True)
        optimizer.minimize(loss, var_list=model.trainable_variables)
        return loss, accuracy

    @tj.jit
    def test_accuracy(x, labels):
        return loss_and_accuracy(x, labels, training=False)[1]

    steps_per_epoch = len(x_train) // args.batch_size
    rng = np.random.default_rng(args.seed)
    bar = ProgressBar(args.epochs * steps_per_epoch)
    step = 0
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        for i in range(steps_per_epoch):
            batch = order[i * args.batch_size:(i + 1) * args.batch_size]
            loss, accuracy = train_step(x_train[batch], y_train[batch])
            step += 1
            bar.update(step, epoch, float(loss), float(accuracy),
                       force=i == steps_per_epoch - 1)
    bar.close()
    seconds = time.perf_counter() - start
    accuracy = float(test_accuracy(x_test, y_test))
    path = save_weights(args.out, {v.name: v.numpy() for v in model.variables})
    print(f"{step} training steps in {seconds:.1f} s ({step / seconds:.0f} steps/s), "
          f"{len(train_step.compile_log)} compile(s)")
    print(f"test accuracy: {accuracy:.2%} on {len(x_test)} images")
    print(f"saved {len(model.variables)} weight arrays to {path}")
    return accuracy


if __name__ == "__main__":
    if main() < 0.97:
        raise SystemExit("the network did not reach 97% test accuracy")
