"""Adadelta (TF 1.x ``ApplyAdadelta``)."""

from __future__ import annotations

from ..trace import math_ops as m
from .optimizer import Optimizer


class AdadeltaOptimizer(Optimizer):
    """Slots ``accum`` and ``accum_update`` (zeros):

        accum        = rho * accum + (1 - rho) * grad ** 2
        update       = sqrt(accum_update + epsilon) / sqrt(accum + epsilon) * grad
        var         -= lr * update
        accum_update = rho * accum_update + (1 - rho) * update ** 2

    TF 1.x keeps a learning rate (default 0.001) that the paper's Adadelta does not have;
    ``learning_rate=1.0`` gives the paper's update.
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-8, use_locking: bool = False,
                 name: str = "Adadelta"):
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)
        self._set_hyper("rho", rho)
        self._set_hyper("epsilon", epsilon)

    def _create_slots(self, var_list):
        for var in var_list:
            self._zeros_slot(var, "accum")
            self._zeros_slot(var, "accum_update")

    def _apply_dense(self, grad, var):
        lr = self._get_hyper("learning_rate", var.dtype)
        rho = self._get_hyper("rho", var.dtype)
        epsilon = self._get_hyper("epsilon", var.dtype)
        accum_slot = self.get_slot(var, "accum")
        update_slot = self.get_slot(var, "accum_update")
        accum = accum_slot.assign(accum_slot.read_value() * rho + m.square(grad) * (1.0 - rho))
        accum_update = update_slot.read_value()
        update = m.sqrt(accum_update + epsilon) * m.rsqrt(accum + epsilon) * grad
        new_var = var.assign_sub(update * lr)
        update_slot.assign(accum_update * rho + m.square(update) * (1.0 - rho))
        return new_var
