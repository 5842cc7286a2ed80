"""Adagrad and Adagrad dual averaging (TF 1.x ``ApplyAdagrad``, ``ApplyAdagradDA``)."""

from __future__ import annotations

from ..trace import math_ops as m
from ..trace.tracing import to_tensor
from .optimizer import Optimizer


class AdagradOptimizer(Optimizer):
    """Slot ``accumulator`` (filled with ``initial_accumulator_value``):

        accum += grad ** 2
        var   -= lr * grad / sqrt(accum)
    """

    def __init__(self, learning_rate, initial_accumulator_value: float = 0.1,
                 use_locking: bool = False, name: str = "Adagrad"):
        if initial_accumulator_value <= 0.0:
            raise ValueError("initial_accumulator_value must be positive: "
                             f"{initial_accumulator_value}")
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)
        self._initial_accumulator_value = initial_accumulator_value

    def _create_slots(self, var_list):
        for var in var_list:
            self._get_or_make_slot(var, self._initial_accumulator_value, "accumulator")

    def _apply_dense(self, grad, var):
        lr = self._get_hyper("learning_rate", var.dtype)
        slot = self.get_slot(var, "accumulator")
        accum = slot.assign(slot.read_value() + m.square(grad))
        return var.assign_sub(grad * lr * m.rsqrt(accum))


class AdagradDAOptimizer(Optimizer):
    """Adagrad dual averaging, for sparse linear models. Slots ``gradient_accumulator``
    (zeros) and ``gradient_squared_accumulator`` (filled with
    ``initial_gradient_squared_accumulator_value``). With ``t = global_step + 1``:

        g_acc  += grad
        gg_acc += grad ** 2
        shrunk  = sign(g_acc) * max(|g_acc| - l1 * t, 0)   if l1 > 0 else g_acc
        var     = -lr * shrunk / (l2 * t * lr + sqrt(gg_acc))

    The new value does not depend on the old one: it is recomputed from the accumulators.
    ``global_step`` is read at update time (before ``apply_gradients`` increments it).
    """

    def __init__(self, learning_rate, global_step,
                 initial_gradient_squared_accumulator_value: float = 0.1,
                 l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0, use_locking: bool = False,
                 name: str = "AdagradDA"):
        if initial_gradient_squared_accumulator_value <= 0.0:
            raise ValueError("initial_gradient_squared_accumulator_value must be positive: "
                             f"{initial_gradient_squared_accumulator_value}")
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)
        self._set_hyper("l1", l1_regularization_strength)
        self._set_hyper("l2", l2_regularization_strength)
        self._initial_value = initial_gradient_squared_accumulator_value
        self._global_step = global_step

    def _create_slots(self, var_list):
        for var in var_list:
            self._zeros_slot(var, "gradient_accumulator")
            self._get_or_make_slot(var, self._initial_value, "gradient_squared_accumulator")

    def _apply_dense(self, grad, var):
        dtype = var.dtype
        lr = self._get_hyper("learning_rate", dtype)
        l1 = self._get_hyper("l1", dtype)
        l2 = self._get_hyper("l2", dtype)
        # NOTE: TF 1.x passes global_step + 1, so the first update already counts as step 1.
        step = m.cast(to_tensor(self._global_step) + 1, dtype)
        g_slot = self.get_slot(var, "gradient_accumulator")
        gg_slot = self.get_slot(var, "gradient_squared_accumulator")
        g_acc = g_slot.assign(g_slot.read_value() + grad)
        gg_acc = gg_slot.assign(gg_slot.read_value() + m.square(grad))
        shrunk = m.sign(g_acc) * m.maximum(m.abs(g_acc) - step * l1, 0.0)
        # NOTE: TF branches on l1 > 0 at run time; a select keeps that exact behaviour
        # when l1 is a tensor whose value is unknown while tracing.
        numerator = m.where(l1 > 0.0, shrunk, g_acc)
        return var.assign(-lr * numerator / (l2 * (step * lr) + m.sqrt(gg_acc)))
