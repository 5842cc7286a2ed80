"""The global step: an int64 scalar Variable named ``global_step``, one per scope.

A scope is a TF1 graph object (``tracejit.compat.v1`` passes its graph), or ``None`` for
plain Python / ``@jit`` code. ``apply_gradients(..., global_step=step)`` adds 1 to it
after each update.

>>> from tracejit import train
>>> train.reset_global_step()
>>> step = train.get_or_create_global_step()
>>> step.name, step.numpy().item()
('global_step', 0)
>>> train.get_or_create_global_step() is step
True
"""

from __future__ import annotations

import numpy as np

from ..trace.variables import Variable

# NOTE: keyed by id(scope); the scope object is kept alongside so its id is never reused
# while the entry lives.
_REGISTRY: dict[int | None, tuple[object, Variable]] = {}


def _key(graph) -> int | None:
    return None if graph is None else id(graph)


def get_global_step(graph=None) -> Variable | None:
    """The global step of ``graph`` (None: the default scope), or None if there is none."""
    entry = _REGISTRY.get(_key(graph))
    return None if entry is None else entry[1]


def create_global_step(graph=None) -> Variable:
    """Create the global step; ValueError if the scope already has one (as TF 1.x)."""
    if get_global_step(graph) is not None:
        raise ValueError('"global_step" already exists.')
    step = Variable(np.array(0, np.int64), name="global_step", trainable=False)
    _REGISTRY[_key(graph)] = (graph, step)
    return step


def get_or_create_global_step(graph=None) -> Variable:
    """The scope's global step, created (at 0) on first use."""
    step = get_global_step(graph)
    return create_global_step(graph) if step is None else step


def reset_global_step(graph=None) -> None:
    """Forget the scope's global step; the next get_or_create makes a new one at 0."""
    _REGISTRY.pop(_key(graph), None)


def global_step(sess, global_step_tensor) -> int:
    """The global step's value as a Python int (TF 1.x's ``tf.train.global_step``);
    ``sess`` may be a Session (its ``run`` is used) or None for a Variable or array."""
    if sess is not None:
        return int(sess.run(global_step_tensor))
    return int(np.asarray(global_step_tensor))
