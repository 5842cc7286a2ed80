"""The devices this process has, by name: built in, made on first use.

The registry replaces import-time registration: ``import tracejit`` registers nothing
and loads no backend; the first ``get_device("cpu")`` imports the CPU backend and makes
its device. A backend outside the package adds itself with :func:`register_device`
(a name and a zero-argument factory; ``default=True`` makes it what ``@jit`` uses).

Which device runs a program: the ``executor=`` argument of ``jit`` (a device name), else
``config.executor`` (``TRACEJIT_EXECUTOR``), else the default (``cpu``).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from ..config import config
from ..ir.source import user_location
from .device import Device
from .devices import DeviceError

__all__ = ["get_device", "register_device", "device_names", "loaded_devices",
           "default_device_name", "clear_caches"]

# name -> "module:class" of a built-in device, or a factory registered at run time
_FACTORIES: dict[str, str | Callable[[], Device]] = {
    "cpu": "tracejit.codegen_cpu.device:CpuDevice",
    "interpreter": "tracejit.runtime.interpreter:InterpreterDevice",
    "null": "tracejit.runtime.null:NullDevice",
}
_DEVICES: dict[str, Device] = {}
_DEFAULT = ["cpu"]
_LOCK = threading.RLock()


def register_device(name: str, factory: Callable[[], Device], *, default: bool = False
                    ) -> None:
    """Make ``factory()`` the device called ``name`` (replacing one made before)."""
    with _LOCK:
        _FACTORIES[name] = factory
        _DEVICES.pop(name, None)
        if default:
            _DEFAULT[0] = name


def default_device_name() -> str:
    return config.executor or _DEFAULT[0]


def get_device(name: str | None = None) -> Device:
    """The device called ``name`` (default: :func:`default_device_name`)."""
    name = name or default_device_name()
    device = _DEVICES.get(name)
    if device is not None:
        return device
    with _LOCK:
        device = _DEVICES.get(name)
        if device is None:
            factory = _FACTORIES.get(name)
            if factory is None:
                raise DeviceError(f"unknown device {name!r}; registered: {device_names()}",
                                  location=user_location())
            if isinstance(factory, str):
                module, _, attr = factory.partition(":")
                factory = getattr(importlib.import_module(module), attr)
            device = factory()
            _DEVICES[name] = device
        return device


def device_names() -> list[str]:
    return sorted(_FACTORIES)


def loaded_devices() -> list[Device]:
    """The devices made so far in this process (no backend is loaded to list them)."""
    with _LOCK:
        return list(_DEVICES.values())


def clear_caches() -> None:
    """Forget every compiled program the devices keep (in memory; a disk cache stays,
    see ``TRACEJIT_CACHE_DIR=off``), so the next compile compiles. Jitted functions keep
    their own caches (``f.clear_cache()``)."""
    for device in loaded_devices():
        device.clear_caches()
