"""Initializers: callable objects ``init(shape, dtype=None) -> tracejit.Array``.

The values come from ``tracejit.random``'s counter-based generator, so an initializer with
an explicit ``seed`` returns the same values on every call, on every backend. Without a
seed, each call takes the next seed of a process-wide sequence (``set_seed(n)`` restarts
it), so successive variables differ, as with TensorFlow's op seeds.

The formulas are TensorFlow 1.x's (``tf.glorot_uniform_initializer``,
``tf.variance_scaling_initializer``, ...); ``glorot_uniform`` is what
``tf.get_variable`` uses when no initializer is given.

>>> import tracejit as tj
>>> from tracejit import initializers
>>> w = initializers.glorot_uniform(seed=1)((3, 4))
>>> w.shape, w.dtype.name
((3, 4), 'float32')
>>> bool((abs(w.numpy()) <= (6 / 7) ** 0.5).all())
True
"""

from __future__ import annotations

import math
import secrets

import numpy as np

from .ir import dtypes as dt
from .ir.errors import DTypeError, ShapeError
from .trace import random_ops
from .trace.values import Array, Tensor

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal",
    "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal",
    "zeros", "ones", "constant", "random_uniform", "random_normal", "truncated_normal",
    "variance_scaling", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
    "lecun_normal", "lecun_uniform", "compute_fans", "set_seed", "get",
]

# NOTE: the standard deviation of a unit normal truncated to [-2, 2]; variance_scaling
# divides by it so the truncated samples have the variance asked for (TF 1.x's constant).
_TRUNCATED_STDDEV = 0.87962566103423978
_MASK64 = (1 << 64) - 1


# ---- the seed sequence --------------------------------------------------------------------------

class _SeedSequence:
    """Seeds for initializers created without one: a base seed and a counter, mixed."""

    def __init__(self, base: int):
        self.base = base
        self.count = 0

    def next(self) -> int:
        self.count += 1
        return _splitmix64(self.base ^ _splitmix64(self.count)) >> 1   # non-negative


def _splitmix64(x: int) -> int:
    # NOTE: a bijective 64-bit mixer, so nearby (base, count) pairs give unrelated keys.
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


# NOTE: like TensorFlow without a graph seed, a fresh process draws different values;
# set_seed makes runs repeatable.
_SEEDS = _SeedSequence(secrets.randbits(63))


def set_seed(seed: int) -> None:
    """Restart the seed sequence used by initializers that were given no seed."""
    global _SEEDS
    _SEEDS = _SeedSequence(int(seed) & _MASK64)


# ---- shapes and fans ----------------------------------------------------------------------------

def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    dims = tuple(shape)
    if any(d is None for d in dims):
        raise ShapeError(f"an initializer needs a fully known shape, got {list(dims)}",
                         op="initializer")
    dims = tuple(int(d) for d in dims)
    if any(d < 0 for d in dims):
        raise ShapeError(f"negative dimension in shape {list(dims)}", op="initializer")
    return dims


def compute_fans(shape) -> tuple[float, float]:
    """(fan_in, fan_out) as TensorFlow computes them.

    A matrix is [fan_in, fan_out]; a convolution kernel [..., in_channels, out_channels]
    multiplies both by the receptive field size (the product of the leading dims)."""
    shape = _shape(shape)
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive_field = math.prod(shape[:-2])
    return float(shape[-2] * receptive_field), float(shape[-1] * receptive_field)


# ---- the initializers ---------------------------------------------------------------------------

class Initializer:
    """Base class: ``init(shape, dtype=None)``; ``dtype=None`` means the constructor's."""

    def __init__(self, dtype=dt.float32):
        self.dtype = dt.as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None) -> Array:
        dtype = self.dtype if dtype is None else dt.as_dtype(dtype)
        return self._generate(_shape(shape), dtype)

    def _generate(self, shape: tuple[int, ...], dtype: dt.DType) -> Array:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"dtype": self.dtype.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def _generate(self, shape, dtype):
        return Array(np.zeros(shape, dtype.np_dtype))


class Ones(Initializer):
    def _generate(self, shape, dtype):
        return Array(np.ones(shape, dtype.np_dtype))


class Constant(Initializer):
    """A scalar fills the shape; a list or array fills it in row-major order. As in TF 1.x,
    a shorter list is padded with its last element unless ``verify_shape``."""

    def __init__(self, value=0, dtype=dt.float32, verify_shape: bool = False):
        super().__init__(dtype)
        self.value = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
        self.verify_shape = verify_shape

    def _generate(self, shape, dtype):
        flat = self.value.astype(dtype.np_dtype).reshape(-1)
        size = math.prod(shape)
        if self.verify_shape and self.value.shape != shape:
            raise ShapeError(f"constant initializer value has shape {list(self.value.shape)}, "
                             f"expected {list(shape)}", op="constant_initializer")
        if flat.size == 1:
            return Array(np.full(shape, flat[0], dtype.np_dtype))
        if flat.size > size:
            raise ShapeError(f"constant initializer has {flat.size} values, more than the "
                             f"{size} of shape {list(shape)}", op="constant_initializer")
        if flat.size < size:
            flat = np.concatenate([flat, np.full(size - flat.size, flat[-1], flat.dtype)])
        return Array(flat.reshape(shape))

    def get_config(self):
        return {"value": self.value.tolist(), "dtype": self.dtype.name}


class _Random(Initializer):
    """Shared by the random initializers: the key for one call, and the float check."""

    def __init__(self, seed: int | None = None, dtype=dt.float32):
        super().__init__(dtype)
        self.seed = seed

    def _key(self):
        return random_ops.key(self.seed if self.seed is not None else _SEEDS.next())

    def __call__(self, shape, dtype=None, partition_info=None) -> Array:
        dtype = self.dtype if dtype is None else dt.as_dtype(dtype)
        if not dtype.is_float:
            raise DTypeError(f"{type(self).__name__} makes floating-point values, not "
                             f"{dtype.name}", op="initializer")
        return self._generate(_shape(shape), dtype)

    def get_config(self):
        return {"seed": self.seed, "dtype": self.dtype.name}


def _concrete(value: Tensor) -> Array:
    # NOTE: the random functions run eagerly on a concrete key even inside a trace, so the
    # result is always an Array; np.asarray guards the contract anyway.
    return value if isinstance(value, Array) else Array(np.asarray(value))


class RandomUniform(_Random):
    """Uniform in [minval, maxval); ``maxval=None`` means 1."""

    def __init__(self, minval=0.0, maxval=None, seed=None, dtype=dt.float32):
        super().__init__(seed, dtype)
        self.minval = float(minval)
        self.maxval = 1.0 if maxval is None else float(maxval)

    def _generate(self, shape, dtype):
        return _concrete(random_ops.uniform(self._key(), shape, dtype, self.minval,
                                            self.maxval))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class RandomNormal(_Random):
    def __init__(self, mean=0.0, stddev=1.0, seed=None, dtype=dt.float32):
        super().__init__(seed, dtype)
        self.mean = float(mean)
        self.stddev = float(stddev)

    def _generate(self, shape, dtype):
        return _concrete(random_ops.normal(self._key(), shape, dtype, self.mean, self.stddev))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class TruncatedNormal(RandomNormal):
    """Normal samples more than two standard deviations from the mean are re-drawn."""

    def _generate(self, shape, dtype):
        return _concrete(random_ops.truncated_normal(self._key(), shape, dtype, self.mean,
                                                     self.stddev))


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("normal", "truncated_normal", "untruncated_normal", "uniform")


class VarianceScaling(_Random):
    """Samples with variance ``scale / n``, n being fan_in, fan_out or their mean (TF 1.x).

    ``truncated_normal`` (also spelled ``normal``): stddev = sqrt(scale / n) / 0.8796...;
    ``untruncated_normal``: stddev = sqrt(scale / n); ``uniform``: limit = sqrt(3 scale / n).
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 dtype=dt.float32):
        if scale <= 0.0:
            raise ValueError(f"`scale` must be a positive float, got {scale}")
        if mode not in _MODES:
            raise ValueError(f"invalid `mode` {mode!r}; expected one of {_MODES}")
        distribution = distribution.lower()
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"invalid `distribution` {distribution!r}; expected one of "
                             f"{_DISTRIBUTIONS}")
        super().__init__(seed, dtype)
        self.scale = float(scale)
        self.mode = mode
        self.distribution = distribution

    def _variance(self, shape) -> float:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": max(1.0, fan_in), "fan_out": max(1.0, fan_out),
             "fan_avg": max(1.0, (fan_in + fan_out) / 2.0)}[self.mode]
        return self.scale / n

    def _generate(self, shape, dtype):
        variance = self._variance(shape)
        key = self._key()
        if self.distribution in ("normal", "truncated_normal"):
            stddev = math.sqrt(variance) / _TRUNCATED_STDDEV
            return _concrete(random_ops.truncated_normal(key, shape, dtype, 0.0, stddev))
        if self.distribution == "untruncated_normal":
            return _concrete(random_ops.normal(key, shape, dtype, 0.0, math.sqrt(variance)))
        limit = math.sqrt(3.0 * variance)
        return _concrete(random_ops.uniform(key, shape, dtype, -limit, limit))

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


class GlorotUniform(VarianceScaling):
    """Uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out))."""

    def __init__(self, seed=None, dtype=dt.float32):
        super().__init__(1.0, "fan_avg", "uniform", seed, dtype)


class GlorotNormal(VarianceScaling):
    """Truncated normal with stddev = sqrt(2 / (fan_in + fan_out)) / 0.8796..."""

    def __init__(self, seed=None, dtype=dt.float32):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed, dtype)


# ---- TensorFlow's lower-case spellings ----------------------------------------------------------

zeros = Zeros
ones = Ones
constant = Constant
random_uniform = RandomUniform
random_normal = RandomNormal
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal


def he_normal(seed=None, dtype=dt.float32) -> VarianceScaling:
    return VarianceScaling(2.0, "fan_in", "truncated_normal", seed, dtype)


def he_uniform(seed=None, dtype=dt.float32) -> VarianceScaling:
    return VarianceScaling(2.0, "fan_in", "uniform", seed, dtype)


def lecun_normal(seed=None, dtype=dt.float32) -> VarianceScaling:
    return VarianceScaling(1.0, "fan_in", "truncated_normal", seed, dtype)


def lecun_uniform(seed=None, dtype=dt.float32) -> VarianceScaling:
    return VarianceScaling(1.0, "fan_in", "uniform", seed, dtype)


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "random_uniform": RandomUniform,
    "random_normal": RandomNormal, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_normal": he_normal, "he_uniform": he_uniform,
    "lecun_normal": lecun_normal, "lecun_uniform": lecun_uniform,
}


def get(identifier) -> Initializer | None:
    """An initializer from a name (``"glorot_uniform"``), a class, or an instance; None
    stays None (the caller picks its default, e.g. get_variable's glorot_uniform)."""
    if identifier is None:
        return None
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    try:
        return _BY_NAME[str(identifier)]()
    except KeyError:
        raise ValueError(f"unknown initializer {identifier!r}; known: "
                         f"{sorted(_BY_NAME)}") from None
