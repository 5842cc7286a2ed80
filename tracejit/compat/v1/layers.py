"""``tf.layers`` (TF 1.x's functional layers), and the pieces ``tf.contrib.layers`` shares.

Each layer opens a variable scope named like TensorFlow's (``conv2d``, ``conv2d_1``, ...;
``dense``; ``batch_normalization``), makes its variables with ``tf.get_variable`` (so
``reuse`` and ``variable_scope`` work as in TF), and records ordinary graph ops.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None, 8, 8, 1])
...     y = tf.layers.dense(tf.layers.flatten(tf.layers.conv2d(x, 4, 3)), 10)
...     [v.name for v in tf.trainable_variables()]
['conv2d/kernel:0', 'conv2d/bias:0', 'dense/kernel:0', 'dense/bias:0']
"""

from __future__ import annotations

from ... import initializers as init
from ...ir import dtypes as dt
from ...trace import array_ops, math_ops, nn_ops
from .graph import get_default_graph
from .ops import graph_op, nn_ops_table, op_seed_of, ops, rng_counter
from .variable_scope import get_variable, unique_scope_name, variable_scope
from .variables import GraphKeys

__all__ = ["conv2d", "dense", "max_pooling2d", "average_pooling2d", "dropout", "flatten",
           "batch_normalization"]

_nn = nn_ops_table


# ---- scopes ---------------------------------------------------------------------------------

def layer_scope(scope, default_name: str, reuse=None):
    """``variable_scope(scope)``, or a fresh ``default_name`` (``Conv``, ``Conv_1``, ...)
    numbered per enclosing scope, as TensorFlow numbers layers created without a name."""
    if scope is None:
        scope = unique_scope_name(default_name, reuse)
    return variable_scope(scope, reuse=reuse)


def _channels_first(data_format) -> bool:
    return data_format in ("NCHW", "channels_first")


def _pair(value) -> list[int]:
    return [int(value)] * 2 if isinstance(value, int) else [int(v) for v in value]


# ---- shared cores ---------------------------------------------------------------------------

def _dense(x, kernel):
    """``x @ kernel`` over the last axis of an input of any rank."""
    x = array_ops.reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
    return math_ops.matmul(x, kernel)


def _unflatten(y, x):
    return array_ops.reshape(y, x.shape[:-1] + (y.shape[-1],)) if x.ndim != 2 else y


def conv_core(inputs, num_outputs, kernel_size, strides, padding, data_format, dilations,
              activation, weights_initializer, biases_initializer, weights_regularizer,
              biases_regularizer, trainable, names, normalizer=None):
    """The variables and ops of a 2-D convolution layer, inside the caller's scope."""
    first = _channels_first(data_format)
    channels = inputs.shape.as_list()[1 if first else -1]
    if channels is None:
        raise ValueError(f"the channel dimension of {inputs.name} must be known, got shape "
                         f"{inputs.shape}")
    fmt = "NCHW" if first else "NHWC"
    kernel = get_variable(names[0], _pair(kernel_size) + [channels, num_outputs],
                          initializer=weights_initializer, regularizer=weights_regularizer,
                          trainable=trainable)
    outputs = _nn["conv2d"](inputs, kernel, strides=_pair(strides), padding=padding.upper(),
                            data_format=fmt, dilations=_pair(dilations))
    if normalizer is not None:
        outputs = normalizer(outputs)
    elif biases_initializer is not None:
        bias = get_variable(names[1], [num_outputs], initializer=biases_initializer,
                            regularizer=biases_regularizer, trainable=trainable)
        outputs = _nn["bias_add"](outputs, bias, data_format=fmt)
    return activation(outputs) if activation is not None else outputs


def dense_core(inputs, units, activation, weights_initializer, biases_initializer,
               weights_regularizer, biases_regularizer, trainable, names, normalizer=None):
    """The variables and ops of a fully connected layer over the last axis."""
    features = inputs.shape.as_list()[-1]
    if features is None:
        raise ValueError(f"the last dimension of {inputs.name} must be known, got shape "
                         f"{inputs.shape}")
    kernel = get_variable(names[0], [features, units], initializer=weights_initializer,
                          regularizer=weights_regularizer, trainable=trainable)
    outputs = graph_op(_dense, "MatMul")(inputs, kernel)
    if normalizer is not None:
        outputs = normalizer(outputs)
    elif biases_initializer is not None:
        bias = get_variable(names[1], [units], initializer=biases_initializer,
                            regularizer=biases_regularizer, trainable=trainable)
        outputs = _nn["bias_add"](outputs, bias)
    if inputs.shape.ndims != 2:
        outputs = graph_op(_unflatten, "Reshape")(outputs, inputs)
    return activation(outputs) if activation is not None else outputs


def dropout_core(inputs, rate=None, keep_prob=None, training=True, noise_shape=None, seed=None,
                 name=None):
    """Dropout whose mask changes on every ``Session.run`` (a key per run from the graph's
    random counter and the op's seed); ``training`` and ``keep_prob`` may be tensors."""
    if training is False:
        return ops["identity"](inputs, name=name)
    graph = get_default_graph()
    counter = rng_counter(graph)
    op_seed = op_seed_of(graph, seed)

    def draw(x, rate, keep_prob, training):
        count = counter.read_value()
        counter.assign(count + 1)
        key = array_ops.stack([math_ops.cast(op_seed, dt.int32), count])
        return nn_ops.dropout(x, rate, key=key, training=training, noise_shape=noise_shape,
                              keep_prob=keep_prob)

    return graph.create_op("Dropout", draw, (inputs, rate, keep_prob, training),
                           name=name or "dropout").structured_outputs()


def _bn_apply(x, mean, variance, beta, gamma, axis, epsilon):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    stats = [None if t is None else array_ops.reshape(t, shape)
             for t in (mean, variance, beta, gamma)]
    return nn_ops.batch_normalization(x, *stats, epsilon)


def batch_norm_core(inputs, axis, decay, center, scale, epsilon, training,
                    updates_collections, trainable, initializers=None, regularizers=None,
                    gamma_first=False):
    """Batch normalization's variables (``beta``, ``gamma``, ``moving_mean``,
    ``moving_variance``) and ops. While training the output uses the batch's moments and
    ``moving -= (moving - batch) * (1 - decay)`` is recorded: in ``updates_collections``
    (run them, e.g. as control dependencies of the train op) or, if that is None, as a
    control dependency of the output."""
    initializers, regularizers = initializers or {}, regularizers or {}
    ndim = inputs.shape.ndims
    axis = axis % ndim
    params_shape = [inputs.shape.as_list()[axis]]

    def variable(name, default, trainable):
        return get_variable(name, params_shape, initializer=initializers.get(name, default),
                            regularizer=regularizers.get(name), trainable=trainable)

    made = {}
    for name in ("gamma", "beta") if gamma_first else ("beta", "gamma"):   # TF's orders
        wanted = scale if name == "gamma" else center
        default = init.ones() if name == "gamma" else init.zeros()
        made[name] = variable(name, default, trainable) if wanted else None
    beta, gamma = made["beta"], made["gamma"]
    moving_mean = variable("moving_mean", init.zeros(), False)
    moving_variance = variable("moving_variance", init.ones(), False)
    apply = graph_op(_bn_apply, "FusedBatchNorm")
    if training is False:
        return apply(inputs, moving_mean, moving_variance, beta, gamma, axis, epsilon)
    mean, variance = _nn["moments"](inputs, [i for i in range(ndim) if i != axis])
    if training is not True:           # a bool tensor: moving statistics when False
        mean = ops["where"](training, mean, moving_mean)
        variance = ops["where"](training, variance, moving_variance)
    outputs = apply(inputs, mean, variance, beta, gamma, axis, epsilon)
    updates = [moving.assign_sub((moving - batch) * (1.0 - decay))
               for moving, batch in ((moving_mean, mean), (moving_variance, variance))]
    graph = get_default_graph()
    if updates_collections is None:
        with graph.control_dependencies(updates):
            return ops["identity"](outputs)
    for update in updates:
        graph.add_to_collection(updates_collections, update)
    return outputs


# ---- tf.layers ------------------------------------------------------------------------------

def conv2d(inputs, filters, kernel_size, strides=(1, 1), padding="valid",
           data_format="channels_last", dilation_rate=(1, 1), activation=None, use_bias=True,
           kernel_initializer=None, bias_initializer=init.zeros(), kernel_regularizer=None,
           bias_regularizer=None, trainable=True, name=None, reuse=None, **unused):
    with layer_scope(name, "conv2d", reuse):
        return conv_core(inputs, filters, kernel_size, strides, padding, data_format,
                         dilation_rate, activation, kernel_initializer,
                         bias_initializer if use_bias else None, kernel_regularizer,
                         bias_regularizer, trainable, ("kernel", "bias"))


def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None,
          bias_initializer=init.zeros(), kernel_regularizer=None, bias_regularizer=None,
          trainable=True, name=None, reuse=None, **unused):
    with layer_scope(name, "dense", reuse):
        return dense_core(inputs, units, activation, kernel_initializer,
                          bias_initializer if use_bias else None, kernel_regularizer,
                          bias_regularizer, trainable, ("kernel", "bias"))


def _pooling(kind, default_name):
    def layer(inputs, pool_size, strides, padding="valid", data_format="channels_last",
              name=None):
        return _nn[kind](inputs, _pair(pool_size), _pair(strides), padding.upper(),
                         "NCHW" if _channels_first(data_format) else "NHWC",
                         name=name or default_name)
    layer.__name__ = default_name
    return layer


max_pooling2d = _pooling("max_pool2d", "max_pooling2d")
average_pooling2d = _pooling("avg_pool2d", "average_pooling2d")


def dropout(inputs, rate=0.5, noise_shape=None, seed=None, training=False, name=None):
    """Note TF's default: ``training=False`` (the identity) unless asked."""
    return dropout_core(inputs, rate=rate, training=training, noise_shape=noise_shape,
                        seed=seed, name=name)


def _flatten(x, channels_first):
    if channels_first and x.ndim > 2:          # flatten in channels-last order, as TF
        x = array_ops.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))
    return nn_ops.flatten(x)


def flatten(inputs, name=None, data_format="channels_last"):
    return graph_op(_flatten, "Flatten")(inputs, _channels_first(data_format),
                                         name=name or "flatten")


def batch_normalization(inputs, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                        beta_initializer=init.zeros(), gamma_initializer=init.ones(),
                        moving_mean_initializer=init.zeros(),
                        moving_variance_initializer=init.ones(), beta_regularizer=None,
                        gamma_regularizer=None, training=False, trainable=True, name=None,
                        reuse=None, **unused):
    """Updates of the moving statistics go to ``tf.GraphKeys.UPDATE_OPS``, as in TF."""
    initializers = {"beta": beta_initializer, "gamma": gamma_initializer,
                    "moving_mean": moving_mean_initializer,
                    "moving_variance": moving_variance_initializer}
    regularizers = {"beta": beta_regularizer, "gamma": gamma_regularizer}
    with layer_scope(name, "batch_normalization", reuse):
        return batch_norm_core(inputs, axis, momentum, center, scale, epsilon, training,
                               GraphKeys.UPDATE_OPS, trainable, initializers, regularizers,
                               gamma_first=True)
