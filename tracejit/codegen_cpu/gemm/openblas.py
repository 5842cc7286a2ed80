"""NumPy's bundled OpenBLAS, the one BLAS of the process.

The one BLAS of the process is the OpenBLAS NumPy itself loaded (ILP64, symbols
``scipy_cblas_sgemm64_``/``scipy_cblas_dgemm64_``). :func:`ensure_blas` finds that
library in ``/proc/self/maps`` (or ``numpy.libs`` by glob), takes the two addresses
with ctypes and registers them with ``llvm.add_symbol``; scipy and any second BLAS are
never loaded (two OpenBLAS thread pools in one process made an MLP step 20x slower).

With OpenBLAS 0.3.27 or later its threaded jobs run on tracejit's pool
(parallel/gang.py), not on threads of its own.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading

import llvmlite.binding as llvm
import numpy as np

from ...ir import dtypes as dt
from ..parallel.gang import BLAS_THREADS
from ..parallel.pool import pool_address

__all__ = ["GEMM", "GET_THREADS", "SET_THREADS", "SHARED_POOL_ENV", "blas_library",
           "ensure_blas", "blas_on_shared_pool"]

GEMM = {dt.float32: "scipy_cblas_sgemm64_", dt.float64: "scipy_cblas_dgemm64_"}
GET_THREADS, SET_THREADS = "scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"
# OpenBLAS 0.3.27+: hand its threaded jobs to a caller's pool (threadpool.BLAS_THREADS)
SET_CALLBACK = "scipy_openblas_set_threads_callback_function64_"
SHARED_POOL_ENV = "TRACEJIT_BLAS_POOL"    # "off": split gemms into row blocks instead
_LOCK = threading.Lock()
_REGISTERED = False
_SHARED_POOL = False            # OpenBLAS runs its threaded jobs on tracejit's pool


def blas_library() -> str:
    """The path of the OpenBLAS NumPy uses (already loaded in this process)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if "openblas64_" in os.path.basename(path) and path.endswith((".so", ".so.0")):
                    return path
    except OSError:
        pass
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    found = sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so*")))
    if not found:
        raise RuntimeError("NumPy's bundled OpenBLAS (libscipy_openblas64_*) was not found; "
                           "tracejit needs it for float matmuls")
    return found[0]


def ensure_blas() -> None:
    global _REGISTERED, _SHARED_POOL
    with _LOCK:
        if _REGISTERED:
            return
        lib = ctypes.CDLL(blas_library())
        for name in (*GEMM.values(), GET_THREADS, SET_THREADS):
            llvm.add_symbol(name, ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)
        setter = getattr(lib, SET_CALLBACK, None)
        if setter is not None and os.environ.get(SHARED_POOL_ENV, "").lower() != "off":
            setter.argtypes, setter.restype = [ctypes.c_void_p], None
            setter(pool_address(BLAS_THREADS))
            _SHARED_POOL = True
        _REGISTERED = True


def blas_on_shared_pool() -> bool:
    """Whether OpenBLAS's threaded drivers run on tracejit's pool, so programs call it
    threaded for large gemms (``TRACEJIT_BLAS_POOL=off``: row blocks on the pool instead,
    and, set before the first matmul, OpenBLAS keeps its own threads)."""
    ensure_blas()
    return _SHARED_POOL and os.environ.get(SHARED_POOL_ENV, "").lower() != "off"
