"""``Dataset.cache(filename)`` (tracejit/data/file_cache.py): the first complete pass
writes the elements to ``filename + ".tjcache"``; later passes, and a later program's
dataset of the same elements, read the file instead of running the input."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.data import Dataset
from tracejit.data.file_cache import CACHE_SUFFIX
from tracejit.io.records import RecordError


def _counted(calls):
    def generate():
        for i in range(4):
            calls.append(i)
            yield {"x": np.full((2, 3), i, np.float32), "name": f"row {i}".encode()}, np.int64(i)
    return Dataset.from_generator(generate, ({"x": np.float32, "name": object}, np.int64),
                                  ({"x": (2, 3), "name": ()}, ()))


def _same(a, b):
    assert len(a) == len(b)
    for (ma, ia), (mb, ib) in zip(a, b, strict=True):
        assert ma["x"].dtype == mb["x"].dtype and ma["x"].shape == mb["x"].shape
        np.testing.assert_array_equal(ma["x"], mb["x"])
        assert ma["name"].item() == mb["name"].item() and ia.dtype == ib.dtype and ia == ib


def test_later_passes_and_later_programs_read_the_file(tmp_path):
    calls = []
    cached = _counted(calls).cache(str(tmp_path / "rows"))
    first = list(cached)
    assert len(calls) == 4 and sorted(os.listdir(tmp_path)) == ["rows" + CACHE_SUFFIX]
    second = list(cached)
    assert len(calls) == 4
    _same(first, second)
    # a dataset built anew (the program run again) reads the file too
    again = list(_counted(calls).cache(str(tmp_path / "rows")))
    assert len(calls) == 4
    _same(first, again)
    assert [int(i) for _, i in again] == [0, 1, 2, 3]
    assert again[1][0]["name"].item() == b"row 1"


def test_a_pass_stopped_early_leaves_no_file(tmp_path):
    calls = []
    cached = _counted(calls).cache(str(tmp_path / "rows"))
    elements = iter(cached)
    next(elements)
    elements.close()
    assert os.listdir(tmp_path) == []
    assert len(list(cached)) == 4 and len(list(cached)) == 4 and len(calls) == 5


def test_a_file_of_other_elements_is_an_error_naming_it(tmp_path):
    list(Dataset.range(3).cache(str(tmp_path / "c")))
    with pytest.raises(ValueError, match=r"c\.tjcache.*other elements"):
        list(Dataset.from_tensor_slices(np.zeros(3, np.float32)).cache(str(tmp_path / "c")))


def test_a_damaged_file_is_a_record_error(tmp_path):
    list(Dataset.range(50).cache(str(tmp_path / "c")))
    path = tmp_path / ("c" + CACHE_SUFFIX)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RecordError):
        list(Dataset.range(50).cache(str(tmp_path / "c")))


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(Dataset.range(3).cache(str(tmp_path / "no" / "c")))


def test_tf1_pipeline_with_a_file_cache(tmp_path):
    # hand-derived: x * 2 for x in range(5), twice (repeat after cache)
    prefix = str(tmp_path / "doubled")
    with tf.Graph().as_default():
        ds = tf.data.Dataset.range(5).map(lambda x: x * 2).cache(prefix).repeat(2)
        nxt = tf.data.make_one_shot_iterator(ds).get_next()
        with tf.Session() as sess:
            got = [int(sess.run(nxt)) for _ in range(10)]
            with pytest.raises(tf.errors.OutOfRangeError):
                sess.run(nxt)
    assert got == [0, 2, 4, 6, 8] * 2
    assert os.path.exists(prefix + CACHE_SUFFIX)
