"""Regenerate the golden TensorFlow checkpoint the checkpoint tests read.

Run with a Python that has TensorFlow (2.x, tf.compat.v1 graph mode), from this folder:

    /path/to/tf-python make_golden.py

It writes ``model-42.index`` / ``model-42.data-00000-of-00001`` / ``checkpoint`` and
``expected.npz`` (the values the variables held, keyed by checkpoint name; the slices of
the partitioned variable are joined). The tests need neither TensorFlow nor this script.
"""


import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
tf1.disable_eager_execution()

rng = np.random.default_rng(7)
values = {
    "dense/kernel": rng.standard_normal((3, 4)).astype(np.float32),
    "dense/bias": np.arange(5, dtype=np.float64) / 3,
    "counts": np.array([[1, -2], [3, 2**31 - 1]], np.int32),
    "big_ints": np.array([2**40, -7], np.int64),
    "mask": np.array([True, False, True]),
    "half": np.array([0.5, -1.25, 65504], np.float16),
    "bytes": np.array([1, 200, 255], np.uint8),
    "small_ints": np.array([-128, 0, 127], np.int8),
    "scalar": np.float32(3.5),
    "large": rng.standard_normal((256, 256)).astype(np.float32),
}
with tf.Graph().as_default():
    tf1.set_random_seed(3)
    for name, value in values.items():
        tf1.Variable(value, name=name)
    bf16 = tf1.Variable(tf.constant([1.5, -2.0, 3.0e38], tf.bfloat16), name="brain")
    step = tf1.train.get_or_create_global_step()
    # 200 rows in 3 shards (67, 67, 66): slice starts past 63 take two bytes in the keys
    part = tf1.get_variable("part", shape=[200, 3], initializer=tf1.random_uniform_initializer(),
                            partitioner=tf1.fixed_size_partitioner(3))
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        sess.run(step.assign(42))
        tf1.train.Saver().save(sess, "model", global_step=42,
                               write_meta_graph=False)
        values["brain"] = sess.run(tf.cast(bf16, tf.float32))
        values["global_step"] = np.int64(42)
        values["part"] = sess.run(tf.concat(list(part), 0))
np.savez("expected.npz", **values)
