"""The TF1 "layers" MNIST MLP, as TensorFlow 1.x tutorials wrote it, on 8×8 digits.

Only the import differs from a TensorFlow 1.x script: ``tf.layers.dense`` with an L2
``kernel_regularizer``, ``tf.layers.dropout`` switched by a fed ``training`` flag,
``tf.losses.sparse_softmax_cross_entropy`` plus ``tf.losses.get_total_loss()`` (which adds
the regularization losses), Adam, and the test accuracy streamed over batches by
``tf.metrics.accuracy`` (local variables reset by ``tf.local_variables_initializer()``).
The data are scikit-learn's 1797 handwritten digits.

    python examples/mnist_layers_tf1.py [--steps 300] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

import tracejit.compat.v1 as tf
from tracejit.data.datasets import load_digits, train_test_split


def build(hidden=64, l2=1e-4, learning_rate=3e-3):
    x = tf.placeholder(tf.float32, [None, 64], name="x")
    labels = tf.placeholder(tf.int64, [None], name="labels")
    training = tf.placeholder_with_default(False, [], name="training")
    regularizer = tf.contrib.layers.l2_regularizer(l2)
    h = tf.layers.dense(x, hidden, activation=tf.nn.relu, kernel_regularizer=regularizer,
                        name="hidden")
    h = tf.layers.dropout(h, rate=0.2, training=training)
    logits = tf.layers.dense(h, 10, kernel_regularizer=regularizer, name="logits")
    tf.losses.sparse_softmax_cross_entropy(labels, logits)
    loss = tf.losses.get_total_loss()
    train_op = tf.train.AdamOptimizer(learning_rate).minimize(loss)
    predictions = tf.argmax(logits, 1)
    accuracy, update_accuracy = tf.metrics.accuracy(labels, predictions)
    return x, labels, training, loss, train_op, accuracy, update_accuracy


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    images, digits = load_digits()
    x_train, y_train, x_test, y_test = train_test_split(images.reshape(-1, 64), digits, 0.2,
                                                        args.seed)
    rng = np.random.default_rng(args.seed)

    tf.reset_default_graph()
    tf.set_random_seed(args.seed)
    x, labels, training, loss, train_op, accuracy, update_accuracy = build()
    losses = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(args.steps):
            batch = rng.choice(len(x_train), args.batch, replace=False)
            _, value = sess.run([train_op, loss], {x: x_train[batch], labels: y_train[batch],
                                                   training: True})
            losses.append(float(value))
            if step % 100 == 0:
                print(f"step {step}, loss {value:.4f}")
        sess.run(tf.local_variables_initializer())
        for start in range(0, len(x_test), 100):
            sess.run(update_accuracy, {x: x_test[start:start + 100],
                                       labels: y_test[start:start + 100]})
        result = float(sess.run(accuracy))
    print(f"test accuracy {result:.4f}")
    return {"losses": losses, "accuracy": result}


if __name__ == "__main__":
    main()
