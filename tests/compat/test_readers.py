"""TF1 readers over a queue of file names (a stand-in with ``dequeue_host``, and once
tf.train's own producer), with the keys, values and batching TensorFlow 2.21 gave for the
same files (tf.compat.v1, eager execution off; recorded below), the parsers fed from
them, and bad input: the error names the file and line, and the session goes on."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.io.records import RecordWriter

from ..io.test_records import EXPECTED, GOLDEN, OFFSETS


class Names:
    """A stand-in for a closed queue of file names."""

    def __init__(self, *names):
        self.names = [os.fsencode(str(n)) for n in names]
        self.lock = threading.Lock()

    def dequeue_host(self, session):
        with self.lock:
            if not self.names:
                raise tf.errors.OutOfRangeError("the queue of names is closed and empty")
            return self.names.pop(0)


@pytest.fixture
def csv_files(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(b"h1,h2\n1,2.5\n3,4.5\r\n\n5,6.5")
    b.write_bytes(b"h1,h2\n7,8.5\n")
    return str(a), str(b)


def drain(sess, fetches, limit=20):
    out = []
    for _ in range(limit):
        try:
            out.append(sess.run(fetches))
        except tf.errors.OutOfRangeError:
            return out
    raise AssertionError("the reader did not run out")


def scalars(pairs):
    return [tuple(np.asarray(p).item() for p in pair) for pair in pairs]


def test_text_lines_as_tensorflow_reads_them(csv_files):
    a, b = (f.encode() for f in csv_files)
    with tf.Graph().as_default():
        read = tf.TextLineReader().read(Names(*csv_files))
        with tf.Session() as sess:
            got = scalars(drain(sess, read))
    assert got == [(a + b":1", b"h1,h2"), (a + b":2", b"1,2.5"), (a + b":3", b"3,4.5"),
                   (a + b":4", b""), (a + b":5", b"5,6.5"), (b + b":1", b"h1,h2"),
                   (b + b":2", b"7,8.5")]


def test_skip_header_lines_keeps_line_numbers(csv_files):
    a, b = (f.encode() for f in csv_files)
    with tf.Graph().as_default():
        key, value = tf.TextLineReader(skip_header_lines=1).read(Names(*csv_files))
        with tf.Session() as sess:
            got = scalars(drain(sess, [key, value]))
    assert got == [(a + b":2", b"1,2.5"), (a + b":3", b"3,4.5"), (a + b":4", b""),
                   (a + b":5", b"5,6.5"), (b + b":2", b"7,8.5")]


def test_read_up_to_stops_at_a_files_end(csv_files):
    a, b = (f.encode() for f in csv_files)
    with tf.Graph().as_default():
        reader = tf.TextLineReader(skip_header_lines=1)
        keys, values = reader.read_up_to(Names(*csv_files), 2)
        produced = reader.num_records_produced()
        completed = reader.num_work_units_completed()
        with tf.Session() as sess:
            got = drain(sess, [keys, values])
            assert sess.run([produced, completed]) == [5, 2]
    # TensorFlow: batches of 2, 2, then the 1 left in b.csv
    assert [k.tolist() for k, _ in got] == [[a + b":2", a + b":3"], [a + b":4", a + b":5"],
                                            [b + b":2"]]
    assert [v.tolist() for _, v in got] == [[b"1,2.5", b"3,4.5"], [b"", b"5,6.5"],
                                            [b"7,8.5"]]


def test_fixed_length_records_with_header_footer_and_hop(tmp_path):
    path = tmp_path / "bin"
    path.write_bytes(bytes(range(3 + 4 * 5 + 2)))
    name = str(path).encode()
    with tf.Graph().as_default():
        plain = tf.FixedLengthRecordReader(4, header_bytes=3, footer_bytes=2)
        hop = tf.FixedLengthRecordReader(4, header_bytes=3, footer_bytes=2, hop_bytes=3)
        first = plain.read(Names(path))
        second = hop.read(Names(path))
        with tf.Session() as sess:
            got_plain = scalars(drain(sess, first))
            got_hop = scalars(drain(sess, second))
    assert got_plain == [(name + b":%d" % i, bytes(range(3 + 4 * i, 7 + 4 * i)))
                         for i in range(5)]
    assert got_hop == [(name + b":%d" % i, bytes(range(3 + 3 * i, 7 + 3 * i)))
                       for i in range(6)]


def test_fixed_length_records_decode_raw_feed_the_step(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    path = tmp_path / "floats.bin"
    path.write_bytes(b"HDR" + data.tobytes() + b"F")
    with tf.Graph().as_default():
        reader = tf.FixedLengthRecordReader(12, header_bytes=3, footer_bytes=1)
        _, value = reader.read(Names(path))
        row = tf.decode_raw(value, tf.float32)
        total = tf.reduce_sum(row * 2.0)
        with tf.Session() as sess:
            got = drain(sess, [row, total])
    assert [r.tolist() for r, _ in got] == data.tolist()
    assert [float(t) for _, t in got] == (data * 2).sum(axis=1).tolist()


def test_compressed_fixed_length_records(tmp_path):
    import gzip
    path = tmp_path / "bin.gz"
    path.write_bytes(gzip.compress(bytes(range(8))))
    with tf.Graph().as_default():
        _, value = tf.FixedLengthRecordReader(4, encoding="GZIP").read(Names(path))
        with tf.Session() as sess:
            assert list(drain(sess, value)) == [bytes(range(4)),
                                                              bytes(range(4, 8))]


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_tfrecord_reader_keys_are_offsets(compression):
    path = GOLDEN / f"golden{compression.lower()}.tfrecord"
    name = str(path).encode()
    options = tf.python_io.TFRecordOptions(compression)
    with tf.Graph().as_default():
        read = tf.TFRecordReader(options=options).read(Names(path))
        with tf.Session() as sess:
            got = scalars(drain(sess, read))
    assert [k for k, _ in got] == [name + b":%d" % o for o in OFFSETS]
    assert [v for _, v in got][3:] == EXPECTED[3:]


def test_examples_written_then_read_and_parsed(tmp_path):
    path = str(tmp_path / "train.tfrecord")
    with tf.python_io.TFRecordWriter(path) as writer:
        for i in range(4):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(float_list=tf.train.FloatList(
                    value=[i, i + 0.5, -i])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
            })).SerializeToString())
    with tf.Graph().as_default():
        _, serialized = tf.TFRecordReader().read(Names(path))
        parsed = tf.parse_single_example(serialized, {
            "image": tf.FixedLenFeature([3], tf.float32),
            "label": tf.FixedLenFeature([], tf.int64)})
        scaled = parsed["image"] * 2.0
        with tf.Session() as sess:
            got = drain(sess, [scaled, parsed["label"]])
    assert [s.tolist() for s, _ in got] == [[2.0 * i, 2.0 * i + 1, -2.0 * i]
                                            for i in range(4)]
    assert [int(lab) for _, lab in got] == [0, 1, 0, 1]


def test_whole_file_and_identity_readers(csv_files):
    a, b = csv_files
    with tf.Graph().as_default():
        whole = tf.WholeFileReader().read(Names(a, b))
        same = tf.IdentityReader().read(Names("work-1"))
        with tf.Session() as sess:
            assert scalars(drain(sess, whole)) == [
                (a.encode(), b"h1,h2\n1,2.5\n3,4.5\r\n\n5,6.5"),
                (b.encode(), b"h1,h2\n7,8.5\n")]
            assert scalars(drain(sess, same)) == [(b"work-1", b"work-1")]


def test_place_is_kept_per_session_and_reset(csv_files):
    with tf.Graph().as_default():
        reader = tf.TextLineReader(skip_header_lines=1)
        names = Names(csv_files[0], csv_files[0])
        _, value = reader.read(names)
        reset = reader.reset()
        produced = reader.num_records_produced()
        with tf.Session() as first, tf.Session() as second:
            assert first.run(value) == b"1,2.5"
            assert first.run(value) == b"3,4.5"
            assert second.run(value) == b"1,2.5"   # its own place, the next name
            assert first.run(value) == b""
            assert first.run(produced) == 3 and second.run(produced) == 1
            first.run(reset)
            assert first.run(produced) == 0
            with pytest.raises(tf.errors.OutOfRangeError):
                first.run(value)                          # the names are all taken


def test_reader_shared_by_threads_gives_each_line_once(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(f"{i}\n" for i in range(200)))
    with tf.Graph().as_default():
        _, value = tf.TextLineReader().read(Names(path))
        number = tf.string_to_number(value, tf.int32)
        with tf.Session() as sess:
            seen, lock = [], threading.Lock()

            def work():
                for got in drain(sess, number, limit=500):
                    with lock:
                        seen.append(int(got))
            threads = [threading.Thread(target=work) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert sorted(seen) == list(range(200))


def test_corrupt_record_names_file_and_offset_then_next_file(tmp_path):
    data = bytearray((GOLDEN / "golden.tfrecord").read_bytes())
    data[72 + 20] ^= 1
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(data))
    good = tmp_path / "good.tfrecord"
    with RecordWriter(good) as writer:
        writer.write(b"fine")
    with tf.Graph().as_default():
        key, value = tf.TFRecordReader().read(Names(bad, good))
        with tf.Session() as sess:
            assert sess.run(key) == str(bad).encode() + b":0"
            with pytest.raises(tf.errors.DataLossError) as info:
                sess.run(value)
            assert str(bad) in str(info.value) and "offset 72" in str(info.value)
            assert "checksum" in str(info.value)
            # the damaged file is given up: the next read starts the next file
            assert sess.run([key, value])[1] == b"fine"


def test_missing_file_is_not_found_and_the_queue_goes_on(tmp_path, csv_files):
    with tf.Graph().as_default():
        _, value = tf.TextLineReader().read(Names(tmp_path / "nowhere.csv", csv_files[1]))
        with tf.Session() as sess:
            with pytest.raises(tf.errors.NotFoundError, match="nowhere.csv"):
                sess.run(value)
            assert sess.run(value) == b"h1,h2"


def test_a_queue_without_dequeue_host_is_refused():
    with tf.Graph().as_default(), pytest.raises(TypeError, match="dequeue_host"):
        tf.TextLineReader().read(["a.csv"])


def test_with_tf_trains_own_producer_and_batch(tmp_path):
    path = tmp_path / "clean.csv"
    path.write_text("x,y\n1,2.5\n3,4.5\n5,6.5\n")
    with tf.Graph().as_default():
        queue = tf.train.string_input_producer([str(path)], num_epochs=2, shuffle=False)
        _, line = tf.TextLineReader(skip_header_lines=1).read(queue)
        x, y = tf.decode_csv(line, [[0], [0.0]])
        xs, ys = tf.train.batch([x, y * 2.0], batch_size=2)
        with tf.Session() as sess:
            sess.run(tf.local_variables_initializer())
            coord = tf.train.Coordinator()
            threads = tf.train.start_queue_runners(sess, coord)
            got = drain(sess, [xs, ys])
            coord.request_stop()
            coord.join(threads)
    assert [a.tolist() for a, _ in got] == [[1, 3], [5, 1], [3, 5]]
    assert [b.tolist() for _, b in got] == [[5.0, 9.0], [13.0, 5.0], [9.0, 13.0]]


def test_a_csv_chain_into_batch_moves_records_in_batches(tmp_path, batched_runs):
    # read -> decode_csv -> batch: every op of the runner's chain has a batched form,
    # so a runner moves a file's records per call; the batches are those TensorFlow
    # gave for the same program above (y not doubled here)
    from tracejit.compat.v1 import host_ops
    path = tmp_path / "clean.csv"
    path.write_text("x,y\n1,2.5\n3,4.5\n5,6.5\n")
    with tf.Graph().as_default():
        queue = tf.train.string_input_producer([str(path)], num_epochs=2, shuffle=False)
        _, line = tf.TextLineReader(skip_header_lines=1).read(queue)
        x, y = tf.decode_csv(line, [[0], [0.0]])
        xs, ys = tf.train.batch([x, y], batch_size=2)
        [enqueue] = [op for qr in tf.get_collection(tf.GraphKeys.QUEUE_RUNNERS)
                     if qr.name.startswith("batch") for op in qr.enqueue_ops]
        with tf.Session() as sess:
            sess.run(tf.local_variables_initializer())
            coord = tf.train.Coordinator()
            threads = tf.train.start_queue_runners(sess, coord)
            got = drain(sess, [xs, ys])
            coord.request_stop()
            coord.join(threads)
    assert [a.tolist() for a, _ in got] == [[1, 3], [5, 1], [3, 5]]
    assert [b.tolist() for _, b in got] == [[2.5, 4.5], [6.5, 2.5], [4.5, 6.5]]
    assert host_ops.batch_plan(enqueue) is not None
    assert 2 <= len(batched_runs) <= 3       # a file's records each, then the end


def test_tfrecords_parsed_into_shuffle_batch_move_in_batches(tmp_path, batched_runs):
    # TFRecordReader.read -> parse_single_example (dense features) -> shuffle_batch: the
    # runners' chains are batched; every example arrives once per epoch, its image with
    # its label (hand-derived: image = [i, -i], label = i)
    path = str(tmp_path / "train.tfrecord")
    with tf.python_io.TFRecordWriter(path) as writer:
        for i in range(40):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(float_list=tf.train.FloatList(value=[i, -i])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
            })).SerializeToString())
    with tf.Graph().as_default():
        files = tf.train.string_input_producer([path], num_epochs=2)
        _, serialized = tf.TFRecordReader().read(files)
        parsed = tf.parse_single_example(serialized, {
            "image": tf.FixedLenFeature([2], tf.float32),
            "label": tf.FixedLenFeature([], tf.int64)})
        images, labels = tf.train.shuffle_batch(
            [parsed["image"], parsed["label"]], batch_size=8, capacity=50,
            min_after_dequeue=10, num_threads=2, seed=4, allow_smaller_final_batch=True)
        with tf.Session() as sess:
            sess.run(tf.local_variables_initializer())
            coord = tf.train.Coordinator()
            threads = tf.train.start_queue_runners(sess, coord)
            got = drain(sess, [images, labels], limit=30)
            coord.request_stop()
            coord.join(threads, stop_grace_period_secs=10)
    all_images = np.concatenate([g[0] for g in got])
    all_labels = np.concatenate([g[1] for g in got])
    assert sorted(all_labels.tolist()) == sorted(list(range(40)) * 2)
    np.testing.assert_array_equal(all_images[:, 0], all_labels)
    np.testing.assert_array_equal(all_images[:, 1], -all_labels)
    assert batched_runs
