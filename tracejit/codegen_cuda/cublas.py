"""cuBLAS through ctypes: matrix products on the GPU without a compiled extension.

Why ctypes: the ``nvidia-cublas`` wheel ships the shared library and nothing to call it
with from Python; a dozen ``argtypes`` lines are lighter than another binding package,
and the library is found by path inside the wheel, so no system CUDA install is needed.

Why the column-major trick: tracejit's buffers are row-major, cuBLAS is column-major. A
row-major ``r x c`` matrix *is* the column-major ``c x r`` matrix of its transpose, so
the row-major product ``C = op(A) @ op(B)`` is computed as the column-major product
``C^T = op(B)^T @ op(A)^T``: B's pointer goes first, the sizes m and n swap, and every
leading dimension is the row length the row-major layout already has. No data moves.
:func:`gemm_arguments` is that mapping, a pure function the tests check against NumPy.

float32 keeps IEEE fp32 arithmetic unless ``allow_tf32`` is set: TF32 rounds the inputs
to 10 mantissa bits, which changes results visibly, and PyTorch too turned it off by
default for matmuls after users were surprised.

Example (on a machine with a GPU; ``a``, ``b``, ``c`` numba device arrays)::

    blas = Cublas(find_cublas())
    blas.set_stream(stream_handle(stream))
    blas.gemm(device_pointer(a), device_pointer(b), device_pointer(c),
              m=64, n=32, k=128, dtype="float32", transpose_a=False, transpose_b=False)
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import threading
import warnings
import weakref
from pathlib import Path
from typing import NamedTuple

from ..ir.dtypes import as_dtype
from ..ir.errors import TracejitError

__all__ = ["CUBLAS_ENV", "CublasError", "Cublas", "GemmArguments", "find_cublas",
           "gemm_arguments", "device_pointer", "stream_handle", "status_name"]

CUBLAS_ENV = "TRACEJIT_CUBLAS"

# Where the wheels put the library, under the ``nvidia`` namespace package: CUDA 13's
# ``nvidia-cublas`` (one ``cu13`` folder for all toolkit wheels), then the per-library
# layout of the CUDA 12 wheels. The newest first: it matches numba-cuda's CUDA 13 here.
_WHEEL_PATHS = ("cu13/lib/libcublas.so.13", "cublas/lib/libcublas.so.13",
                "cublas/lib/libcublas.so.12")

_STATUS_NAMES = {
    0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED",
    3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
    8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
    13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR",
    15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

OP_N, OP_T = 0, 1                                   # cublasOperation_t
CUDA_R_32F, CUDA_R_64F, CUDA_R_16F, CUDA_R_16BF = 0, 1, 2, 14   # cudaDataType
COMPUTE_32F, COMPUTE_64F, COMPUTE_32F_FAST_TF32 = 68, 70, 77    # cublasComputeType_t
DEFAULT_MATH, TF32_TENSOR_OP_MATH = 0, 3            # cublasMath_t
GEMM_DEFAULT = -1                                   # cublasGemmAlgo_t
_INT_MAX = 2**31 - 1

# IR dtype name -> (storage type, compute type, ctypes type of alpha and beta)
_GEMM_TYPES = {
    "float32": (CUDA_R_32F, COMPUTE_32F, ctypes.c_float),
    "float64": (CUDA_R_64F, COMPUTE_64F, ctypes.c_double),
    "float16": (CUDA_R_16F, COMPUTE_32F, ctypes.c_float),
    "bfloat16": (CUDA_R_16BF, COMPUTE_32F, ctypes.c_float),
}


class CublasError(TracejitError, RuntimeError):
    """cuBLAS could not be loaded, or a call returned a failure status (named)."""

    def __init__(self, message: str, *, function: str | None = None,
                 status: int | None = None):
        self.function = function
        self.status = status
        self.status_name = None if status is None else status_name(status)
        if status is not None:
            message = f"{function} failed with {self.status_name} ({status}): {message}"
        super().__init__(message)


def status_name(status: int) -> str:
    """The ``cublasStatus_t`` enumerator's name for a status code."""
    return _STATUS_NAMES.get(int(status), f"unknown cuBLAS status {int(status)}")


def find_cublas() -> str | None:
    """The path of the cuBLAS shared library to load, or None when there is none.

    ``TRACEJIT_CUBLAS`` names it explicitly; when it names no file, a warning says so and
    None is returned (loading some other cuBLAS than the one asked for would hide the
    mistake). Otherwise the ``nvidia`` wheels in site-packages are searched.
    """
    explicit = os.environ.get(CUBLAS_ENV, "").strip()
    if explicit:
        if Path(explicit).is_file():
            return explicit
        warnings.warn(f"{CUBLAS_ENV}={explicit!r} is not a file; not loading cuBLAS",
                      RuntimeWarning, stacklevel=2)
        return None
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or ()) if spec is not None else []
    for relative in _WHEEL_PATHS:
        for root in roots:
            candidate = Path(root) / relative
            if candidate.is_file():
                return str(candidate)
    return None


class GemmArguments(NamedTuple):
    """The column-major cuBLAS call that computes a row-major product.

    ``first`` names the row-major operand whose pointer (and batch stride) is cuBLAS's
    ``A``: always ``"b"`` under the transpose trick; ``second`` is cuBLAS's ``B``.
    """

    transa: int
    transb: int
    m: int
    n: int
    k: int
    lda: int
    ldb: int
    ldc: int
    first: str
    second: str


def gemm_arguments(m: int, n: int, k: int, *, transpose_a: bool,
                   transpose_b: bool) -> GemmArguments:
    """Map row-major ``C[m,n] = op(A) @ op(B)`` to cuBLAS's column-major arguments.

    Row-major A is stored ``m x k`` (``k x m`` when transposed), B ``k x n`` (``n x k``),
    C ``m x n``. Read column-major, each stored matrix is its transpose, so cuBLAS
    computes ``C^T[n,m] = op'(B') @ op'(A')`` with B first: B needs no transpose
    flag when it was not transposed (its column-major reading already is ``B^T``), and
    a ``T`` flag when it was. Leading dimensions are the stored row lengths (at least 1,
    as cuBLAS demands even for empty matrices).
    """
    ld_b = k if transpose_b else n      # row length of B as stored
    ld_a = m if transpose_a else k      # row length of A as stored
    return GemmArguments(
        transa=OP_T if transpose_b else OP_N, transb=OP_T if transpose_a else OP_N,
        m=n, n=m, k=k, lda=max(1, ld_b), ldb=max(1, ld_a), ldc=max(1, n),
        first="b", second="a")


def device_pointer(array) -> int:
    """The device address of a numba device array (0 for an empty one)."""
    try:
        interface = array.__cuda_array_interface__
    except AttributeError:
        raise TypeError(f"{type(array).__name__} is not a CUDA device array (the "
                        "simulator's arrays have no device address)") from None
    return int(interface["data"][0] or 0)


def stream_handle(stream) -> int:
    """The ``CUstream`` of a numba stream as an int (0, the default stream, for None or
    the simulator's streams)."""
    handle = getattr(stream, "handle", None) if stream is not None else None
    if handle is None:
        return 0
    value = getattr(handle, "value", handle)     # ctypes c_void_p or a CUstream object
    return int(value or 0)


def _destroy(destroy, handle: int) -> None:
    destroy(ctypes.c_void_p(handle))


class Cublas:
    """One loaded cuBLAS library and one handle, created on first use.

    NOTE: a cuBLAS handle belongs to the CUDA context current when it is created, so the
    first :meth:`gemm` must run after numba made its context current (any numba
    allocation does). One lock serializes calls: a handle is not safe to share between
    threads that set different streams.
    """

    def __init__(self, path: str, *, allow_tf32: bool = False):
        self.path = str(path)
        self.allow_tf32 = allow_tf32
        try:
            self._lib = ctypes.CDLL(self.path)
        except OSError as exc:
            raise CublasError(f"cannot load cuBLAS from {self.path}: {exc}") from None
        self._bind()
        self._lock = threading.RLock()
        self._handle: int | None = None
        self._stream = 0
        self._math_mode: int | None = None
        self._finalizer = None

    def _bind(self) -> None:
        p, i, ll = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
        gemm_args = [p, i, i, i, i, i, p, p, i, p, i, p, p, i]
        signatures = {
            "cublasCreate_v2": [ctypes.POINTER(ctypes.c_void_p)],
            "cublasDestroy_v2": [p],
            "cublasSetStream_v2": [p, p],
            "cublasSetMathMode": [p, i],
            "cublasSgemm_v2": gemm_args,
            "cublasDgemm_v2": gemm_args,
            "cublasGemmEx": [p, i, i, i, i, i, p, p, i, i, p, i, i, p, p, i, i, i, i],
            "cublasGemmStridedBatchedEx": [p, i, i, i, i, i, p, p, i, i, ll, p, i, i, ll,
                                           p, p, i, i, ll, i, i, i],
        }
        for name, argtypes in signatures.items():
            try:
                function = getattr(self._lib, name)
            except AttributeError:
                raise CublasError(f"{self.path} has no symbol {name}: not a cuBLAS of "
                                  "CUDA 11 or later") from None
            function.argtypes = argtypes
            function.restype = ctypes.c_int         # cublasStatus_t
            setattr(self, "_" + name, function)

    def _call(self, name: str, *args) -> None:
        status = getattr(self, "_" + name)(*args)
        if status != 0:
            hint = ("no CUDA driver or GPU, or no current CUDA context"
                    if name == "cublasCreate_v2" and status == 1 else "see the cuBLAS docs")
            raise CublasError(hint, function=name, status=status)

    @property
    def handle(self) -> int:
        """The ``cublasHandle_t`` (created on first use, on the stream last set)."""
        with self._lock:
            if self._handle is None:
                handle = ctypes.c_void_p()
                self._call("cublasCreate_v2", ctypes.byref(handle))
                self._handle = int(handle.value or 0)
                self._finalizer = weakref.finalize(self, _destroy, self._cublasDestroy_v2,
                                                   self._handle)
                # NOTE: not at exit: the driver may already be gone, and it frees all
                self._finalizer.atexit = False
                self._call("cublasSetStream_v2", ctypes.c_void_p(self._handle),
                           ctypes.c_void_p(self._stream))
                self._set_math_mode(DEFAULT_MATH)
            return self._handle

    def close(self) -> None:
        """Destroy the handle now (a later call creates a new one)."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._handle = self._finalizer = self._math_mode = None

    def set_stream(self, stream: int) -> None:
        """Queue later calls on the CUDA stream ``stream`` (a ``CUstream`` as an int;
        0 is the default stream). See :func:`stream_handle`."""
        with self._lock:
            self._stream = int(stream)
            if self._handle is not None:
                self._call("cublasSetStream_v2", ctypes.c_void_p(self._handle),
                           ctypes.c_void_p(self._stream))

    def _set_math_mode(self, mode: int) -> None:
        if self._math_mode != mode:
            self._call("cublasSetMathMode", ctypes.c_void_p(self._handle), mode)
            self._math_mode = mode

    def gemm(self, a_ptr: int, b_ptr: int, c_ptr: int, *, m: int, n: int, k: int, dtype,
             transpose_a: bool, transpose_b: bool, batch: int = 1, stride_a: int = 0,
             stride_b: int = 0, stride_c: int = 0, allow_tf32: bool | None = None) -> None:
        """Row-major ``C[m,n] = op(A) @ op(B)`` for each of ``batch`` matrices, queued on
        the stream. Pointers are device addresses; strides count elements between
        consecutive matrices of a batch (0: every product uses the same matrix). ``C``
        is overwritten. ``allow_tf32`` (float32 only) defaults to the instance's."""
        dtype = as_dtype(dtype)
        if dtype.name not in _GEMM_TYPES:
            raise TypeError(f"cuBLAS gemm supports float16, bfloat16, float32 and "
                            f"float64, not {dtype.name}")
        for name, value in (("m", m), ("n", n), ("k", k), ("batch", batch)):
            if not 0 <= value <= _INT_MAX:
                raise ValueError(f"gemm {name}={value} is out of cuBLAS's int range")
        if m == 0 or n == 0 or batch == 0:
            return
        g = gemm_arguments(m, n, k, transpose_a=transpose_a, transpose_b=transpose_b)
        if max(g.lda, g.ldb, g.ldc) > _INT_MAX:
            raise ValueError("gemm leading dimension is out of cuBLAS's int range")
        storage, compute, scalar = _GEMM_TYPES[dtype.name]
        tf32 = self.allow_tf32 if allow_tf32 is None else allow_tf32
        if dtype.name == "float32" and tf32:
            compute = COMPUTE_32F_FAST_TF32
        alpha, beta = ctypes.byref(scalar(1.0)), ctypes.byref(scalar(0.0))
        first, second = (b_ptr, a_ptr) if g.first == "b" else (a_ptr, b_ptr)
        stride_first, stride_second = ((stride_b, stride_a) if g.first == "b"
                                       else (stride_a, stride_b))
        vp = ctypes.c_void_p
        with self._lock:
            handle = vp(self.handle)
            # NOTE: the handle's math mode would let TF32 into plain COMPUTE_32F calls too
            self._set_math_mode(TF32_TENSOR_OP_MATH if tf32 and dtype.name == "float32"
                                else DEFAULT_MATH)
            if batch > 1:
                self._call("cublasGemmStridedBatchedEx", handle, g.transa, g.transb,
                           g.m, g.n, g.k, alpha, vp(first), storage, g.lda, stride_first,
                           vp(second), storage, g.ldb, stride_second, beta, vp(c_ptr),
                           storage, g.ldc, stride_c, batch, compute, GEMM_DEFAULT)
            elif dtype.name in ("float32", "float64"):
                name = "cublasSgemm_v2" if dtype.name == "float32" else "cublasDgemm_v2"
                self._call(name, handle, g.transa, g.transb, g.m, g.n, g.k, alpha,
                           vp(first), g.lda, vp(second), g.ldb, beta, vp(c_ptr), g.ldc)
            else:
                self._call("cublasGemmEx", handle, g.transa, g.transb, g.m, g.n, g.k,
                           alpha, vp(first), storage, g.lda, vp(second), storage, g.ldb,
                           beta, vp(c_ptr), storage, g.ldc, compute, GEMM_DEFAULT)
