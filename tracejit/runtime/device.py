"""The Device interface: what a backend gives the runtime, and all the front ends see.

A device is three small objects and two tables:

* an :class:`Allocator`, which makes and frees the device's :class:`Buffer` s and copies
  between them and the host;
* a compiler (:meth:`Device.compile`): an optimized graph in, a :class:`Program` out,
  cached by the device;
* the :class:`Program` itself, called on the device's buffers;
* its **lowering table** (``lowering``: op -> rule; a rule for every op it runs), and
* its **pipeline** (``passes``: the target-specific passes -- fusion policy, kernel
  kinds -- that run after the target-independent cleanups of ``passes.optimize``).

The front ends (``@jit``, eager ops, ``Session.run``) talk only to this interface and to
the registry (registry.py); they turn NumPy arrays into buffers and back at the user's
boundary only. Host-memory devices (``cpu``, ``interpreter``, ``null``) keep a buffer's
bytes in a NumPy array, so that boundary costs nothing there; a GPU's allocator holds
device memory and copies.

Optional capabilities are declared, not probed: ``"native-dispatch"`` means
:meth:`Device.dispatcher` can build a native callable for ``@jit``'s fast path (W6);
``"run"`` means programs execute (the ``null`` device compiles only); ``"host-memory"``
means a buffer's storage *is* a NumPy array, so a program takes the user's arrays as
they are. Without it, :meth:`Device.host_program` copies each argument in through the
allocator and each result out: the front ends call every program that way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..ir.core import Graph, Params
from ..ir.dtypes import DType, as_dtype
from ..ir.errors import TracejitError
from ..ir.opdef import OpDef
from .devices import DeviceSpec, parse_device

__all__ = ["Buffer", "Allocator", "HostAllocator", "Program", "Device", "DeviceValue",
           "UnsupportedOnDevice", "Resident", "fetch_residents", "CAN_RUN", "NATIVE_DISPATCH",
           "HOST_MEMORY", "RESIDENT"]

CAN_RUN = "run"
NATIVE_DISPATCH = "native-dispatch"
HOST_MEMORY = "host-memory"
# its programs take Resident values of their own device by reference and can keep an
# output there instead of returning it: ``program(args, stores={output: resident})``
RESIDENT = "resident-values"


class UnsupportedOnDevice(TracejitError, RuntimeError):
    """A device was asked for something it cannot do (run on a compile-only device,
    a buffer of another device)."""


@dataclass(frozen=True)
class Buffer:
    """A tensor's bytes on one device. ``storage`` is the device's handle: a NumPy array
    for host-memory devices, device memory elsewhere."""

    device: Device
    shape: tuple[int, ...]
    dtype: DType
    storage: Any

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


class Allocator(Protocol):
    def alloc(self, shape: Sequence[int], dtype: DType) -> Buffer:
        """An uninitialized buffer."""

    def free(self, buffer: Buffer) -> None:
        """Give the memory back (a buffer is not used after this)."""

    def to_device(self, array: np.ndarray) -> Buffer:
        """Copy host data in."""

    def to_host(self, buffer: Buffer) -> np.ndarray:
        """Copy the data out to a NumPy array the caller owns."""

    def copy(self, buffer: Buffer) -> Buffer:
        """A second buffer on this device holding the same data."""


class HostAllocator:
    """Buffers in host memory, as NumPy arrays (cpu, interpreter, null)."""

    def __init__(self, device: Device):
        self.device = device

    def _check(self, buffer: Buffer) -> None:
        if buffer.device is not self.device:
            raise UnsupportedOnDevice(f"a buffer of {buffer.device.name} given to "
                              f"{self.device.name}'s allocator")

    def alloc(self, shape, dtype) -> Buffer:
        dtype = as_dtype(dtype)
        shape = tuple(int(d) for d in shape)
        return Buffer(self.device, shape, dtype, np.empty(shape, dtype.np_dtype))

    def free(self, buffer: Buffer) -> None:
        self._check(buffer)         # the array goes when its last reference does

    def to_device(self, array) -> Buffer:
        array = np.array(array, copy=True, order="C")
        return Buffer(self.device, array.shape, as_dtype(array.dtype), array)

    def to_host(self, buffer: Buffer) -> np.ndarray:
        self._check(buffer)
        return np.array(buffer.storage, copy=True)

    def copy(self, buffer: Buffer) -> Buffer:
        self._check(buffer)
        return Buffer(self.device, buffer.shape, buffer.dtype, buffer.storage.copy())


class DeviceValue:
    """A tensor kept in a device's own memory (a GPU's), held by the host: what
    ``tj.device_put(x, "/gpu:0")`` commits and what a committed call returns, so a chain
    of jitted calls on the device copies nothing to or from the host. It looks like an
    array where the front ends need one (``shape``, a NumPy ``dtype``, ``np.asarray``
    downloads it); its device's ``host_program`` takes it in place. The buffer goes back
    to the device's allocator when the last reference does."""

    __slots__ = ("buffer", "__weakref__")

    def __init__(self, buffer: Buffer):
        self.buffer = buffer

    @property
    def device(self) -> Device:
        return self.buffer.device

    @property
    def shape(self) -> tuple[int, ...]:
        return self.buffer.shape

    @property
    def dtype(self) -> np.dtype:
        return self.buffer.dtype.np_dtype

    @property
    def ndim(self) -> int:
        return len(self.buffer.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.buffer.shape, dtype=np.int64))

    def __array__(self, dtype=None, copy=None):
        value = self.buffer.device.get(self.buffer)
        return value if dtype is None else value.astype(dtype)

    def copy(self) -> np.ndarray:
        return np.asarray(self)

    def __repr__(self) -> str:
        return f"DeviceValue({self.buffer.dtype.name}{list(self.shape)} on {self.device.name})"

    def __del__(self):
        try:
            self.buffer.device.allocator.free(self.buffer)
        except Exception:     # noqa: BLE001 (interpreter shutdown: the memory goes anyway)
            pass


class Resident:
    """A value that stays on its device between steps -- a variable on a parameter
    server -- held by the host as a handle, not as bytes. A program of its own device
    (one declaring ``RESIDENT``) reads it in place and can store a new value into it; any
    other consumer fetches it first. Subclasses set ``device_key`` (the canonical string
    of the device it lives on) and implement :meth:`fetch_many` and :meth:`store`."""

    device_key: str = ""
    shape: tuple[int, ...] = ()
    dtype: DType | None = None

    @classmethod
    def fetch_many(cls, residents: Sequence[Resident]) -> list[np.ndarray]:
        """Copies of the values to the host, in order (one exchange where it can)."""
        raise NotImplementedError

    def store(self, array: np.ndarray) -> None:
        """Replace the value with ``array``."""
        raise NotImplementedError

    def fetch(self) -> np.ndarray:
        return self.fetch_many([self])[0]

    # NOTE: host code that treats a variable's value as an array (numpy(), printing, an
    # eager read) sees the fetched value.
    def __array__(self, dtype=None, copy=None):
        value = self.fetch()
        return value if dtype is None else value.astype(dtype)

    def copy(self) -> np.ndarray:
        return self.fetch()


def fetch_residents(values: Sequence) -> list:
    """``values`` with every Resident among them fetched to the host, one exchange per
    kind of Resident (a parameter server's connection batches its reads)."""
    out = list(values)
    groups: dict[type, list[int]] = {}
    for i, value in enumerate(out):
        if isinstance(value, Resident):
            groups.setdefault(type(value), []).append(i)
    for kind, where in groups.items():
        for i, array in zip(where, kind.fetch_many([out[i] for i in where]), strict=True):
            out[i] = array
    return out


# A compiled graph: called on the storage of the device's buffers (host-memory devices:
# NumPy arrays) in the graph's input order, returning its outputs' storage.
Program = Callable[[Sequence[Any]], Sequence[Any]]


class Device:
    """The base of every backend's device. Subclasses set ``kind``, ``lowering``,
    ``passes`` and ``capabilities`` and implement :meth:`compile`."""

    kind: str = ""                      # "cpu", "interpreter", "null", "gpu"
    lowering: Mapping[OpDef, Any] = {}  # op -> this backend's rule
    passes: tuple[tuple[str, Callable[[Graph], Graph]], ...] = ()
    # The base's allocator keeps host memory; a device with its own drops HOST_MEMORY.
    capabilities: frozenset[str] = frozenset({CAN_RUN, HOST_MEMORY})
    # The names users and compile caches know it by; the registry's key.
    name: str = ""

    def __init__(self, spec: DeviceSpec | str | None = None):
        self.spec = parse_device(spec) if spec is not None else DeviceSpec()
        self.allocator: Allocator = HostAllocator(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # ---- compiling and running ------------------------------------------------------------

    def compile(self, graph: Graph, *, donated: Sequence[int] = ()) -> Program:
        """A program for ``graph`` (as traced: the device runs the pipeline). The
        ``donated`` inputs' buffers may be overwritten, and returned as results."""
        raise NotImplementedError

    def overwritten_arguments(self, program: Program) -> frozenset[int] | None:
        """Of the arguments donated to :meth:`compile`, those ``program`` really writes
        (the others it only reads, so their owners need not give them up); None when the
        device cannot tell, and every donated argument may be written."""
        return None

    def run_op(self, op: OpDef, args: Sequence[np.ndarray], params: Params) -> tuple:
        """Run one op at once on host arrays (eager mode)."""
        raise NotImplementedError

    def supports(self, op: OpDef) -> bool:
        """Whether the lowering table has a rule for ``op``."""
        return op in self.lowering

    def dispatcher(self, program, slow, wrapper, returns: str, weak):
        """With the ``native-dispatch`` capability: a native callable for ``@jit``'s
        fast path, or None for this program."""
        return None

    def clear_caches(self) -> None:
        """Forget compiled programs kept in memory."""

    def queue_storage(self, capacity: int, dtypes, shapes, random: bool = False,
                      min_after: int = 0):
        """Native storage for an input queue's fixed-shape numeric rows (put and take
        a batch in one call, waiting without the GIL: tracejit/data/queues.py), or None
        where this device has none and the queue keeps its rows in Python."""
        return None

    def resident(self, name: str, array: np.ndarray) -> Resident | None:
        """With the ``resident-values`` capability: keep ``array`` on this device as the
        value of the variable ``name`` and return its handle; None where the host keeps
        variables (every local device)."""
        return None

    # ---- the user's boundary ---------------------------------------------------------------

    def host_program(self, program: Program, graph: Graph) -> Program:
        """``program`` (compiled from ``graph``) as the front ends call it: NumPy arrays in,
        NumPy arrays out. A host-memory device's program already is one; for any other
        device each argument is copied in and each result out through the allocator, and
        the buffers are freed after the call."""
        if HOST_MEMORY in self.capabilities:
            return program
        allocator = self.allocator
        outputs = [(v.shape, v.dtype) for v in graph.outputs]

        def on_host(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            inputs = [allocator.to_device(np.asarray(a)) for a in arrays]
            results: list[Buffer] = []
            try:
                stored = program([b.storage for b in inputs])
                results = [Buffer(self, shape, dtype, value)
                           for (shape, dtype), value in zip(outputs, stored, strict=True)]
                return [allocator.to_host(r) for r in results]
            finally:
                for buffer in (*inputs, *results):
                    allocator.free(buffer)
        on_host.__wrapped__ = program
        return on_host

    def put(self, array) -> Buffer:
        return self.allocator.to_device(np.asarray(array))

    def get(self, buffer: Buffer) -> np.ndarray:
        return self.allocator.to_host(buffer)
