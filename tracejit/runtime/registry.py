"""The devices this process has, by name: built in, made on first use.

The registry replaces import-time registration: ``import tracejit`` registers nothing
and loads no backend; the first ``get_device("cpu")`` imports the CPU backend and makes
its device. A backend outside the package adds itself with :func:`register_device`
(a name and a zero-argument factory; ``default=True`` makes it what ``@jit`` uses).

Which device runs a program: the ``executor=`` argument of ``jit`` (a device name), else
``config.executor`` (``TRACEJIT_EXECUTOR``), else the default (``cpu``).

**Several CPU devices in one process.** ``TRACEJIT_CPU_DEVICES=N`` gives ``/cpu:0`` ...
``/cpu:N-1`` (as XLA's ``--xla_force_host_platform_device_count``): each a device of its
own, with its own buffers and compiled programs, all on the host's cores, so graphs
placed over several devices are tested on one machine. A device string names them
(``get_device("/cpu:1")``, ``"/device:CPU:1"``, ``"/job:localhost/replica:0/task:0/
device:CPU:1"``); ``cpu`` is ``/cpu:0``. :func:`devices` lists them.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
from collections.abc import Callable, Iterator

from ..config import config
from ..ir.source import user_location
from .device import Device
from .devices import DeviceError, parse_device

__all__ = ["get_device", "register_device", "device_names", "loaded_devices",
           "default_device_name", "clear_caches", "devices", "local_device", "cpu_device_count",
           "device_resolver", "resolving", "CPU_DEVICES_ENV", "gpu_device_count"]

CPU_DEVICES_ENV = "TRACEJIT_CPU_DEVICES"
LOCAL_JOB = "localhost"

# name -> "module:class" of a built-in device, or a factory registered at run time
_FACTORIES_BUILTIN_CPU = "tracejit.codegen_cpu.device:CpuDevice"
_FACTORIES: dict[str, str | Callable[[], Device]] = {
    "cpu": _FACTORIES_BUILTIN_CPU,
    "interpreter": "tracejit.runtime.interpreter:InterpreterDevice",
    "null": "tracejit.runtime.null:NullDevice",
}
_DEVICES: dict[str, Device] = {}
_DEFAULT = ["cpu"]
_LOCK = threading.RLock()


# Devices of other tasks: while a cluster session runs, its resolver names them (a
# DeviceSpec in, a Device or None -- "not a cluster device, look here" -- out).
_RESOLVER: contextvars.ContextVar = contextvars.ContextVar("tracejit_device_resolver",
                                                          default=None)


@contextlib.contextmanager
def device_resolver(resolve: Callable) -> Iterator[None]:
    """Inside, device strings naming another job or task (``/job:ps/task:0``) are looked
    up with ``resolve(spec)`` first: the cluster runtime's remote devices."""
    token = _RESOLVER.set(resolve)
    try:
        yield
    finally:
        _RESOLVER.reset(token)


def resolving() -> bool:
    """Whether a cluster's device strings resolve here (inside a cluster session)."""
    return _RESOLVER.get() is not None


def _resolved(text: str):
    resolve = _RESOLVER.get()
    return None if resolve is None else resolve(parse_device(text))


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


def cpu_device_count() -> int:
    """How many CPU devices this process has (``TRACEJIT_CPU_DEVICES``, default 1)."""
    raw = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise DeviceError(f"{CPU_DEVICES_ENV}={raw!r}: expected a positive integer",
                          location=user_location())
    return int(raw)


def local_device(text: str) -> Device | None:
    """The device of this process a (possibly partial) TensorFlow device string names:
    ``/cpu:1`` is that device; a string naming no device type (``/job:localhost``)
    constrains nothing here and gives None. A string no device of this process matches
    is a DeviceError."""
    spec = parse_device(text)
    found = _resolved(text)
    if found is not None:
        return found
    if spec.device_type is None:
        _check_local(text, spec)
        return None
    return get_device(_registry_name(text))


def _check_local(name: str, spec) -> None:
    if spec.job not in (None, LOCAL_JOB) or spec.replica not in (None, 0) \
            or spec.task not in (None, 0):
        raise DeviceError(f"{name!r} is not a device of this process (job {LOCAL_JOB!r}, "
                          "replica 0, task 0); devices of other tasks come with the "
                          "cluster runtime", location=user_location())


def _registry_name(name: str) -> str:
    """A device string (``/cpu:1``, ``/job:localhost/task:0/device:CPU:1``) as the
    registry's name for it (``cpu:1``); other names as they are."""
    if not name.startswith("/"):
        return name
    spec = parse_device(name)
    _check_local(name, spec)
    index = spec.device_index or 0
    if spec.device_type == "gpu":
        _check_gpu_index(name, index)
        return "gpu" if index == 0 else f"gpu:{index}"
    if spec.device_type != "cpu":
        raise DeviceError(f"no {spec.device_type or 'device type in'} {name!r} in this "
                          f"process; it has {[str(d.spec) for d in devices()]}",
                          location=user_location())
    _check_cpu_index(index)
    return "cpu" if index == 0 else f"cpu:{index}"


def gpu_device_count() -> int:
    """How many ``/gpu:N`` this process has (``TRACEJIT_GPU``: codegen_cuda/mode.py).
    Asking costs one dlopen of the NVIDIA driver, not an import of numba.cuda."""
    from ..codegen_cuda.mode import gpu_count
    return gpu_count()


def _check_gpu_index(name: str, index: int) -> None:
    count = gpu_device_count()
    if index >= count:
        from ..codegen_cuda.mode import GPU_ENV, gpu_mode
        have = [str(d.spec) for d in devices()]
        why = (f"this process has no GPU ({GPU_ENV}={gpu_mode()}: no NVIDIA driver or "
               "numba-cuda; TRACEJIT_GPU=sim simulates one, =null compiles for one)"
               if count == 0 else f"it has {count} GPU(s)")
        raise DeviceError(f"no /device:GPU:{index} for {name!r}: {why}; devices here: "
                          f"{have}", location=user_location())


def _gpu_factory(name: str):
    kind, _, index = name.partition(":")
    if kind != "gpu" or (index and not index.isdigit()):
        return None
    number = int(index or 0)
    _check_gpu_index(f"/gpu:{number}", number)

    def make():
        from ..codegen_cuda.device import CudaDevice
        return CudaDevice(f"/job:{LOCAL_JOB}/replica:0/task:0/device:GPU:{number}")
    return make


def _check_cpu_index(index: int) -> None:
    count = cpu_device_count()
    if index >= count:
        raise DeviceError(f"no /device:CPU:{index} in this process: {CPU_DEVICES_ENV}="
                          f"{count} gives /device:CPU:0 to /device:CPU:{count - 1}",
                          location=user_location())


def _cpu_factory(name: str):
    """The factory of ``cpu:<i>`` for i below TRACEJIT_CPU_DEVICES, else None."""
    kind, _, index = name.partition(":")
    if kind != "cpu" or not index.isdigit():
        return None
    _check_cpu_index(int(index))
    return lambda: _cpu_class()(f"/job:{LOCAL_JOB}/replica:0/task:0/device:CPU:{index}")


def _cpu_class():
    module, _, attr = _FACTORIES_BUILTIN_CPU.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_device(name: str | None = None) -> Device:
    """The device called ``name`` (default: :func:`default_device_name`): a registry
    name (``cpu``, ``interpreter``, ``cpu:1``) or a device string (``/cpu:1``)."""
    name = name or default_device_name()
    device = _DEVICES.get(name)
    if device is not None:
        return device
    if name.startswith("/"):
        found = _resolved(name)
        if found is not None:
            return found
    with _LOCK:
        name = _registry_name(name)
        device = _DEVICES.get(name)
        if device is None:
            factory = _FACTORIES.get(name) or _cpu_factory(name) or _gpu_factory(name)
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
    extra = [f"cpu:{i}" for i in range(1, cpu_device_count())]
    extra += ["gpu" if i == 0 else f"gpu:{i}" for i in range(gpu_device_count())]
    return sorted({*_FACTORIES, *extra})


def devices() -> list[Device]:
    """The devices of this process that hold tensors and run programs, in order:
    ``/cpu:0`` ... ``/cpu:N-1`` (``TRACEJIT_CPU_DEVICES``), then ``/gpu:0`` ... (the
    GPUs ``TRACEJIT_GPU`` gives this process). The reference interpreter and the null
    device are ways to run, not devices, and are not listed."""
    found = [get_device("cpu" if i == 0 else f"cpu:{i}") for i in range(cpu_device_count())]
    return found + [get_device("gpu" if i == 0 else f"gpu:{i}")
                    for i in range(gpu_device_count())]


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
