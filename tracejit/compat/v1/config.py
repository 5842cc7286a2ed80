"""``tf.ConfigProto`` and ``tf.GPUOptions``: the session settings TF1 scripts set.

They behave like the protocol buffers they stand for: fields have defaults, nested
messages exist from the start (``config.gpu_options.allow_growth = True``), and a field
that does not exist is an error naming it, whether passed to the constructor or set
later. What tracejit does with each field:

* ``intra_op_parallelism_threads``: the threads of the thread pool while the session
  runs (0: the default, ``TRACEJIT_THREADS`` or the cores);
* ``allow_soft_placement``: whether an op pinned to a device this machine lacks (``/gpu:0``
  without a GPU) runs on the CPU instead of failing with ``InvalidArgumentError``;
* ``device_count``: ``{"GPU": 0}`` hides GPUs (so soft placement decides);
* ``log_device_placement``: one line an op on stderr, ``name: (Type): device``, the first
  time a session places it (the device it runs on);
* ``operation_timeout_in_ms``, ``inter_op_parallelism_threads``,
  ``use_per_session_threads``, ``gpu_options.*``: accepted and kept; tracejit has no GPU
  memory pool to grow, so ``allow_growth`` and ``per_process_gpu_memory_fraction`` have
  nothing to limit.

``tf.config.list_logical_devices`` / ``list_physical_devices`` (also under
``tf.config.experimental``) list the runtime's devices (docs/runtime.md).
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any, NamedTuple

from ...runtime.registry import devices


class _Message:
    """A protobuf-like message: known fields with defaults, nothing else."""

    _fields: dict[str, Any] = {}
    _nested: dict[str, type] = {}

    def __init__(self, **kwargs):
        for name, default in self._fields.items():
            object.__setattr__(self, name, copy.copy(default))
        for name, cls in self._nested.items():
            object.__setattr__(self, name, cls())
        for name, value in kwargs.items():
            if name not in self._fields and name not in self._nested:
                # NOTE: ValueError here and AttributeError on assignment, as protobufs do.
                raise ValueError(f"Protocol message {type(self).__name__} has no {name!r} "
                                 f"field. Its fields: {', '.join(self.field_names())}")
            setattr(self, name, value)

    def __setattr__(self, name, value):
        if name not in self._fields and name not in self._nested:
            raise AttributeError(f"Protocol message {type(self).__name__} has no {name!r} "
                                 f"field. Its fields: {', '.join(self.field_names())}")
        if name in self._nested and not isinstance(value, self._nested[name]):
            raise TypeError(f"{type(self).__name__}.{name} must be a "
                            f"{self._nested[name].__name__}, got {type(value).__name__}")
        default = self._fields.get(name)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise TypeError(f"{type(self).__name__}.{name} must be a bool, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and \
                not isinstance(value, (int, float)):
            raise TypeError(f"{type(self).__name__}.{name} must be a number, got {value!r}")
        if isinstance(default, (dict, list)):
            value = type(default)(value)
        object.__setattr__(self, name, value)

    @classmethod
    def field_names(cls) -> list[str]:
        return sorted([*cls._fields, *cls._nested])

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self) -> str:
        changed = [f"{k}={v!r}" for k, v in vars(self).items()
                   if k in self._nested or v != self._fields.get(k)]
        return f"{type(self).__name__}({', '.join(changed)})"


class GPUOptions(_Message):
    _fields = {"allow_growth": False, "per_process_gpu_memory_fraction": 0.0,
               "visible_device_list": "", "allocator_type": "",
               "deferred_deletion_bytes": 0, "polling_active_delay_usecs": 0,
               "polling_inactive_delay_msecs": 0, "force_gpu_compatible": False}


class GraphOptions(_Message):
    _fields = {"enable_recv_scheduling": False, "build_cost_model": 0,
               "infer_shapes": False, "place_pruned_graph": False,
               "enable_bfloat16_sendrecv": False, "timeline_step": 0}


class ConfigProto(_Message):
    _fields = {"device_count": {}, "intra_op_parallelism_threads": 0,
               "inter_op_parallelism_threads": 0, "use_per_session_threads": False,
               "allow_soft_placement": False, "log_device_placement": False,
               "operation_timeout_in_ms": 0, "device_filters": [],
               "isolate_session_state": False}
    _nested = {"gpu_options": GPUOptions, "graph_options": GraphOptions}


class RunOptions(_Message):
    _fields = {"trace_level": 0, "timeout_in_ms": 0, "output_partition_graphs": False}
    NO_TRACE, SOFTWARE_TRACE, HARDWARE_TRACE, FULL_TRACE = 0, 1, 2, 3


class RunMetadata(_Message):
    _fields = {"step_stats": None, "cost_graph": None, "partition_graphs": []}


# ---- tf.config's device listing -------------------------------------------------------------

class LogicalDevice(NamedTuple):
    name: str
    device_type: str


class PhysicalDevice(NamedTuple):
    name: str
    device_type: str


def list_logical_devices(device_type=None) -> list[LogicalDevice]:
    """The devices ops can be placed on: the runtime's (``TRACEJIT_CPU_DEVICES`` logical
    CPUs over the one host), as TensorFlow lists its logical devices."""
    found = [LogicalDevice(str(d.spec), (d.spec.device_type or "").upper()) for d in devices()]
    return [d for d in found if device_type is None or d.device_type == device_type.upper()]


def list_physical_devices(device_type=None) -> list[PhysicalDevice]:
    """The machine's devices: one CPU (the logical CPU devices all run on it), and the
    GPUs a backend has made."""
    found = [PhysicalDevice("/physical_device:CPU:0", "CPU")]
    found += [PhysicalDevice(f"/physical_device:GPU:{d.spec.device_index or 0}", "GPU")
              for d in devices() if d.spec.device_type == "gpu"]
    return [d for d in found if device_type is None or d.device_type == device_type.upper()]


experimental = SimpleNamespace(list_logical_devices=list_logical_devices,
                               list_physical_devices=list_physical_devices)
