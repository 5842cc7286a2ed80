"""tf.train.match_filenames_once, maybe_batch_join / maybe_shuffle_batch_join and the
tf.train.queue_runner module. Expected values recorded from TensorFlow 2.21's
tf.compat.v1 running the first program (and derived by hand: the rows with n > 1)."""

from __future__ import annotations

import tracejit.compat.v1 as tf


def _write(folder, parts):
    for i, rows in enumerate(parts):
        (folder / f"part{i}.csv").write_text(rows)


def _drain(sess, fetches):
    coord = tf.train.Coordinator()
    threads = tf.train.queue_runner.start_queue_runners(sess, coord)
    got = []
    try:
        while True:
            a, b = sess.run(fetches)
            got += list(zip(a.tolist(), b.tolist(), strict=True))
    except tf.errors.OutOfRangeError:
        pass
    finally:
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    return sorted(got)


def test_csv_files_matched_once_and_filtered_into_batches(tmp_path):
    _write(tmp_path, ["1,a\n2,b\n", "3,c\n"])
    with tf.Graph().as_default():
        files = tf.train.match_filenames_once(str(tmp_path / "part*.csv"))
        queue = tf.train.string_input_producer(files, num_epochs=1, shuffle=False)
        _, line = tf.TextLineReader().read(queue)
        n, s = tf.decode_csv(line, [[0], [""]])
        nb, sb = tf.train.maybe_batch_join([[n, s], [n, s]], tf.greater(n, 1), 2,
                                           allow_smaller_final_batch=True)
        with tf.Session() as sess:
            sess.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            first = sess.run(files).tolist()
            assert first == [str(tmp_path / f"part{i}.csv").encode() for i in range(2)]
            (tmp_path / "part2.csv").write_text("9,z\n")      # matched once: not seen
            assert sess.run(files).tolist() == first
            assert _drain(sess, [nb, sb]) == [(2, b"b"), (3, b"c")]
        with tf.Session() as other:                          # a new session matches anew
            assert len(other.run(files)) == 3


def test_maybe_shuffle_batch_join(tmp_path):
    # two enqueue threads over one reader: each row is read once, by either thread, and
    # kept where its number is odd (hand-derived: 1, 3, 5, in any order)
    _write(tmp_path, ["1,a\n2,b\n3,c\n", "4,d\n5,e\n"])
    with tf.Graph().as_default():
        queue = tf.train.string_input_producer(
            [str(tmp_path / "part0.csv"), str(tmp_path / "part1.csv")], num_epochs=1,
            shuffle=False)
        _, line = tf.TextLineReader().read(queue)
        n, s = tf.decode_csv(line, [[0], [""]])
        nb, sb = tf.train.maybe_shuffle_batch_join(
            [[n, s], [n, s]], 2, capacity=10, min_after_dequeue=0,
            keep_input=tf.equal(n % 2, 1), seed=3, allow_smaller_final_batch=True)
        with tf.Session() as sess:
            sess.run(tf.local_variables_initializer())
            assert _drain(sess, [nb, sb]) == [(1, b"a"), (3, b"c"), (5, b"e")]


def test_queue_runner_module_names():
    assert tf.train.queue_runner.QueueRunner is tf.train.QueueRunner
    assert tf.train.queue_runner.add_queue_runner is tf.train.add_queue_runner
