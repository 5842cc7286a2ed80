"""tracejit.random: keys, split and fold_in, and the samplers' shapes, dtypes, ranges,
determinism and moments; jit and eager give the same bits.

Moment bounds are at least five standard errors wide for 1e5 samples, so they hold for
any key, not only the ones used here.
"""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
import tracejit.random as tr

N = 100_000
FLOATS = [tj.float32, tj.float64, tj.float16, tj.bfloat16]


def sample(fn, *args, **kwargs) -> np.ndarray:
    """Eager and jitted samples agree bit for bit; returns them as float64."""
    key = tr.key(1234)
    eager = fn(key, *args, **kwargs)
    jitted = tj.jit(lambda k: fn(k, *args, **kwargs))(key)
    assert isinstance(eager, tj.Array) and isinstance(jitted, tj.Array)
    assert eager.dtype == jitted.dtype and eager.shape == jitted.shape
    np.testing.assert_array_equal(np.asarray(eager).view(np.uint8),
                                  np.asarray(jitted).view(np.uint8))
    return np.asarray(eager).astype(np.float64)


def test_keys():
    k = tr.key(0)
    assert k.shape == (2,) and k.dtype == tj.int32
    np.testing.assert_array_equal(tr.PRNGKey(7), tr.key(7))
    np.testing.assert_array_equal(tr.key(2**40 + 5), np.array([256, 5], np.int32))
    assert not np.array_equal(tr.key(1), tr.key(2))
    assert tr.key(-1).shape == (2,)
    keys = tr.split(k, 3)
    assert keys.shape == (3, 2) and keys.dtype == tj.int32
    assert len({tuple(np.asarray(r)) for r in keys} | {tuple(np.asarray(k))}) == 4
    assert tr.split(k).shape == (2, 2)
    np.testing.assert_array_equal(tr.split(k, 3), tr.split(k, 3))            # deterministic
    np.testing.assert_array_equal(tj.jit(lambda key: tr.split(key, 3))(k), tr.split(k, 3))
    folded = [np.asarray(tr.fold_in(k, d)) for d in range(4)]
    assert all(f.shape == (2,) and f.dtype == np.int32 for f in folded)
    assert len({tuple(f) for f in folded}) == 4
    np.testing.assert_array_equal(tr.fold_in(k, 2), tr.fold_in(k, 2))
    np.testing.assert_array_equal(tj.jit(lambda key: tr.fold_in(key, 2))(k), tr.fold_in(k, 2))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_uniform_shapes_dtypes_and_range(dtype):
    for shape in [(), (0,), (3, 4), (2, 0, 5)]:
        u = tr.uniform(tr.key(0), shape, dtype)
        assert u.shape == shape and u.dtype == dtype
    u = sample(tr.uniform, (N,), dtype)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    counts = np.histogram(u, bins=8, range=(0, 1))[0]
    assert np.all(np.abs(counts - N / 8) < 0.05 * N / 8)
    scaled = sample(tr.uniform, (N,), dtype, minval=-3.0, maxval=5.0)
    assert scaled.min() >= -3.0 and scaled.max() < 5.0
    assert abs(scaled.mean() - 1.0) < 0.05


def test_uniform_float64_uses_53_bits():
    u = sample(tr.uniform, (1000,), tj.float64)
    on_float32_grid = np.mean(u * 2**24 == np.floor(u * 2**24))
    assert on_float32_grid < 0.01
    assert np.all(u * 2**53 == np.floor(u * 2**53))


def test_same_key_same_numbers_different_keys_differ():
    a = tr.uniform(tr.key(5), (1000,))
    np.testing.assert_array_equal(a, tr.uniform(tr.key(5), (1000,)))
    b = tr.uniform(tr.key(6), (1000,))
    assert np.mean(np.asarray(a) == np.asarray(b)) < 0.01
    k1, k2 = tr.split(tr.key(5))
    c, d = np.asarray(tr.normal(k1, (N,))), np.asarray(tr.normal(k2, (N,)))
    assert abs(np.corrcoef(c, d)[0, 1]) < 0.02
    assert abs(np.corrcoef(c[:-1], c[1:])[0, 1]) < 0.02


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_normal(dtype):
    assert tr.normal(tr.key(0), (2, 3), dtype).dtype == dtype
    assert tr.normal(tr.key(0), (0, 3)).shape == (0, 3)
    assert tr.normal(tr.key(0)).shape == ()
    z = sample(tr.normal, (N,), dtype)
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 0.02 and abs(z.var() - 1) < 0.03
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.008
    assert abs(np.mean(z ** 3)) < 0.05 and abs(np.mean(z ** 4) - 3) < 0.15
    shifted = sample(tr.normal, (N,), dtype, mean=2.0, stddev=0.5)
    assert abs(shifted.mean() - 2) < 0.01 and abs(shifted.std() - 0.5) < 0.01


@pytest.mark.parametrize("dtype", [tj.float32, tj.float64], ids=str)
def test_truncated_normal(dtype):
    t = sample(tr.truncated_normal, (N,), dtype)
    assert tr.truncated_normal(tr.key(0), (2, 3), dtype).dtype == dtype
    assert np.abs(t).max() <= 2.0
    assert abs(t.mean()) < 0.02
    assert abs(t.std() - 0.8796) < 0.01          # the std of a normal cut at two sigma
    assert np.mean(np.abs(t) > 1.9) > 0.002       # the tails up to the cut are present
    scaled = sample(tr.truncated_normal, (N,), dtype, mean=1.0, stddev=0.1)
    assert scaled.min() >= 0.8 - 1e-6 and scaled.max() <= 1.2 + 1e-6


def test_bernoulli():
    b = tr.bernoulli(tr.key(0), 0.3, (N,))
    assert b.dtype == tj.bool and b.shape == (N,)
    assert abs(np.mean(b) - 0.3) < 0.01
    assert abs(np.mean(sample(tr.bernoulli, 0.3, (N,))) - 0.3) < 0.01
    assert not np.any(tr.bernoulli(tr.key(0), 0.0, (1000,)))
    assert np.all(tr.bernoulli(tr.key(0), 1.0, (1000,)))
    p = np.array([0.0, 0.25, 1.0], np.float32)
    many = np.asarray(tr.bernoulli(tr.key(2), p, (N, 3)))
    np.testing.assert_allclose(many.mean(axis=0), p, atol=0.01)
    assert tr.bernoulli(tr.key(2), p).shape == (3,)


def test_bits_and_key_as_jit_argument():
    raw = tr.bits(tr.key(3), (4, 5))
    assert raw.shape == (4, 5) and raw.dtype == tj.int32
    f = tj.jit(lambda key, x: x + tr.uniform(key, x.shape))
    x = np.zeros(3, np.float32)
    first = np.asarray(f(tr.key(1), x))
    second = np.asarray(f(tr.key(2), x))
    assert f.cache_size == 1                     # a new key is a new value, not a new trace
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, tr.uniform(tr.key(1), (3,)))
