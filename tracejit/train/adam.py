"""Adam (TF 1.x ``AdamOptimizer`` / ``ApplyAdam``)."""

from __future__ import annotations

from ..trace import math_ops as m
from .optimizer import Optimizer


class AdamOptimizer(Optimizer):
    """Slots ``m`` and ``v`` (zeros); non-slot variables ``beta1_power`` and
    ``beta2_power``, which start at beta1 and beta2 and are multiplied by them after each
    step, so on step t they hold beta1^t and beta2^t:

        lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
        m    = m + (grad - m) * (1 - beta1)
        v    = v + (grad ** 2 - v) * (1 - beta2)
        var -= lr_t * m / (sqrt(v) + epsilon)

    This is TF 1.x's form: epsilon is added to sqrt(v) after the bias correction was
    folded into lr_t (the paper's "epsilon hat"), not to the bias-corrected sqrt(v_hat).
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 use_locking: bool = False, name: str = "Adam"):
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)
        self._set_hyper("beta1", beta1)
        self._set_hyper("beta2", beta2)
        self._set_hyper("epsilon", epsilon)

    def _get_beta_accumulators(self):
        return (self._get_non_slot_variable("beta1_power"),
                self._get_non_slot_variable("beta2_power"))

    def _create_slots(self, var_list):
        # NOTE: as in TF 1.x the beta powers are shared by all variables and live beside
        # the variable first by name; they take its dtype, so float64 models keep exact
        # powers (TF 1.x always makes them float32).
        first = min(var_list, key=lambda v: v.name)
        for name in ("beta1", "beta2"):
            self._create_non_slot_variable(self._hyper[name], f"{name}_power", first.dtype)
        for var in var_list:
            self._zeros_slot(var, "m")
            self._zeros_slot(var, "v")

    def _apply_dense(self, grad, var):
        alpha, beta1, beta2, epsilon = self._step_hypers(var.dtype)
        m_slot, v_slot = self.get_slot(var, "m"), self.get_slot(var, "v")
        m_t = m_slot.read_value()
        m_t = m_slot.assign(m_t + (grad - m_t) * (1.0 - beta1))
        v_t = v_slot.read_value()
        v_t = v_slot.assign(v_t + (m.square(grad) - v_t) * (1.0 - beta2))
        return var.assign_sub(m_t * alpha / (m.sqrt(v_t) + epsilon))

    def _apply_sparse(self, summed, touched, var):
        """TF 1.x's sparse Adam: m and v decay on EVERY row, the summed gradient rows are
        added to the rows they name, and every row of the variable moves (it is not
        lazy Adam):

            m    = m * beta1 + scatter((1 - beta1) * rows)
            v    = v * beta2 + scatter((1 - beta2) * rows ** 2)
            var -= lr_t * m / (sqrt(v) + epsilon)
        """
        dtype = var.dtype
        alpha, beta1, beta2, epsilon = self._step_hypers(dtype)
        m_slot, v_slot = self.get_slot(var, "m"), self.get_slot(var, "v")
        # NOTE: zero rows of `summed` add exactly nothing, so adding it whole is the
        # scatter_add of the touched rows
        m_t = m_slot.assign(m_slot.read_value() * beta1 + summed * (1.0 - beta1))
        v_t = v_slot.assign(v_slot.read_value() * beta2 + (summed * summed) * (1.0 - beta2))
        return var.assign_sub(alpha * m_t / (m.sqrt(v_t) + epsilon))

    def _step_hypers(self, dtype):
        """(lr_t, beta1, beta2, epsilon) of this step, in ``dtype``."""
        beta1_power, beta2_power = (m.cast(p.read_value(), dtype)
                                    for p in self._get_beta_accumulators())
        lr = self._get_hyper("learning_rate", dtype)
        alpha = lr * m.sqrt(1.0 - beta2_power) / (1.0 - beta1_power)
        return (alpha, self._get_hyper("beta1", dtype), self._get_hyper("beta2", dtype),
                self._get_hyper("epsilon", dtype))

    def _finish(self, updates):
        for name in ("beta1", "beta2"):
            power = self._get_non_slot_variable(f"{name}_power")
            power.assign(power.read_value() * self._get_hyper(name, power.dtype))
