"""The row-number fast path (tracejit/data/rows.py) of pipelines over in-memory arrays:
``batch`` over ``from_tensor_slices`` and its ``shuffle``/``repeat``/``take``/``skip``
gathers whole batches by row number. It must give exactly the element path's batches,
in the same order, shuffles included (same seed, same draws)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from tracejit.data import Dataset, rows


def _pipeline(length, steps, batch, drop, arrays=None):
    rng = np.random.default_rng(length)
    if arrays is None:
        arrays = ({"x": rng.standard_normal((length, 2, 3)).astype(np.float32),
                   "y": np.arange(length, dtype=np.int64)},
                  np.array([f"s{i}".encode() for i in range(length)]))
    ds = Dataset.from_tensor_slices(arrays)
    for kind, value in steps:
        if kind == "shuffle":
            ds = ds.shuffle(value, seed=7)
        elif kind == "repeat":
            ds = ds.repeat(value)
        elif kind == "take":
            ds = ds.take(value)
        else:
            ds = ds.skip(value)
    return ds.batch(batch, drop_remainder=drop)


def _flat(batches):
    out = []
    for (mapping, strings) in batches:
        out.append((mapping["x"], mapping["y"], strings))
    return out


def _element_path(monkeypatch, make):
    with monkeypatch.context() as patch:
        patch.setattr(rows, "row_table", lambda node: None)
        return list(make())


def _same(fast, slow):
    assert len(fast) == len(slow)
    for got, want in zip(_flat(fast), _flat(slow), strict=True):
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_the_fast_path_is_taken_for_slices_shuffle_repeat():
    ds = Dataset.from_tensor_slices(np.arange(10)).shuffle(4, seed=1).repeat(2)
    assert rows.row_table(ds.node) is not None
    assert rows.row_table(ds.map(lambda v: v).node) is None


def test_shuffled_batches_match_the_element_path(monkeypatch):
    make = lambda: _pipeline(103, [("shuffle", 10), ("repeat", 3)], 7, False)  # noqa: E731
    fast = list(make())
    _same(fast, _element_path(monkeypatch, make))
    # and every row is there, each epoch a permutation
    ys = np.concatenate([b[0]["y"] for b in fast])
    assert sorted(ys.tolist()) == sorted(list(range(103)) * 3)


def test_each_epoch_reshuffles_like_the_element_path(monkeypatch):
    make = lambda: _pipeline(50, [("shuffle", 50), ("repeat", 2)], 50, True)  # noqa: E731
    fast = list(make())
    assert not np.array_equal(fast[0][0]["y"], fast[1][0]["y"])
    _same(fast, _element_path(monkeypatch, make))


@settings(max_examples=60, deadline=None)
@given(length=hs.integers(0, 70), batch=hs.integers(1, 12), drop=hs.booleans(),
       steps=hs.lists(hs.tuples(hs.sampled_from(["shuffle", "repeat", "take", "skip"]),
                                hs.integers(-1, 40)), max_size=4))
def test_random_pipelines_match_the_element_path(length, batch, drop, steps):
    # NOTE: repeats stay small (0-3): nested repeat(40)s made millions of elements
    steps = [(k, max(1, v) if k == "shuffle" else (v % 4 if k == "repeat" else v))
             for k, v in steps]
    make = lambda: _pipeline(length, steps, batch, drop)  # noqa: E731
    with pytest.MonkeyPatch.context() as patch:
        fast = list(make())
        patch.setattr(rows, "row_table", lambda node: None)
        slow = list(make())
    _same(fast, slow)


def test_a_single_array_keeps_its_structure(monkeypatch):
    make = lambda: Dataset.from_tensor_slices(  # noqa: E731
        np.arange(12.0).reshape(6, 2)).shuffle(3, seed=2).batch(4)
    fast = list(make())
    slow = _element_path(monkeypatch, make)
    assert [b.tolist() for b in fast] == [b.tolist() for b in slow]
    assert all(isinstance(b, np.ndarray) for b in fast)


def test_uniform_stream_reads_one_sequence_either_way():
    a = rows.UniformStream(np.random.default_rng(5))
    b = rows.UniformStream(np.random.default_rng(5))
    singles = [a.next() for _ in range(3000)]
    many = np.concatenate([b.take(1), b.take(1500), b.take(0), b.take(1499)])
    assert singles == many.tolist()


def test_take_does_not_start_the_next_pass_of_its_input(monkeypatch):
    # found by the random test: take(1) over shuffle().repeat() must not ask for a chunk
    # after its last row (that would start another shuffle epoch and shift every later
    # epoch's order away from the element path's)
    make = lambda: _pipeline(2, [("shuffle", 2), ("repeat", 3), ("take", 1),  # noqa: E731
                                  ("repeat", 3)], 1, False)
    _same(list(make()), _element_path(monkeypatch, make))
