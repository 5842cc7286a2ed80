"""Plain and momentum gradient descent (TF 1.x ``ApplyGradientDescent``, ``ApplyMomentum``)."""

from __future__ import annotations

from .optimizer import Optimizer


class GradientDescentOptimizer(Optimizer):
    """``var -= learning_rate * grad``. No slots."""

    def __init__(self, learning_rate, use_locking: bool = False, name: str = "GradientDescent"):
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)

    def _apply_dense(self, grad, var):
        lr = self._get_hyper("learning_rate", var.dtype)
        return var.assign_sub(grad * lr)


class MomentumOptimizer(Optimizer):
    """Slot ``momentum`` (zeros):

        accum = accum * momentum + grad
        var  -= lr * accum                                  (use_nesterov=False)
        var  -= lr * grad + lr * momentum * accum           (use_nesterov=True)
    """

    def __init__(self, learning_rate, momentum, use_locking: bool = False,
                 name: str = "Momentum", use_nesterov: bool = False):
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)
        self._set_hyper("momentum", momentum)
        self._use_nesterov = use_nesterov

    def _create_slots(self, var_list):
        for var in var_list:
            self._zeros_slot(var, "momentum")

    def _apply_dense(self, grad, var):
        lr = self._get_hyper("learning_rate", var.dtype)
        momentum = self._get_hyper("momentum", var.dtype)
        slot = self.get_slot(var, "momentum")
        accum = slot.assign(slot.read_value() * momentum + grad)
        if self._use_nesterov:
            return var.assign_sub(grad * lr + accum * momentum * lr)
        return var.assign_sub(accum * lr)
