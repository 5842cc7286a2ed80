"""Histograms: the bucket of each value (tracejit ops) is NumPy's searchsorted, and the
encoded proto is what TensorFlow 2.21 writes for the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.summary.histogram import (
    BUCKET_LIMITS,
    HistogramStats,
    NonFiniteHistogram,
    bucket_index,
    histogram_proto,
    histogram_stats,
)

from .reference import tf_reference

_INDEX = tj.jit(bucket_index)
_STATS = tj.jit(histogram_stats)


def _searchsorted(x):
    return np.minimum(np.searchsorted(BUCKET_LIMITS, x, side="right"), len(BUCKET_LIMITS) - 1)


def test_limits_are_tensorflows_default_buckets():
    assert len(BUCKET_LIMITS) == 1551
    assert BUCKET_LIMITS[0] == -np.finfo(np.float64).max
    assert BUCKET_LIMITS[-1] == np.finfo(np.float64).max
    middle = len(BUCKET_LIMITS) // 2
    assert BUCKET_LIMITS[middle] == 0.0 and BUCKET_LIMITS[middle + 1] == 1e-12
    assert np.array_equal(BUCKET_LIMITS[1:middle], -BUCKET_LIMITS[middle + 1:-1][::-1])
    assert (np.diff(BUCKET_LIMITS) > 0).all()
    assert BUCKET_LIMITS[-2] < 1e20 <= BUCKET_LIMITS[-2] * 1.1


def test_bucket_index_is_searchsorted_right_on_random_and_edge_values():
    rng = np.random.default_rng(7)
    inner = BUCKET_LIMITS[1:-1]
    x = np.concatenate([
        rng.standard_normal(20000) * 10.0 ** rng.integers(-16, 24, 20000),
        inner, np.nextafter(inner, np.inf), np.nextafter(inner, -np.inf),
        [0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e300, -1e300, 1.7e308, -1.7e308,
         np.finfo(np.float64).max, -np.finfo(np.float64).max],
    ])
    got = np.asarray(_INDEX(x))
    assert np.array_equal(got, _searchsorted(x))


def test_bucket_index_of_float32_values():
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(5000) * 10.0 ** rng.integers(-20, 30, 5000)).astype(np.float32)
    got = np.asarray(_INDEX(x.astype(np.float64)))
    assert np.array_equal(got, _searchsorted(x.astype(np.float64)))


@pytest.mark.parametrize("case", ["small", "edges", "empty", "one", "wide", "normal"])
def test_encoding_equals_tensorflows(case):
    ref = tf_reference()["histograms"][case]
    proto = histogram_proto(_STATS(np.array(ref["input"], np.float32)), "w")
    assert list(proto.bucket_limit) == ref["bucket_limit"]
    assert list(proto.bucket) == ref["bucket"]
    assert (proto.min, proto.max, proto.num) == (ref["min"], ref["max"], ref["num"])
    # NOTE: TensorFlow sums one value after another; tracejit's reduction may add in
    # another order, so the last bits can differ
    assert proto.sum == pytest.approx(ref["sum"], rel=1e-12, abs=1e-300)
    assert proto.sum_squares == pytest.approx(ref["sum_squares"], rel=1e-12, abs=1e-300)


def test_statistics_of_a_matrix_in_float64():
    x = np.array([[1.5, -2.0], [0.25, 8.0]])
    stats = _STATS(x)
    assert isinstance(stats, HistogramStats)
    assert float(stats.num) == 4 and float(stats.sum) == 7.75
    assert float(stats.sum_squares) == 1.5**2 + 4 + 0.0625 + 64
    assert (float(stats.min), float(stats.max)) == (-2.0, 8.0)
    counts = np.asarray(stats.counts)
    assert counts.sum() == 4
    assert np.array_equal(np.nonzero(counts)[0], np.unique(_searchsorted(x.ravel())))


def test_nan_and_infinity_are_refused_naming_the_tag():
    with pytest.raises(NonFiniteHistogram, match="Nan in summary histogram for: layer1/w"):
        histogram_proto(_STATS(np.array([1.0, np.nan, np.inf])), "layer1/w")
    with pytest.raises(NonFiniteHistogram, match="Infinity in Histogram for: b"):
        histogram_proto(_STATS(np.array([-np.inf, 1.0])), "b")


def test_the_step_computes_the_histogram_with_tracejit_ops():
    graph = tj.make_ir(histogram_stats)(np.zeros(1000, np.float32))
    ops = {eqn.op.name for eqn in graph.eqns}
    assert {"log", "floor", "gather", "less_equal", "scatter_add"} <= ops
    # only the counts and a few scalars leave the step
    assert [v.shape for v in graph.outputs] == [(1551,)] + [()] * 7


def test_integer_values_and_a_jitted_step():
    @tj.jit
    def step(w):
        w = w * 2
        return w, histogram_stats(w)

    w, stats = step(np.arange(-3, 4, dtype=np.int32))
    proto = histogram_proto(stats)
    assert proto.num == 7 and proto.sum == 0 and proto.min == -6 and proto.max == 6


def test_counts_of_the_wrong_size_are_refused():
    stats = HistogramStats(np.zeros(5), 0, 0, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="1551 buckets"):
        histogram_proto(stats, "w")
