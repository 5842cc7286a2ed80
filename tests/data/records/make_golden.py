"""Regenerates the TensorFlow-written files here (run with a real TensorFlow, not in
the tests): golden{,gzip,zlib}.tfrecord hold three serialized tf.train.Examples, an
empty record and b"plain bytes record", written by tf.io.TFRecordWriter.

The reference values the tests compare with (tests/io/test_example.py,
tests/compat/test_readers.py, tests/compat/test_parsers.py) were printed by running the
same small programs with tf.compat.v1 and eager execution disabled (TensorFlow 2.21)."""

import sys

import tensorflow as tf


def example(i: int) -> bytes:
    train = tf.train
    return train.Example(features=train.Features(feature={
        "x": train.Feature(float_list=train.FloatList(value=[i * 0.5, -i])),
        "label": train.Feature(int64_list=train.Int64List(value=[i])),
        "name": train.Feature(bytes_list=train.BytesList(value=[b"item%d" % i]))})) \
        .SerializeToString()


def main(directory: str) -> None:
    for compression in ("", "GZIP", "ZLIB"):
        options = tf.io.TFRecordOptions(compression_type=compression)
        path = f"{directory}/golden{compression.lower()}.tfrecord"
        with tf.io.TFRecordWriter(path, options) as writer:
            for i in range(3):
                writer.write(example(i))
            writer.write(b"")
            writer.write(b"plain bytes record")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
