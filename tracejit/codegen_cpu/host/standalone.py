"""Standalone code: programs that run without tracejit's runtime (ahead-of-time builds).

A program compiled for the JIT may call what this process provides: NumPy's OpenBLAS,
oneDNN, tracejit's thread pool, the shared tile kernel, host callbacks into Python.
Code built ahead of time (tracejit.aot) is linked into a library that needs only the C
library and libm, possibly on another machine, so inside :func:`standalone_code`:

* every float gemm (a matmul, a convolution's block products) calls a kernel emitted
  into the module itself (gemm/own_gemm.py), never cblas or oneDNN;
* whether a product uses the register-tiled code is decided by the *target's* vector
  ISA alone (``vector_isa``), never measured: the build host may not be the target, and
  may not even be able to run its code;
* it runs on one thread: ``parallel.settings.parallel_config()`` says so, and no call
  of the pool is emitted.

The setting is a context variable, so a JIT compile on another thread meanwhile is
unaffected; it is part of the compile cache key all the same.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

__all__ = ["Standalone", "standalone", "standalone_code"]


@dataclass(frozen=True)
class Standalone:
    """What standalone code may assume about the machine it runs on."""

    vector_isa: str         # "avx512", "avx2", "avx", "sse" (x86-64) or "neon" (AArch64)


_CURRENT: contextvars.ContextVar[Standalone | None] = contextvars.ContextVar(
    "tracejit_standalone", default=None)


def standalone() -> Standalone | None:
    """The setting in force (None: code for this process's JIT)."""
    return _CURRENT.get()


@contextlib.contextmanager
def standalone_code(vector_isa: str):
    """Lower programs as standalone code for a target with ``vector_isa`` in the block."""
    token = _CURRENT.set(Standalone(vector_isa))
    try:
        yield
    finally:
        _CURRENT.reset(token)
