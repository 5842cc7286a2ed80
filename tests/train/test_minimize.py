"""compute_gradients / minimize inside @jit and eagerly, and training runs that converge."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit import train
from tracejit.ir.errors import DTypeError, TracejitError

TARGET = np.array([0.5, -1.0, 2.0], np.float32)
SCALE = np.array([1.0, 2.0, 0.5], np.float32)


def _elementwise_loss(w):
    # NOTE: a non-scalar loss: TF sums it before differentiating, so this needs no
    # reduction's gradient. d/dw = 2 * SCALE * (w - TARGET).
    return tj.square(w - TARGET) * SCALE


def _analytic_grad(w):
    return 2 * SCALE * (w - TARGET)


def test_minimize_in_jit_updates_trainable_float_variables_only():
    w = tj.Variable(np.zeros(3, np.float32), name="w")
    frozen = tj.Variable(np.ones(3, np.float32), name="frozen", trainable=False)
    calls = tj.Variable(np.int32(0), name="calls")      # an int counter the step reads
    opt = train.GradientDescentOptimizer(0.1)

    @tj.jit
    def step():
        calls.assign_add(1)
        loss = _elementwise_loss(w) + frozen * w
        opt.minimize(loss)
        return loss

    step()
    np.testing.assert_allclose(w.numpy(), -0.1 * (_analytic_grad(np.zeros(3)) + 1.0),
                               rtol=1e-6)
    np.testing.assert_array_equal(frozen.numpy(), np.ones(3))
    assert int(calls.numpy()) == 1
    traced = step.trace()
    assert {v.name for v in traced.updated} == {"w", "calls"}


def test_compute_gradients_in_jit():
    w = tj.Variable(np.array([1.0, 2.0, 3.0], np.float32), name="w")
    unused = tj.Variable(np.zeros(2, np.float32), name="unused")
    opt = train.GradientDescentOptimizer(0.1)

    @tj.jit
    def gradients():
        pairs = opt.compute_gradients(_elementwise_loss(w), var_list=[w, unused])
        assert pairs[0][1] is w and pairs[1] == (None, unused)
        scaled = opt.compute_gradients(_elementwise_loss(w), var_list=[w],
                                       grad_loss=np.full(3, 2.0, np.float32))
        return pairs[0][0], scaled[0][0]

    grad, doubled = gradients()
    np.testing.assert_allclose(grad, _analytic_grad(w.numpy()), rtol=1e-6)
    np.testing.assert_allclose(doubled, 2 * _analytic_grad(w.numpy()), rtol=1e-6)


def test_eager_compute_gradients_and_minimize_take_a_callable():
    w = tj.Variable(np.array([1.0, 2.0, 3.0], np.float32), name="w")
    opt = train.GradientDescentOptimizer(0.1)
    [(grad, var)] = opt.compute_gradients(lambda: _elementwise_loss(w), var_list=[w])
    assert var is w and isinstance(grad, tj.Array)
    np.testing.assert_allclose(grad, _analytic_grad(w.numpy()), rtol=1e-6)
    before = w.numpy()
    opt.minimize(lambda: _elementwise_loss(w))        # var_list: what the callable read
    np.testing.assert_allclose(w.numpy(), before - 0.1 * _analytic_grad(before), rtol=1e-6)
    with pytest.raises(TracejitError, match="callable"):
        opt.minimize(_elementwise_loss(w))
    with pytest.raises(DTypeError, match="only float variables"):
        opt.compute_gradients(lambda: w * 1.0, var_list=[tj.Variable(np.int32(1))])
    with pytest.raises(ValueError, match="No gradients"):
        opt.minimize(lambda: _elementwise_loss(w), var_list=[tj.Variable(np.zeros(3))])


OPTIMIZERS = {
    "sgd": lambda gs: train.GradientDescentOptimizer(0.1),
    "nesterov": lambda gs: train.MomentumOptimizer(0.05, 0.9, use_nesterov=True),
    "adagrad": lambda gs: train.AdagradOptimizer(0.3),
    "adagrad_da": lambda gs: train.AdagradDAOptimizer(0.3, gs, l1_regularization_strength=0.01,
                                                       l2_regularization_strength=0.1),
    "adadelta": lambda gs: train.AdadeltaOptimizer(1.0),
    "adam": lambda gs: train.AdamOptimizer(0.1),
    "rmsprop_centered": lambda gs: train.RMSPropOptimizer(0.05, momentum=0.5, centered=True),
    "ftrl": lambda gs: train.FtrlOptimizer(0.5, l1_regularization_strength=0.01),
}


def _trajectory(name, how, steps=5):
    w = tj.Variable(np.array([2.0, 1.0, -1.0], np.float32), name="w")
    gs = tj.Variable(np.int64(0), name="global_step", trainable=False)
    opt = OPTIMIZERS[name](gs)
    if how == "jit":
        step = tj.jit(lambda: opt.minimize(_elementwise_loss(w), global_step=gs))
    elif how == "eager_minimize":
        def step():
            return opt.minimize(lambda: _elementwise_loss(w), global_step=gs)
    else:      # op by op, with gradients computed by hand
        def step():
            return opt.apply_gradients([(_analytic_grad(w.numpy()), w)], global_step=gs)
    values = []
    for _ in range(steps):
        step()
        values.append(w.numpy())
    assert int(gs.numpy()) == steps
    return np.array(values)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_jit_and_eager_agree(name):
    jitted = _trajectory(name, "jit")
    np.testing.assert_allclose(_trajectory(name, "eager_minimize"), jitted, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(_trajectory(name, "eager_ops"), jitted, rtol=1e-5, atol=1e-6)


def test_linear_regression_from_the_2016_slides_converges():
    # y = 0.1 x + 0.3 + noise; scalar W and b broadcast over a batch of x.
    rng = np.random.default_rng(0)
    x_in = rng.uniform(0, 1, size=(200, 16)).astype(np.float32)
    y_in = (0.1 * x_in + 0.3 + rng.normal(0, 0.01, size=x_in.shape)).astype(np.float32)
    w = tj.Variable(np.float32(0.7), name="W")
    b = tj.Variable(np.float32(-0.4), name="b")
    opt = train.GradientDescentOptimizer(0.5)

    @tj.jit
    def step(x, y_label):
        loss = tj.reduce_mean(tj.square(w * x + b - y_label))
        opt.minimize(loss)
        return loss

    losses = [float(step(x, y)) for x, y in zip(x_in, y_in, strict=True)]
    assert losses[-1] < 1e-3 < losses[0]
    assert abs(float(w.numpy()) - 0.1) < 0.03 and abs(float(b.numpy()) - 0.3) < 0.02


@pytest.mark.parametrize("make", [lambda: train.GradientDescentOptimizer(0.1),
                                  lambda: train.AdamOptimizer(0.05),
                                  lambda: train.RMSPropOptimizer(0.002, momentum=0.5,
                                                                 centered=True)],
                         ids=["sgd", "adam", "rmsprop_centered"])
def test_least_squares_converges_to_the_lstsq_solution(make):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.25
         + rng.normal(0, 0.05, size=(64, 1))).astype(np.float32)
    design = np.hstack([x, np.ones((64, 1), np.float32)])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    weights = tj.Variable(np.zeros((3, 1), np.float32), name="weights")
    bias = tj.Variable(np.zeros((1,), np.float32), name="bias")
    global_step = tj.Variable(np.int64(0), trainable=False)
    opt = make()

    @tj.jit
    def step(x, y):
        loss = tj.reduce_mean(tj.square(tj.matmul(x, weights) + bias - y))
        opt.minimize(loss, global_step=global_step)
        return loss

    for _ in range(600):
        step(x, y)
    assert int(global_step.numpy()) == 600
    np.testing.assert_allclose(weights.numpy(), solution[:3], atol=2e-3)
    np.testing.assert_allclose(bias.numpy(), solution[3], atol=2e-3)
