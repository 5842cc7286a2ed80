"""tracejit.nn layers: shapes, variables (names, initializers, trainability), Sequential,
use inside @jit with an optimizer."""

from __future__ import annotations

import numpy as np

import tracejit as tj
from tracejit import nn


def test_dense_and_conv_shapes_and_variables():
    dense = nn.Dense(5, activation="relu")
    y = dense(np.ones((2, 3, 4), np.float32))
    assert y.shape == (2, 3, 5) and (np.asarray(y) >= 0).all()
    assert [v.shape for v in dense.variables] == [(4, 5), (5,)]
    limit = np.sqrt(6 / (4 + 5))                   # glorot_uniform
    assert np.abs(dense.kernel.numpy()).max() <= limit
    np.testing.assert_array_equal(dense.bias.numpy(), 0)
    conv = nn.Conv2D(6, (3, 2), strides=2, padding="same")
    assert conv(np.ones((2, 7, 7, 3), np.float32)).shape == (2, 4, 4, 6)
    assert conv.kernel.shape == (3, 2, 3, 6)
    first = nn.Conv2D(6, 3, data_format="channels_first", use_bias=False)
    assert first(np.ones((2, 3, 7, 7), np.float32)).shape == (2, 6, 5, 5)
    assert len(first.variables) == 1


def test_pools_flatten_dropout():
    x = np.arange(2 * 6 * 6 * 2, dtype=np.float32).reshape(2, 6, 6, 2)
    assert nn.MaxPool2D(2)(x).shape == (2, 3, 3, 2)
    assert nn.AvgPool2D(3, strides=1, padding="same")(x).shape == (2, 6, 6, 2)
    assert nn.Flatten()(x).shape == (2, 72)
    drop = nn.Dropout(0.5)
    np.testing.assert_array_equal(np.asarray(drop(x)), x)              # not training
    assert (np.asarray(drop(x, training=True, key=tj.random.key(0))) == 0).any()


def test_sequential_names_and_trainable_variables():
    model = nn.Sequential([nn.Conv2D(4, 3, padding="same", activation="relu"), nn.BatchNorm(),
                           nn.MaxPool2D(2), nn.Flatten(), nn.Dropout(0.5), nn.Dense(3)])
    assert model(np.zeros((2, 8, 8, 1), np.float32)).shape == (2, 3)
    names = [v.name for v in model.trainable_variables]
    assert len(names) == 6 and names[0].endswith("/kernel") and names[-1].endswith("/bias")
    assert len(model.variables) == 8 and len(model.non_trainable_variables) == 2
    assert model.layers[0].name.startswith("conv2d") and model.layers[1].name.startswith(
        "batch_norm")


def test_layers_built_inside_jit_train_with_an_optimizer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, 6, 1)).astype(np.float32)
    labels = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    model = nn.Sequential([nn.Conv2D(4, 3, activation="relu"), nn.Flatten(),
                           nn.Dropout(0.1), nn.Dense(2)])
    opt = tj.train.AdamOptimizer(0.01)

    @tj.jit
    def step(x, labels):
        logits = model(x, training=True)
        loss = tj.reduce_mean(nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits))
        opt.minimize(loss, var_list=model.trainable_variables)
        return loss

    losses = [float(step(x, labels)) for _ in range(60)]
    assert len(step.compile_log) == 1 and len(model.variables) == 4
    assert losses[-1] < 0.5 * losses[0]


def test_activation_layers_between_batch_norm_and_the_next_layer():
    x = np.linspace(-2, 2, 24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(np.asarray(nn.ReLU()(x)), np.maximum(x, 0))
    np.testing.assert_allclose(np.asarray(nn.Activation("tanh")(x)), np.tanh(x), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(nn.Activation(lambda t: t * 3)(x)), x * 3)
    model = nn.Sequential([nn.Dense(4, use_bias=False), nn.BatchNorm(scale=False), nn.ReLU()])
    y = np.asarray(model(x, training=True))
    assert (y >= 0).all() and len(model.trainable_variables) == 2   # kernel, beta
