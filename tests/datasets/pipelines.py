"""TF1 input pipelines written once against a ``tf`` module: TensorFlow's
``tf.compat.v1`` (make_tf_reference.py records what they give) or
``tracejit.compat.v1`` (the tests compare). Each builder returns a dataset; ``drain``
reads it to the end with a one-shot iterator as a TF1 program does. Deterministic
pipelines only (no shuffle): their values and order must be TensorFlow's."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

TEXT = b"first line\nsecond\r\n\nlast, no newline"
TEXT_2 = b"x 1\ny 2\n"


def write_files(folder: Path) -> dict[str, str]:
    """The text files the pipelines read."""
    paths = {"a": folder / "a.txt", "b": folder / "b.txt", "gz": folder / "c.txt.gz"}
    paths["a"].write_bytes(TEXT)
    paths["b"].write_bytes(TEXT_2)
    with gzip.open(paths["gz"], "wb") as f:
        f.write(TEXT_2)
    return {k: str(v) for k, v in paths.items()}


def write_records(tf, folder: Path) -> dict[str, str]:
    """A TFRecord file of tf.train.Examples and a CSV file, written through ``tf``'s own
    API (tf.python_io, tf.train.Example)."""
    records, csv = folder / "examples.tfrecord", folder / "rows.csv"
    with tf.python_io.TFRecordWriter(str(records)) as writer:
        for i in range(5):
            feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=[i, i / 4])),
                       "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2]))}
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    csv.write_text("1,2.5,a\n3,4.5,b\n5,,c\n")
    return {"records": str(records), "csv": str(csv)}


def _parse(tf):
    def parse(serialized):
        found = tf.parse_single_example(serialized, {
            "x": tf.FixedLenFeature([2], tf.float32), "y": tf.FixedLenFeature([], tf.int64)})
        return found["x"] * 2.0, found["y"]
    return parse


def _features():
    return np.arange(12, dtype=np.float32).reshape(6, 2), np.arange(6, dtype=np.int64)


def _ragged():
    for i in range(5):
        yield [i + 1] * (i % 3 + 1)


def builders(tf, files: dict[str, str]) -> dict:
    """name -> () -> dataset."""
    x, y = _features()
    data = tf.data.Dataset
    return {
        "slices_map_batch_repeat": lambda: data.from_tensor_slices((x, y))
            .map(lambda a, b: (a * 2.0 + 1.0, b * b)).batch(4).repeat(2),
        "dict_elements": lambda: data.from_tensor_slices({"x": x, "y": y})
            .map(lambda d: {"sum": tf.reduce_sum(d["x"]), "y": d["y"]}).batch(2),
        "python_lists": lambda: data.from_tensor_slices(([1.5, 2.5, 3.5], [1, 2, 3])),
        "from_tensors": lambda: data.from_tensors((x, 3)).repeat(2),
        "range_args": lambda: data.range(3, 17, 4),
        "batch_drop_remainder": lambda: data.range(10).batch(4, drop_remainder=True),
        "filter": lambda: data.range(20).filter(lambda v: tf.equal(v % 3, 1)),
        "take_skip": lambda: data.range(10).skip(3).take(4),
        "shard": lambda: data.range(10).shard(3, 1),
        "zip_concat": lambda: data.zip((data.range(3), data.range(10, 20)))
            .concatenate(data.zip((data.range(5, 6), data.range(7, 8)))),
        "unbatch": lambda: data.from_tensor_slices(x.reshape(3, 2, 2)).unbatch(),
        "padded_batch": lambda: data.from_generator(_ragged, tf.int64, tf.TensorShape([None]))
            .padded_batch(2, padded_shapes=[4], padding_values=np.int64(-1)),
        "padded_batch_longest": lambda: data.from_generator(
            _ragged, tf.int64, tf.TensorShape([None])).map(lambda v: (v, tf.size(v)))
            .padded_batch(3, padded_shapes=([None], [])),
        "interleave": lambda: data.range(10).interleave(
            lambda v: data.from_tensors(v).repeat(v % 4 + 1), cycle_length=3,
            block_length=2),
        "interleave_files": lambda: data.from_tensor_slices([files["a"], files["b"]])
            .interleave(lambda f: tf.data.TextLineDataset(f), cycle_length=2),
        "flat_map": lambda: data.range(1, 4).flat_map(
            lambda v: data.range(v).map(lambda w: w * 10 + v)),
        "text_lines": lambda: tf.data.TextLineDataset([files["a"], files["b"]]),
        "text_gzip": lambda: tf.data.TextLineDataset(files["gz"], compression_type="GZIP"),
        "map_parallel_prefetch": lambda: data.range(40)
            .map(lambda v: tf.cast(v, tf.float32) * 0.5, num_parallel_calls=4)
            .batch(8).prefetch(2),
        "repeat_empty": lambda: data.range(0).repeat(),
        "cache_repeat": lambda: data.range(4).map(lambda v: v + 1).cache().repeat(3),
        "tfrecord_parse_batch": lambda: tf.data.TFRecordDataset(files["records"])
            .map(_parse(tf)).batch(2),
        "tfrecord_batch_parse": lambda: tf.data.TFRecordDataset([files["records"]])
            .batch(3).map(lambda s: tf.parse_example(
                s, {"x": tf.FixedLenFeature([2], tf.float32)})),
        "csv_lines": lambda: tf.data.TextLineDataset(files["csv"])
            .map(lambda line: tf.decode_csv(line, [[0], [-1.0], [""]])).batch(2),
        "generator_tuple": lambda: data.from_generator(
            lambda: ((i, [i] * 2) for i in range(3)), (tf.int32, tf.float32),
            (tf.TensorShape([]), tf.TensorShape([2]))).batch(2),
    }


def drain(tf, dataset, limit: int = 1000) -> list:
    """Every element, as a one-shot iterator's get_next gives them, until OutOfRange."""
    element = tf.data.make_one_shot_iterator(dataset).get_next()
    out = []
    with tf.Session() as sess:
        for _ in range(limit):
            try:
                out.append(sess.run(element))
            except tf.errors.OutOfRangeError:
                break
    return out


def encode(value):
    """Elements as JSON: arrays as {dtype, shape, values}; bytes decoded as latin-1."""
    if isinstance(value, dict):
        return {"dict": {k: encode(v) for k, v in sorted(value.items())}}
    if isinstance(value, (tuple, list)):
        return {"tuple": [encode(v) for v in value]}
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind == "S":
        flat = [v.decode("latin-1") for v in array.reshape(-1)]
        return {"dtype": "string", "shape": list(array.shape), "values": flat}
    return {"dtype": array.dtype.name, "shape": list(array.shape),
            "values": array.reshape(-1).tolist()}


def describe(dataset) -> dict:
    """output_types and output_shapes as text."""
    def text(tree, fn):
        if isinstance(tree, dict):
            return {k: text(v, fn) for k, v in sorted(tree.items())}
        if isinstance(tree, tuple):
            return [text(v, fn) for v in tree]
        return fn(tree)
    types = text(dataset.output_types, lambda d: d.name)
    shapes = text(dataset.output_shapes,
                  lambda s: None if s.dims is None else [_dim(d) for d in s.dims])
    return {"types": types, "shapes": shapes}


def _dim(d):
    d = getattr(d, "value", d)
    return None if d is None else int(d)
