"""Feedable iterators (``string_handle`` / ``Iterator.from_string_handle``), the TF1
guide's way to switch one ``next_element`` between training and validation data. The
values and errors were recorded from TensorFlow 2.21's tf.compat.v1 (graph mode) running
this same program."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf


def _program():
    train = tf.data.Dataset.range(5).repeat()
    val = tf.data.Dataset.range(100, 103)
    handle = tf.placeholder(tf.string, shape=[])
    feedable = tf.data.Iterator.from_string_handle(
        handle, tf.data.get_output_types(train), tf.data.get_output_shapes(train))
    return (handle, feedable, feedable.get_next(), tf.data.make_one_shot_iterator(train),
            tf.data.make_initializable_iterator(val))


def test_one_next_element_switches_between_iterators_and_shares_their_position():
    with tf.Graph().as_default():
        handle, feedable, next_element, train_it, val_it = _program()
        assert feedable.output_types == tf.int64 and next_element.shape.as_list() == []
        with tf.Session() as sess:
            train_h = sess.run(train_it.string_handle())
            val_h = sess.run(val_it.string_handle())
            assert isinstance(train_h, bytes) and train_h != val_h
            assert train_h == sess.run(train_it.string_handle())
            got = [sess.run(next_element, {handle: train_h}) for _ in range(3)]
            sess.run(val_it.initializer)
            got += [sess.run(next_element, {handle: val_h}) for _ in range(3)]
            got += [sess.run(next_element, {handle: train_h}) for _ in range(3)]
            # TensorFlow 2.21: [0, 1, 2, 100, 101, 102, 3, 4, 0]
            assert [int(v) for v in got] == [0, 1, 2, 100, 101, 102, 3, 4, 0]
            with pytest.raises(tf.errors.OutOfRangeError):
                sess.run(next_element, {handle: val_h})
            # the training iterator's own get_next moves the same position (TF: 1, 2, 3)
            assert int(sess.run(next_element, {handle: train_h})) == 1
            assert int(sess.run(train_it.get_next())) == 2
            assert int(sess.run(next_element, {handle: train_h})) == 3


def test_structures_of_several_components():
    with tf.Graph().as_default():
        pair = tf.data.Dataset.from_tensor_slices((np.arange(3), np.arange(3.0)))
        handle = tf.placeholder(tf.string, [])
        feedable = tf.data.Iterator.from_string_handle(
            handle, tf.data.get_output_types(pair), tf.data.get_output_shapes(pair))
        a, b = feedable.get_next()
        it = tf.data.make_one_shot_iterator(pair)
        with tf.Session() as sess:
            h = sess.run(it.string_handle())
            assert [sess.run([a, b], {handle: h}) for _ in range(2)] == [[0, 0.0], [1, 1.0]]


def test_wrong_handles_are_tensorflows_errors():
    with tf.Graph().as_default():
        handle, _, next_element, train_it, val_it = _program()
        floats = tf.data.make_one_shot_iterator(tf.data.Dataset.from_tensors(np.float32(1)))
        with tf.Session() as sess:
            train_h = sess.run(train_it.string_handle())
            with pytest.raises(tf.errors.InvalidArgumentError, match="parse string handle"):
                sess.run(next_element, {handle: b"nonsense"})
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match="Data type mismatch at component 0"):
                sess.run(next_element, {handle: sess.run(floats.string_handle())})
            with pytest.raises(tf.errors.InvalidArgumentError, match="must feed a value"):
                sess.run(next_element)
            with pytest.raises(tf.errors.FailedPreconditionError, match="not been initialized"):
                sess.run(next_element, {handle: sess.run(val_it.string_handle())})
            # the failures lost nothing: the training iterator starts at 0
            assert int(sess.run(next_element, {handle: train_h})) == 0
        with tf.Session() as other:
            with pytest.raises(tf.errors.NotFoundError, match="does not exist"):
                other.run(next_element, {handle: train_h})
