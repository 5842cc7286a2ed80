"""Initializers: shapes, dtypes, seeds, TF 1.x's fan and variance formulas, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tracejit as tj
from tracejit import initializers as init
from tracejit.ir.errors import DTypeError, ShapeError

RANDOM = [
    lambda seed: init.random_uniform(-1.0, 2.0, seed=seed),
    lambda seed: init.random_normal(0.5, 2.0, seed=seed),
    lambda seed: init.truncated_normal(0.0, 0.5, seed=seed),
    lambda seed: init.glorot_uniform(seed=seed),
    lambda seed: init.glorot_normal(seed=seed),
    lambda seed: init.variance_scaling(2.0, "fan_out", "untruncated_normal", seed=seed),
    lambda seed: init.he_uniform(seed=seed),
]
RANDOM_IDS = ["uniform", "normal", "truncated", "glorot_uniform", "glorot_normal",
              "variance_scaling", "he_uniform"]


@pytest.mark.parametrize("make", RANDOM, ids=RANDOM_IDS)
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4, 5), (0, 3)])
@pytest.mark.parametrize("dtype", [tj.float32, tj.float64, tj.float16])
def test_random_shapes_and_dtypes(make, shape, dtype):
    value = make(1)(shape, dtype)
    assert isinstance(value, tj.Array)
    assert value.shape == shape and value.dtype == dtype
    assert np.isfinite(value.numpy()).all()


@pytest.mark.parametrize("make", RANDOM, ids=RANDOM_IDS)
def test_seeds(make):
    a, b = make(3)((50,)).numpy(), make(3)((50,)).numpy()
    np.testing.assert_array_equal(a, b)                  # an explicit seed repeats
    assert not np.array_equal(a, make(4)((50,)).numpy())
    unseeded = make(None)
    first, second = unseeded((50,)).numpy(), unseeded((50,)).numpy()
    assert not np.array_equal(first, second)             # successive draws differ
    init.set_seed(11)
    again = [make(None)((50,)).numpy() for _ in range(2)]
    init.set_seed(11)
    np.testing.assert_array_equal([make(None)((50,)).numpy() for _ in range(2)], again)


def test_default_dtype_comes_from_the_constructor():
    assert init.random_normal(seed=0)((2,)).dtype == tj.float32
    assert init.random_normal(seed=0, dtype=tj.float64)((2,)).dtype == tj.float64
    assert init.zeros(dtype=tj.int32)((2,)).dtype == tj.int32


def test_zeros_ones_constant():
    np.testing.assert_array_equal(init.zeros()((2, 3)).numpy(), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(init.ones()((4,), tj.int64).numpy(), np.ones(4, np.int64))
    np.testing.assert_array_equal(init.constant(7)((2, 2)).numpy(), np.full((2, 2), 7.0))
    np.testing.assert_array_equal(init.constant([1, 2, 3, 4])((2, 2)).numpy(),
                                  [[1.0, 2.0], [3.0, 4.0]])
    # TF 1.x pads a short list with its last value.
    np.testing.assert_array_equal(init.constant([1, 2])((2, 2), tj.int32).numpy(),
                                  [[1, 2], [2, 2]])
    with pytest.raises(ShapeError, match="more than"):
        init.constant([1, 2, 3])((2,))
    with pytest.raises(ShapeError, match="expected"):
        init.constant([1, 2], verify_shape=True)((2, 2))


@pytest.mark.parametrize("shape, fans", [
    ((), (1, 1)), ((7,), (7, 7)), ((3, 4), (3, 4)),
    ((3, 3, 16, 32), (3 * 3 * 16, 3 * 3 * 32)), ((2, 3, 4, 5, 6), (120, 144)),
])
def test_compute_fans_like_tensorflow(shape, fans):
    assert init.compute_fans(shape) == fans


def _stats(value):
    x = value.numpy().astype(np.float64).ravel()
    return x.mean(), x.std(), x.min(), x.max()


def test_uniform_normal_truncated_statistics():
    mean, std, lo, hi = _stats(init.random_uniform(-2.0, 3.0, seed=1)((200_000,)))
    assert -2.0 <= lo and hi < 3.0
    assert abs(mean - 0.5) < 0.03 and abs(std - 5 / math.sqrt(12)) < 0.03
    mean, std, _, _ = _stats(init.random_normal(1.0, 2.0, seed=2)((200_000,)))
    assert abs(mean - 1.0) < 0.03 and abs(std - 2.0) < 0.03
    mean, std, lo, hi = _stats(init.truncated_normal(1.0, 2.0, seed=3)((200_000,)))
    assert -3.0 <= lo and hi <= 5.0                       # within two stddevs
    assert abs(mean - 1.0) < 0.03 and abs(std - 2.0 * 0.8796) < 0.03


def test_glorot_uniform_limit():
    shape = (300, 200)
    limit = math.sqrt(6.0 / (300 + 200))
    _, std, lo, hi = _stats(init.glorot_uniform(seed=5)(shape))
    assert -limit <= lo and hi <= limit
    assert lo < -0.95 * limit and hi > 0.95 * limit
    assert abs(std - limit / math.sqrt(3)) < 0.02 * limit


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_matches_tf1_formulas(mode, distribution):
    shape = (3, 3, 16, 32)                                # fan_in 144, fan_out 288
    n = {"fan_in": 144.0, "fan_out": 288.0, "fan_avg": 216.0}[mode]
    value = init.variance_scaling(2.0, mode, distribution, seed=9)(shape)
    mean, std, lo, hi = _stats(value)
    target = math.sqrt(2.0 / n)
    # The truncation correction makes truncated samples have the target variance too.
    assert abs(std - target) < 0.05 * target and abs(mean) < 0.05 * target
    if distribution == "uniform":
        assert max(-lo, hi) <= math.sqrt(3.0) * target
    if distribution == "truncated_normal":
        assert max(-lo, hi) <= 2.0 * target / 0.87962566103423978 + 1e-6


def test_invalid_arguments():
    with pytest.raises(ValueError, match="mode"):
        init.variance_scaling(mode="fan_sideways")
    with pytest.raises(ValueError, match="distribution"):
        init.variance_scaling(distribution="cauchy")
    with pytest.raises(ValueError, match="scale"):
        init.variance_scaling(scale=0.0)
    with pytest.raises(DTypeError, match="int32"):
        init.random_normal(seed=0)((2,), tj.int32)
    with pytest.raises(ShapeError, match="fully known"):
        init.glorot_uniform(seed=0)((None, 3))


def test_get_and_use_with_variables():
    assert isinstance(init.get("glorot_uniform"), init.GlorotUniform)
    assert isinstance(init.get(init.Ones), init.Ones)
    assert init.get(None) is None
    custom = init.constant(2.0)
    assert init.get(custom) is custom
    with pytest.raises(ValueError, match="unknown initializer"):
        init.get("nope")
    variable = tj.Variable(init.glorot_uniform(seed=0)((4, 3)), name="kernel")
    assert variable.shape == (4, 3) and variable.dtype == tj.float32


def test_initializers_called_while_tracing_give_concrete_values():
    seen = []

    @tj.jit
    def f(x):
        value = init.random_uniform(seed=1)((2,))
        seen.append(value)
        return x + value

    out = f(np.zeros(2, np.float32))
    assert isinstance(seen[0], tj.Array)
    np.testing.assert_array_equal(out, seen[0].numpy())
