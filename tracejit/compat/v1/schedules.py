"""TF1's learning-rate schedules (``tf.train.exponential_decay`` and friends): graph
tensors computed from the global step, so an optimizer given one reads a new rate on
every ``Session.run``. The formulas are TF 1.x's."""

from __future__ import annotations

from ...ir import dtypes as dt
from .ops import constant as _constant
from .ops import ops as _ops

cast, ceil, floor, pow = _ops["cast"], _ops["ceil"], _ops["floor"], _ops["pow"]
maximum, minimum, where = _ops["maximum"], _ops["minimum"], _ops["where"]

__all__ = ["exponential_decay", "inverse_time_decay", "piecewise_constant", "polynomial_decay"]


def _step(global_step, like):
    if global_step is None:
        raise ValueError("global_step is required for a decay schedule")
    return cast(global_step, like.dtype)


def _rate(learning_rate):
    return _constant(learning_rate, dt.float32) if isinstance(learning_rate, (int, float)) \
        else learning_rate


def exponential_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False,
                      name=None):
    """``learning_rate * decay_rate ** (global_step / decay_steps)`` (the exponent floored
    when ``staircase``)."""
    rate = _rate(learning_rate)
    p = _step(global_step, rate) / float(decay_steps)
    if staircase:
        p = floor(p)
    return rate * pow(_constant(decay_rate, rate.dtype), p)


def inverse_time_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False,
                       name=None):
    """``learning_rate / (1 + decay_rate * global_step / decay_steps)``."""
    rate = _rate(learning_rate)
    p = _step(global_step, rate) / float(decay_steps)
    if staircase:
        p = floor(p)
    return rate / (1.0 + float(decay_rate) * p)


def polynomial_decay(learning_rate, global_step, decay_steps, end_learning_rate=0.0001,
                     power=1.0, cycle=False, name=None):
    """From ``learning_rate`` to ``end_learning_rate`` over ``decay_steps`` steps along
    ``(1 - step / decay_steps) ** power``; with ``cycle`` the horizon restarts."""
    rate = _rate(learning_rate)
    step = _step(global_step, rate)
    steps = _constant(float(decay_steps), rate.dtype)
    if cycle:
        steps = steps * maximum(ceil(step / float(decay_steps)), 1.0)
    else:
        step = minimum(step, float(decay_steps))
    frac = pow(1.0 - step / steps, _constant(float(power), rate.dtype))
    return (rate - end_learning_rate) * frac + end_learning_rate


def piecewise_constant(x, boundaries, values, name=None):
    """``values[0]`` while ``x <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < x <= boundaries[i]``, ``values[-1]`` after."""
    if len(values) != len(boundaries) + 1:
        raise ValueError(f"piecewise_constant needs one more value than boundaries, got "
                         f"{len(values)} values and {len(boundaries)} boundaries")
    out = _constant(values[-1], dt.float32)
    for boundary, value in reversed(list(zip(boundaries, values[:-1], strict=True))):
        out = where(cast(x, dt.float64) <= float(boundary), _constant(value, dt.float32), out)
    return out
