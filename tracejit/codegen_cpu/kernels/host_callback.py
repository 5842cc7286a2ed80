"""``host_callback``: native code calling back into Python for an effect (``tf.Print``).

The kernel calls ``tj_host_callback(i64 callback, ptr buffers, ptr signature)`` -- a
ctypes function of this module, made visible to programs with ``llvm.add_symbol``
(:func:`ensure_host_callback`; executor.provide_program_symbols calls it for a program
that names it, also one loaded from the compile cache) -- then copies ``x`` to the
result. ``signature`` is a constant of the kernel: the number of arguments, then each
one's dtype (its index in ``ALL_DTYPES``), rank and dimensions, so the callback wraps
the buffers as NumPy arrays without any state kept between compile and run (a cached
program from another process works the same).

The program's entry holds the GIL while it runs (binding.py), so the callback runs on
the calling thread with the GIL it already has. It costs a Python call and the array
wrapping per time the program reaches it (microseconds); the kernels around it do not
wait for anything else. The kernel is called once per reach, outside any parallel loop.
"""

from __future__ import annotations

import ctypes
import math
import threading

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ...ir.ops_host import call_host_callback
from ..loops.pointwise import FnContext
from ..loops.types import I64, PTR, VOID, declare

__all__ = ["RULES", "SYMBOL", "ensure_host_callback", "lower_host_callback"]

SYMBOL = "tj_host_callback"
_CALLBACK_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)


def _arrays(buffers: int, signature: int) -> list[np.ndarray]:
    """The arguments' buffers (after the result's) as arrays, read from ``signature``."""
    words = ctypes.cast(signature, ctypes.POINTER(ctypes.c_int64))
    count = words[0]
    pointers = ctypes.cast(buffers, ctypes.POINTER(ctypes.c_void_p))
    arrays, at = [], 1
    for k in range(count):
        dtype = dt.ALL_DTYPES[words[at]]
        rank = words[at + 1]
        shape = tuple(words[at + 2 + i] for i in range(rank))
        at += 2 + rank
        nbytes = math.prod(shape) * dtype.itemsize
        address = pointers[1 + k]
        if nbytes == 0 or not address:
            arrays.append(np.zeros(shape, dtype.np_dtype))
            continue
        raw = (ctypes.c_char * nbytes).from_address(address)
        # NOTE: bool is stored as one byte 0/1 and bfloat16 as its 16 bits: both read
        # correctly as their NumPy dtype
        arrays.append(np.frombuffer(raw, dtype=dtype.np_dtype).reshape(shape))
    return arrays


def _dispatch(callback: int, buffers: int, signature: int) -> None:
    call_host_callback(callback, _arrays(buffers, signature))


_FUNCTION = _CALLBACK_TYPE(_dispatch)      # held for the life of the process
_LOCK = threading.Lock()
_DONE: list[bool] = []


def ensure_host_callback() -> None:
    """Make ``tj_host_callback`` resolvable by programs in this process (once)."""
    with _LOCK:
        if not _DONE:
            llvm.add_symbol(SYMBOL, ctypes.cast(_FUNCTION, ctypes.c_void_p).value)
            _DONE.append(True)


def _signature(ctx: FnContext, eqn: Eqn) -> ir.Value:
    words = [len(eqn.ins)]
    for v in eqn.ins:
        words += [dt.ALL_DTYPES.index(v.dtype), len(v.shape), *v.shape]
    ty = ir.ArrayType(I64, len(words))
    sig = ir.GlobalVariable(ctx.module, ty, name=ctx.sub_name("signature"))
    sig.linkage = "private"
    sig.global_constant = True
    sig.initializer = ir.Constant(ty, words)
    return ctx.builder.bitcast(sig, PTR)


def lower_host_callback(ctx: FnContext, eqn: Eqn) -> None:
    ensure_host_callback()
    fn = declare(ctx.module, SYMBOL, ir.FunctionType(VOID, [I64, PTR, PTR]))
    b = ctx.builder
    b.call(fn, [ir.Constant(I64, eqn.params["callback"]), ctx.fn.args[0],
                _signature(ctx, eqn)])
    out = eqn.outs[0]
    ctx.memcpy(ctx.ptrs(0), ctx.ptrs(1), out.type.size * out.dtype.itemsize)


RULES = {ops.HOST_CALLBACK: lower_host_callback}
