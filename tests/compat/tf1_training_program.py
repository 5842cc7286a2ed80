"""A TF1 training script of the tutorials' kind -- Saver, FileWriter with merged
summaries, MonitoredTrainingSession with checkpoints and hooks -- run by
test_tf1_training_program.py. The import line is the only difference between its
tracejit and TensorFlow runs (USE_TENSORFLOW=1); RESTORE_ONLY=1 skips training and
restores the latest checkpoint in LOGDIR (``python tf1_training_program.py LOGDIR``)."""
import json
import os
import sys

import numpy as np

if os.environ.get("USE_TENSORFLOW"):
    import tensorflow.compat.v1 as tf
    tf.disable_eager_execution()
else:
    import tracejit.compat.v1 as tf

LOGDIR = sys.argv[1]
rng = np.random.RandomState(0)
X = rng.rand(64, 3).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)

x = tf.placeholder(tf.float32, [None, 3], name="x")
y = tf.placeholder(tf.float32, [None, 1], name="y")
with tf.variable_scope("linear"):
    w = tf.get_variable("w", [3, 1], initializer=tf.zeros_initializer())
    b = tf.get_variable("b", [1], initializer=tf.constant_initializer(0.1))
loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
tf.summary.scalar("loss", loss)
tf.summary.histogram("weights", w)
merged = tf.summary.merge_all()
step = tf.train.get_or_create_global_step()
train = tf.train.GradientDescentOptimizer(0.5).minimize(loss, global_step=step)
saver = tf.train.Saver()

if not os.environ.get("RESTORE_ONLY"):
    writer = tf.summary.FileWriter(os.path.join(LOGDIR, "manual"), tf.get_default_graph())
    hooks = [tf.train.StopAtStepHook(last_step=30)]
    with tf.train.MonitoredTrainingSession(checkpoint_dir=LOGDIR, save_checkpoint_steps=10,
                                           save_summaries_steps=5, hooks=hooks) as sess:
        while not sess.should_stop():
            _, summary, at = sess.run([train, merged, step], {x: X, y: Y})
            if at % 10 == 0:
                writer.add_summary(summary, at)
    writer.close()

with tf.Session() as sess:
    saver.restore(sess, tf.train.latest_checkpoint(LOGDIR))
    print(json.dumps({"w": sess.run(w).ravel().tolist(), "b": sess.run(b).tolist(),
                      "step": int(sess.run(step)),
                      "loss": float(sess.run(loss, {x: X, y: Y}))}))
