"""Keras-like layers over tracejit Variables, usable eagerly and inside ``@jit``.

A layer creates its Variables on its first call, from the input's shape (kernels with
``glorot_uniform``, biases with zeros, as TensorFlow does), so a model is built by
calling it once, eagerly or while a jitted step is traced. ``training`` is a Python
bool or a bool tensor; it switches Dropout and BatchNorm.

>>> import numpy as np, tracejit as tj
>>> from tracejit import nn
>>> model = nn.Sequential([nn.Conv2D(4, 3, padding="same", activation="relu"),
...                        nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10)])
>>> model(np.zeros((2, 8, 8, 1), np.float32)).shape
(2, 10)
>>> [v.name for v in model.trainable_variables]
['conv2d/kernel', 'conv2d/bias', 'dense/kernel', 'dense/bias']
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict

from .. import initializers
from ..ir import dtypes as dt
from ..trace import math_ops as m
from ..trace import nn_ops
from ..trace.array_ops import reshape
from ..trace.tracing import to_tensor
from ..trace.variables import Variable

__all__ = ["Layer", "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Dropout", "Flatten",
           "BatchNorm", "BatchNormalization", "Activation", "ReLU", "Sequential",
           "MaxPooling2D", "AveragePooling2D"]

_COUNTS: dict[str, itertools.count] = defaultdict(itertools.count)


def _unique(base: str) -> str:
    n = next(_COUNTS[base])
    return base if n == 0 else f"{base}_{n}"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()


def _activation(spec):
    if spec is None or callable(spec):
        return spec
    try:
        return getattr(nn_ops, spec)
    except AttributeError:
        raise ValueError(f"unknown activation {spec!r}") from None


def _two(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


class Layer:
    """Base class: ``build(input_shape)`` makes the Variables, ``call(x, training)`` the
    computation; ``layer(x, training=False)`` does both."""

    def __init__(self, name: str | None = None, dtype=dt.float32):
        self.name = name or _unique(_snake(type(self).__name__))
        self.dtype = dt.as_dtype(dtype)
        self.built = False
        self._variables: list[Variable] = []

    def add_weight(self, name, shape, initializer="zeros", trainable=True) -> Variable:
        init = initializers.get(initializer)
        var = Variable(init(tuple(shape), self.dtype), name=f"{self.name}/{name}",
                       trainable=trainable)
        self._variables.append(var)
        return var

    def build(self, input_shape) -> None:
        pass

    def call(self, x, training=False):
        raise NotImplementedError

    def __call__(self, x, training=False):
        x = to_tensor(x)
        if not self.built:
            self.build(tuple(x.shape))
            self.built = True
        return self.call(x, training)

    @property
    def variables(self) -> list[Variable]:
        return list(self._variables)

    weights = variables

    @property
    def trainable_variables(self) -> list[Variable]:
        return [v for v in self.variables if v.trainable]

    @property
    def non_trainable_variables(self) -> list[Variable]:
        return [v for v in self.variables if not v.trainable]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Dense(Layer):
    """``activation(x @ kernel + bias)`` over the last axis."""

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", name=None,
                 dtype=dt.float32):
        super().__init__(name, dtype)
        self.units, self.use_bias = int(units), use_bias
        self.activation = _activation(activation)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer) \
            if self.use_bias else None

    def call(self, x, training=False):
        lead = x.shape[:-1]
        flat = reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
        y = m.matmul(flat, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        y = reshape(y, lead + (self.units,)) if x.ndim != 2 else y
        return self.activation(y) if self.activation else y


class Conv2D(Layer):
    """A 2-D convolution layer; ``padding`` "valid" (the default) or "same"."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid",
                 data_format="channels_last", dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", name=None,
                 dtype=dt.float32):
        super().__init__(name, dtype)
        self.filters, self.kernel_size = int(filters), _two(kernel_size)
        self.strides, self.padding = _two(strides), padding.upper()
        self.data_format = "NCHW" if data_format == "channels_first" else "NHWC"
        self.dilation_rate, self.use_bias = _two(dilation_rate), use_bias
        self.activation = _activation(activation)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    def build(self, input_shape):
        channels = input_shape[1] if self.data_format == "NCHW" else input_shape[-1]
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels, self.filters),
                                      self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer) \
            if self.use_bias else None

    def call(self, x, training=False):
        y = nn_ops.conv2d(x, self.kernel, self.strides, self.padding, self.data_format,
                          self.dilation_rate)
        if self.bias is not None:
            y = nn_ops.bias_add(y, self.bias, self.data_format)
        return self.activation(y) if self.activation else y


class _Pool(Layer):
    fn = staticmethod(nn_ops.max_pool2d)

    def __init__(self, pool_size=2, strides=None, padding="valid",
                 data_format="channels_last", name=None):
        super().__init__(name)
        self.pool_size = _two(pool_size)
        self.strides = self.pool_size if strides is None else _two(strides)
        self.padding = padding.upper()
        self.data_format = "NCHW" if data_format == "channels_first" else "NHWC"

    def call(self, x, training=False):
        return self.fn(x, self.pool_size, self.strides, self.padding, self.data_format)


class MaxPool2D(_Pool):
    """The maximum of each ``pool_size`` window (strides default to the pool size)."""


class AvgPool2D(_Pool):
    """The mean of each ``pool_size`` window (strides default to the pool size)."""

    fn = staticmethod(nn_ops.avg_pool2d)


class Flatten(Layer):
    def call(self, x, training=False):
        return nn_ops.flatten(x)


class Activation(Layer):
    """An activation as a layer of its own (a name like "relu" or a function): for a
    ``Sequential`` that puts ``BatchNorm`` between a layer and its non-linearity."""

    def __init__(self, activation, name=None):
        super().__init__(name)
        self.activation = _activation(activation)

    def call(self, x, training=False):
        return self.activation(x)


class ReLU(Activation):
    def __init__(self, name=None):
        super().__init__("relu", name)


class Dropout(Layer):
    """``nn.dropout`` while training, the identity otherwise. Keys come from ``key=`` in
    ``layer(x, training, key)`` or from the module-level generator."""

    def __init__(self, rate, noise_shape=None, seed=None, name=None):
        super().__init__(name)
        self.rate, self.noise_shape, self.seed = rate, noise_shape, seed

    def __call__(self, x, training=False, key=None):
        return nn_ops.dropout(x, self.rate, key=key, training=training,
                              noise_shape=self.noise_shape, seed=self.seed)


class BatchNorm(Layer):
    """Batch normalization over every axis but ``axis``. Training uses the batch's
    statistics and moves ``moving_mean``/``moving_variance`` towards them
    (``moving = moving * momentum + batch * (1 - momentum)``, assigned to the Variables);
    inference uses the moving statistics."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", name=None,
                 dtype=dt.float32):
        super().__init__(name, dtype)
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer

    def build(self, input_shape):
        axis = self.axis % len(input_shape)
        self._reduce = [i for i in range(len(input_shape)) if i != axis]
        shape = (input_shape[axis],)
        self._broadcast = tuple(d if i == axis else 1 for i, d in enumerate(input_shape))
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer) \
            if self.scale else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer) \
            if self.center else None
        self.moving_mean = self.add_weight("moving_mean", shape, "zeros", trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape, "ones",
                                               trainable=False)

    def call(self, x, training=False):
        moving = (self.moving_mean.read_value(), self.moving_variance.read_value())
        if training is False:
            mean, variance = moving
        else:
            mean, variance = nn_ops.moments(x, self._reduce)
            rate = 1.0 - self.momentum
            if training is not True:     # a bool tensor: the moving values stay when False
                mean = m.where(to_tensor(training), mean, moving[0])
                variance = m.where(to_tensor(training), variance, moving[1])
            self.moving_mean.assign_sub((moving[0] - mean) * rate)
            self.moving_variance.assign_sub((moving[1] - variance) * rate)
        shaped = [None if t is None else reshape(t, self._broadcast)
                  for t in (mean, variance, self.beta, self.gamma)]
        return nn_ops.batch_normalization(x, *shaped, self.epsilon)


class Sequential(Layer):
    """Layers applied in order; ``training`` (and nothing else) is passed to each."""

    def __init__(self, layers=(), name=None):
        super().__init__(name)
        self.layers = list(layers)

    def add(self, layer: Layer) -> None:
        self.layers.append(layer)

    def call(self, x, training=False):
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    @property
    def variables(self) -> list[Variable]:
        return [v for layer in self.layers for v in layer.variables]

    weights = variables


BatchNormalization = BatchNorm
MaxPooling2D = MaxPool2D
AveragePooling2D = AvgPool2D
