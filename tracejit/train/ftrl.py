"""FTRL-Proximal (TF 1.x ``ApplyFtrl`` / ``ApplyFtrlV2``)."""

from __future__ import annotations

from ..trace import math_ops as m
from .optimizer import Optimizer


class FtrlOptimizer(Optimizer):
    """Follow-the-regularized-leader, for sparse linear models. Slots ``accum`` (filled with
    ``initial_accumulator_value``) and ``linear`` (zeros). With p = -learning_rate_power
    and shrinkage = l2_shrinkage_regularization_strength:

        g_s        = grad + 2 * shrinkage * var
        new_accum  = accum + grad ** 2
        linear    += g_s - (new_accum ** p - accum ** p) / lr * var
        quadratic  = new_accum ** p / lr + 2 * l2
        var        = (sign(linear) * l1 - linear) / quadratic   if |linear| > l1 else 0
        accum      = new_accum

    With shrinkage 0 this is ``ApplyFtrl``; p = 0.5 uses sqrt, as TF's kernel does.
    """

    def __init__(self, learning_rate, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 use_locking: bool = False, name: str = "Ftrl", accum_name=None,
                 linear_name=None, l2_shrinkage_regularization_strength=0.0):
        if _known(learning_rate_power) and learning_rate_power > 0.0:
            raise ValueError("learning_rate_power must be less than or equal to zero, got "
                             f"{learning_rate_power}")
        for what, value in (("initial_accumulator_value", initial_accumulator_value),
                            ("l1_regularization_strength", l1_regularization_strength),
                            ("l2_regularization_strength", l2_regularization_strength),
                            ("l2_shrinkage_regularization_strength",
                             l2_shrinkage_regularization_strength)):
            if _known(value) and value < 0.0:
                raise ValueError(f"{what} must be greater than or equal to zero, got {value}")
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)
        self._set_hyper("learning_rate_power", learning_rate_power)
        self._set_hyper("l1", l1_regularization_strength)
        self._set_hyper("l2", l2_regularization_strength)
        self._set_hyper("l2_shrinkage", l2_shrinkage_regularization_strength)
        self._initial_accumulator_value = initial_accumulator_value
        # NOTE: TF 1.x lets the slot variables be renamed; get_slot still uses these names.
        self._accum_name = accum_name
        self._linear_name = linear_name

    def _create_slots(self, var_list):
        for var in var_list:
            self._get_or_make_slot(var, self._initial_accumulator_value, "accum")
            self._zeros_slot(var, "linear")

    def _apply_dense(self, grad, var):
        dtype = var.dtype
        lr = self._get_hyper("learning_rate", dtype)
        l1 = self._get_hyper("l1", dtype)
        l2 = self._get_hyper("l2", dtype)
        shrinkage = self._get_hyper("l2_shrinkage", dtype)
        if self._static_hyper("learning_rate_power") == -0.5:
            def power(x):
                return m.sqrt(x)
        else:
            exponent = -self._get_hyper("learning_rate_power", dtype)

            def power(x):
                return m.pow(x, exponent)
        accum_slot, linear_slot = self.get_slot(var, "accum"), self.get_slot(var, "linear")
        old_var = var.read_value()
        accum = accum_slot.read_value()
        new_accum = accum + m.square(grad)
        grad_with_shrinkage = grad + 2.0 * shrinkage * old_var
        # NOTE: grouped as the kernel's `linear += g_s - ...`, for the same rounding.
        linear = linear_slot.assign(linear_slot.read_value() + (
            grad_with_shrinkage - (power(new_accum) - power(accum)) / lr * old_var))
        quadratic = power(new_accum) / lr + 2.0 * l2
        shrunk = (m.sign(linear) * l1 - linear) / quadratic
        accum_slot.assign(new_accum)
        return var.assign(m.where(m.abs(linear) > l1, shrunk, 0.0))


def _known(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
