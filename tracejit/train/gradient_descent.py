"""Plain and momentum gradient descent (TF 1.x ``ApplyGradientDescent``, ``ApplyMomentum``)."""

from __future__ import annotations

from ..trace.array_ops import reshape
from ..trace.indexed_slices import in_range, scatter_add
from ..trace.math_ops import where
from .optimizer import Optimizer


class GradientDescentOptimizer(Optimizer):
    """``var -= learning_rate * grad``. No slots."""

    def __init__(self, learning_rate, use_locking: bool = False, name: str = "GradientDescent"):
        super().__init__(use_locking, name)
        self._set_hyper("learning_rate", learning_rate)

    def _apply_dense(self, grad, var):
        lr = self._get_hyper("learning_rate", var.dtype)
        return var.assign_sub(grad * lr)

    def _apply_sparse_duplicate_indices(self, grad, var):
        # NOTE: TF 1.x's scatter_sub of the scaled rows: a repeated index subtracts each
        # of its rows in turn, with no summing first (the update is linear)
        lr = self._get_hyper("learning_rate", var.dtype)
        keep = reshape(in_range(grad), grad.indices.shape + (1,) * (len(var.shape) - 1))
        rows = where(keep, -(grad.values * lr), 0.0)
        return var.assign(scatter_add(var.read_value(), grad.indices, rows))


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
