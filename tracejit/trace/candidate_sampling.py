"""Candidate samplers (``tf.random.*_candidate_sampler``): draw ``num_sampled`` classes
of ``[0, range_max)`` from a fixed distribution and say how often each true and sampled
class is expected among them, by TensorFlow's rules (range_sampler.cc):

* log-uniform (Zipfian): ``P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1)``,
  drawn as ``floor(exp(u * log(range_max + 1))) - 1`` for ``u`` uniform in [0, 1);
* uniform: ``P(k) = 1 / range_max``;
* fixed unigram: ``P(k)`` proportional to ``weight[k] ** distortion`` (reserved ids and
  other shards' ids weigh 0).

With ``unique=True`` values are drawn one at a time, a value already taken being drawn
again, until ``num_sampled`` different ones are found after ``num_tries`` draws; the
expected count of a class of probability ``p`` is then ``-expm1(num_tries *
log1p(-p))`` (or ``p * num_sampled`` when no draw was rejected). With ``unique=False``
the ``num_sampled`` draws are kept as they are and the count is ``p * num_sampled``.

The draws are IR ops (a ``while_loop`` for ``unique``), so the sampler runs inside the
compiled step; ``key`` is an int32[2] random key (``tracejit.random.key``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import dtypes as dt
from ..ir.errors import ParamError, ShapeError
from ..ir.source import user_location
from . import math_ops as m
from . import random_ops
from .array_ops import constant, gather, ones_like, reshape, stack, zeros
from .array_ops import range as arange
from .control_flow import while_loop
from .tracing import to_tensor

__all__ = ["Distribution", "log_uniform", "uniform", "fixed_unigram", "sample_candidates",
           "all_candidates"]


def _fail(error, message: str, op: str):
    raise error(message, op=op, location=user_location())


@dataclass(frozen=True)
class Distribution:
    """A distribution over ``[0, range_max)``: ``probability(classes)`` (float64 of the
    same shape) and ``draw(u)``, the class for a uniform float64 ``u`` in [0, 1)."""

    range_max: int
    probability: object
    draw: object


def log_uniform(range_max: int) -> Distribution:
    log_range = math.log(range_max + 1)

    def probability(classes):
        k = m.cast(classes, dt.float64)
        return m.log((k + 2.0) / (k + 1.0)) / log_range

    def draw(u):
        # NOTE: exp of u's largest values may round up to range_max + 1 exactly
        return m.minimum(m.cast(m.exp(u * log_range), dt.int64) - 1, range_max - 1)

    return Distribution(int(range_max), probability, draw)


def uniform(range_max: int) -> Distribution:
    def probability(classes):
        return ones_like(classes, dt.float64) * (1.0 / range_max)

    def draw(u):
        return m.minimum(m.cast(u * float(range_max), dt.int64), range_max - 1)

    return Distribution(int(range_max), probability, draw)


def fixed_unigram(range_max: int, unigrams, distortion: float = 1.0,
                  num_reserved_ids: int = 0, num_shards: int = 1,
                  shard: int = 0) -> Distribution:
    """TensorFlow's FixedUnigramSampler over ``unigrams`` (counts or weights, one per id
    from ``num_reserved_ids`` on); an id of another shard (``id % num_shards !=
    shard``) and a reserved id have weight 0."""
    weights = np.zeros(range_max, np.float64)
    counts = np.asarray(unigrams, np.float64).reshape(-1)
    if num_reserved_ids + counts.size != range_max:
        _fail(ParamError, f"range_max ({range_max}) must be num_reserved_ids "
              f"({num_reserved_ids}) plus the number of unigrams ({counts.size})",
              "fixed_unigram_candidate_sampler")
    ids = np.arange(num_reserved_ids, range_max)
    mine = ids % num_shards == shard
    weights[ids[mine]] = counts[mine] ** distortion
    total = weights.sum()
    if not total > 0:
        _fail(ParamError, "the unigram weights of this shard sum to 0",
              "fixed_unigram_candidate_sampler")
    table = constant(weights / total)
    cumulative = constant(np.cumsum(weights) / total)

    def probability(classes):
        return gather(table, m.minimum(m.maximum(m.cast(classes, dt.int64), 0),
                                       range_max - 1))

    def draw(u):
        # NOTE: the first id whose cumulative weight exceeds u: zero-weight ids (reserved,
        # other shards) add nothing to the cumulative sum, so they are never drawn
        below = m.cast(m.less_equal(cumulative, reshape(u, u.shape + (1,))), dt.int64)
        return m.minimum(m.reduce_sum(below, axis=-1), range_max - 1)

    return Distribution(int(range_max), probability, draw)


def expected_count(probability, num_sampled: int, num_tries):
    """TensorFlow's ExpectedCountHelper: ``p * num_sampled`` when every draw was kept,
    else the chance that ``num_tries`` draws include the class."""
    p = m.cast(probability, dt.float64)
    tries = m.cast(num_tries, dt.float64)
    rejected = -m.expm1(tries * m.log1p(-p))
    kept = p * float(num_sampled)
    return m.cast(m.where(m.equal(num_tries, num_sampled), kept, rejected), dt.float32)


def _unique_draws(dist: Distribution, key, num_sampled: int):
    """``(candidates int64[num_sampled], num_tries int32)``: draws until ``num_sampled``
    different values are found (each draw its own key from ``key`` and the try's
    number, so the values do not depend on how the loop is compiled)."""
    positions = arange(num_sampled, dtype=dt.int32)
    base = random_ops.bits(key, (2,))

    def body(state):
        picked, count, tries = state
        u = random_ops.uniform(base + stack([tries, m.cast(0, dt.int32)]), (), dt.float64)
        value = dist.draw(u)
        seen = m.logical_and(m.equal(picked, value), m.less(positions, count))
        new = m.logical_not(m.reduce_any(seen))
        slot = m.logical_and(new, m.equal(positions, count))
        picked = m.where(slot, value, picked)
        return picked, count + m.cast(new, dt.int32), tries + 1

    start = (zeros((num_sampled,), dt.int64), to_tensor(np.int32(0)), to_tensor(np.int32(0)))
    picked, _, tries = while_loop(lambda s: m.less(s[1], num_sampled), body, start)
    return picked, tries


def sample_candidates(dist: Distribution, true_classes, num_true: int, num_sampled: int,
                      unique: bool, key, op: str = "candidate_sampler"):
    """``(sampled_candidates int64[num_sampled], true_expected_count float32
    [batch, num_true], sampled_expected_count float32[num_sampled])``."""
    true_classes = to_tensor(true_classes)
    if not true_classes.dtype.is_integer or true_classes.ndim != 2 or \
            true_classes.shape[1] != num_true:
        _fail(ShapeError, f"true_classes must be integers of shape [batch_size, num_true="
              f"{num_true}], got {true_classes.type}", op)
    if num_sampled < 1:
        _fail(ParamError, f"num_sampled must be positive, got {num_sampled}", op)
    if unique and num_sampled > dist.range_max:
        _fail(ParamError, f"Sampler's range is too small: {num_sampled} unique classes "
              f"cannot be drawn from range_max={dist.range_max}", op)
    if unique:
        sampled, tries = _unique_draws(dist, key, num_sampled)
    else:
        draws = random_ops.uniform(random_ops.bits(key, (2,)), (num_sampled,), dt.float64)
        sampled = dist.draw(draws)
        tries = to_tensor(np.int32(num_sampled))
    true_expected = expected_count(dist.probability(true_classes), num_sampled, tries)
    sampled_expected = expected_count(dist.probability(sampled), num_sampled, tries)
    return sampled, true_expected, sampled_expected


def all_candidates(true_classes, num_true: int, num_sampled: int):
    """``tf.random.all_candidate_sampler``: the classes ``0 .. num_sampled - 1``, each
    expected once."""
    true_classes = to_tensor(true_classes)
    sampled = arange(num_sampled, dtype=dt.int64)
    return sampled, ones_like(true_classes, dt.float32), ones_like(sampled, dt.float32)
