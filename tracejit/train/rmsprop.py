"""RMSProp, plain and centered (TF 1.x ``ApplyRMSProp``, ``ApplyCenteredRMSProp``)."""

from __future__ import annotations

from ..trace import math_ops as m
from .optimizer import Optimizer


class RMSPropOptimizer(Optimizer):
    """Slots ``rms`` (ONES, as TF 1.x), ``momentum`` (zeros) and, if centered, ``mg``
    (zeros). With rho = decay:

        rms = rms + (grad ** 2 - rms) * (1 - rho)
        mg  = mg + (grad - mg) * (1 - rho)                          (centered only)
        mom = momentum * mom + lr * grad / sqrt(rms + epsilon)      (plain)
        mom = momentum * mom + lr * grad / sqrt(rms - mg ** 2 + epsilon)   (centered)
        var -= mom
    """

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10,
                 use_locking: bool = False, centered: bool = False, name: str = "RMSProp"):
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)
        self._set_hyper("decay", decay)
        self._set_hyper("momentum", momentum)
        self._set_hyper("epsilon", epsilon)
        self._centered = centered

    def _create_slots(self, var_list):
        # NOTE: rms starts at 1, not 0, so the first steps are not huge (TF 1.x's choice;
        # Keras' RMSprop starts at 0, which gives different trajectories).
        for var in var_list:
            self._get_or_make_slot(var, 1.0, "rms")
            if self._centered:
                self._zeros_slot(var, "mg")
            self._zeros_slot(var, "momentum")

    def _apply_dense(self, grad, var):
        dtype = var.dtype
        lr = self._get_hyper("learning_rate", dtype)
        rho = self._get_hyper("decay", dtype)
        momentum = self._get_hyper("momentum", dtype)
        epsilon = self._get_hyper("epsilon", dtype)
        rms_slot, mom_slot = self.get_slot(var, "rms"), self.get_slot(var, "momentum")
        rms = rms_slot.read_value()
        rms = rms_slot.assign(rms + (m.square(grad) - rms) * (1.0 - rho))
        if self._centered:
            mg_slot = self.get_slot(var, "mg")
            mg = mg_slot.read_value()
            mg = mg_slot.assign(mg + (grad - mg) * (1.0 - rho))
            denominator = (rms - m.square(mg)) + epsilon
        else:
            denominator = rms + epsilon
        mom = mom_slot.assign(mom_slot.read_value() * momentum
                              + grad * lr / m.sqrt(denominator))
        return var.assign_sub(mom)
