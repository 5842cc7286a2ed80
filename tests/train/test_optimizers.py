"""Optimizer trajectories against NumPy implementations of TF 1.x's formulas, and
TensorFlow's own test expectations, eagerly and inside @jit, in float32 and float64."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import tracejit as tj
from tracejit import train

from . import numpy_reference as ref

STEPS = 6
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}


@dataclass
class Case:
    name: str
    make: Callable           # make(global_step) -> Optimizer
    reference: Callable      # reference(dtype) -> numpy_reference.Reference


CASES = [
    Case("sgd", lambda gs: train.GradientDescentOptimizer(0.1),
         lambda d: ref.SGD(d, lr=0.1)),
    Case("momentum", lambda gs: train.MomentumOptimizer(0.1, 0.9),
         lambda d: ref.Momentum(d, lr=0.1, momentum=0.9)),
    Case("nesterov", lambda gs: train.MomentumOptimizer(0.1, 0.9, use_nesterov=True),
         lambda d: ref.Momentum(d, nesterov=True, lr=0.1, momentum=0.9)),
    Case("adagrad", lambda gs: train.AdagradOptimizer(0.3, initial_accumulator_value=0.2),
         lambda d: ref.Adagrad(d, lr=0.3, init=0.2)),
    Case("adagrad_da", lambda gs: train.AdagradDAOptimizer(0.5, gs),
         lambda d: ref.AdagradDA(d, lr=0.5, init=0.1, l1=0.0, l2=0.0)),
    Case("adagrad_da_l1_l2", lambda gs: train.AdagradDAOptimizer(
        0.5, gs, initial_gradient_squared_accumulator_value=0.3,
        l1_regularization_strength=0.05, l2_regularization_strength=0.2),
         lambda d: ref.AdagradDA(d, lr=0.5, init=0.3, l1=0.05, l2=0.2)),
    Case("adadelta", lambda gs: train.AdadeltaOptimizer(1.0, rho=0.9, epsilon=1e-6),
         lambda d: ref.Adadelta(d, lr=1.0, rho=0.9, epsilon=1e-6)),
    Case("adadelta_defaults", lambda gs: train.AdadeltaOptimizer(),
         lambda d: ref.Adadelta(d, lr=0.001, rho=0.95, epsilon=1e-8)),
    Case("adam", lambda gs: train.AdamOptimizer(0.05),
         lambda d: ref.Adam(d, lr=0.05, beta1=0.9, beta2=0.999, epsilon=1e-8)),
    Case("adam_custom", lambda gs: train.AdamOptimizer(0.1, beta1=0.5, beta2=0.7, epsilon=0.1),
         lambda d: ref.Adam(d, lr=0.1, beta1=0.5, beta2=0.7, epsilon=0.1)),
    Case("rmsprop", lambda gs: train.RMSPropOptimizer(0.01),
         lambda d: ref.RMSProp(d, lr=0.01, decay=0.9, momentum=0.0, epsilon=1e-10)),
    Case("rmsprop_momentum", lambda gs: train.RMSPropOptimizer(0.01, decay=0.8, momentum=0.5,
                                                              epsilon=1e-3),
         lambda d: ref.RMSProp(d, lr=0.01, decay=0.8, momentum=0.5, epsilon=1e-3)),
    Case("rmsprop_centered", lambda gs: train.RMSPropOptimizer(
        0.01, decay=0.8, momentum=0.5, epsilon=1e-3, centered=True),
         lambda d: ref.RMSProp(d, centered=True, lr=0.01, decay=0.8, momentum=0.5,
                               epsilon=1e-3)),
    Case("ftrl", lambda gs: train.FtrlOptimizer(0.5),
         lambda d: ref.Ftrl(d, lr=0.5, lr_power=-0.5, init=0.1, l1=0.0, l2=0.0)),
    Case("ftrl_l1_l2", lambda gs: train.FtrlOptimizer(
        0.5, learning_rate_power=-0.7, initial_accumulator_value=0.2,
        l1_regularization_strength=0.01, l2_regularization_strength=0.3),
         lambda d: ref.Ftrl(d, lr=0.5, lr_power=-0.7, init=0.2, l1=0.01, l2=0.3)),
    Case("ftrl_shrinkage", lambda gs: train.FtrlOptimizer(
        0.5, l1_regularization_strength=0.01, l2_regularization_strength=0.3,
        l2_shrinkage_regularization_strength=0.2),
         lambda d: ref.Ftrl(d, lr=0.5, lr_power=-0.5, init=0.1, l1=0.01, l2=0.3,
                            l2_shrinkage=0.2)),
]


def _problem(dtype):
    rng = np.random.default_rng(7)
    init = [np.array([1.0, -2.0, 0.5]), np.array([[0.5, -1.5], [3.0, -0.25]])]
    grads = [[rng.normal(size=v.shape) for v in init] for _ in range(STEPS)]
    return ([v.astype(dtype) for v in init],
            [[g.astype(dtype) for g in step] for step in grads])


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_trajectory_matches_tf1_formula(case, dtype, mode):
    init, grads = _problem(dtype)
    variables = [tj.Variable(v, name=f"v{i}") for i, v in enumerate(init)]
    global_step = tj.Variable(np.int64(0), name="global_step", trainable=False)
    opt = case.make(global_step)

    def step(g0, g1):
        return opt.apply_gradients(zip([g0, g1], variables, strict=True), global_step=global_step)

    run = tj.jit(step) if mode == "jit" else step
    reference = case.reference(dtype)
    expected = [v.copy() for v in init]
    states = [reference.slots(v) for v in init]
    for t, step_grads in enumerate(grads, start=1):
        returned = run(*step_grads)
        for i, g in enumerate(step_grads):
            expected[i] = reference.update(expected[i], g, states[i], t)
            got = variables[i].numpy()
            assert got.dtype == dtype
            np.testing.assert_allclose(got, expected[i], **TOLERANCE[dtype],
                                       err_msg=f"variable {i} after step {t}")
            np.testing.assert_allclose(np.asarray(returned[i]), got, rtol=0, atol=0)
    assert int(global_step.numpy()) == STEPS
    for i, variable in enumerate(variables):
        for name, value in states[i].items():
            slot = opt.get_slot(variable, name)
            if slot is not None:    # the reference also tracks state some variants skip
                np.testing.assert_allclose(slot.numpy(), value, **TOLERANCE[dtype],
                                           err_msg=f"slot {name!r} of variable {i}")


# ---- TensorFlow's own test expectations (tensorflow/python/training/*_test.py) ------------------

def _run_tf_case(opt, steps, dtype, init0=(1.0, 2.0), init1=(4.0, 3.0), global_step=None):
    var0 = tj.Variable(np.array(init0, dtype))
    var1 = tj.Variable(np.array(init1, dtype))
    grads0, grads1 = np.array([0.1, 0.2], dtype), np.array([0.01, 0.02], dtype)
    for _ in range(steps):
        opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True),
                            global_step=global_step)
    return var0.numpy(), var1.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs, steps, init, expected", [
    (dict(), 3, (0.0, 0.0), ([-2.60260963, -4.29698515], [-0.28432083, -0.56694895])),
    (dict(l1_regularization_strength=0.001), 10, None,
     ([-7.66718769, -10.91273689], [-0.93460727, -1.86147261])),
    (dict(l1_regularization_strength=0.001, l2_regularization_strength=2.0), 10, None,
     ([-0.24059935, -0.46829352], [-0.02406147, -0.04830509])),
    (dict(l1_regularization_strength=0.001, l2_regularization_strength=2.0,
          l2_shrinkage_regularization_strength=0.1), 10, None,
     ([-0.22578995, -0.44345796], [-0.14378493, -0.13229476])),
], ids=["plain", "l1", "l1_l2", "l1_l2_shrinkage"])
def test_ftrl_matches_tensorflow_tests(kwargs, steps, init, expected, dtype):
    opt = train.FtrlOptimizer(3.0, initial_accumulator_value=0.1, **kwargs)
    inits = {} if init is None else dict(init0=init, init1=init)
    v0, v1 = _run_tf_case(opt, steps, dtype, **inits)
    np.testing.assert_allclose(v0, expected[0], rtol=1e-5)
    np.testing.assert_allclose(v1, expected[1], rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l1, l2, expected", [
    (0.0, 0.0, ([-0.904534, -1.603567], [-0.094821, -0.189358])),
    (0.001, 0.0, ([-0.895489, -1.59555], [-0.085339, -0.17989])),
    (0.001, 2.0, ([-0.046907, -0.093659], [-0.004275, -0.009023])),
])
def test_adagrad_da_matches_tensorflow_tests(l1, l2, expected, dtype):
    global_step = tj.Variable(np.int64(0))
    opt = train.AdagradDAOptimizer(3.0, global_step,
                                   initial_gradient_squared_accumulator_value=0.1,
                                   l1_regularization_strength=l1, l2_regularization_strength=l2)
    v0, v1 = _run_tf_case(opt, 1, dtype, global_step=global_step)
    np.testing.assert_allclose(v0, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v1, expected[1], rtol=1e-4, atol=1e-6)
    assert int(global_step.numpy()) == 1


@pytest.mark.parametrize("ftrl_power, other", [
    (-0.5, lambda: train.AdagradOptimizer(3.0, initial_accumulator_value=0.1)),
    (-0.0, lambda: train.GradientDescentOptimizer(3.0)),
], ids=["adagrad", "gradient_descent"])
def test_ftrl_without_regularization_equals(ftrl_power, other):
    # TF's equivalences: from zero, unregularized FTRL is Adagrad (power -0.5) or plain
    # gradient descent (power 0).
    ftrl = train.FtrlOptimizer(3.0, learning_rate_power=ftrl_power,
                               initial_accumulator_value=0.1)
    got = _run_tf_case(ftrl, 5, np.float64, (0.0, 0.0), (0.0, 0.0))
    want = _run_tf_case(other(), 5, np.float64, (0.0, 0.0), (0.0, 0.0))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_adam_beta_powers_are_tf1_non_slot_variables():
    var = tj.Variable(np.array([1.0, 2.0]), name="w")
    opt = train.AdamOptimizer(0.1, beta1=0.8, beta2=0.9)
    assert opt._get_beta_accumulators() == (None, None)
    for _ in range(3):
        opt.apply_gradients([(np.array([0.5, -0.5]), var)])
    beta1_power, beta2_power = opt._get_beta_accumulators()
    # They start at beta and are advanced after each step: beta ** (steps + 1).
    np.testing.assert_allclose(beta1_power.numpy(), 0.8 ** 4, rtol=1e-15)
    np.testing.assert_allclose(beta2_power.numpy(), 0.9 ** 4, rtol=1e-15)
    assert beta1_power.name == "beta1_power" and not beta1_power.trainable
    assert beta1_power.dtype == tj.float64
    assert {v.name for v in opt.variables()} == {"w/Adam", "w/Adam_1", "beta1_power",
                                                 "beta2_power"}


def test_hyperparameters_may_be_tensors_variables_or_callables():
    lr = tj.Variable(np.float32(0.5), trainable=False)
    var = tj.Variable(np.array([1.0], np.float32))
    opt = train.GradientDescentOptimizer(lr)
    step = tj.jit(lambda g: opt.apply_gradients([(g, var)]))
    step(np.array([1.0], np.float32))
    lr.assign(0.25)                         # read at run time: no retrace needed
    step(np.array([1.0], np.float32))
    np.testing.assert_allclose(var.numpy(), [0.25])
    assert step.cache_size == 1
    schedule = iter([0.1, 0.2])
    opt = train.GradientDescentOptimizer(lambda: next(schedule))
    opt.apply_gradients([(np.array([1.0], np.float32), var)])
    opt.apply_gradients([(np.array([1.0], np.float32), var)])
    np.testing.assert_allclose(var.numpy(), [-0.05], rtol=1e-6)
    calls = []
    opt = train.AdamOptimizer(lambda: calls.append(1) or 0.1, beta1=lambda: 0.5)
    opt.apply_gradients([(np.array([1.0], np.float32), var)])
    assert len(calls) == 1                  # resolved once per apply_gradients
    np.testing.assert_allclose(opt._get_beta_accumulators()[0].numpy(), 0.25)
    var.assign([-0.05])
    opt = train.MomentumOptimizer(tj.constant(0.5, tj.float64), np.float64(0.0))
    opt.apply_gradients([(np.array([1.0], np.float32), var)])
    np.testing.assert_allclose(var.numpy(), [-0.55], rtol=1e-6)


def test_float64_hyperparameters_are_not_rounded_to_float32():
    var = tj.Variable(np.array([0.0]))
    train.GradientDescentOptimizer(0.1).apply_gradients([(np.array([1.0]), var)])
    assert var.numpy()[0] == -0.1
