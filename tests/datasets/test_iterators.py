"""The TF1 programs that read tf.data: one-shot and initializable iterators over
from_tensor_slices -> map -> shuffle -> batch -> repeat feeding a training step,
re-initialization with another fed array, switching one iterator between training and
test data, OutOfRange at the end, per-session state, threads that end with the session."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.io.records import RecordWriter


def _drain(sess, element, limit=10_000):
    out = []
    for _ in range(limit):
        try:
            out.append(sess.run(element))
        except tf.errors.OutOfRangeError:
            return out
    raise AssertionError("the iterator did not end")


def _epochs(batches, per_epoch):
    flat = np.concatenate(batches)
    return [flat[i:i + per_epoch] for i in range(0, len(flat), per_epoch)]


X = np.arange(20, dtype=np.float32)
Y = 3.0 * X - 1.0


@pytest.mark.parametrize("kind", ["one_shot", "initializable"])
def test_the_classic_pipeline_feeds_a_training_step(kind):
    with tf.Graph().as_default():
        xs = tf.placeholder(tf.float32, [None]) if kind == "initializable" else X
        dataset = (tf.data.Dataset.from_tensor_slices((xs, Y))
                   .map(lambda x, y: (x / 10.0, y / 10.0))
                   .shuffle(8, seed=3).batch(5).repeat(2))
        iterator = dataset.make_initializable_iterator() if kind == "initializable" else \
            dataset.make_one_shot_iterator()
        x, y = iterator.get_next()
        assert x.shape.as_list() == [None] and y.dtype == tf.float32
        w = tf.Variable(0.0)
        loss = tf.reduce_mean(tf.square(w * x - y))
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
        seen = []
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            if kind == "initializable":
                sess.run(iterator.initializer, {xs: X})
            while True:
                try:
                    batch_x, _, _ = sess.run([x, y, train])
                except tf.errors.OutOfRangeError:
                    break
                seen.append(batch_x)
            with pytest.raises(tf.errors.OutOfRangeError, match="End of sequence"):
                sess.run(x)         # stays at the end
            trained = sess.run(w)
    # every epoch is a permutation of the data; the second is shuffled anew
    first, second = _epochs(seen, len(X))
    np.testing.assert_allclose(np.sort(first), X / 10.0, rtol=1e-6)
    np.testing.assert_allclose(np.sort(second), X / 10.0, rtol=1e-6)
    assert not np.array_equal(first, second)
    # the step saw the shuffled batches: gradient descent on them, by hand
    w_ref = 0.0
    for batch in seen:
        batch = batch.astype(np.float64)
        target = 3.0 * batch - 0.1
        w_ref -= 0.1 * np.mean(2.0 * (w_ref * batch - target) * batch)
    assert trained == pytest.approx(w_ref, rel=1e-4)


def test_initializable_iterator_reinitialized_with_another_array():
    with tf.Graph().as_default():
        data = tf.placeholder(tf.int64, [None, 2])
        scale = tf.placeholder(tf.int64, [])
        iterator = tf.data.Dataset.from_tensor_slices(data) \
            .map(lambda row: row * scale).batch(2).make_initializable_iterator()
        element = iterator.get_next()
        with tf.Session() as sess:
            with pytest.raises(tf.errors.FailedPreconditionError, match="not been initialized"):
                sess.run(element)
            sess.run(iterator.initializer, {data: [[1, 2], [3, 4], [5, 6]], scale: 10})
            first = [b.tolist() for b in _drain(sess, element)]
            sess.run(iterator.initializer, {data: [[7, 8]], scale: -1})
            second = [b.tolist() for b in _drain(sess, element)]
            # re-initialized in the middle: starts over
            sess.run(iterator.initializer, {data: [[1, 1], [2, 2], [3, 3]], scale: 1})
            sess.run(element)
            sess.run(iterator.initializer, {data: [[1, 1], [2, 2], [3, 3]], scale: 1})
            third = [b.tolist() for b in _drain(sess, element)]
    assert first == [[[10, 20], [30, 40]], [[50, 60]]]
    assert second == [[[-7, -8]]]
    assert third == [[[1, 1], [2, 2]], [[3, 3]]]


def test_one_iterator_switches_between_training_and_test_data():
    with tf.Graph().as_default():
        train = tf.data.Dataset.from_tensor_slices(
            (np.arange(6, dtype=np.float32), np.zeros(6, np.int32))).batch(4)
        test = tf.data.Dataset.from_tensor_slices(
            (np.full(3, -1.0, np.float32), np.ones(3, np.int32))).batch(2)
        iterator = tf.data.Iterator.from_structure(train.output_types, train.output_shapes)
        x, label = iterator.get_next()
        total = tf.reduce_sum(x) + tf.cast(tf.reduce_sum(label), tf.float32)
        train_init, test_init = iterator.make_initializer(train), iterator.make_initializer(test)
        with tf.Session() as sess:
            sess.run(train_init)
            assert sess.run(total) == 6.0           # 0+1+2+3
            sess.run(test_init)
            assert _drain(sess, total) == [0.0, 0.0]  # (-1-1)+2, -1+1
            sess.run(train_init)
            assert _drain(sess, total) == [6.0, 9.0]


def test_each_session_has_its_own_iterator_state():
    with tf.Graph().as_default():
        element = tf.data.make_one_shot_iterator(tf.data.Dataset.range(3)).get_next()
        with tf.Session() as a, tf.Session() as b:
            assert a.run(element) == 0
            assert a.run(element) == 1
            assert b.run(element) == 0
            assert _drain(a, element) == [2]
            assert _drain(b, element) == [1, 2]


def test_iterator_properties_and_classes():
    with tf.Graph().as_default():
        dataset = tf.data.Dataset.from_tensor_slices(
            {"a": np.zeros((4, 3), np.float32), "b": np.arange(4)}).batch(2)
        iterator = tf.data.make_initializable_iterator(dataset)
        assert iterator.output_types == {"a": tf.float32, "b": tf.int64}
        assert iterator.output_shapes["a"].as_list() == [None, 3]
        assert iterator.output_classes == {"a": tf.Tensor, "b": tf.Tensor}
        assert tf.data.get_output_types(dataset) == dataset.output_types
        with pytest.raises(ValueError, match="does not have an initializer"):
            _ = dataset.make_one_shot_iterator().initializer


def test_map_and_filter_errors_name_the_function():
    with tf.Graph().as_default():
        dataset = tf.data.Dataset.range(4)
        with pytest.raises(ValueError, match="must return a scalar tf.bool"):
            dataset.filter(lambda v: v * 2)

        def bad(v):
            return object()
        with pytest.raises(TypeError, match="bad returned a object"):
            dataset.map(bad)
        with pytest.raises(TypeError, match="must return a tf.data.Dataset"):
            dataset.interleave(lambda v: v, cycle_length=2)
        iterator = tf.data.Iterator.from_structure((tf.int64, tf.int64))
        with pytest.raises(ValueError, match="same nested structure"):
            iterator.make_initializer(dataset)


def test_generator_values_of_the_wrong_dtype_are_an_invalid_argument():
    with tf.Graph().as_default():
        dataset = tf.data.Dataset.from_generator(lambda: iter([1, "x"]), tf.int32)
        element = dataset.make_one_shot_iterator().get_next()
        with tf.Session() as sess:
            assert sess.run(element) == 1
            with pytest.raises(tf.errors.InvalidArgumentError, match="element 1"):
                sess.run(element)


def test_text_and_record_files_named_by_a_fed_placeholder(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("a,1\nb,2\n")
    records = tmp_path / "r.tfrecord.gz"
    with RecordWriter(records, "GZIP") as writer:
        for payload in (b"\x00one", b"two"):
            writer.write(payload)
    with tf.Graph().as_default():
        names = tf.placeholder(tf.string, [None])
        text = tf.data.TextLineDataset(names).make_initializable_iterator()
        raw = tf.data.TFRecordDataset(names, compression_type="GZIP") \
            .make_initializable_iterator()
        with tf.Session() as sess:
            sess.run(text.initializer, {names: [str(lines), str(lines)]})
            assert _drain(sess, text.get_next()) == [b"a,1", b"b,2"] * 2
            sess.run(raw.initializer, {names: [str(records)]})
            assert _drain(sess, raw.get_next()) == [b"\x00one", b"two"]


def test_seeded_shuffles_repeat_and_reshuffle_each_iteration_false_keeps_one_order():
    def orders(seed_graph, reshuffle):
        with tf.Graph().as_default():
            if seed_graph is not None:
                tf.set_random_seed(seed_graph)
            dataset = tf.data.Dataset.range(30).shuffle(
                10, reshuffle_each_iteration=reshuffle).repeat(3)
            with tf.Session() as sess:
                values = _drain(sess, dataset.make_one_shot_iterator().get_next())
        return [list(map(int, values[i:i + 30])) for i in (0, 30, 60)]

    first = orders(7, None)
    assert first == orders(7, None)              # the graph seed fixes the orders
    assert all(sorted(epoch) == list(range(30)) for epoch in first)
    assert first[0] != first[1] != first[2]
    kept = orders(7, False)
    assert kept[0] == kept[1] == kept[2] and kept[0] != list(range(30))


def test_no_threads_left_by_prefetch_and_parallel_map():
    before = set(threading.enumerate())
    with tf.Graph().as_default():
        data = tf.placeholder(tf.float32, [None])
        dataset = tf.data.Dataset.from_tensor_slices(data) \
            .map(lambda v: v * 2.0, num_parallel_calls=3).batch(4).prefetch(2)
        iterator = dataset.make_initializable_iterator()
        element = iterator.get_next()
        with tf.Session() as sess:
            sess.run(iterator.initializer, {data: np.arange(40, dtype=np.float32)})
            assert sess.run(element).tolist() == [0.0, 2.0, 4.0, 6.0]
            assert len(set(threading.enumerate()) - before) >= 1
            # re-initializing stops the first pipeline's threads
            sess.run(iterator.initializer, {data: np.arange(8, dtype=np.float32)})
            assert [b.tolist() for b in _drain(sess, element)] == \
                [[0.0, 2.0, 4.0, 6.0], [8.0, 10.0, 12.0, 14.0]]
            sess.run(iterator.initializer, {data: np.arange(40, dtype=np.float32)})
            sess.run(element)
        # closing the session (mid-pass) ends them
    deadline = time.monotonic() + 10
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not set(threading.enumerate()) - before     # no thread of ours is left


def test_sizes_may_be_fed_and_a_damaged_record_file_is_data_loss(tmp_path):
    path = tmp_path / "cut.tfrecord"
    with RecordWriter(path) as writer:
        writer.write(b"hello")
        writer.write(b"world")
    path.write_bytes(path.read_bytes()[:-3])
    with tf.Graph().as_default():
        size = tf.placeholder(tf.int64, [])
        iterator = tf.data.Dataset.range(7).batch(size).repeat(size - 2) \
            .make_initializable_iterator()
        element = iterator.get_next()
        record = tf.data.TFRecordDataset(str(path)).make_one_shot_iterator().get_next()
        with tf.Session() as sess:
            sess.run(iterator.initializer, {size: 3})
            assert [b.tolist() for b in _drain(sess, element)] == \
                [[0, 1, 2], [3, 4, 5], [6]] * 1
            sess.run(iterator.initializer, {size: 4})
            assert len(_drain(sess, element)) == 4
            assert sess.run(record) == b"hello"
            with pytest.raises(tf.errors.DataLossError, match="truncated record .* offset 21"):
                sess.run(record)


def test_a_session_dropped_without_close_takes_its_pipeline_threads_along():
    import gc
    before = set(threading.enumerate())
    with tf.Graph().as_default():
        element = tf.data.Dataset.range(10**6).map(lambda v: v + 1, num_parallel_calls=2) \
            .prefetch(4).make_one_shot_iterator().get_next()
        sess = tf.Session()
        assert sess.run(element) == 1
        assert set(threading.enumerate()) - before            # its threads run
        del sess
        gc.collect()
    # NOTE: the threads are told to stop at once but end on their own time (a loaded
    # machine: a moment later); they must be gone within a bounded wait
    deadline = time.monotonic() + 10
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not set(threading.enumerate()) - before     # no thread of ours is left
