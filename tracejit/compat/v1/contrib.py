"""``tf.contrib.layers``: the layers of the 2016 slides' TF1 code.

Variables are made with ``tf.get_variable`` under the scope TensorFlow uses:
``Conv/weights``, ``Conv/biases``, then ``Conv_1/...``; ``fully_connected/weights``;
``BatchNorm/beta``, ``BatchNorm/moving_mean``, ... (or under ``scope=``, with ``reuse``).

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None, 8, 8, 1])
...     h = tf.contrib.layers.max_pool2d(tf.contrib.layers.conv2d(x, 32, [3, 3]), [2, 2])
...     y = tf.contrib.layers.linear(tf.contrib.layers.flatten(h), 10)
...     [v.name for v in tf.trainable_variables()], y.shape.as_list()
(['Conv/weights:0', 'Conv/biases:0', 'fully_connected/weights:0', \
'fully_connected/biases:0'], [None, 10])
"""

from __future__ import annotations

import types

from ... import initializers as init
from . import arg_scope as arg_scopes
from .arg_scope import add_arg_scope
from .layers import batch_norm_core, conv_core, dense_core, dropout_core, layer_scope
from .layers import flatten as _layers_flatten
from .ops import nn_ops_table
from .regularizers import (
    apply_regularization,
    l1_l2_regularizer,
    l1_regularizer,
    l2_regularizer,
    sum_regularizer,
)
from .rnn import contrib_rnn as rnn  # noqa: F401  (tf.contrib.rnn)
from .seq2seq import legacy_seq2seq, seq2seq  # noqa: F401
from .variable_scope import variable_scope
from .variables import GraphKeys

__all__ = ["conv2d", "convolution2d", "max_pool2d", "avg_pool2d", "fully_connected", "linear",
           "dropout", "flatten", "batch_norm", "xavier_initializer",
           "xavier_initializer_conv2d", "variance_scaling_initializer", "l2_regularizer",
           "layers"]

_nn = nn_ops_table


def xavier_initializer(uniform=True, seed=None, dtype=None):
    """Glorot (Xavier) initialization: uniform in ±sqrt(6 / (fan_in + fan_out)), or a
    truncated normal of the same variance."""
    kwargs = {} if dtype is None else {"dtype": dtype}
    return init.GlorotUniform(seed, **kwargs) if uniform else init.GlorotNormal(seed, **kwargs)


xavier_initializer_conv2d = xavier_initializer


def variance_scaling_initializer(factor=2.0, mode="FAN_IN", uniform=False, seed=None,
                                 dtype=None):
    """contrib's He-style initializer (its defaults differ from tf's)."""
    kwargs = {} if dtype is None else {"dtype": dtype}
    return init.VarianceScaling(factor, mode.lower(),
                                "uniform" if uniform else "truncated_normal", seed, **kwargs)


def _normalizer(normalizer_fn, normalizer_params):
    if normalizer_fn is None:
        return None
    return lambda x: normalizer_fn(x, **(normalizer_params or {}))


@add_arg_scope
def conv2d(inputs, num_outputs, kernel_size, stride=1, padding="SAME", data_format=None,
           rate=1, activation_fn=_nn["relu"], normalizer_fn=None, normalizer_params=None,
           weights_initializer=None, weights_regularizer=None,
           biases_initializer=init.zeros(), biases_regularizer=None, reuse=None,
           variables_collections=None, outputs_collections=None, trainable=True, scope=None):
    """A convolution (``weights`` [kh, kw, in, num_outputs], Xavier-initialized), then
    ``biases`` (or ``normalizer_fn``), then ``activation_fn``."""
    with layer_scope(scope, "Conv", reuse):
        return conv_core(inputs, num_outputs, kernel_size, stride, padding, data_format, rate,
                         activation_fn, weights_initializer or xavier_initializer(),
                         biases_initializer, weights_regularizer, biases_regularizer,
                         trainable, ("weights", "biases"),
                         _normalizer(normalizer_fn, normalizer_params))


convolution2d = conv2d


def _pool(kind, default_name):
    def pool(inputs, kernel_size, stride=2, padding="VALID", data_format="NHWC",
             outputs_collections=None, scope=None):
        k = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
        s = [stride] * 2 if isinstance(stride, int) else list(stride)
        return _nn[kind](inputs, k, s, padding.upper(), data_format,
                         name=scope or default_name)
    pool.__name__ = kind
    pool.__doc__ = f"``{kind}`` with a ``kernel_size`` window, ``stride`` 2 by default."
    return pool


max_pool2d = add_arg_scope(_pool("max_pool2d", "MaxPool2D"))
avg_pool2d = add_arg_scope(_pool("avg_pool2d", "AvgPool2D"))


@add_arg_scope
def fully_connected(inputs, num_outputs, activation_fn=_nn["relu"], normalizer_fn=None,
                    normalizer_params=None, weights_initializer=None, weights_regularizer=None,
                    biases_initializer=init.zeros(), biases_regularizer=None, reuse=None,
                    variables_collections=None, outputs_collections=None, trainable=True,
                    scope=None):
    """``activation_fn(inputs @ weights + biases)`` over the last axis."""
    with layer_scope(scope, "fully_connected", reuse):
        return dense_core(inputs, num_outputs, activation_fn,
                          weights_initializer or xavier_initializer(), biases_initializer,
                          weights_regularizer, biases_regularizer, trainable,
                          ("weights", "biases"), _normalizer(normalizer_fn, normalizer_params))


def linear(inputs, num_outputs, **kwargs):
    """``fully_connected`` without an activation."""
    return fully_connected(inputs, num_outputs, activation_fn=None, **kwargs)


@add_arg_scope
def dropout(inputs, keep_prob=0.5, noise_shape=None, is_training=True, outputs_collections=None,
            scope=None, seed=None):
    """Keep each element with probability ``keep_prob`` (a number or a tensor) and scale
    it by 1 / keep_prob while ``is_training`` (a bool or a bool tensor)."""
    return dropout_core(inputs, keep_prob=keep_prob, training=is_training,
                        noise_shape=noise_shape, seed=seed, name=scope or "Dropout")


@add_arg_scope
def flatten(inputs, outputs_collections=None, scope=None):
    """[batch, ...] -> [batch, k]."""
    return _layers_flatten(inputs, name=scope or "Flatten")


@add_arg_scope
def batch_norm(inputs, decay=0.999, center=True, scale=False, epsilon=0.001, activation_fn=None,
               param_initializers=None, param_regularizers=None,
               updates_collections=GraphKeys.UPDATE_OPS, is_training=True, reuse=None,
               variables_collections=None, outputs_collections=None, trainable=True,
               data_format="NHWC", scope=None, **unused):
    """Batch normalization over every axis but the channels. ``updates_collections=None``
    makes the output wait for the moving-average updates; by default they go to
    ``tf.GraphKeys.UPDATE_OPS`` for the train op to depend on. The moving variance is
    updated with the batch's biased variance."""
    axis = 1 if data_format in ("NCHW", "channels_first") else -1
    with layer_scope(scope, "BatchNorm", reuse):
        outputs = batch_norm_core(inputs, axis, decay, center, scale, epsilon, is_training,
                                  updates_collections, trainable, param_initializers,
                                  param_regularizers)
    return activation_fn(outputs) if activation_fn is not None else outputs


def _training():
    from .train import GreedyLoadBalancingStrategy, byte_size_load_fn
    return types.SimpleNamespace(GreedyLoadBalancingStrategy=GreedyLoadBalancingStrategy,
                                 byte_size_load_fn=byte_size_load_fn)


def __getattr__(name: str):
    # NOTE: tf.contrib.training needs train.py, which imports this module's neighbours
    if name == "training":
        return _training()
    if name == "lookup":
        from .lookup_ops import contrib_lookup
        return contrib_lookup
    raise AttributeError(f"module 'tf.contrib' has no attribute {name!r}")


def repeat(inputs, repetitions, layer, *args, **kwargs):
    """``layer`` applied ``repetitions`` times, in scopes ``<scope>/<scope>_1``, ``_2``..."""
    scope = kwargs.pop("scope", None)
    with variable_scope(scope, "Repeat"):
        scope = scope or getattr(layer, "__name__", None) or \
            getattr(getattr(layer, "func", None), "__name__", "repeat")
        outputs = inputs
        for i in range(repetitions):
            outputs = layer(outputs, *args, **{**kwargs, "scope": f"{scope}_{i + 1}"})
        return outputs


def stack(inputs, layer, stack_args, **kwargs):
    """``layer`` applied once per entry of ``stack_args`` (a tuple is spread as
    positional arguments), in scopes ``<scope>/<scope>_1``, ``_2``..."""
    scope = kwargs.pop("scope", None)
    with variable_scope(scope, "Stack"):
        scope = scope or getattr(layer, "__name__", None) or \
            getattr(getattr(layer, "func", None), "__name__", "stack")
        outputs = inputs
        for i, arg in enumerate(stack_args):
            extra = arg if isinstance(arg, (list, tuple)) else (arg,)
            outputs = layer(outputs, *extra, **{**kwargs, "scope": f"{scope}_{i + 1}"})
        return outputs


framework = types.SimpleNamespace(
    arg_scope=arg_scopes.arg_scope, add_arg_scope=add_arg_scope,
    has_arg_scope=arg_scopes.has_arg_scope,
    arg_scoped_arguments=arg_scopes.arg_scoped_arguments,
    current_arg_scope=arg_scopes.current_arg_scope)
layers = types.SimpleNamespace(
    conv2d=conv2d, convolution2d=convolution2d, max_pool2d=max_pool2d, avg_pool2d=avg_pool2d,
    fully_connected=fully_connected, linear=linear, dropout=dropout, flatten=flatten,
    batch_norm=batch_norm, xavier_initializer=xavier_initializer,
    xavier_initializer_conv2d=xavier_initializer_conv2d,
    variance_scaling_initializer=variance_scaling_initializer, l2_regularizer=l2_regularizer,
    l1_regularizer=l1_regularizer, l1_l2_regularizer=l1_l2_regularizer,
    sum_regularizer=sum_regularizer, apply_regularization=apply_regularization,
    arg_scope=arg_scopes.arg_scope, repeat=repeat, stack=stack)
# tf.contrib.slim: the layers, regularizers and arg_scope under one name
slim = types.SimpleNamespace(**vars(layers), **{k: v for k, v in vars(framework).items()
                                                if k != "arg_scope"})
