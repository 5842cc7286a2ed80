"""The 2016 "deep MNIST" convolutional network, as TF1 tutorials wrote it, on 8×8 digits.

Only the import differs from a TensorFlow 1.x script: placeholders with an unknown
batch size, weights from ``truncated_normal``, ``conv2d``/``max_pool`` with ``SAME``
padding, an input reshape sized by ``tf.shape(x)[0]``, ``tf.nn.dropout`` with a fed
``keep_prob``, the cross-entropy written by hand with ``reduction_indices``, Adam, and an
``InteractiveSession`` driving ``train_step.run`` and ``accuracy.eval``. The data are
scikit-learn's 1797 handwritten digits (8×8, so two 2×2 poolings leave 2×2 maps).

    python examples/deep_mnist_tf1.py [--steps 600] [--seed 0] [--device /gpu:0]

``--device`` pins the layers (conv, pool, dense, softmax) with ``tf.device``, as TF1
tutorials did; the variables and the input stay on the CPU. The session allows soft
placement, so ``--device /gpu:0`` also runs where there is no GPU (on the CPU). With
TRACEJIT_GPU=sim the GPU is numba's CUDA simulator: only ``--tiny`` is quick there.
"""

from __future__ import annotations

import argparse

import numpy as np

import tracejit.compat.v1 as tf
from tracejit.data.datasets import load_digits, train_test_split


def weight_variable(shape):
    # NOTE: variables on the CPU, whatever the layers' device: TF1 tutorials kept the
    # parameters with the input pipeline and pinned only the compute
    with tf.device("/cpu:0"):
        return tf.Variable(tf.truncated_normal(shape, stddev=0.1))


def bias_variable(shape):
    with tf.device("/cpu:0"):
        return tf.Variable(tf.constant(0.1, shape=shape))


def conv2d(x, w):
    return tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="SAME")


def max_pool_2x2(x):
    return tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


def build(device="/cpu:0", widths=(32, 64, 256)):
    """The graph: (x, y_, keep_prob, train_step, accuracy), its layers on ``device``."""
    x = tf.placeholder(tf.float32, shape=[None, 64])
    y_ = tf.placeholder(tf.float32, shape=[None, 10])
    keep_prob = tf.placeholder(tf.float32)
    with tf.device(device):
        return (x, y_, keep_prob) + _layers(x, y_, keep_prob, widths)


def _layers(x, y_, keep_prob, widths):
    c1, c2, fc = widths

    x_image = tf.reshape(x, [tf.shape(x)[0], 8, 8, 1])
    w_conv1, b_conv1 = weight_variable([3, 3, 1, c1]), bias_variable([c1])
    h_pool1 = max_pool_2x2(tf.nn.relu(conv2d(x_image, w_conv1) + b_conv1))
    w_conv2, b_conv2 = weight_variable([3, 3, c1, c2]), bias_variable([c2])
    h_pool2 = max_pool_2x2(tf.nn.relu(conv2d(h_pool1, w_conv2) + b_conv2))

    w_fc1, b_fc1 = weight_variable([2 * 2 * c2, fc]), bias_variable([fc])
    h_flat = tf.reshape(h_pool2, [-1, 2 * 2 * c2])
    h_fc1 = tf.nn.relu(tf.matmul(h_flat, w_fc1) + b_fc1)
    h_fc1_drop = tf.nn.dropout(h_fc1, keep_prob)

    w_fc2, b_fc2 = weight_variable([fc, 10]), bias_variable([10])
    y_conv = tf.nn.softmax(tf.matmul(h_fc1_drop, w_fc2) + b_fc2)

    cross_entropy = tf.reduce_mean(
        -tf.reduce_sum(y_ * tf.log(tf.clip_by_value(y_conv, 1e-10, 1.0)),
                       reduction_indices=[1]))
    train_step = tf.train.AdamOptimizer(1e-3).minimize(cross_entropy)
    correct = tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    return train_step, accuracy


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="/cpu:0",
                        help="where the layers run (tf.device), e.g. /gpu:0")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke run for numba's CUDA simulator: narrow layers "
                             "(conv 4, conv 8, dense 16), 3 steps of batch 4, 8 test images")
    args = parser.parse_args(argv)
    widths = (32, 64, 256)
    if args.tiny:
        widths, args.steps, args.batch = (4, 8, 16), 3, 4

    images, labels = load_digits()
    x_train, y_train, x_test, y_test = train_test_split(images.reshape(-1, 64), labels, 0.2,
                                                        args.seed)
    one_hot = np.eye(10, dtype=np.float32)
    rng = np.random.default_rng(args.seed)

    tf.reset_default_graph()
    tf.set_random_seed(args.seed)
    x, y_, keep_prob, train_step, accuracy = build(args.device, widths)
    sess = tf.InteractiveSession(config=tf.ConfigProto(allow_soft_placement=True))
    sess.run(tf.global_variables_initializer())
    for step in range(args.steps):
        batch = rng.choice(len(x_train), args.batch, replace=False)
        feed = {x: x_train[batch], y_: one_hot[y_train[batch]], keep_prob: 0.5}
        if step % 100 == 0:
            seen = accuracy.eval(feed_dict={**feed, keep_prob: 1.0})
            print(f"step {step}, training accuracy {seen:.2f}")
        train_step.run(feed_dict=feed)
    if args.tiny:
        x_test, y_test = x_test[:8], y_test[:8]
    result = float(accuracy.eval(feed_dict={x: x_test, y_: one_hot[y_test], keep_prob: 1.0}))
    print(f"test accuracy {result:.4f}")
    sess.close()
    return result


if __name__ == "__main__":
    main()
