"""``with tj.device("/cpu:1"):`` -- the device the operations traced or run inside use.

A scope's spec is merged into the enclosing one's field by field, as TensorFlow merges
nested ``tf.device`` scopes (``/job:localhost`` then ``/cpu:1`` is
``/job:localhost/device:CPU:1``); ``tj.device(None)`` clears it. Inside ``@jit``, the
spec is recorded on each traced value (``VarMeta.device``) and the runtime places,
partitions and runs the graph over those devices (docs/runtime.md). A jitted function's
placement is what its body says: tracing starts with no scope, so a scope *around* a
call does not re-place a function already compiled. Eager operations run on the
scope's device.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from ..ir.source import user_location
from ..runtime.device import CAN_RUN, HOST_MEMORY, DeviceValue
from ..runtime.devices import DeviceError, DeviceSpec, nested_device
from ..runtime.registry import get_device
from .values import Array, DeviceArray

__all__ = ["device", "current_device", "no_device_scope", "device_put", "committed_device"]


class _PerThread(threading.local):
    def __init__(self):
        self.specs: list[DeviceSpec | None] = []


_THREAD = _PerThread()


def current_device() -> str | None:
    """The innermost scope's device string, or None outside every scope."""
    specs = _THREAD.specs
    spec = specs[-1] if specs else None
    return None if spec is None else str(spec)


@contextlib.contextmanager
def device(spec):
    """Run or trace the operations inside on ``spec`` (a device string such as
    ``"/cpu:1"``, merged with the enclosing scope; None clears the scope)."""
    specs = _THREAD.specs
    merged = None if spec is None else nested_device(specs[-1] if specs else None, spec)
    _THREAD.specs.append(merged)
    try:
        yield
    finally:
        _THREAD.specs.pop()


@contextlib.contextmanager
def no_device_scope():
    """No scope inside (jit's tracing: a function's placement is its own)."""
    _THREAD.specs.append(None)
    try:
        yield
    finally:
        _THREAD.specs.pop()


def device_put(x, device=None) -> DeviceArray:
    """``x`` copied to ``device`` (a device string or name; default: the default device)
    and *committed* there: jitted functions and eager operations given it run on that
    device, and what they return is committed there too."""
    target = get_device(device) if device is not None else get_device()
    value = x.value if isinstance(x, Array) else np.asarray(x)
    weak = x.weak if isinstance(x, Array) else False
    if HOST_MEMORY not in target.capabilities and CAN_RUN in target.capabilities:
        # NOTE: a device with memory of its own keeps the value there (a GPU): calls
        # committed to it take and return DeviceValues, copying nothing to the host
        return DeviceArray(DeviceValue(target.put(np.asarray(value))), weak, target.name)
    return DeviceArray(target.get(target.put(value)), weak, target.name)


def committed_device(values) -> str | None:
    """The device the DeviceArrays among ``values`` are committed to (None: none is); two
    different ones are a DeviceError naming both."""
    found = None
    for value in values:
        if isinstance(value, DeviceArray):
            if found is not None and value.device != found:
                raise DeviceError(f"arguments committed to different devices: {found!r} and "
                                  f"{value.device!r}; device_put them to one",
                                  location=user_location())
            found = value.device
    return found
