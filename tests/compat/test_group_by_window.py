"""``tf.data.experimental.group_by_window`` (and ``Dataset.group_by_window``) in TF1
graphs and on ``tracejit.data``. Every expected value and error was recorded from
TensorFlow 2.21's tf.compat.v1 running the same pipelines (the bucketing one there read
its sequences from ``map(tf.fill)``; here from a generator, same elements)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.data import Dataset


def _drain(dataset):
    nxt = tf.data.make_one_shot_iterator(dataset).get_next()
    out = []
    with tf.Session() as sess:
        while True:
            try:
                out.append(sess.run(nxt))
            except tf.errors.OutOfRangeError:
                return out


def test_fixed_windows_and_the_last_partial_one():
    with tf.Graph().as_default():
        grouped = tf.data.Dataset.range(11).apply(tf.data.experimental.group_by_window(
            key_func=lambda x: x % 3, reduce_func=lambda key, window: window.batch(2),
            window_size=2))
        assert grouped.output_types == tf.int64 and grouped.output_shapes.as_list() == [None]
        got = [b.tolist() for b in _drain(grouped)]
    assert got == [[0, 3], [1, 4], [2, 5], [6, 9], [7, 10], [8]]


def test_window_size_func_and_the_key_in_reduce():
    # the partial windows left at the end come out in key order (1 before 3)
    with tf.Graph().as_default():
        grouped = tf.data.Dataset.range(13).group_by_window(
            key_func=lambda x: x % 4,
            reduce_func=lambda key, window: window.batch(5).map(lambda b: (key, b)),
            window_size_func=lambda key: key + 1)
        got = [(int(k), b.tolist()) for k, b in _drain(grouped)]
    assert got == [(0, [0]), (0, [4]), (1, [1, 5]), (0, [8]), (2, [2, 6, 10]), (0, [12]),
                   (1, [9]), (3, [3, 7, 11])]


def test_bucketing_sequences_by_length():
    with tf.Graph().as_default():
        seqs = tf.data.Dataset.from_generator(
            lambda: (np.full([n], n, np.int64) for n in [1, 5, 2, 6, 3, 7, 1]),
            tf.int64, tf.TensorShape([None]))
        grouped = seqs.apply(tf.data.experimental.group_by_window(
            key_func=lambda s: tf.cast(tf.size(s) > 4, tf.int64),
            reduce_func=lambda key, window: window.padded_batch(2, [None]), window_size=2))
        got = [b.tolist() for b in _drain(grouped)]
    assert got == [[[1, 0], [2, 2]], [[5, 5, 5, 5, 5, 0], [6, 6, 6, 6, 6, 6]],
                   [[3, 3, 3], [1, 0, 0]], [[7, 7, 7, 7, 7, 7, 7]]]


def test_tensorflows_errors():
    with tf.Graph().as_default():
        ds = tf.data.Dataset.range(11)
        with pytest.raises(ValueError, match="Either the `window_size` argument or the"):
            ds.apply(tf.data.experimental.group_by_window(
                lambda x: x, lambda k, w: w, window_size=2, window_size_func=lambda k: k))
        with pytest.raises(ValueError, match="must return one tf.int64 scalar"):
            ds.apply(tf.data.experimental.group_by_window(
                lambda x: tf.cast(x, tf.int32), lambda k, w: w, window_size=2))
        zero = ds.apply(tf.data.experimental.group_by_window(
            lambda x: x, lambda k, w: w, window_size_func=lambda k: k - k))
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="Window size must be greater than zero, but got 0"):
            _drain(zero)


def test_on_tracejit_data():
    grouped = Dataset.range(13).group_by_window(
        lambda x: x % 4, lambda key, window: window.batch(5), window_size_func=lambda k: k + 1)
    assert [b.tolist() for b in grouped] == [[0], [4], [1, 5], [8], [2, 6, 10], [12], [9],
                                            [3, 7, 11]]
    assert grouped.element_spec.shape == (None,)
    with pytest.raises(TypeError, match="int64 scalar"):
        list(Dataset.range(3).group_by_window(lambda x: np.float32(x), lambda k, w: w,
                                              window_size=2))


LENGTHS = [1, 5, 2, 6, 3, 7, 1, 9, 4, 2]


def _sequences():
    return tf.data.Dataset.from_generator(
        lambda: (np.full([n], n, np.int64) for n in LENGTHS), tf.int64, tf.TensorShape([None]))


def _bucketed(**options):
    with tf.Graph().as_default():
        if callable(options.get("padding_values")):     # a graph tensor, made in the graph
            options["padding_values"] = options["padding_values"]()
        ds = _sequences().apply(tf.data.experimental.bucket_by_sequence_length(
            lambda x: tf.shape(x)[0], options.pop("boundaries", [3, 6]), [2, 2, 3],
            **options))
        assert ds.output_shapes.as_list() == [None, None]
        return [b.tolist() for b in _drain(ds)]


def test_bucket_by_sequence_length():
    # TensorFlow 2.21, same elements
    assert _bucketed() == [
        [[1, 0], [2, 2]], [[5, 5, 5, 5, 5], [3, 3, 3, 0, 0]],
        [[6, 6, 6, 6, 6, 6, 0, 0, 0], [7, 7, 7, 7, 7, 7, 7, 0, 0], [9] * 9],
        [[1, 0], [2, 2]], [[4, 4, 4, 4]]]
    assert _bucketed(drop_remainder=True) == [
        [[1, 0], [2, 2]], [[5, 5, 5, 5, 5], [3, 3, 3, 0, 0]],
        [[6, 6, 6, 6, 6, 6, 0, 0, 0], [7, 7, 7, 7, 7, 7, 7, 0, 0], [9] * 9],
        [[1, 0], [2, 2]]]
    assert _bucketed(boundaries=[3, 10], pad_to_bucket_boundary=True,
                     padding_values=lambda: tf.constant(-1, tf.int64)) == [
        [[1, -1], [2, 2]], [[5, 5, 5, 5, 5, -1, -1, -1, -1], [6, 6, 6, 6, 6, 6, -1, -1, -1]],
        [[3, 3, 3, -1, -1, -1, -1, -1, -1], [7, 7, 7, 7, 7, 7, 7, -1, -1]],
        [[9] * 9, [4, 4, 4, 4, -1, -1, -1, -1, -1]], [[1, -1], [2, 2]]]
    with pytest.raises(tf.errors.InvalidArgumentError, match="length < max"):
        _bucketed(pad_to_bucket_boundary=True)       # 7 and 9 reach the last bucket
    with pytest.raises(ValueError, match="len\\(bucket_boundaries\\) \\+ 1"):
        tf.data.experimental.bucket_by_sequence_length(lambda x: 1, [3, 6], [2, 2])(
            tf.data.Dataset.range(3))


def test_the_fused_transformations_give_what_they_fuse():
    # TensorFlow 2.21: map_and_batch, parallel_interleave and unbatch as below;
    # shuffle_and_repeat as shuffle().repeat() with the same seed (TF's own order
    # differs from ours: another generator)
    with tf.Graph().as_default():
        ds = tf.data.Dataset.range(10)
        fused = _drain(ds.apply(tf.data.experimental.shuffle_and_repeat(4, count=2, seed=1)))
        plain = _drain(ds.shuffle(4, seed=1).repeat(2))
        assert [int(v) for v in fused] == [int(v) for v in plain]
        assert sorted(int(v) for v in fused[:10]) == list(range(10))
        assert [b.tolist() for b in _drain(ds.apply(
            tf.data.experimental.map_and_batch(lambda x: x * 2, 3)))] == \
            [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]
        assert [int(v) for v in _drain(tf.data.Dataset.range(3).apply(
            tf.data.experimental.parallel_interleave(
                lambda x: tf.data.Dataset.range(x * 10, x * 10 + 3), cycle_length=2)))] == \
            [0, 10, 1, 11, 2, 12, 20, 21, 22]
        assert [int(v) for v in _drain(tf.data.Dataset.range(6).batch(4).apply(
            tf.data.experimental.unbatch()))] == [0, 1, 2, 3, 4, 5]
