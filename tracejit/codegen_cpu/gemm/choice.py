"""Which gemm a float matmul calls on this host: OpenBLAS, oneDNN or the tiled kernel.

Measured, never inferred from CPU flags (host/tuning.py): on AMD Zen 5 the tiled kernel
(tile_kernel.py) ran W3 in 6.5 ms against OpenBLAS's 8.6; on Intel Emerald Rapids it
took 12.2 ms against OpenBLAS's 5.0. A decision covers a *class* of products: the
dtype, whether A is transposed, and each of M, N, K rounded up to a power of two. It
is timed on one thread (a program splits a large gemm into row blocks, one per
thread, and pins OpenBLAS to the calling thread) with the rows capped at
``MEASURE_ROWS``, so a tall product costs no more to decide than a square one.

A large product called whole from a program's own thread (OpenBLAS threaded on
tracejit's pool, blas.call_gemm) has a second decision, :func:`threaded_gemm`: that
OpenBLAS call or oneDNN's sgemm on its OpenMP team (onednn.py), float32 only. It is
timed as a program runs it, with every thread, the rows capped at
``MEASURE_ROWS_THREADED``: on a 2-core Intel Xeon (family 6 model 167) oneDNN took
6.3-6.8 ms for 1024^3 against OpenBLAS's 7.0-7.5, and lost at 128x512x784 (0.47 against
0.43 ms).

``TRACEJIT_GEMM=blas``, ``=tiles`` or ``=onednn`` forces the choice (``tiles`` only
where the target has AVX-512, the only place the kernel exists; ``onednn`` only for
float32 products a program calls whole, OpenBLAS elsewhere); ``TRACEJIT_TUNE=off``
takes the tiled kernel wherever it exists and OpenBLAS otherwise, the behaviour before
measurement.
"""

from __future__ import annotations

import ctypes
import os

import llvmlite.binding as llvm
import numpy as np

from ...ir import dtypes as dt
from ..host import tuning
from ..host.standalone import standalone
from .onednn import onednn_available, onednn_sgemm_callable, unavailable_reason
from .openblas import GEMM, GET_THREADS, SET_THREADS, blas_library, ensure_blas
from .tile_kernel import TILE_GEMM, ensure_tile_gemm
from .tiles import tile_gemm_exists

__all__ = ["use_tiles", "threaded_gemm", "MEASURE_ROWS", "MEASURE_ROWS_THREADED", "openblas_gemm",
           "size_class"]

MEASURE_ROWS = 512
MEASURE_ROWS_THREADED = 1024
GEMM_ENV = "TRACEJIT_GEMM"      # blas | tiles | onednn | auto (the default: measured)
CHOICES = ("blas", "tiles", "onednn")
_TILE_SIGNATURE = ctypes.CFUNCTYPE(None, *([ctypes.c_int64] * 3), ctypes.c_void_p,
                                   ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                                   ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                                   ctypes.c_int64)


def size_class(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def forced() -> str | None:
    value = os.environ.get(GEMM_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in CHOICES:
        raise ValueError(f"{GEMM_ENV}={value!r}: expected blas, tiles, onednn or auto")
    return value


def use_tiles(dtype: dt.DType, m: int, n: int, k: int, trans_a: bool) -> bool:
    """Whether ``C[m, n] = op(A) @ B`` (B not transposed) calls the tiled kernel."""
    force = forced()            # a bad value is an error on every host
    if not tile_gemm_exists(dtype):
        return False
    if standalone() is not None:
        # NOTE: built ahead of time, maybe for another machine: nothing to measure on
        return True
    rows = min(m, MEASURE_ROWS)
    key = (f"gemm/{dtype.name}/{'T' if trans_a else 'N'}/"
           f"{size_class(rows)}x{size_class(n)}x{size_class(k)}")
    if force is not None:
        return force == "tiles"
    return tuning.choose(key, _candidates(dtype, rows, n, k, trans_a), "tiles") == "tiles"


def threaded_gemm(dtype: dt.DType, m: int, n: int, k: int, trans_a: bool, trans_b: bool,
                  threads: int) -> str:
    """``"blas"`` or ``"onednn"``: which library runs a whole product a program calls
    from its own thread with ``threads`` threads."""
    force = forced()
    if dtype is not dt.float32:
        return "blas"
    if force == "onednn":
        why = unavailable_reason()
        if why is not None:
            raise RuntimeError(f"{GEMM_ENV}=onednn, but oneDNN cannot be used: {why}")
        return "onednn"
    if force is not None or not tuning.tuning_enabled() or not onednn_available():
        return "blas"
    rows = min(m, MEASURE_ROWS_THREADED)
    key = (f"gemm-threaded/{dtype.name}/{'T' if trans_a else 'N'}{'T' if trans_b else 'N'}/"
           f"{threads}/{size_class(rows)}x{size_class(n)}x{size_class(k)}")
    return tuning.choose(key, _threaded_candidates(rows, n, k, trans_a, trans_b, threads),
                         "blas")


def _operands(dtype: dt.DType, m: int, n: int, k: int, trans_a: bool, trans_b: bool):
    """Random ``op(A)[m, k]``, ``op(B)[k, n]`` and ``C[m, n]`` with leading dimensions."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype.np_dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype.np_dtype)
    c = np.zeros((m, n), dtype.np_dtype)
    return a, b, c, (m if trans_a else k), (k if trans_b else n)


def openblas_gemm(dtype: dt.DType, threads: int):
    """OpenBLAS's gemm through ctypes, run with ``threads`` threads as a program runs
    it (1: a row block inside a share; more: threaded on tracejit's pool)."""
    ensure_blas()
    lib = ctypes.CDLL(blas_library())
    gemm = getattr(lib, GEMM[dtype])
    real = ctypes.c_float if dtype is dt.float32 else ctypes.c_double
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p
    gemm.argtypes = [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]
    gemm.restype = None
    get_threads, set_threads = getattr(lib, GET_THREADS), getattr(lib, SET_THREADS)
    get_threads.restype = ctypes.c_int

    def run(m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc):
        saved = get_threads()
        set_threads(threads)
        try:
            gemm(101, 112 if trans_a else 111, 112 if trans_b else 111, m, n, k, 1.0,
                 a, lda, b, ldb, 0.0, c, ldc)
        finally:
            set_threads(saved)

    return run


def _threaded_candidates(m: int, n: int, k: int, trans_a: bool, trans_b: bool,
                         threads: int) -> dict:
    operands = _operands(dt.float32, m, n, k, trans_a, trans_b)
    blas, onednn = openblas_gemm(dt.float32, threads), onednn_sgemm_callable(threads)

    def timed(gemm):
        # NOTE: the callable holds `operands`: with only their addresses kept, NumPy
        # would free the arrays on return and every timed call would write freed heap
        a, b, c, lda, ldb = operands
        return lambda: gemm(m, n, k, a.ctypes.data, lda, trans_a, b.ctypes.data, ldb,
                            trans_b, c.ctypes.data, n)

    return {"blas": timed(blas), "onednn": timed(onednn)}


def _candidates(dtype: dt.DType, m: int, n: int, k: int, trans_a: bool) -> dict:
    """Each way to compute one ``m x n x k`` product, as a callable (single-threaded)."""
    ensure_tile_gemm()
    a, b, c, lda, ldb = _operands(dtype, m, n, k, trans_a, False)
    blas = openblas_gemm(dtype, 1)
    tile = _TILE_SIGNATURE(llvm.address_of_symbol(TILE_GEMM[dtype]))

    def tiles():
        tile(m, n, k, a.ctypes.data, 1 if trans_a else k, m if trans_a else 1,
             b.ctypes.data, n, c.ctypes.data, n, 0)

    return {"blas": lambda: blas(m, n, k, a.ctypes.data, lda, trans_a, b.ctypes.data, ldb,
                                 False, c.ctypes.data, n),
            "tiles": tiles}
