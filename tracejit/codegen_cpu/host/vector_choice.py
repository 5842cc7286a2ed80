"""512- or 256-bit vectors for generated loops on an AVX-512 host, by measurement.

LLVM's tuning for Intel server and client cores (``prefer-256-bit``) vectorizes loops
with 256-bit vectors even where AVX-512 exists, because 512-bit instructions once
lowered the clock of older Xeons; for AMD Zen 4/5 it uses 512 bits. On the Intel
Emerald Rapids host of this project 512 bits ran W1 in 7.7 ms instead of 9.9. Which
is faster is a property of the host, so it is measured once (tuning.py): the same
loop -- a polynomial and a select per element, the bulk of vmath's
tanh/exp/sigmoid kernels -- compiled both ways and timed over an array that
stays in L2, where the vector width decides the speed.

``TRACEJIT_VECTOR_BITS=512|256`` forces the choice; ``TRACEJIT_TUNE=off`` keeps
LLVM's default for the CPU.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import os

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from . import tuning
from .machine import compile_with_machine

__all__ = ["VECTOR_ENV", "prefer_256_feature", "SHORT_LOOP_ELEMENTS", "prefer_short_vectors",
           "short_loops", "in_short_loops"]

VECTOR_ENV = "TRACEJIT_VECTOR_BITS"
ELEMENTS = 1 << 15
_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def _forced() -> str | None:
    value = os.environ.get(VECTOR_ENV, "").strip()
    if value in ("", "auto"):
        return None
    if value not in ("512", "256"):
        raise ValueError(f"{VECTOR_ENV}={value!r}: expected 512, 256 or auto")
    return value


def prefer_256_feature(cpu: str, features: str) -> str:
    """The ``prefer-256-bit`` feature to add to ``features`` ("" to add nothing): the
    measured (or forced) vector width on an AVX-512 target."""
    if "+avx512f" not in features.split(","):
        return ""
    force = _forced()
    key = f"vector_bits/{cpu}"
    if force is None and not tuning.tuning_enabled():
        return ""
    candidates = {"512": None, "256": None} if force else {
        "512": _timed_loop(cpu, features + ",-prefer-256-bit"),
        "256": _timed_loop(cpu, features + ",+prefer-256-bit")}
    choice = tuning.choose(key, candidates, "512", force=force)
    return "-prefer-256-bit" if choice == "512" else "+prefer-256-bit"


def _kernel_module() -> ir.Module:
    """``y[i] = select(x > 0, p(x)^2 + x, x * 0.5)``, p a degree-8 polynomial.

    NOTE: no division: a division-bound loop ran at the same speed both ways here (its
    throughput per element does not depend on the width), so it could not tell them
    apart; multiply-add chains, the bulk of the vector math kernels, can."""
    f32, i64 = ir.FloatType(), ir.IntType(64)
    module = ir.Module(name="tj_vector_probe")
    module.triple = llvm.get_process_triple()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType(), ir.PointerType(),
                                                             i64]), "probe")
    x_ptr, y_ptr, n = fn.args
    for arg in (x_ptr, y_ptr):
        arg.add_attribute("noalias")
    entry, loop, done = (fn.append_basic_block(name) for name in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    x = b.load(b.gep(x_ptr, [i], source_etype=f32), typ=f32)
    p = ir.Constant(f32, 0.013)
    for c in (0.041, -0.12, 0.33, -0.5, 0.71, -0.9, 1.1, 0.25):
        p = b.fadd(b.fmul(p, x), ir.Constant(f32, c))
    q = b.fadd(b.fmul(p, p), x)
    y = b.select(b.fcmp_ordered(">", x, ir.Constant(f32, 0.0)), q,
                 b.fmul(x, ir.Constant(f32, 0.5)))
    b.store(y, b.gep(y_ptr, [i], source_etype=f32))
    nxt = b.add(i, ir.Constant(i64, 1))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return module


def _timed_loop(cpu: str, features: str):
    """The probe compiled for ``cpu``/``features``, as a callable over fixed arrays."""
    engine, address = compile_with_machine(_kernel_module(), cpu, features, "probe")
    probe = _SIGNATURE(address)
    x = np.linspace(-2.0, 2.0, ELEMENTS, dtype=np.float32)
    y = np.empty_like(x)

    def run():
        for _ in range(32):
            probe(x.ctypes.data, y.ctypes.data, ELEMENTS)
    run.engine = engine         # the machine code lives as long as its engine
    return run


# NOTE: a loop body whose values all have at most this many elements (64 vectors of 16
# floats) runs short, latency-bound loops: each iteration's reductions end in a horizontal
# sum, one level longer with 512 bits, and a remainder that 512-bit vectors leave larger.
# W8's 1000-step in-graph loop (100-element batches) took 31 ns a step with 256-bit
# vectors against 38 with 512 on the Intel host (the host's measured choice for long
# loops). This is a rule on loop sizes, not on the CPU: short loops get 256 bits anywhere.
SHORT_LOOP_ELEMENTS = 1024
_SHORT = '"prefer-vector-width"="256"'


def prefer_short_vectors(fn: ir.Function) -> None:
    """Ask LLVM for 256-bit vectors in ``fn`` (a function attribute, which llvmlite's
    attribute set does not list, hence the widened set)."""
    known = type(fn.attributes)
    if _SHORT not in known._known:
        widened = type("Attributes", (known,), {"_known": known._known | {_SHORT}})
        attributes = widened()
        for name in fn.attributes:
            attributes.add(name)
        fn.attributes = attributes
    fn.attributes.add(_SHORT)


_SHORT_LOOPS = contextvars.ContextVar("tracejit_short_loops", default=False)


@contextlib.contextmanager
def short_loops(active: bool):
    """Lower a program made of short loops (see SHORT_LOOP_ELEMENTS): kernels keep their
    reduction loops rolled so that LLVM vectorizes them (a 16-element sum unrolled first
    is a serial chain of 16 scalar adds, on the loop's critical path every iteration)."""
    token = _SHORT_LOOPS.set(active)
    try:
        yield
    finally:
        _SHORT_LOOPS.reset(token)


def in_short_loops() -> bool:
    return _SHORT_LOOPS.get()
