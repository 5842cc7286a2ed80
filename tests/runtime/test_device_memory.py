"""A device whose memory is not the host's: programs are called on its buffers' storage,
and the front ends copy in and out through its allocator only at the user's boundary
(Device.host_program). The device here keeps each buffer as bytes in a wrapper that is
not a NumPy array, so a program handed a user's array by mistake fails loudly."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.ir import dtypes as dt
from tracejit.ir.interpret import interpret
from tracejit.runtime.device import CAN_RUN, HOST_MEMORY, Buffer, Device, UnsupportedOnDevice
from tracejit.runtime.registry import get_device, register_device


class Stored:
    """Device memory, as this test device holds it: raw bytes plus a layout."""

    def __init__(self, data: bytes, shape, dtype):
        self.data, self.shape, self.dtype = data, tuple(shape), dt.as_dtype(dtype)

    @classmethod
    def of(cls, array) -> Stored:
        array = np.array(array, order="C")       # (ascontiguousarray makes 0-d 1-d)
        return cls(array.tobytes(), array.shape, array.dtype)

    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, self.dtype.np_dtype).reshape(self.shape).copy()


class CountingAllocator:
    def __init__(self, device):
        self.device = device
        self.live: set[int] = set()
        self.copied_in = self.copied_out = 0

    def _own(self, storage: Stored) -> Buffer:
        self.live.add(id(storage))
        return Buffer(self.device, storage.shape, storage.dtype, storage)

    def alloc(self, shape, dtype) -> Buffer:
        size = int(np.prod(shape, dtype=np.int64)) * dt.as_dtype(dtype).itemsize
        return self._own(Stored(bytes(size), shape, dtype))

    def free(self, buffer: Buffer) -> None:
        if buffer.device is not self.device:
            raise UnsupportedOnDevice("not this device's buffer")
        self.live.discard(id(buffer.storage))

    def to_device(self, array) -> Buffer:
        self.copied_in += 1
        return self._own(Stored.of(array))

    def to_host(self, buffer: Buffer) -> np.ndarray:
        self.copied_out += 1
        return buffer.storage.array()

    def copy(self, buffer: Buffer) -> Buffer:
        return self._own(Stored(buffer.storage.data, buffer.shape, buffer.dtype))


class OwnMemory(Device):
    """The reference interpreter behind an allocator of its own."""

    kind = name = "own-memory"
    capabilities = frozenset({CAN_RUN})         # not HOST_MEMORY

    def __init__(self):
        super().__init__("/cpu:0")
        self.allocator = CountingAllocator(self)
        self.results: list[Stored] = []

    def compile(self, graph, *, donated=()):
        def program(storages):
            assert all(isinstance(s, Stored) for s in storages), storages
            outs = [Stored.of(np.asarray(v)) for v in interpret(graph, [s.array()
                                                                    for s in storages])]
            for out in outs:                    # results are device buffers too
                self.allocator.live.add(id(out))
            return outs
        return program

    def run_op(self, op, args, params):
        return op.evaluate(args, params)

    def supports(self, op) -> bool:
        return True


@pytest.fixture
def device():
    register_device(OwnMemory.name, OwnMemory)
    return get_device(OwnMemory.name)


def test_a_program_runs_on_device_buffers_and_the_user_gets_host_arrays(device):
    f = tj.jit(lambda x, y: (x * y + 1.0, tj.reduce_sum(x)), executor=OwnMemory.name)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.full((2, 3), 2.0, np.float32)
    product, total = f(x, y)
    np.testing.assert_array_equal(np.asarray(product), x * y + 1.0)
    assert float(total) == 15.0
    allocator = device.allocator
    assert (allocator.copied_in, allocator.copied_out) == (2, 2)
    assert allocator.live == set(), "the call left device buffers behind"
    f(x, y)
    assert (allocator.copied_in, allocator.copied_out) == (4, 4)


def test_a_failing_program_still_frees_its_buffers(device):
    def broken(storages):
        raise RuntimeError("device fault")
    graph = tj.make_ir(lambda x: x + 1.0)(np.ones(2, np.float32))
    run = device.host_program(broken, graph)
    with pytest.raises(RuntimeError, match="device fault"):
        run([np.ones(2, np.float32)])
    assert device.allocator.live == set()


def test_host_memory_devices_take_the_users_arrays_as_they_are():
    for name in ("cpu", "interpreter"):
        device = get_device(name)
        assert HOST_MEMORY in device.capabilities
        program = object()
        assert device.host_program(program, None) is program
