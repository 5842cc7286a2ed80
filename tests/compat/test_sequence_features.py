"""``tf.FixedLenSequenceFeature`` in ``parse_single_example`` / ``parse_example``: items of
a fixed shape, as many as the example has (a batch padded to the longest). Every value
and error below was recorded from TensorFlow 2.21's tf.compat.v1 on the same examples."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf


def _example(**features):
    made = {}
    for key, values in features.items():
        if isinstance(values[0], float):
            made[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        elif isinstance(values[0], int):
            made[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            made[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=made)).SerializeToString()


A = _example(seq=[1.0, 2.0, 3.0, 4.0], ids=[7, 8, 9], w=[b"x", b"yy"])
B = _example(seq=[5.0, 6.0], ids=[1], w=[b"z"])
C = _example(ids=[3, 3])
FEATURES = {"seq": tf.FixedLenSequenceFeature([2], tf.float32, allow_missing=True),
            "ids": tf.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
            "w": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)}


def test_one_example():
    with tf.Graph().as_default():
        parsed = tf.parse_single_example(A, FEATURES)
        assert {k: v.shape.as_list() for k, v in parsed.items()} == \
            {"ids": [None], "seq": [None, 2], "w": [None]}
        missing = tf.parse_single_example(C, {"seq": FEATURES["seq"]})["seq"]
        with tf.Session() as sess:
            got = sess.run(parsed)
            assert got["seq"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
            assert got["seq"].dtype == np.float32
            assert got["ids"].tolist() == [7, 8, 9] and got["ids"].dtype == np.int64
            assert got["w"].tolist() == [b"x", b"yy"]
            assert sess.run(missing).shape == (0, 2)


def test_a_batch_pads_to_the_longest():
    features = dict(FEATURES)
    features["ids"] = tf.FixedLenSequenceFeature([], tf.int64, allow_missing=True,
                                                 default_value=-1)
    with tf.Graph().as_default():
        parsed = tf.parse_example([A, B, C], features)
        assert {k: v.shape.as_list() for k, v in parsed.items()} == \
            {"ids": [3, None], "seq": [3, None, 2], "w": [3, None]}
        with tf.Session() as sess:
            got = sess.run(parsed)
    assert got["ids"].tolist() == [[7, 8, 9], [1, -1, -1], [3, 3, -1]]
    assert got["seq"].tolist() == [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [0.0, 0.0]],
                                   [[0.0, 0.0], [0.0, 0.0]]]
    assert got["w"].tolist() == [[b"x", b"yy"], [b"z", b""], [b"", b""]]


def test_tensorflows_errors():
    with pytest.raises(ValueError, match="requires allow_missing to be True"):
        tf.parse_single_example(A, {"seq": tf.FixedLenSequenceFeature([2], tf.float32)})
    with pytest.raises(ValueError, match="one scalar"):
        tf.parse_example([A], {"seq": tf.FixedLenSequenceFeature(
            [2], tf.float32, allow_missing=True, default_value=[1.0, 2.0])})
    with tf.Graph().as_default():
        uneven = tf.parse_single_example(A, {"ids": tf.FixedLenSequenceFeature(
            [2], tf.int64, allow_missing=True)})
        wrong = tf.parse_single_example(A, {"ids": tf.FixedLenSequenceFeature(
            [], tf.float32, allow_missing=True)})
        with tf.Session() as sess:
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match="should be divisible by 2, found 3 instead"):
                sess.run(uneven)
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match="Data type: int64 but expected type: float"):
                sess.run(wrong)


def test_tfrecords_of_sequences_through_tf_data(tmp_path):
    # the TF1 idiom: parse in a map, then padded_batch (hand-derived expectation)
    path = str(tmp_path / "seqs.tfrecord")
    with tf.python_io.TFRecordWriter(path) as writer:
        for example in (A, B, C):
            writer.write(example)
    with tf.Graph().as_default():
        ds = tf.data.TFRecordDataset(path).map(
            lambda text: tf.parse_single_example(text, {"ids": FEATURES["ids"]})["ids"])
        nxt = tf.data.make_one_shot_iterator(ds.padded_batch(3, [None])).get_next()
        with tf.Session() as sess:
            assert sess.run(nxt).tolist() == [[7, 8, 9], [1, 0, 0], [3, 3, 0]]
