"""Mixed precision (tj.mixed_precision): the policy's casts in the traced program, an MLP
trained under bfloat16 and float16 policies to float32's loss, and dynamic loss scaling
(skipped overflowing steps, backoff and growth, gradients that underflow float16
without it)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit import nn
from tracejit.ir import dtypes as dt
from tracejit.ir import ops


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    tj.mixed_precision.set_global_policy("float32")


def test_products_run_in_16_bits_and_the_rest_in_float32():
    w = tj.Variable(np.ones((4, 3), np.float32))

    def loss(x):
        return tj.reduce_mean(tj.exp(tj.nn.relu(x @ w)))

    with tj.mixed_precision.autocast("mixed_bfloat16"):
        graph = tj.make_ir(loss)(np.ones((2, 4), np.float32))
    (mm,) = [e for e in graph.eqns if e.op is ops.MATMUL]
    assert all(v.dtype is dt.bfloat16 for v in mm.ins + mm.outs)
    (exp,) = [e for e in graph.eqns if e.op is ops.EXP]
    assert exp.ins[0].dtype is dt.float32                      # widened back
    assert graph.inputs[1].dtype is dt.float32                 # the master weight
    assert graph.outputs[0].dtype is dt.float32
    with tj.mixed_precision.autocast("float32"):
        assert all(e.op is not ops.CAST for e in tj.make_ir(loss)(
            np.ones((2, 4), np.float32)).eqns)
    with pytest.raises(ValueError, match="unknown mixed-precision policy 'mixed_int8'"):
        tj.mixed_precision.Policy("mixed_int8")


def _data(seed=0, n=512):
    """A 3-class problem a 2-layer network can fit: labels of a random teacher."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    teacher = rng.normal(size=(16, 3)).astype(np.float32)
    return x, np.argmax(np.tanh(x) @ teacher, axis=1).astype(np.int32)


def _train(policy, steps=120, loss_scale=False):
    tj.mixed_precision.set_global_policy(policy)
    tj.initializers.set_seed(7)
    model = nn.Sequential([nn.Dense(64, activation="relu"), nn.Dense(64, activation="relu"),
                           nn.Dense(3)])
    x, y = _data()
    model(x[:1])
    optimizer = tj.train.AdamOptimizer(0.01)
    if loss_scale:
        optimizer = tj.mixed_precision.LossScaleOptimizer(optimizer, initial_scale=2.0 ** 12)

    @tj.jit
    def step(xb, yb):
        logits = model(xb)
        loss = tj.reduce_mean(nn.sparse_softmax_cross_entropy_with_logits(
            labels=yb, logits=tj.cast(logits, tj.float32)))
        optimizer.minimize(loss, var_list=model.trainable_variables)
        return loss

    losses = [float(step(x[i % 4 * 128:(i % 4 + 1) * 128], y[i % 4 * 128:(i % 4 + 1) * 128]))
              for i in range(steps)]
    assert all(v.dtype is dt.float32 for v in model.variables)
    return np.array(losses), optimizer


def test_an_mlp_trains_to_float32s_loss_under_bfloat16_and_float16():
    def curve(losses):      # the mean loss of each 8 steps in 16: 0.77 down to 0.0008
        return np.array([losses[i:i + 8].mean() for i in range(0, len(losses), 16)])

    baseline = curve(_train("float32")[0])
    bf16 = curve(_train("mixed_bfloat16")[0])
    fp16, optimizer = _train("mixed_float16", loss_scale=True)
    assert baseline[0] > 0.5 and baseline[-1] < 0.002              # it did learn
    # the same curve within 10% (measured: within 4% for both)
    np.testing.assert_allclose(bf16, baseline, rtol=0.1)
    np.testing.assert_allclose(curve(fp16), baseline, rtol=0.1)
    assert float(optimizer.loss_scale.numpy()) == 2.0 ** 12        # never overflowed


def test_an_overflowing_step_is_skipped_and_the_scale_backs_off():
    tj.mixed_precision.set_global_policy("mixed_float16")
    w = tj.Variable(np.full((8, 4), 0.5, np.float32))
    optimizer = tj.mixed_precision.LossScaleOptimizer(
        tj.train.AdamOptimizer(0.1), initial_scale=2.0 ** 20, growth_interval=2)

    @tj.jit
    def step(x):
        loss = tj.reduce_sum(tj.cast(x @ w, tj.float32))
        optimizer.minimize(loss, var_list=[w])
        return loss

    x = np.full((64, 8), 2.0, np.float32)
    # dW = x^T @ (scale * ones) holds 64 * 2 * scale per element: inf in float16 for a
    # scale of 2^9 or more. From 2^20 the scale halves at each skipped step down to 2^8.
    for skipped in range(12):
        step(x)
        assert (w.numpy() == 0.5).all(), skipped                   # nothing applied
        assert float(optimizer.loss_scale.numpy()) == 2.0 ** (19 - skipped)
    assert (optimizer.get_slot(w, "m").numpy() == 0).all()
    assert [float(v.numpy()) for v in optimizer.variables() if "power" in v.name] == \
        pytest.approx([0.9, 0.999])                                 # Adam's step count too
    step(x)               # 2^8 fits: Adam's first step moves w by its rate, 0.1
    np.testing.assert_allclose(w.numpy(), 0.4, rtol=1e-4)
    assert float(optimizer.loss_scale.numpy()) == 2.0 ** 8
    step(x)               # the second finite step in a row: the scale grows to 2^9
    np.testing.assert_allclose(w.numpy(), 0.3, rtol=1e-4)
    assert float(optimizer.loss_scale.numpy()) == 2.0 ** 9
    step(x)               # which overflows again: skipped, back to 2^8
    np.testing.assert_allclose(w.numpy(), 0.3, rtol=1e-4)
    assert float(optimizer.loss_scale.numpy()) == 2.0 ** 8


def test_loss_scaling_rescues_gradients_that_underflow_float16():
    tj.mixed_precision.set_global_policy("mixed_float16")
    x = np.full((4, 8), 1.0, np.float32)

    def gradient(scale):
        w = tj.Variable(np.full((8, 2), 0.25, np.float32))
        optimizer = tj.train.GradientDescentOptimizer(1.0)
        if scale:
            optimizer = tj.mixed_precision.LossScaleOptimizer(optimizer,
                                                              initial_scale=2.0 ** 16)

        @tj.jit
        def grads(xb):
            # a loss this small has float16 cotangents (1e-8) below float16's 6e-8
            loss = tj.reduce_sum(tj.cast(xb @ w, tj.float32)) * 1e-8
            return optimizer.compute_gradients(loss, var_list=[w])[0][0]
        return np.asarray(grads(x))

    assert (gradient(False) == 0).all()
    np.testing.assert_allclose(gradient(True), 4e-8, rtol=2e-3)


def test_docstring_examples():
    import doctest
    import importlib
    for name in ("tracejit.mixed_precision", "tracejit.train.loss_scale"):
        result = doctest.testmod(importlib.import_module(name))
        assert result.attempted and not result.failed, name
