"""Matmuls split across tracejit's threads, and OpenBLAS kept single-threaded while a
program runs except for the large gemms it runs threaded on tracejit's pool (one pool of
spinning threads, never two; test_blas_pool.py)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cpu.gemm.openblas import GET_THREADS, SET_THREADS, blas_library
from tracejit.codegen_cpu.host.executor import CpuExecutor
from tracejit.codegen_cpu.parallel.settings import parallel_settings


def _blas():
    lib = ctypes.CDLL(blas_library())
    return getattr(lib, GET_THREADS), getattr(lib, SET_THREADS)


# (A shape, B shape, transpose_a, transpose_b): tall, wide, odd sizes, both transposes,
# a batch with a shared right operand and a broadcast batch.
CASES = [((131, 37), (37, 19), False, False),
         ((5, 70), (70, 301), False, False),
         ((70, 133), (70, 45), True, False),
         ((33, 64), (129, 64), False, True),
         ((64, 17), (230, 64), True, True),
         ((3, 40, 50), (50, 60), False, False),
         ((2, 1, 48, 20), (3, 20, 35), False, False)]


@pytest.mark.parametrize("pool", ["shared", "off"])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("a_shape, b_shape, ta, tb", CASES)
def test_split_gemm_matches_numpy(a_shape, b_shape, ta, tb, threads, pool, monkeypatch):
    if pool == "off":   # row or column blocks, one single-threaded call per share
        monkeypatch.setenv("TRACEJIT_BLAS_POOL", "off")
    rng = np.random.default_rng(sum(a_shape) + sum(b_shape))
    a = rng.normal(size=a_shape).astype(np.float32)
    b = rng.normal(size=b_shape).astype(np.float32)
    f = tj.jit(lambda a, b: tj.matmul(a, b, transpose_a=ta, transpose_b=tb) * 2.0,
               executor="cpu")
    with parallel_settings(threads=threads, min_work=1):
        got = np.asarray(f(a, b))
    want = np.matmul(np.swapaxes(a, -1, -2) if ta else a,
                     np.swapaxes(b, -1, -2) if tb else b) * 2.0
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-4)


def test_a_program_restores_openblas_threads(monkeypatch):
    monkeypatch.setenv("TRACEJIT_GEMM", "blas")     # (AVX-512 hosts use their own kernel)
    get, set_ = _blas()
    saved = get()
    try:
        set_(3)
        f = tj.jit(lambda a: a @ a, executor="cpu")
        x = np.ones((64, 64), np.float32)
        np.testing.assert_array_equal(np.asarray(f(x)), x @ x)
        assert get() == 3
        with parallel_settings(threads=1):  # (no threaded gemm: test_blas_pool.py)
            llvm = CpuExecutor().dump(tj.make_ir(lambda a: a @ a)(x), "llvm")
        assert llvm.count(f"call void @{SET_THREADS}(i32") == 2    # pinned to 1, restored
    finally:
        set_(saved)


@pytest.mark.parametrize("pool", ["shared", "off"])
@pytest.mark.parametrize("a_shape, b_shape, ta, tb", CASES)
def test_blas_matmuls_match_numpy(a_shape, b_shape, ta, tb, pool, monkeypatch):
    # The other tests take the register-tiled kernel on AVX-512 hosts; this one BLAS.
    monkeypatch.setenv("TRACEJIT_GEMM", "blas")
    for threads in (2, 3):
        test_split_gemm_matches_numpy(a_shape, b_shape, ta, tb, threads, pool, monkeypatch)
