"""Histograms as TensorBoard reads them, computed by tracejit ops.

TensorFlow's histograms use one fixed set of bucket limits (its C++ ``Histogram``
default): 1e-12 growing by ×1.1 while below 1e20, the same mirrored below zero, a 0
between them and ±DBL_MAX at the ends. A value counts in the first bucket whose limit is
greater than it (``searchsorted(limits, x, side='right')``).

``histogram_stats(x)`` computes the bucket counts and the statistics with tracejit ops,
so inside ``@jit`` (or a TF1 ``Session.run``) they are part of the compiled step: a log
gives each value's bucket to within one or two, a gather of the five limits around that
guess and a comparison make it exact, and a ``scatter_add`` counts. Only the few numbers
of ``HistogramStats`` leave the step; ``histogram_proto`` encodes them on the host.

>>> import numpy as np
>>> stats = histogram_stats(np.array([1.0, 2.0, 3.0]))
>>> proto = histogram_proto(stats, "w")
>>> proto.num, proto.sum, list(proto.bucket)
(3.0, 6.0, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
from tensorboard.compat.proto import summary_pb2

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.errors import DTypeError
from ..ir.source import user_location
from ..trace import array_ops, math_ops
from ..trace.tracing import bind, cast, to_tensor

DBL_MAX = sys.float_info.max


def _positive_limits() -> np.ndarray:
    # NOTE: by repeated multiplication in double, as TensorFlow builds them, so that the
    # limits are the same floating-point numbers (a power would round differently).
    limits = []
    v = 1.0e-12
    while v < 1.0e20:
        limits.append(v)
        v *= 1.1
    return np.array(limits, dtype=np.float64)


_POSITIVE = _positive_limits()
#: TensorFlow's default bucket limits, ascending.
BUCKET_LIMITS = np.concatenate([[-DBL_MAX], -_POSITIVE[::-1], [0.0], _POSITIVE, [DBL_MAX]])
_K = len(_POSITIVE)
_M = len(BUCKET_LIMITS)
_WINDOW = 5       # limits compared around the log's guess (it is off by at most one)


class HistogramStats(NamedTuple):
    """What a histogram summary needs, as arrays: per-bucket ``counts`` (float64, one per
    limit of ``BUCKET_LIMITS``), ``min``, ``max``, ``num``, ``sum``, ``sum_squares``
    (float64 scalars), and how many values were NaN (``nans``) or ±inf (``infs``)."""

    counts: object
    min: object
    max: object
    num: object
    sum: object
    sum_squares: object
    nans: object
    infs: object


def bucket_index(x):
    """The bucket of each value of the float64 tensor ``x``: the number of limits
    ``<= x`` (NumPy's ``searchsorted(BUCKET_LIMITS, x, side='right')``), at most the
    last bucket. Tracejit ops only."""
    x = to_tensor(x)
    a = math_ops.abs(x)
    # NOTE: log(0) is -inf and clips to 0; the guess counts the positive limits <= |x|.
    guess = math_ops.floor(math_ops.log(a / 1.0e-12) / math.log(1.1)) + 1.0
    guess = cast(math_ops.clip_by_value(guess, 0.0, float(_K)), dt.int32)
    zero_index = _K + 2       # -DBL_MAX, the K negative limits and 0 are <= any x >= 0
    estimate = math_ops.where(math_ops.greater(x, 0.0), zero_index + guess,
                              math_ops.where(math_ops.less(x, 0.0), _K + 1 - guess,
                                             zero_index))
    base = math_ops.clip_by_value(estimate - 2, 0, _M - _WINDOW)
    limits = array_ops.constant(BUCKET_LIMITS)
    index = base
    for offset in range(_WINDOW):
        at = array_ops.gather(limits, base + offset)
        index = index + cast(math_ops.less_equal(at, x), dt.int32)
    # NOTE: a value >= DBL_MAX would be past the end; TensorFlow's own Add has no
    # bucket for it either, and it cannot be finite and larger, so it joins the last.
    return math_ops.minimum(index, _M - 1)


def histogram_stats(values) -> HistogramStats:
    """Bucket counts and statistics of ``values`` (any shape, a real dtype), computed
    with tracejit ops: call it inside ``@jit`` to make it part of the compiled step."""
    x = to_tensor(values)
    if not (x.dtype.is_float or x.dtype.is_integer or x.dtype.is_bool):
        raise DTypeError(f"histogram values must be numbers, got {x.dtype.name}",
                         location=user_location())
    x = array_ops.reshape(cast(x, dt.float64), (-1,))
    if x.shape[0] == 0:
        # NOTE: TensorFlow's empty histogram: min and max at their initial extremes
        zero = array_ops.constant(0.0, dt.float64)
        return HistogramStats(array_ops.zeros((_M,), dt.float64),
                              array_ops.constant(DBL_MAX, dt.float64),
                              array_ops.constant(-DBL_MAX, dt.float64),
                              zero, zero, zero, zero, zero)
    finite = math_ops.isfinite(x)
    safe = math_ops.where(finite, x, 0.0)
    index = bucket_index(safe)
    counts = bind(ops.SCATTER_ADD, [array_ops.zeros((_M,), dt.float64), index,
                                    array_ops.ones(x.shape, dt.float64)], {"axis": 0})
    nans = math_ops.reduce_sum(cast(math_ops.isnan(x), dt.float64))
    infs = math_ops.reduce_sum(cast(math_ops.logical_not(finite), dt.float64)) - nans
    return HistogramStats(counts, math_ops.reduce_min(x), math_ops.reduce_max(x),
                          array_ops.constant(float(x.shape[0]), dt.float64),
                          math_ops.reduce_sum(x), math_ops.reduce_sum(x * x), nans, infs)


class NonFiniteHistogram(ValueError):
    """A histogram of values that include NaN or ±inf (TensorFlow refuses them too)."""


def check_finite(stats: HistogramStats, tag: str) -> None:
    """TensorFlow's errors for NaN and infinity in a histogram, naming the tag."""
    if float(np.asarray(stats.nans)) > 0:
        raise NonFiniteHistogram(f"Nan in summary histogram for: {tag}")
    if float(np.asarray(stats.infs)) > 0:
        raise NonFiniteHistogram(f"Infinity in Histogram for: {tag}")


def histogram_proto(stats: HistogramStats, tag: str = "histogram") -> summary_pb2.HistogramProto:
    """Encode computed statistics as TensorFlow does: each non-empty bucket, and each run
    of empty buckets collapsed into one (ending at the run's last limit)."""
    check_finite(stats, tag)
    counts = np.asarray(stats.counts, dtype=np.float64)
    if counts.shape != (_M,):
        raise ValueError(f"histogram counts for {tag!r} must have {_M} buckets (one per "
                         f"limit of BUCKET_LIMITS), got shape {counts.shape}")
    occupied = counts > 0
    # NOTE: an empty bucket is written when it ends a run: the next one is occupied, or
    # it is the last (so an empty histogram is the one bucket (DBL_MAX, 0), as in TF).
    keep = occupied.copy()
    keep[:-1] |= occupied[1:]
    keep[-1] = True
    proto = summary_pb2.HistogramProto(
        min=float(np.asarray(stats.min)), max=float(np.asarray(stats.max)),
        num=float(np.asarray(stats.num)), sum=float(np.asarray(stats.sum)),
        sum_squares=float(np.asarray(stats.sum_squares)))
    proto.bucket_limit.extend(BUCKET_LIMITS[keep].tolist())
    proto.bucket.extend(counts[keep].tolist())
    return proto
