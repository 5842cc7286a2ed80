"""moments, batch_normalization, the BatchNorm layer (training and inference), and dropout
(statistics, determinism per key, the training switch, the stateful default generator)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit import nn


def test_moments_and_batch_normalization():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(4, 3, 3, 5))
    mean, var = nn.moments(x, [0, 1, 2])
    np.testing.assert_allclose(np.asarray(mean), x.mean((0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(var), x.var((0, 1, 2)), rtol=1e-12)
    kept = nn.moments(x, [0, 1, 2], keep_dims=True)[0]
    assert kept.shape == (1, 1, 1, 5)
    half = nn.moments(x.astype(np.float16), [0])[1]
    assert half.dtype == tj.float16
    offset, scale = rng.normal(size=5), rng.normal(size=5)
    y = nn.batch_normalization(x, mean, var, offset, scale, 1e-3)
    want = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-3) * scale + offset
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-10)
    plain = nn.batch_normalization(x, mean, var, None, None, 0.0)
    np.testing.assert_allclose(np.asarray(plain).mean((0, 1, 2)), 0, atol=1e-12)


def test_batch_norm_gradient_matches_finite_differences():
    from .reference import numeric_gradient
    rng = np.random.default_rng(1)
    x, r = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    beta, gamma = rng.normal(size=3), rng.normal(size=3)

    def f(x, beta, gamma):
        mean, var = nn.moments(x, [0])
        return tj.reduce_sum(nn.batch_normalization(x, mean, var, beta, gamma, 1e-3) * r)

    grads = tj.grad(f, argnums=(0, 1, 2))(x, beta, gamma)
    args = [x, beta, gamma]
    for i, got in enumerate(grads):
        def along(v, i=i):
            return float(f(*args[:i], v, *args[i + 1:]))
        np.testing.assert_allclose(np.asarray(got), numeric_gradient(along, args[i]),
                                   rtol=1e-6, atol=1e-8)
    # no offset or scale: the plain normalization
    plain = tj.grad(lambda x: tj.reduce_sum(nn.batch_normalization(
        x, *nn.moments(x, [0]), None, None, 1e-3) * r))(x)
    np.testing.assert_allclose(np.asarray(plain), numeric_gradient(
        lambda v: float(np.sum((v - v.mean(0)) / np.sqrt(v.var(0) + 1e-3) * r)), x),
        rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("use_jit", [False, True])
def test_batch_norm_layer_training_and_inference(use_jit):
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 2.0, size=(16, 4)).astype(np.float32)
    layer = nn.BatchNorm(momentum=0.9)
    run = tj.jit(lambda x: layer(x, training=True)) if use_jit else \
        (lambda x: layer(x, training=True))
    y = np.asarray(run(x))
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(0), x.var(0) / (x.var(0) + 1e-3), rtol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * x.var(0),
                               rtol=1e-5)
    run(x)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.19 * x.mean(0), rtol=1e-5)
    infer = layer(x, training=False)      # moving statistics; nothing moves
    mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    np.testing.assert_allclose(np.asarray(infer), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)
    assert [v.name for v in layer.trainable_variables] == [f"{layer.name}/gamma",
                                                           f"{layer.name}/beta"]
    assert len(layer.non_trainable_variables) == 2


def test_batch_norm_layer_with_a_tensor_switch():
    x = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    layer = nn.BatchNorm(momentum=0.5, center=False, scale=False)
    step = tj.jit(lambda x, training: layer(x, training=training))
    step(x, np.bool_(False))
    np.testing.assert_array_equal(layer.moving_mean.numpy(), [0, 0])
    step(x, np.bool_(True))
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * x.mean(0))


def test_dropout_statistics_and_scaling():
    x = np.ones((200, 500), np.float32)
    y = np.asarray(nn.dropout(x, rate=0.3, key=tj.random.key(1)))
    assert abs((y == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(np.unique(y), [0, 1 / 0.7], rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02
    z = np.asarray(nn.dropout(x, keep_prob=tj.constant(np.float32(0.8)),
                              key=tj.random.key(1)))
    assert abs((z == 0).mean() - 0.2) < 0.01 and abs(z.max() - 1.25) < 1e-6
    shared = np.asarray(nn.dropout(x, 0.5, key=tj.random.key(2), noise_shape=(200, 1)))
    assert all(len(np.unique(row)) == 1 for row in shared)       # one decision per row


def test_dropout_is_deterministic_per_key_and_differs_across_keys():
    x = np.ones((64, 64), np.float32)
    a = np.asarray(nn.dropout(x, 0.5, key=tj.random.key(7)))
    b = np.asarray(tj.jit(lambda x, k: nn.dropout(x, 0.5, key=k))(x, tj.random.key(7)))
    np.testing.assert_array_equal(a, b)
    c = np.asarray(nn.dropout(x, 0.5, key=tj.random.key(8)))
    assert (a != c).any()


def test_dropout_training_switch_and_identity_cases():
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(np.asarray(nn.dropout(x, 0.5, training=False)), x)
    np.testing.assert_array_equal(np.asarray(nn.dropout(x, 0.0)), x)
    off = tj.jit(lambda x, t: nn.dropout(x, 0.5, key=tj.random.key(0), training=t))
    np.testing.assert_array_equal(np.asarray(off(x, np.bool_(False))), x)
    assert (np.asarray(off(np.ones((50, 50), np.float32), np.bool_(True))) == 0).any()
    with pytest.raises(tj.ParamError, match="keep probability"):
        nn.dropout(x, rate=1.0)
    with pytest.raises(tj.ParamError, match="exactly one"):
        nn.dropout(x)


def test_dropout_without_a_key_advances_the_module_generator_under_jit():
    x = np.ones((32, 32), np.float32)
    step = tj.jit(lambda x: nn.dropout(x, 0.5))
    nn.set_dropout_seed(3)
    first, second = np.asarray(step(x)), np.asarray(step(x))
    assert (first != second).any() and len(step.compile_log) == 1
    nn.set_dropout_seed(3)
    np.testing.assert_array_equal(np.asarray(step(x)), first)
    # two dropouts in one trace get different masks
    both = tj.jit(lambda x: (nn.dropout(x, 0.5), nn.dropout(x, 0.5)))(x)
    assert (np.asarray(both[0]) != np.asarray(both[1])).any()


def test_dropout_mask_fuses_into_its_neighbours():
    """Only the random bits are their own op; the compare, the select and the scaling
    join the elementwise kernel of what comes before and after."""
    from tracejit.codegen_cpu.pipeline import CPU_PASSES
    from tracejit.passes import optimize
    from tracejit.trace.jit import make_ir

    def layer(x, key):
        return nn.dropout(nn.relu(x) * 2.0, 0.5, key=key) + 1.0

    x = np.ones((64, 32), np.float32)
    graph = optimize(make_ir(layer)(x, tj.random.key(0)), device_passes=CPU_PASSES)
    assert [e.op.name for e in graph.eqns] == ["random_bits", "kernel"]
    body = [e.op.name for e in graph.eqns[1].params["body"].eqns]
    assert {"relu", "less", "select", "add"} <= set(body), body
