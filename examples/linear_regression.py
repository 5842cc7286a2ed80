"""The 2016 slides' linear regression, unchanged but for the import line.

Fits y = W * x + b to y = 0.1 x + 0.3 + noise with 1000 steps of gradient descent,
one `sess.run(train, feed_dict=...)` per batch of 100.
"""

import time

import numpy as np

import tracejit.compat.v1 as tf

x = tf.placeholder(shape=[None], dtype=tf.float32, name='x')
y_label = tf.placeholder(shape=[None], dtype=tf.float32, name='y_label')
W = tf.get_variable(shape=[], name='W')
b = tf.get_variable(shape=[], name='b')
y = W * x + b
loss = tf.reduce_mean(tf.square(y - y_label))
train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)

rng = np.random.default_rng(2016)
x_in = rng.random((1000, 100)).astype(np.float32)
y_in = (0.1 * x_in + 0.3 + rng.normal(0.0, 0.01, (1000, 100))).astype(np.float32)

with tf.Session() as sess:
    sess.run(tf.initialize_all_variables())
    start = time.perf_counter()
    for i in range(1000):
        sess.run(train, feed_dict={x: x_in[i], y_label: y_in[i]})
    seconds = time.perf_counter() - start
    W_value, b_value, final_loss = sess.run([W, b, loss], feed_dict={x: x_in[-1],
                                                                     y_label: y_in[-1]})

print(f"W = {W_value:.4f} (true 0.1), b = {b_value:.4f} (true 0.3), loss = {final_loss:.2e}")
print(f"1000 training steps took {seconds * 1e3:.0f} ms ({seconds / 1000 * 1e6:.0f} µs a step)")
if not (abs(W_value - 0.1) < 0.02 and abs(b_value - 0.3) < 0.02):
    raise SystemExit("linear regression did not recover W ≈ 0.1 and b ≈ 0.3")
