"""Readers' serialize_state / restore_state (compat/v1/reader_state.py): TensorFlow's
ReaderBaseState bytes. The states and counters below were recorded from TensorFlow
2.21's tf.compat.v1 running the same program on the same file names."""

from __future__ import annotations

import pytest

import tracejit.compat.v1 as tf
from tracejit.io.wire import varint


def _program(names):
    queue = tf.FIFOQueue(10, tf.string)
    reader = tf.WholeFileReader()
    key, value = reader.read(queue)
    fed = tf.placeholder(tf.string, [])
    return (queue.enqueue_many([names]), reader, (key, value), reader.serialize_state(),
            fed, reader.restore_state(fed),
            [reader.num_records_produced(), reader.num_work_units_completed()])


def test_a_state_saved_and_restored_in_another_session(tmp_path):
    names = []
    for i in range(3):
        path = str(tmp_path / f"part{i}.txt")
        with open(path, "w") as f:
            f.write(f"file{i}")
        names.append(path)
    with tf.Graph().as_default():
        enqueue, reader, read, save, fed, restore, counts = _program(names)
        assert reader.supports_serialize
        with tf.Session() as sess:
            sess.run(enqueue)
            assert list(sess.run(read)) == [names[0].encode(), b"file0"]
            sess.run(read)
            state = sess.run(save)
            assert [int(c) for c in sess.run(counts)] == [2, 2]
        # TensorFlow 2.21's bytes for the same state (there, with the name /tmp/ser1.txt:
        # b'\x08\x02\x10\x02\x18\x02"\r/tmp/ser1.txt')
        current = names[1].encode()
        assert state == b'\x08\x02\x10\x02\x18\x02"' + varint(len(current)) + current
        with tf.Session() as sess:
            sess.run(enqueue)
            sess.run(restore, {fed: state})
            assert [int(c) for c in sess.run(counts)] == [2, 2]
            # the queue keeps its own place: the next read takes its first name
            assert sess.run(read)[1] == b"file0"
            assert [int(c) for c in sess.run(counts)] == [3, 3]
            with pytest.raises(tf.errors.InvalidArgumentError, match="Could not parse state"):
                sess.run(restore, {fed: b"garbage\xff"})
            with pytest.raises(tf.errors.InvalidArgumentError, match="Inconsistent work"):
                sess.run(restore, {fed: b"\x08\x7f"})
            # the failed restores changed nothing
            assert [int(c) for c in sess.run(counts)] == [3, 3]


def test_readers_that_cannot_serialize_say_so():
    with tf.Graph().as_default():
        reader = tf.TextLineReader()
        assert not reader.supports_serialize
        with pytest.raises(tf.errors.UnimplementedError):
            reader.serialize_state()
