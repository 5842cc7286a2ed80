"""Which gemm a float matmul calls on this host: OpenBLAS or the register-tiled kernel.

Measured, never inferred from CPU flags (tuning.py): on AMD Zen 5 the tiled kernel
(tile_kernel.py) ran W3 in 6.5 ms against OpenBLAS's 8.6; on Intel Emerald Rapids it
took 12.2 ms against OpenBLAS's 5.0. A decision covers a *class* of products: the
dtype, whether A is transposed, and each of M, N, K rounded up to a power of two. It
is timed on one thread (a program splits a large gemm into row blocks, one per
thread, and pins OpenBLAS to the calling thread) with the rows capped at
``MEASURE_ROWS``, so a tall product costs no more to decide than a square one.

``TRACEJIT_GEMM=blas`` or ``=tiles`` forces the choice (``tiles`` only where the
target has AVX-512, the only place the kernel exists); ``TRACEJIT_TUNE=off`` takes
the tiled kernel wherever it exists, the behaviour before measurement.
"""

from __future__ import annotations

import ctypes
import os

import llvmlite.binding as llvm
import numpy as np

from ..ir import dtypes as dt
from . import tuning

__all__ = ["use_tiles", "MEASURE_ROWS"]

MEASURE_ROWS = 512
GEMM_ENV = "TRACEJIT_GEMM"      # blas | tiles | auto (the default: measured)
_TILE_SIGNATURE = ctypes.CFUNCTYPE(None, *([ctypes.c_int64] * 3), ctypes.c_void_p,
                                   ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                                   ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                                   ctypes.c_int64)


def _bucket(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def forced() -> str | None:
    value = os.environ.get(GEMM_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in ("blas", "tiles"):
        raise ValueError(f"{GEMM_ENV}={value!r}: expected blas, tiles or auto")
    return value


def use_tiles(dtype: dt.DType, m: int, n: int, k: int, trans_a: bool) -> bool:
    """Whether ``C[m, n] = op(A) @ B`` (B not transposed) calls the tiled kernel."""
    from .lower_tilegemm import tile_gemm_exists
    force = forced()            # a bad value is an error on every host
    if not tile_gemm_exists(dtype):
        return False
    rows = min(m, MEASURE_ROWS)
    key = (f"gemm/{dtype.name}/{'T' if trans_a else 'N'}/"
           f"{_bucket(rows)}x{_bucket(n)}x{_bucket(k)}")
    candidates = _candidates(dtype, rows, n, k, trans_a) if force is None else {
        "blas": None, "tiles": None}
    return tuning.choose(key, candidates, "tiles", force=force) == "tiles"


def _candidates(dtype: dt.DType, m: int, n: int, k: int, trans_a: bool) -> dict:
    """Each way to compute one ``m x n x k`` product, as a callable (single-threaded)."""
    from .blas import GEMM, GET_THREADS, SET_THREADS, blas_library, ensure_blas
    from .tile_kernel import TILE_GEMM, ensure_tile_gemm
    ensure_blas()
    ensure_tile_gemm()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype.np_dtype)
    b = rng.standard_normal((k, n)).astype(dtype.np_dtype)
    c = np.zeros((m, n), dtype.np_dtype)
    lib = ctypes.CDLL(blas_library())
    gemm = getattr(lib, GEMM[dtype])
    real = ctypes.c_float if dtype is dt.float32 else ctypes.c_double
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p
    gemm.argtypes = [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]
    gemm.restype = None
    get_threads, set_threads = getattr(lib, GET_THREADS), getattr(lib, SET_THREADS)
    get_threads.restype = ctypes.c_int
    tile = _TILE_SIGNATURE(llvm.address_of_symbol(TILE_GEMM[dtype]))
    lda = m if trans_a else k

    def blas():
        saved = get_threads()
        set_threads(1)      # as inside a program: one thread per row block
        try:
            gemm(101, 112 if trans_a else 111, 111, m, n, k, 1.0, a.ctypes.data, lda,
                 b.ctypes.data, n, 0.0, c.ctypes.data, n)
        finally:
            set_threads(saved)

    def tiles():
        tile(m, n, k, a.ctypes.data, 1 if trans_a else k, m if trans_a else 1,
             b.ctypes.data, n, c.ctypes.data, n, 0)

    return {"blas": blas, "tiles": tiles}
