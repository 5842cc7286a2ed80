"""``tf.layers``' classes (``Dense``, ``Conv1D/2D/3D``, ``Conv2DTranspose``, pooling,
``Dropout``, ``BatchNormalization``, ``Flatten``) and the functional forms the older
module lacks (``conv1d``, ``conv3d``, ``conv2d_transpose``, 1-D/3-D pooling).

A layer object makes its variables on its first call, in a variable scope numbered as
TensorFlow numbers it (``dense``, ``dense_1``, ...; a ``name`` is numbered too if taken),
and every later call reuses them. Its ``trainable_weights``, ``non_trainable_weights``,
``losses`` (the penalties of its regularizers, also in
``tf.GraphKeys.REGULARIZATION_LOSSES``) and ``updates`` are what its calls made.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     layer = tf.layers.Dense(3, name="fc")
...     x = tf.placeholder(tf.float32, [None, 4])
...     _ = layer(x), layer(x * 2.0)
...     [v.name for v in layer.trainable_weights]
['fc/kernel:0', 'fc/bias:0']
"""

from __future__ import annotations

import re

from ... import initializers as init
from ...ir.errors import ParamError
from ...ir.source import user_location
from ...trace import array_ops, math_ops
from ...trace.nn_ops import conv2d_transpose as conv2d_transpose_core
from .graph import get_default_graph
from .layers import batch_norm_core, dropout_core, flatten, layer_scope
from .ops import graph_op, nn_ops_table, ops
from .variable_scope import get_variable, variable_scope
from .variables import GraphKeys

__all__ = ["AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "BatchNormalization",
           "Conv1D", "Conv2D", "Conv2DTranspose", "Conv3D", "Dense", "Dropout", "Flatten",
           "Layer", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "average_pooling1d",
           "average_pooling3d", "conv1d", "conv2d_transpose", "conv3d", "max_pooling1d",
           "max_pooling3d"]

_nn = nn_ops_table


def _snake_case(name: str) -> str:
    """TensorFlow's default layer names: Conv2DTranspose -> conv2d_transpose."""
    return re.sub(r"([a-z])([A-Z])", r"\1_\2",
                  re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)).lower()


def _unique_object_name(base: str) -> str:
    """``base``, ``base_1``, ... per graph, for layer objects made without a name."""
    counts = get_default_graph().__dict__.setdefault("_layer_object_names", {})
    n = counts.get(base, 0)
    counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _since(graph, key: str, before: int) -> list:
    return graph.get_collection(key)[before:]


class Layer:
    """The base of ``tf.layers``' classes: scope, variables, losses and updates."""

    def __init__(self, trainable=True, name=None, dtype=None, activity_regularizer=None,
                 _scope=None, _reuse=None, **unused):
        self.trainable = trainable
        self._base_name = name or _snake_case(type(self).__name__)
        self.name = name or _unique_object_name(self._base_name)
        self.dtype = dtype
        self.activity_regularizer = activity_regularizer
        self._scope_request, self._reuse = _scope, _reuse
        self._scope = None
        self.built = False
        self._variables: list = []
        self._losses: list = []
        self._updates: list = []

    # ---- what subclasses define -------------------------------------------------------------

    def call(self, inputs, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define call()")

    # ---- calling ----------------------------------------------------------------------------

    def __call__(self, inputs, *args, **kwargs):
        graph = get_default_graph()
        if self._scope is None:
            scope = (variable_scope(self._scope_request, reuse=self._reuse)
                     if self._scope_request is not None
                     else layer_scope(None, self._base_name, self._reuse))
        else:
            scope = variable_scope(self._scope, reuse=True)
        counts = {key: len(graph.get_collection(key)) for key in
                  (GraphKeys.REGULARIZATION_LOSSES, GraphKeys.UPDATE_OPS)}
        known = set(graph.variable_store)
        with scope as opened:
            self._scope = opened
            outputs = self.call(inputs, *args, **kwargs)
            if self.activity_regularizer is not None:
                self._add_activity_loss(graph, outputs)
        if not self.built:
            self._variables = [v for k, v in graph.variable_store.items() if k not in known]
            self.built = True
        self._losses += _since(graph, GraphKeys.REGULARIZATION_LOSSES,
                               counts[GraphKeys.REGULARIZATION_LOSSES])
        self._updates += _since(graph, GraphKeys.UPDATE_OPS, counts[GraphKeys.UPDATE_OPS])
        return outputs

    apply = __call__

    def _add_activity_loss(self, graph, outputs) -> None:
        """The activity penalty divided by the batch size, as Keras-based TF1 layers do."""
        with graph.name_scope("ActivityRegularizer"):
            penalty = self.activity_regularizer(outputs)
            batch = ops["cast"](ops["shape"](outputs)[0], penalty.dtype)
            loss = ops["divide"](penalty, batch)
        graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)

    # ---- what the calls made ----------------------------------------------------------------

    @property
    def scope_name(self) -> str | None:
        return self._scope.name if self._scope is not None else None

    @property
    def variables(self) -> list:
        return list(self._variables)

    weights = variables

    @property
    def trainable_weights(self) -> list:
        return [v for v in self._variables if v.trainable] if self.trainable else []

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self) -> list:
        trainable = self.trainable_weights
        return [v for v in self._variables if v not in trainable]

    non_trainable_variables = non_trainable_weights

    @property
    def losses(self) -> list:
        return list(self._losses)

    @property
    def updates(self) -> list:
        return list(self._updates)

    def __repr__(self) -> str:
        return f"<tf.layers.{type(self).__name__} '{self.name}'>"


# ---- dense and convolutions -------------------------------------------------------------------

def _affine(x, kernel, bias):
    """``x @ kernel + bias`` over the last axis of an input of any rank."""
    flat = array_ops.reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
    y = math_ops.matmul(flat, kernel)
    y = y if bias is None else math_ops.add(y, bias)
    return array_ops.reshape(y, x.shape[:-1] + (y.shape[-1],)) if x.ndim != 2 else y


def _known(inputs, axis: int, what: str) -> int:
    size = inputs.shape.as_list()[axis]
    if size is None:
        raise ParamError(f"the {what} dimension of {inputs.name} must be known, got shape "
                         f"{inputs.shape}", op="tf.layers", location=user_location())
    return size


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` over the last axis."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=init.zeros(), kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 trainable=True, name=None, **kwargs):
        super().__init__(trainable, name, activity_regularizer=activity_regularizer, **kwargs)
        self.units, self.activation, self.use_bias = int(units), activation, use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def call(self, inputs):
        self.kernel = get_variable("kernel", [_known(inputs, -1, "last"), self.units],
                                   initializer=self.kernel_initializer,
                                   regularizer=self.kernel_regularizer,
                                   trainable=self.trainable)
        self.bias = get_variable("bias", [self.units], initializer=self.bias_initializer,
                                 regularizer=self.bias_regularizer,
                                 trainable=self.trainable) if self.use_bias else None
        outputs = graph_op(_affine, "MatMul")(inputs, self.kernel, self.bias, name="BiasAdd")
        return self.activation(outputs) if self.activation is not None else outputs


def _tuple(value, rank: int) -> list[int]:
    return [int(value)] * rank if isinstance(value, int) else [int(v) for v in value]


def _channels_first(data_format) -> bool:
    return data_format in ("channels_first", "NCHW", "NCW", "NCDHW")


def _add_bias(x, bias, channels_first):
    if channels_first:
        return math_ops.add(x, array_ops.reshape(bias, (-1,) + (1,) * (x.ndim - 2)))
    return math_ops.add(x, bias)


class _Conv(Layer):
    """An N-d convolution layer: ``kernel`` [*kernel_size, in, filters], then ``bias``,
    then ``activation``."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid",
                 data_format="channels_last", dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer=None, bias_initializer=init.zeros(),
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, trainable=True, name=None,
                 **kwargs):
        super().__init__(trainable, name, activity_regularizer=activity_regularizer, **kwargs)
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, self.rank)
        self.strides = _tuple(strides, self.rank)
        self.dilation_rate = _tuple(dilation_rate, self.rank)
        self.padding, self.data_format = padding.upper(), data_format
        self.activation, self.use_bias = activation, use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def _kernel_shape(self, channels: int) -> list[int]:
        return self.kernel_size + [channels, self.filters]

    def _convolve(self, inputs, kernel, first: bool):
        fmt = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}[self.rank][first]
        conv = _nn[{1: "conv1d", 2: "conv2d", 3: "conv3d"}[self.rank]]
        return conv(inputs, kernel, self.strides, self.padding, data_format=fmt,
                    dilations=self.dilation_rate)

    def call(self, inputs):
        first = _channels_first(self.data_format)
        channels = _known(inputs, 1 if first else -1, "channel")
        self.kernel = get_variable("kernel", self._kernel_shape(channels),
                                   initializer=self.kernel_initializer,
                                   regularizer=self.kernel_regularizer,
                                   trainable=self.trainable)
        outputs = self._convolve(inputs, self.kernel, first)
        self.bias = None
        if self.use_bias:
            self.bias = get_variable("bias", [self.filters], initializer=self.bias_initializer,
                                     regularizer=self.bias_regularizer,
                                     trainable=self.trainable)
            outputs = graph_op(_add_bias, "BiasAdd")(outputs, self.bias, first)
        return self.activation(outputs) if self.activation is not None else outputs


class Conv1D(_Conv):
    rank = 1


class Conv2D(_Conv):
    rank = 2


class Conv3D(_Conv):
    rank = 3


def _transposed_size(size: int, kernel: int, stride: int, padding: str) -> int:
    return size * stride if padding == "SAME" else (size - 1) * stride + kernel


class Conv2DTranspose(_Conv):
    """The transposed 2-D convolution: ``kernel`` [kh, kw, filters, in]; the output is
    ``strides`` times larger ('same'), or that plus ``kernel - stride`` ('valid')."""

    rank = 2

    def _kernel_shape(self, channels: int) -> list[int]:
        return self.kernel_size + [self.filters, channels]

    def _convolve(self, inputs, kernel, first: bool):
        layer = self

        def transposed(x, w):
            h, wd = (x.shape[2], x.shape[3]) if first else (x.shape[1], x.shape[2])
            oh, ow = (_transposed_size(s, k, st, layer.padding) for s, k, st in
                      zip((h, wd), layer.kernel_size, layer.strides, strict=True))
            shape = [x.shape[0], layer.filters, oh, ow] if first else \
                [x.shape[0], oh, ow, layer.filters]
            return conv2d_transpose_core(x, w, shape, layer.strides, layer.padding,
                        "NCHW" if first else "NHWC")
        return graph_op(transposed, "Conv2DBackpropInput")(inputs, kernel)


# ---- pooling, dropout, flatten, batch normalization -------------------------------------------

class _Pooling(Layer):
    rank, kind = 2, "max"

    def __init__(self, pool_size, strides, padding="valid", data_format="channels_last",
                 name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.pool_size, self.strides = _tuple(pool_size, self.rank), _tuple(strides, self.rank)
        self.padding, self.data_format = padding.upper(), data_format

    def call(self, inputs):
        first = _channels_first(self.data_format)
        fmt = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}[self.rank][first]
        pool = _nn[f"{self.kind}_pool{self.rank}d"]
        return pool(inputs, self.pool_size, self.strides, self.padding, data_format=fmt)


def _pooling_class(name: str, rank: int, kind: str):
    doc = f"{'Max' if kind == 'max' else 'Average'} pooling over {rank} spatial axes."
    return type(name, (_Pooling,), {"rank": rank, "kind": kind, "__doc__": doc,
                                    "__module__": __name__})


MaxPooling1D = _pooling_class("MaxPooling1D", 1, "max")
MaxPooling2D = _pooling_class("MaxPooling2D", 2, "max")
MaxPooling3D = _pooling_class("MaxPooling3D", 3, "max")
AveragePooling1D = _pooling_class("AveragePooling1D", 1, "avg")
AveragePooling2D = _pooling_class("AveragePooling2D", 2, "avg")
AveragePooling3D = _pooling_class("AveragePooling3D", 3, "avg")


class Dropout(Layer):
    """Zeroes ``rate`` of the inputs (scaling the rest) when called with
    ``training=True`` (a bool or a bool tensor); the identity otherwise."""

    def __init__(self, rate=0.5, noise_shape=None, seed=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.rate, self.noise_shape, self.seed = rate, noise_shape, seed

    def call(self, inputs, training=False):
        return dropout_core(inputs, rate=self.rate, training=training,
                            noise_shape=self.noise_shape, seed=self.seed)


class Flatten(Layer):
    """[batch, ...] -> [batch, everything else] (in channels-last order)."""

    def __init__(self, data_format="channels_last", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.data_format = data_format

    def call(self, inputs):
        return flatten(inputs, data_format=self.data_format)


class BatchNormalization(Layer):
    """Batch normalization; called with ``training=True`` it uses the batch's moments and
    adds the moving-average updates to ``updates`` and ``tf.GraphKeys.UPDATE_OPS``."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer=init.zeros(), gamma_initializer=init.ones(),
                 moving_mean_initializer=init.zeros(), moving_variance_initializer=init.ones(),
                 beta_regularizer=None, gamma_regularizer=None, trainable=True, name=None,
                 **kwargs):
        super().__init__(trainable, name, **kwargs)
        self.axis, self.momentum, self.epsilon = axis, momentum, epsilon
        self.center, self.scale = center, scale
        self._initializers = {"beta": beta_initializer, "gamma": gamma_initializer,
                              "moving_mean": moving_mean_initializer,
                              "moving_variance": moving_variance_initializer}
        self._regularizers = {"beta": beta_regularizer, "gamma": gamma_regularizer}

    def call(self, inputs, training=False):
        return batch_norm_core(inputs, self.axis, self.momentum, self.center, self.scale,
                               self.epsilon, training, GraphKeys.UPDATE_OPS, self.trainable,
                               self._initializers, self._regularizers, gamma_first=True)


# ---- functional forms the older module lacks --------------------------------------------------

def _functional(cls, default_name):
    def layer(inputs, *args, name=None, reuse=None, training=None, **kwargs):
        made = cls(*args, name=name or default_name, _scope=name, _reuse=reuse, **kwargs)
        return made(inputs) if training is None else made(inputs, training=training)
    layer.__name__ = default_name
    layer.__doc__ = f"The functional form of ``tf.layers.{cls.__name__}``."
    return layer


conv1d = _functional(Conv1D, "conv1d")
conv3d = _functional(Conv3D, "conv3d")
conv2d_transpose = _functional(Conv2DTranspose, "conv2d_transpose")
max_pooling1d = _functional(MaxPooling1D, "max_pooling1d")
max_pooling3d = _functional(MaxPooling3D, "max_pooling3d")
average_pooling1d = _functional(AveragePooling1D, "average_pooling1d")
average_pooling3d = _functional(AveragePooling3D, "average_pooling3d")
