"""Variables: named mutable state that jitted functions and TF1 graphs read and assign.

Inside a trace, reading a Variable adds it as an implicit input of the graph, and an
assignment becomes an extra output; the runtime writes the new value back after the
program returns, so updates made in one jitted call are visible to the next.
Outside a trace, reads and assignments happen at once.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np

from ..ir import dtypes as dt
from ..ir.core import TensorType
from ..ir.errors import DTypeError, ShapeError
from ..ir.source import user_location
from ..runtime.device import RESIDENT, Resident
from ..runtime.devices import DeviceError
from ..runtime.registry import local_device, resolving
from .device_scope import current_device
from .tracing import current_trace, innermost, to_tensor
from .values import Array, Tensor, Tracer

_NAMES = itertools.count()
_ORDER = itertools.count()


def update_locks(variables) -> tuple:
    """The locks of ``variables`` in the one global order every caller takes them in,
    so two steps touching overlapping sets of variables never deadlock."""
    unique = {id(v): v for v in variables}.values()
    return tuple(v._lock for v in sorted(unique, key=lambda v: v._order))


class Variable(Tensor):
    """``tracejit.Variable(initial_value, name=, trainable=, dtype=)``.

    >>> import tracejit as tj
    >>> v = tj.Variable([1.0, 2.0], name="v")
    >>> _ = v.assign_add([1.0, 1.0])
    >>> v.numpy().tolist()
    [2.0, 3.0]
    """

    # NOTE: _lock makes each update atomic, as TF's resource variables with use_locking:
    # a jitted step holds the locks of every variable it reads or writes from reading
    # their values to writing the new ones back (JitFunction._call), and eager
    # read-modify-writes hold the variable's own. RLock: a step may run eagerly inside
    # an update of the same variable (an initializer reading it).
    __slots__ = ("_value", "name", "trainable", "_type", "_lock", "_order", "device",
                 "__weakref__")
    weak = False

    def __init__(self, initial_value, name: str | None = None, trainable: bool = True,
                 dtype=None, shape=None):
        if callable(initial_value):
            initial_value = initial_value()
        value = to_tensor(initial_value, dtype)
        if isinstance(value, Tracer):
            raise DTypeError("a Variable's initial value must be concrete, not a traced value; "
                             "create variables outside jitted functions", op="Variable",
                             location=user_location())
        array = np.array(value.value, copy=True)
        if shape is not None and tuple(shape) != array.shape:
            array = np.broadcast_to(array, tuple(shape)).copy()
        self._value = array
        self._type = TensorType(array.shape, dt.as_dtype(array.dtype))
        self.name = name or f"Variable_{next(_NAMES)}"
        self.trainable = trainable
        self._lock = threading.RLock()
        self._order = next(_ORDER)
        # where it lives: the device scope it was made in (None: the default device);
        # jitted code reads it there (passes/place.py)
        self.device = current_device()
        if self.device is not None:
            # a device that keeps values itself (a GPU; a task of the cluster, by name)
            # holds the variable; host-memory devices return None and the host keeps it
            home = self._home(self.device)
            if home is not None:
                self._value = home.resident(self.name, array) or array

    @staticmethod
    def _home(device: str):
        """The device a variable made under ``device`` lives on, when that device keeps
        values itself; None when the host keeps it (or, outside a cluster, when this
        process lacks the device: placement reports that where the variable is used)."""
        try:
            home = local_device(device)
        except DeviceError:
            if resolving():
                raise
            return None
        if home is None or (RESIDENT not in home.capabilities and not resolving()):
            return None
        return home

    @property
    def type(self) -> TensorType:
        return self._type

    # ---- reading --------------------------------------------------------------------------------

    def read_value(self) -> Tensor:
        trace = current_trace()
        if trace is not None and not trace.closed:
            return trace.read_variable(self)
        return Array(self._host_value())

    value = read_value

    def _host_value(self) -> np.ndarray:
        """The value as host memory (a variable kept on a device is downloaded)."""
        value = self._value
        return value.fetch() if isinstance(value, Resident) else value

    def _set(self, array: np.ndarray) -> None:
        """Replace the value; a variable kept on a device keeps it there."""
        if isinstance(self._value, Resident):
            self._value.store(array)
        else:
            self._value = array

    def numpy(self) -> np.ndarray:
        return np.array(self._host_value(), copy=True)

    def __array__(self, dtype=None, copy=None):
        value = self._host_value()
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"<tracejit.Variable {self.name!r} {self.type}>"

    # ---- writing --------------------------------------------------------------------------------

    def _checked(self, value) -> Tensor:
        tensor = to_tensor(value)
        if tensor.dtype is not self.dtype:
            if not tensor.weak and not isinstance(value, (list, tuple)):
                raise DTypeError(f"cannot assign a {tensor.dtype.name} value to variable "
                                 f"{self.name!r} of type {self.type}", op="assign",
                                 location=user_location())
            from .math_ops import cast
            tensor = cast(tensor, self.dtype)
        if tensor.shape != self.shape:
            if tensor.ndim == 0:
                from .array_ops import broadcast_to
                tensor = broadcast_to(tensor, self.shape)
            else:
                raise ShapeError(f"cannot assign a value of shape {list(tensor.shape)} to "
                                 f"variable {self.name!r} of shape {list(self.shape)}",
                                 op="assign", location=user_location())
        return tensor

    def assign(self, value, read_value: bool = True, name=None):
        """Set the variable; inside a trace the update takes effect when the program returns
        and later reads in the same trace see the new value."""
        tensor = self._checked(value)
        trace = current_trace() if not isinstance(tensor, Tracer) else innermost(tensor.trace)
        if trace is not None and not trace.closed:
            return trace.assign_variable(self, tensor)
        with self._lock:
            self._set(np.array(tensor.value, copy=True))
            return Array(self._host_value()) if read_value else None

    def _update(self, combine, delta, read_value: bool):
        """``self = combine(self, delta)``: atomic when eager (the read, the arithmetic
        and the write under the variable's lock), an ordinary update inside a trace."""
        delta = self._checked(delta)
        trace = current_trace()
        if (trace is not None and not trace.closed) or isinstance(delta, Tracer):
            return self.assign(combine(self.read_value(), delta), read_value)
        with self._lock:
            return self.assign(combine(self.read_value(), delta), read_value)

    def assign_add(self, delta, read_value: bool = True, name=None):
        from .math_ops import add
        return self._update(add, delta, read_value)

    def assign_sub(self, delta, read_value: bool = True, name=None):
        from .math_ops import subtract
        return self._update(subtract, delta, read_value)

    def load(self, value) -> None:
        """Set the value from outside any trace (TF1's ``Variable.load``)."""
        value = np.array(self._checked(value).value, copy=True)
        with self._lock:
            self._set(value)
