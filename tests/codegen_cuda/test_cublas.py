"""cuBLAS through ctypes (codegen_cuda/cublas.py), without a GPU.

What can be checked here: finding the library, binding its symbols, the clear error when
no driver lets a handle be made, and -- the part that decides correctness -- the mapping
of a row-major product onto cuBLAS's column-major call. The mapping is checked twice
against NumPy: the pure function, by running the column-major gemm it describes in
NumPy; and the whole ``gemm`` method, with the library's functions replaced by a NumPy
column-major gemm reading host memory through the pointers it is given.
"""

from __future__ import annotations

import ctypes
import itertools
import os

import ml_dtypes
import numpy as np
import pytest

from tracejit.codegen_cuda import cublas as cb
from tracejit.codegen_cuda.cublas import (
    Cublas,
    CublasError,
    device_pointer,
    find_cublas,
    gemm_arguments,
    stream_handle,
)
from tracejit.codegen_cuda.mode import driver_present

# ---- a column-major gemm in NumPy, as cuBLAS defines it ---------------------------------

def _column_major(flat: np.ndarray, rows: int, cols: int, ld: int) -> np.ndarray:
    """The ``rows x cols`` column-major matrix with leading dimension ``ld`` in
    ``flat`` (a view: writes go through)."""
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat, shape=(rows, cols), strides=(item, ld * item))


def _cublas_gemm(transa, transb, m, n, k, a_flat, lda, b_flat, ldb, c_flat, ldc):
    """C := op(A) @ op(B), column-major, C m x n."""
    a = _column_major(a_flat, k, m, lda).T if transa == cb.OP_T else \
        _column_major(a_flat, m, k, lda)
    b = _column_major(b_flat, n, k, ldb).T if transb == cb.OP_T else \
        _column_major(b_flat, k, n, ldb)
    c = _column_major(c_flat, m, n, ldc)
    c[...] = (a.astype(np.float64) @ b.astype(np.float64)).astype(c.dtype)


CASES = [(m, n, k) for m, n, k in itertools.product((1, 3, 5), (1, 4), (1, 2, 6))]


@pytest.mark.parametrize("transpose_a,transpose_b",
                         list(itertools.product((False, True), repeat=2)))
def test_gemm_arguments_compute_the_row_major_product(transpose_a, transpose_b):
    rng = np.random.default_rng(0)
    for m, n, k in CASES:
        a = rng.standard_normal((k, m) if transpose_a else (m, k))
        b = rng.standard_normal((n, k) if transpose_b else (k, n))
        expected = (a.T if transpose_a else a) @ (b.T if transpose_b else b)
        g = gemm_arguments(m, n, k, transpose_a=transpose_a, transpose_b=transpose_b)
        assert (g.first, g.second) == ("b", "a")
        operands = {"a": a.ravel(), "b": b.ravel()}
        c = np.full(m * n, np.nan)
        _cublas_gemm(g.transa, g.transb, g.m, g.n, g.k, operands[g.first], g.lda,
                     operands[g.second], g.ldb, c, g.ldc)
        np.testing.assert_allclose(c.reshape(m, n), expected, rtol=1e-12)


def test_gemm_arguments_of_a_plain_product():
    g = gemm_arguments(2, 3, 4, transpose_a=False, transpose_b=False)
    assert g == (cb.OP_N, cb.OP_N, 3, 2, 4, 3, 4, 3, "b", "a")
    g = gemm_arguments(2, 3, 4, transpose_a=True, transpose_b=True)
    assert g == (cb.OP_T, cb.OP_T, 3, 2, 4, 4, 2, 3, "b", "a")


def test_gemm_arguments_keep_leading_dimensions_positive():
    g = gemm_arguments(3, 2, 0, transpose_a=False, transpose_b=True)
    assert min(g.lda, g.ldb, g.ldc) >= 1


# ---- the whole gemm method over fake library functions ----------------------------------

_NP_TYPES = {cb.CUDA_R_32F: np.float32, cb.CUDA_R_64F: np.float64,
             cb.CUDA_R_16F: np.float16, cb.CUDA_R_16BF: ml_dtypes.bfloat16}


def _host(address, np_type, elements) -> np.ndarray:
    dtype = np.dtype(np_type)
    raw = (ctypes.c_char * (elements * dtype.itemsize)).from_address(address)
    return np.frombuffer(raw, dtype=dtype)


def _value(arg):
    if isinstance(arg, ctypes.c_void_p):
        return arg.value
    return getattr(arg, "_obj", arg)          # byref(scalar) -> the scalar


class FakeCublas(Cublas):
    """``Cublas`` whose library functions are NumPy on host memory; records calls."""

    def _bind(self):
        self.calls = []

        def create(handle_ref):
            handle_ref._obj.value = 0x1234
            return 0

        def record(name, fn=None):
            def call(*args):
                self.calls.append((name, [_value(a) for a in args]))
                return fn(*[_value(a) for a in args]) if fn else 0
            return call

        def plain(np_type):
            def run(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
                self._gemm(np_type, ta, tb, m, n, k, a, lda, 0, b, ldb, 0, c, ldc, 0, 1)
                return 0
            return run

        def ex(h, ta, tb, m, n, k, alpha, a, at, lda, b, bt, ldb, beta, c, ct, ldc, comp,
               algo):
            assert at == bt == ct
            self._gemm(_NP_TYPES[at], ta, tb, m, n, k, a, lda, 0, b, ldb, 0, c, ldc, 0, 1)
            return 0

        def batched(h, ta, tb, m, n, k, alpha, a, at, lda, sa, b, bt, ldb, sb, beta, c, ct,
                    ldc, sc, count, comp, algo):
            assert at == bt == ct
            self._gemm(_NP_TYPES[at], ta, tb, m, n, k, a, lda, sa, b, ldb, sb, c, ldc, sc,
                       count)
            return 0

        self._cublasCreate_v2 = create
        self._cublasDestroy_v2 = record("cublasDestroy_v2")
        self._cublasSetStream_v2 = record("cublasSetStream_v2")
        self._cublasSetMathMode = record("cublasSetMathMode")
        self._cublasSgemm_v2 = record("cublasSgemm_v2", plain(np.float32))
        self._cublasDgemm_v2 = record("cublasDgemm_v2", plain(np.float64))
        self._cublasGemmEx = record("cublasGemmEx", ex)
        self._cublasGemmStridedBatchedEx = record("cublasGemmStridedBatchedEx", batched)

    @staticmethod
    def _gemm(np_type, ta, tb, m, n, k, a, lda, sa, b, ldb, sb, c, ldc, sc, count):
        item = np.dtype(np_type).itemsize
        span_a = (lda * (m if ta == cb.OP_T else k))
        span_b = (ldb * (k if tb == cb.OP_T else n))
        for i in range(count):
            _cublas_gemm(ta, tb, m, n, k, _host(a + i * sa * item, np_type, span_a), lda,
                         _host(b + i * sb * item, np_type, span_b), ldb,
                         _host(c + i * sc * item, np_type, ldc * n), ldc)


@pytest.fixture
def fake():
    # any loadable library will do: the fake binds no symbols from it
    return FakeCublas("libc.so.6")


def _operand(rng, shape, dtype):
    return np.ascontiguousarray(rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("batch", [1, 3])
def test_gemm_through_the_library_calls(fake, dtype, batch):
    rng = np.random.default_rng(1)
    m, n, k = 3, 5, 4
    tolerance = 1e-2 if np.dtype(dtype).itemsize == 2 else 1e-5
    for transpose_a, transpose_b in itertools.product((False, True), repeat=2):
        a = _operand(rng, (batch, k, m) if transpose_a else (batch, m, k), dtype)
        b = _operand(rng, (k, n) if not transpose_b else (n, k), dtype)   # broadcast
        c = np.zeros((batch, m, n), dtype)
        fake.calls.clear()
        fake.gemm(a.ctypes.data, b.ctypes.data, c.ctypes.data, m=m, n=n, k=k,
                  dtype=np.dtype(dtype), transpose_a=transpose_a, transpose_b=transpose_b,
                  batch=batch, stride_a=m * k, stride_b=0, stride_c=m * n)
        a32 = a.astype(np.float64)
        b32 = b.astype(np.float64)
        expected = (np.swapaxes(a32, 1, 2) if transpose_a else a32) @ (b32.T if transpose_b
                                                                       else b32)
        np.testing.assert_allclose(c.astype(np.float64), expected, rtol=tolerance,
                                   atol=tolerance)
        names = [name for name, _ in fake.calls]
        if batch > 1:
            assert "cublasGemmStridedBatchedEx" in names
        elif np.dtype(dtype) == np.float32:
            assert "cublasSgemm_v2" in names
        elif np.dtype(dtype) == np.float64:
            assert "cublasDgemm_v2" in names
        else:
            assert "cublasGemmEx" in names


def test_float32_stays_ieee_unless_tf32_is_allowed(fake):
    a = np.ones((2, 2), np.float32)
    c = np.zeros((2, 2, 2), np.float32)
    args = (a.ctypes.data, a.ctypes.data, c.ctypes.data)
    shape = {"m": 2, "n": 2, "k": 2, "dtype": "float32", "transpose_a": False,
             "transpose_b": False}
    fake.gemm(*args, **shape)
    modes = [call[1] for name, call in fake.calls if name == "cublasSetMathMode"]
    assert modes == [cb.DEFAULT_MATH]
    fake.gemm(*args, **shape, batch=2, stride_c=4)
    batched = [call for name, call in fake.calls if name == "cublasGemmStridedBatchedEx"]
    assert batched[-1][21] == cb.COMPUTE_32F
    fake.gemm(*args, **shape, batch=2, stride_c=4, allow_tf32=True)
    batched = [call for name, call in fake.calls if name == "cublasGemmStridedBatchedEx"]
    assert batched[-1][21] == cb.COMPUTE_32F_FAST_TF32
    modes = [call[1] for name, call in fake.calls if name == "cublasSetMathMode"]
    assert modes == [cb.DEFAULT_MATH, cb.TF32_TENSOR_OP_MATH]
    np.testing.assert_array_equal(c, 2)


def test_set_stream_before_and_after_the_handle(fake):
    fake.set_stream(77)
    assert fake.handle == 0x1234
    fake.set_stream(88)
    streams = [call[1] for name, call in fake.calls if name == "cublasSetStream_v2"]
    assert streams == [77, 88]
    fake.close()
    assert [name for name, _ in fake.calls][-1] == "cublasDestroy_v2"


def test_gemm_refuses_other_dtypes_and_skips_empty_products(fake):
    with pytest.raises(TypeError, match="int32"):
        fake.gemm(0, 0, 0, m=2, n=2, k=2, dtype="int32", transpose_a=False,
                  transpose_b=False)
    fake.gemm(0, 0, 0, m=0, n=2, k=2, dtype="float32", transpose_a=False,
              transpose_b=False)
    with pytest.raises(ValueError, match="out of cuBLAS's int range"):
        fake.gemm(0, 0, 0, m=2**31, n=2, k=2, dtype="float32", transpose_a=False,
                  transpose_b=False)
    assert fake.calls == []


# ---- the real library --------------------------------------------------------------------

def test_find_cublas_gives_a_file_or_none(monkeypatch):
    monkeypatch.delenv(cb.CUBLAS_ENV, raising=False)
    path = find_cublas()
    assert path is None or os.path.isfile(path)


def test_find_cublas_honours_the_environment(monkeypatch, tmp_path):
    library = tmp_path / "libcublas.so.99"
    library.write_bytes(b"")
    monkeypatch.setenv(cb.CUBLAS_ENV, str(library))
    assert find_cublas() == str(library)
    monkeypatch.setenv(cb.CUBLAS_ENV, str(tmp_path / "missing.so"))
    with pytest.warns(RuntimeWarning, match="not a file"):
        assert find_cublas() is None


def test_loading_errors_are_clear():
    with pytest.raises(CublasError, match="cannot load cuBLAS from /nonexistent"):
        Cublas("/nonexistent/libcublas.so.13")
    with pytest.raises(CublasError, match="no symbol cublasCreate_v2"):
        Cublas("libc.so.6")


def test_the_real_library_binds(monkeypatch):
    monkeypatch.delenv(cb.CUBLAS_ENV, raising=False)
    path = find_cublas()
    if path is None:
        pytest.skip("no cuBLAS wheel installed (pip install nvidia-cublas)")
    blas = Cublas(path)
    blas.set_stream(0)                     # before a handle: remembered, no call
    if driver_present():
        assert blas.handle != 0
        blas.close()
        return
    with pytest.raises(CublasError) as error:
        _ = blas.handle
    assert error.value.status_name == "CUBLAS_STATUS_NOT_INITIALIZED"
    assert error.value.function == "cublasCreate_v2"
    assert "no CUDA driver" in str(error.value)


def test_device_pointer_and_stream_handle():
    class Fake:
        __cuda_array_interface__ = {"data": (0xABC0, False), "shape": (1,),
                                    "typestr": "<f4", "version": 3}

    assert device_pointer(Fake()) == 0xABC0
    with pytest.raises(TypeError, match="not a CUDA device array"):
        device_pointer(np.zeros(3))
    assert stream_handle(None) == 0

    class Stream:
        handle = ctypes.c_void_p(0x55)

    assert stream_handle(Stream()) == 0x55
