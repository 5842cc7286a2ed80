"""tf.data pipelines in TF1 graphs give TensorFlow's elements, in TensorFlow's order,
with its output_types and output_shapes (tf_reference.json, recorded from TensorFlow
2.21 by make_tf_reference.py running the same pipelines.py), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tracejit.compat.v1 as tf

from . import pipelines

REFERENCE = json.loads(Path(__file__).with_name("tf_reference.json").read_text())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    files = pipelines.write_files(folder)
    files.update(pipelines.write_records(tf, folder))
    return files


@pytest.mark.parametrize("name", sorted(REFERENCE["pipelines"]))
def test_pipeline_matches_tensorflow(name, files):
    expected = REFERENCE["pipelines"][name]
    with tf.Graph().as_default():
        dataset = pipelines.builders(tf, files)[name]()
        assert pipelines.describe(dataset) == {"types": expected["types"],
                                               "shapes": expected["shapes"]}
        got = [pipelines.encode(e) for e in pipelines.drain(tf, dataset)]
    assert got == expected["elements"]


def test_every_pipeline_was_recorded(files):
    with tf.Graph().as_default():
        assert sorted(pipelines.builders(tf, files)) == sorted(REFERENCE["pipelines"])


def _error_of(build):
    with tf.Graph().as_default():
        with pytest.raises(tf.errors.OpError) as caught:
            pipelines.drain(tf, build())
    return {"type": type(caught.value).__name__, "message": caught.value.message}


def _ragged():
    return tf.data.Dataset.from_generator(lambda: iter([[1], [2, 3]]), tf.int64,
                                          tf.TensorShape([None]))


def test_batching_different_shapes_fails_as_in_tensorflow():
    assert _error_of(lambda: _ragged().batch(2)) == REFERENCE["errors"]["batch_shapes"]


def test_padding_to_a_smaller_shape_fails_as_in_tensorflow():
    assert _error_of(lambda: _ragged().padded_batch(2, [1])) == \
        REFERENCE["errors"]["pad_smaller"]


@pytest.mark.parametrize("key", ["from_structure_types", "from_structure_shapes"])
def test_make_initializer_checks_the_structure_as_tensorflow_does(key):
    expected = REFERENCE["errors"][key]
    with tf.Graph().as_default():
        iterator = tf.data.Iterator.from_structure(tf.int64, tf.TensorShape([]))
        dataset = tf.data.Dataset.range(3).map(lambda v: tf.cast(v, tf.float32)) \
            if key == "from_structure_types" else \
            tf.data.Dataset.from_tensor_slices(np.zeros((3, 2), np.int64))
        with pytest.raises(TypeError) as caught:
            iterator.make_initializer(dataset)
    assert {"type": "TypeError", "message": str(caught.value)} == expected
