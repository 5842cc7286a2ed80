"""A TF1 graph's device scopes and what they give each new op.

* ``tf.device("/cpu:1")``: a string, merged into the enclosing string scope field by
  field as TensorFlow merges them (``/job:localhost`` then ``/cpu:1`` is
  ``/job:localhost/device:CPU:1``);
* ``tf.device(fn)``: a device function, called with each new op (its ``device`` already
  set by the string scopes) and returning its device (``tf.train.replica_device_setter``);
  several apply outermost first;
* ``tf.device(None)``: clears every scope outside it;
* ``tf.colocate_with(op)``: the ops made inside run where ``op`` runs, whatever the
  device scopes inside or outside say.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ...runtime.devices import nested_device, parse_device

__all__ = ["DeviceScopes", "apply_device_functions"]


class _Colocated:
    """A ``colocate_with`` scope: the device it pins ops to."""

    def __init__(self, device: str):
        self.device = device


class DeviceScopes:
    """The stack of one graph's scopes: strings, device functions, None, colocations."""

    def __init__(self):
        self._stack: list = []

    @contextlib.contextmanager
    def _pushed(self, entry):
        self._stack.append(entry)
        try:
            yield
        finally:
            self._stack.pop()

    def device(self, device_name_or_function):
        entry = device_name_or_function
        if entry is not None and not callable(entry):
            entry = str(nested_device(self._string(), entry))
        return self._pushed(entry)

    def colocate_with(self, op):
        op = getattr(op, "op", op)      # a tensor's op
        if op is None:
            return contextlib.nullcontext()
        return self._pushed(_Colocated(op.device))

    def _string(self) -> str | None:
        return self.for_new_op()[0] or None

    def for_new_op(self) -> tuple[str, list[Callable]]:
        """(the device string the scopes give a new op -- "" for none, as TensorFlow has
        it -- and the device functions to apply to it, outermost first)."""
        string, functions = None, []
        for entry in reversed(self._stack):
            if isinstance(entry, _Colocated):
                return entry.device, []
            if entry is None:
                break
            if callable(entry):
                functions.append(entry)
            elif string is None:
                string = entry
        return string or "", functions[::-1]


def apply_device_functions(op, functions: list[Callable]) -> None:
    """Set ``op.device`` from each device function in turn (None: no device)."""
    for function in functions:
        chosen = function(op)
        op.device = "" if chosen is None else str(parse_device(chosen))
