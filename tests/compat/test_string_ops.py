"""String ops and lookup tables: tf.string_split, tf.strings.split, tf.substr,
tf.string_join, tf.strings.length, tf.as_string, tf.strings.to_number,
tf.string_to_hash_bucket_fast, tf.contrib.lookup / tf.lookup tables and
tf.tables_initializer. Every expected value was recorded from TensorFlow 2.21
(tf.compat.v1, eager execution off) on the same programs, the out-of-vocabulary buckets
and fingerprints included (TensorFlow's Fingerprint64)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.compat.v1.fingerprint import fingerprint64

SOURCE = ["hello world", "a  b", "", "x,y;z"]


def run(make, feed=None):
    with tf.Graph().as_default():
        out = make()
        with tf.Session() as sess:
            sess.run(tf.tables_initializer())
            return sess.run(out, feed)


def sparse(value):
    return value.indices.tolist(), value.values.tolist(), value.dense_shape.tolist()


@pytest.mark.parametrize("make,expected", [
    (lambda s: tf.string_split(s),
     ([[0, 0], [0, 1], [1, 0], [1, 1], [3, 0]], [b"hello", b"world", b"a", b"b", b"x,y;z"],
      [4, 2])),
    (lambda s: tf.string_split(s, delimiter=",;"),        # every character splits
     ([[0, 0], [1, 0], [3, 0], [3, 1], [3, 2]], [b"hello world", b"a  b", b"x", b"y", b"z"],
      [4, 3])),
    (lambda s: tf.string_split(s, skip_empty=False),
     ([[0, 0], [0, 1], [1, 0], [1, 1], [1, 2], [3, 0]],
      [b"hello", b"world", b"a", b"", b"b", b"x,y;z"], [4, 3])),
    (lambda s: tf.string_split(tf.constant(["ab c"]), delimiter=""),
     ([[0, 0], [0, 1], [0, 2], [0, 3]], [b"a", b"b", b" ", b"c"], [1, 4])),
    (lambda s: tf.strings.split(s),
     ([[0, 0], [0, 1], [1, 0], [1, 1], [3, 0]], [b"hello", b"world", b"a", b"b", b"x,y;z"],
      [4, 2])),
    (lambda s: tf.strings.split(s, sep=" "),
     ([[0, 0], [0, 1], [1, 0], [1, 1], [1, 2], [2, 0], [3, 0]],
      [b"hello", b"world", b"a", b"", b"b", b"", b"x,y;z"], [4, 3])),
    (lambda s: tf.strings.split(tf.constant(["a,b,,c"]), sep=","),
     ([[0, 0], [0, 1], [0, 2], [0, 3]], [b"a", b"b", b"", b"c"], [1, 4])),
    (lambda s: tf.strings.split(tf.constant(["a b c d"]), maxsplit=2),
     ([[0, 0], [0, 1], [0, 2]], [b"a", b"b", b"c d"], [1, 3])),
])
def test_splits(make, expected):
    assert sparse(run(lambda: make(tf.constant(SOURCE)))) == expected


@pytest.mark.parametrize("make,expected", [
    (lambda: tf.substr(tf.constant(["hello", "ab"]), 1, 3), [b"ell", b"b"]),
    (lambda: tf.strings.substr(tf.constant(["hello", "world"]), [0, 2], [2, 10]),
     [b"he", b"rld"]),
    (lambda: tf.substr(tf.constant("hello"), -3, 2), b"ll"),
    (lambda: tf.string_join([tf.constant(["a", "b"]), tf.constant(["x", "y"])],
                            separator="-"), [b"a-x", b"b-y"]),
    (lambda: tf.strings.join([tf.constant(["a", "b"]), "z"]), [b"az", b"bz"]),
    (lambda: tf.strings.length(tf.constant(["", "ab", "h\u00e9llo"])), [0, 2, 6]),
    (lambda: tf.strings.length(tf.constant(["h\u00e9llo"]), unit="UTF8_CHAR"), [5]),
    (lambda: tf.as_string(tf.constant([1.5, 2.0, -0.125, 1e10, 1e-7])),
     [b"1.500000", b"2.000000", b"-0.125000", b"10000000000.000000", b"0.000000"]),
    (lambda: tf.as_string(tf.constant([3, -7])), [b"3", b"-7"]),
    (lambda: tf.as_string(tf.constant([1.23456789]), precision=3), [b"1.235"]),
    (lambda: tf.as_string(tf.constant([1.5]), scientific=True), [b"1.500000e+00"]),
    (lambda: tf.as_string(tf.constant([42]), width=5, fill="0"), [b"00042"]),
    (lambda: tf.as_string(tf.constant([True, False])), [b"true", b"false"]),
    (lambda: tf.strings.as_string(tf.constant([3.0, 100.0, 0.1]), shortest=True),
     [b"3", b"100", b"0.1"]),
    (lambda: tf.strings.to_number(tf.constant(["1.5", "-2"])), [1.5, -2.0]),
    (lambda: tf.strings.to_number(tf.constant(["7"]), out_type=tf.int64), [7]),
    (lambda: tf.string_to_hash_bucket_fast(tf.constant(["and", "x"]), 5), [2, 0]),
])
def test_elementwise_string_ops(make, expected):
    assert np.asarray(run(make)).tolist() == expected


def test_fingerprint64_is_tensorflows_for_every_length_class():
    lengths = [0, 1, 3, 4, 7, 8, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 300]
    strings = [bytes((i * 37 + 11) % 256 for i in range(n)) for n in lengths]
    # TensorFlow's tf.strings.to_hash_bucket_fast(strings, 2**63 - 1)
    expected = [1936946117179621456, 4787810249829893994, 3979540680440595841,
                5484952793052507498, 1587581522672208246, 9029840561075318013,
                6356347102450775255, 6692022265393568454, 5954998855510709538,
                2320199202392403368, 257079882033485463, 9004466194475038334,
                4226431515964725, 8878297253747756471, 6273009123180563717,
                3742283891066476345, 4830816169928877278, 8075393831970212021]
    assert [fingerprint64(s) % (2**63 - 1) for s in strings] == expected


def test_vocabulary_tables_with_and_without_oov_buckets():
    def make():
        lookup = tf.contrib.lookup
        bands = tf.constant(["emerson", "lake", "palmer"])
        with_oov = lookup.index_table_from_tensor(bands, num_oov_buckets=1)
        plain = lookup.index_table_from_tensor(mapping=bands)
        three = lookup.index_table_from_tensor(tf.constant(["a", "b"]), num_oov_buckets=3,
                                               default_value=-7)
        back = lookup.index_to_string_table_from_tensor(bands)
        back2 = lookup.index_to_string_table_from_tensor(["a", "b"], default_value="??")
        return [with_oov.lookup(tf.constant(["emerson", "lake", "and", "palmer", "x"])),
                plain.lookup(tf.constant([["emerson", "xx"], ["palmer", "lake"]])),
                three.lookup(tf.constant(["a", "q", "r", "s", "t", "b"])),
                back.lookup(tf.constant([1, 5, 0], tf.int64)),
                back2.lookup(tf.constant([1, -1], tf.int64))]
    got = [v.tolist() for v in run(make)]
    assert got == [[0, 1, 3, 2, 3], [[0, -1], [2, 1]], [0, 4, 3, 3, 3, 1],
                   [b"lake", b"UNK", b"emerson"], [b"b", b"??"]]


def test_hash_tables_and_their_initialization():
    with tf.Graph().as_default():
        table = tf.contrib.lookup.HashTable(tf.contrib.lookup.KeyValueTensorInitializer(
            tf.constant(["a", "b"]), tf.constant([5, 6], tf.int64)), -1)
        numbers = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant([1, 2], tf.int64), tf.constant([0.5, 1.5])), -1.0)
        vocab = tf.lookup.StaticVocabularyTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(["a", "b"]), tf.constant([0, 1], tf.int64)), 2)
        found = table.lookup(tf.constant(["b", "c", "a"]))
        assert found.dtype == tf.int64 and found.shape.as_list() == [3]
        assert table.init in tf.get_collection(tf.GraphKeys.TABLE_INITIALIZERS)
        init = tf.tables_initializer()
        with tf.Session() as sess:
            with pytest.raises(tf.errors.FailedPreconditionError, match="Table not "
                                                                        "initialized"):
                sess.run(found)
            sess.run(init)
            assert sess.run(found).tolist() == [6, -1, 5]
            assert sess.run(numbers.lookup(tf.constant([2, 3], tf.int64))).tolist() == \
                [1.5, -1.0]
            assert sess.run(vocab.lookup(tf.constant(["a", "zz", "b", "y"]))).tolist() == \
                [0, 2, 1, 3]
            assert sess.run(table.size()) == 2
        with tf.Session() as other:          # each session has its own contents
            with pytest.raises(tf.errors.FailedPreconditionError):
                other.run(found)


def test_a_text_pipeline_feeds_ids_to_a_trained_embedding():
    """Split fed sentences, look the words up, embed and train: strings on the host, the
    ids and the arithmetic in the compiled step."""
    with tf.Graph().as_default():
        sentences = tf.placeholder(tf.string, [None])
        words = tf.string_split(sentences)
        table = tf.contrib.lookup.index_table_from_tensor(["the", "cat", "sat"],
                                                          num_oov_buckets=1)
        ids = table.lookup(words.values)
        embedding = tf.Variable(np.ones((4, 2), np.float32))
        vectors = tf.gather(embedding, ids)
        loss = tf.reduce_sum(vectors)
        train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
        with tf.Session() as sess:
            sess.run([tf.global_variables_initializer(), tf.tables_initializer()])
            feed = {sentences: ["the cat", "a cat sat"]}
            assert sess.run(ids, feed).tolist() == [0, 1, 3, 1, 2]
            sess.run(train, feed)
            # rows used: the once, cat twice, sat once, the OOV bucket once
            assert sess.run(embedding)[:, 0].tolist() == [0.5, 0.0, 0.5, 0.5]


def test_a_monitored_session_fills_the_tables():
    with tf.Graph().as_default():
        table = tf.contrib.lookup.index_table_from_tensor(["the", "cat"])
        ids = table.lookup(tf.constant(["cat", "dog"]))
        tf.train.get_or_create_global_step()
        with tf.train.MonitoredTrainingSession() as sess:
            assert sess.run(ids).tolist() == [1, -1]


def test_mistakes():
    with tf.Graph().as_default():
        table = tf.contrib.lookup.index_table_from_tensor(["a"])
        with pytest.raises(TypeError, match="Signature mismatch"):
            table.lookup(tf.constant([1.0]))
        with pytest.raises(TypeError, match="takes a tf.string tensor"):
            tf.string_split(tf.constant([1, 2]))
        with pytest.raises(ValueError, match="both scientific and shortest"):
            tf.as_string(tf.constant([1.0]), scientific=True, shortest=True)
        bad = tf.substr(tf.constant(["ab"]), 5, 1)
        with tf.Session() as sess:
            with pytest.raises(tf.errors.InvalidArgumentError, match="pos 5 out of range"):
                sess.run(bad)
