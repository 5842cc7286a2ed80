"""The input queues' native library: the ring (queue_ring.py) and the pump
(queue_pump.py) compiled into one module, once per host (the compile cache keeps it),
and their functions as ctypes callables."""

from __future__ import annotations

import ctypes
import threading

from llvmlite import ir

from .cache import runtime_library
from .queue_pump import emit_pump
from .queue_ring import RingEmitter

__all__ = ["ring_functions", "RingFunctions"]

VERSION = 4


def ring_module(module: ir.Module) -> ir.Module:
    emitter = RingEmitter(module)
    ring_copy = emitter.emit_ring_copy()
    reserve = emitter.emit_reserve(ring_copy)
    put = emitter.emit_put(ring_copy, reserve)
    take = emitter.emit_take(ring_copy)
    emit_pump(emitter, take, put)
    emitter.emit_close()
    emitter.emit_read()
    emitter.emit_release()
    return module


class RingFunctions:
    """The compiled functions, as ctypes callables (each releases the GIL)."""

    def __init__(self):
        self._engine, address = runtime_library(f"tj_queue_ring v{VERSION}", ring_module)
        p, i64 = ctypes.c_void_p, ctypes.c_int64
        out = ctypes.POINTER(i64)
        self.put = ctypes.CFUNCTYPE(i64, p, p, i64, i64, out)(address("tjq_put"))
        self.take = ctypes.CFUNCTYPE(i64, p, p, i64, i64, p, i64, out)(address("tjq_take"))
        self.pump = ctypes.CFUNCTYPE(i64, p, p, p, i64, i64, i64, p, p, i64, out)(
            address("tjq_pump"))
        self.close = ctypes.CFUNCTYPE(None, p, i64)(address("tjq_close"))
        self.read = ctypes.CFUNCTYPE(i64, p, i64)(address("tjq_read"))
        self.release = ctypes.CFUNCTYPE(None, p)(address("tjq_release"))


_LOCK = threading.Lock()
_FUNCTIONS: list[RingFunctions] = []


def ring_functions() -> RingFunctions:
    """Compile (or load from the compile cache) the ring once per process."""
    with _LOCK:
        if not _FUNCTIONS:
            _FUNCTIONS.append(RingFunctions())
        return _FUNCTIONS[0]
