"""Loss scaling for float16 training: ``LossScaleOptimizer``.

float16 holds magnitudes from 6e-8 to 65504: small gradients of a float16 product
underflow to zero. The loss is multiplied by a *scale* before differentiation (so the
gradients flowing through the 16-bit ops are scaled too) and the gradients are divided
by it before the update, in float32. With a **dynamic** scale (TensorFlow's
``tf.train.experimental.DynamicLossScale``, ``torch.cuda.amp.GradScaler``):

* a step whose gradients hold an inf or NaN (the scale overflowed float16) is
  **skipped** -- no variable, slot or step counter of the wrapped optimizer changes --
  and the scale is multiplied by ``backoff_factor`` (halved);
* after ``growth_interval`` finite steps in a row the scale is multiplied by
  ``growth_factor`` (doubled), to use float16's range again.

All of it is traced into the step (no host round trip): the decision is a ``where``
over the updated and the old values of the optimizer's state.

>>> import numpy as np, tracejit as tj
>>> w = tj.Variable(np.float32([1.0, 2.0]))
>>> opt = tj.train.LossScaleOptimizer(tj.train.GradientDescentOptimizer(0.5),
...                                   initial_scale=1024.0)
>>> @tj.jit
... def step(x):
...     loss = tj.reduce_sum(w * x)
...     opt.minimize(loss, var_list=[w])
...     return loss
>>> _ = step(np.float32([1.0, np.inf]))          # an inf gradient: skipped, scale halved
>>> w.numpy().tolist(), float(opt.loss_scale.numpy())
([1.0, 2.0], 512.0)
>>> _ = step(np.float32([1.0, 1.0]))             # applied, unscaled: w - 0.5 * 1
>>> w.numpy().tolist()
[0.5, 1.5]
"""

from __future__ import annotations

from ..ir import dtypes as dt
from ..trace import math_ops as m
from ..trace.indexed_slices import IndexedSlices
from ..trace.tracing import current_trace, to_tensor
from ..trace.values import Tensor
from ..trace.variables import Variable
from .optimizer import Optimizer

__all__ = ["LossScaleOptimizer"]


class LossScaleOptimizer(Optimizer):
    """``optimizer`` with loss scaling: ``minimize``/``compute_gradients`` scale the loss
    and unscale the gradients; ``apply_gradients`` skips a step with non-finite
    gradients. ``dynamic=False`` keeps ``initial_scale`` fixed (no skipping then either:
    a fixed scale is the user's promise that it does not overflow)."""

    def __init__(self, optimizer: Optimizer, initial_scale: float = 2.0 ** 15,
                 dynamic: bool = True, growth_interval: int = 2000,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 min_scale: float = 1.0, name: str = "LossScaleOptimizer"):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"LossScaleOptimizer wraps a tracejit.train.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if initial_scale <= 0 or growth_factor < 1 or not 0 < backoff_factor < 1 or \
                growth_interval < 1:
            raise ValueError("expected initial_scale > 0, growth_factor >= 1, "
                             "0 < backoff_factor < 1 and growth_interval >= 1")
        super().__init__(False, name)
        self.inner, self.dynamic = optimizer, dynamic
        self.growth_interval, self.growth_factor = int(growth_interval), float(growth_factor)
        self.backoff_factor, self.min_scale = float(backoff_factor), float(min_scale)
        self.loss_scale = self._create_non_slot_variable(initial_scale, "loss_scale",
                                                         dt.float32)
        self.good_steps = self._create_non_slot_variable(0, "good_steps", dt.int32)

    def compute_gradients(self, loss, var_list=None, gate_gradients=Optimizer.GATE_OP,
                          aggregation_method=None, colocate_gradients_with_ops=False,
                          grad_loss=None):
        """The wrapped optimizer's gradients of ``loss * scale``, divided by the scale."""
        if callable(loss) and not isinstance(loss, Tensor):
            if current_trace() is not None:
                target = self._scaled(loss())
            else:
                def target():
                    return self._scaled(loss())
        else:
            target = self._scaled(loss)
        pairs = self.inner.compute_gradients(target, var_list=var_list, grad_loss=grad_loss)
        scale = self.loss_scale.read_value()
        return [(None if g is None else _unscaled(g, scale), v) for g, v in pairs]

    def _scaled(self, loss):
        loss = to_tensor(loss)
        return loss * m.cast(self.loss_scale.read_value(), loss.dtype)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """The wrapped optimizer's update where every gradient is finite; else the old
        values of its variables and slots. Then the scale moves (dynamic)."""
        pairs = [(g, v) for g, v in grads_and_vars]
        if not self.dynamic:
            return self.inner.apply_gradients(pairs, global_step=global_step, name=name)
        finite = _all_finite([g for g, _ in pairs if g is not None])
        trained = [v for g, v in pairs if g is not None]
        # NOTE: the state is made first, so that its value before the update is known
        self.inner._create_slots(trained)
        state = trained + self.inner.variables()
        before = [v.read_value() for v in state]
        self.inner.apply_gradients(pairs, name=name)
        for variable, old in zip(state, before, strict=True):
            variable.assign(m.where(finite, variable.read_value(), old))
        self._move_scale(finite)
        if global_step is not None:
            global_step.assign_add(1)
        return [var.read_value() for var in trained]

    def _move_scale(self, finite) -> None:
        scale, good = self.loss_scale.read_value(), self.good_steps.read_value()
        good = m.where(finite, good + 1, 0)
        grow = m.logical_and(finite, m.greater_equal(good, self.growth_interval))
        shrunk = m.maximum(scale * self.backoff_factor, self.min_scale)
        self.loss_scale.assign(m.where(grow, scale * self.growth_factor,
                                       m.where(finite, scale, shrunk)))
        self.good_steps.assign(m.where(grow, 0, good))

    def variables(self) -> list[Variable]:
        return sorted(self.inner.variables() + super().variables(), key=lambda v: v.name)

    def get_slot(self, var, name):
        return self.inner.get_slot(var, name)

    def get_slot_names(self):
        return self.inner.get_slot_names()


def _unscaled(grad, scale):
    if isinstance(grad, IndexedSlices):
        return IndexedSlices(grad.values / m.cast(scale, grad.values.dtype), grad.indices,
                             grad.dense_shape)
    return grad / m.cast(scale, grad.dtype)


def _all_finite(grads):
    """One bool: every element of every gradient is finite (NaN and inf are not)."""
    flags = [m.reduce_all(m.is_finite(g.values if isinstance(g, IndexedSlices) else g))
             for g in grads]
    out = flags[0]
    for flag in flags[1:]:
        out = m.logical_and(out, flag)
    return out
