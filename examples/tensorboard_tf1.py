"""A TF1-style classifier of 8x8 digits that writes TensorBoard logs.

    python examples/tensorboard_tf1.py /tmp/tracejit-logs
    tracejit board /tmp/tracejit-logs

Loss and accuracy (scalars), the weights (histograms), a few input digits (images), a
note (text) and the graph, written by tf.summary.FileWriter. The digits are
scikit-learn's; without it, random data stands in (the curves are then noise).
"""

import sys

import numpy as np

import tracejit.compat.v1 as tf


def digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        return rng.random((1797, 64)).astype(np.float32), rng.integers(0, 10, 1797)
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target


def main(logdir: str, steps: int = 300) -> float:
    images, labels = digits()
    x = tf.placeholder(tf.float32, [None, 64], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    with tf.name_scope("hidden"):
        w1 = tf.Variable(tf.truncated_normal([64, 32], stddev=0.1), name="weights")
        b1 = tf.Variable(tf.zeros([32]), name="biases")
        hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
        # NOTE: not "weights": that name is taken (the variable), so TensorFlow (and
        # tracejit) would tag it "hidden/weights_1"
        tf.summary.histogram("weights_histogram", w1)
    with tf.name_scope("softmax"):
        w2 = tf.Variable(tf.truncated_normal([32, 10], stddev=0.1), name="weights")
        b2 = tf.Variable(tf.zeros([10]), name="biases")
        logits = tf.matmul(hidden, w2) + b2
        tf.summary.histogram("weights_histogram", w2)
    with tf.name_scope("metrics"):
        cross_entropy = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
        tf.summary.scalar("cross_entropy", cross_entropy)
        tf.summary.scalar("accuracy", accuracy)
    tf.summary.image("digits", tf.reshape(x, [-1, 8, 8, 1]), max_outputs=3)
    train = tf.train.AdamOptimizer(0.01).minimize(cross_entropy)
    merged = tf.summary.merge_all()
    note = tf.summary.text("about", tf.constant("A 64-32-10 network on **8x8 digits**, "
                                                "trained with Adam (lr 0.01)."))
    rng = np.random.default_rng(1)
    with tf.Session() as sess, tf.summary.FileWriter(logdir, sess.graph) as writer:
        sess.run(tf.global_variables_initializer())
        writer.add_summary(sess.run(note), 0)
        for step in range(steps):
            batch = rng.integers(0, len(images), 64)
            feed = {x: images[batch], y: labels[batch]}
            if step % 10 == 0:
                summary, _ = sess.run([merged, train], feed)
                writer.add_summary(summary, step)
            else:
                sess.run(train, feed)
        final = sess.run(accuracy, {x: images, y: labels})
    print(f"accuracy on all digits after {steps} steps: {final:.3f}; logs in {logdir}")
    return float(final)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tracejit-logs")
