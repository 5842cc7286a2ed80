"""OpenBLAS's threaded jobs on tracejit's pool (threadpool.BLAS_THREADS, installed with
``openblas_set_threads_callback_function``): every job of a call runs at the same time,
on the pool or, when the pool is taken, on threads of its own; NumPy's matmuls share the
pool with programs; programs call OpenBLAS threaded for large gemms."""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cpu.gemm import openblas
from tracejit.codegen_cpu.host.executor import CpuExecutor
from tracejit.codegen_cpu.parallel.pool import BLAS_THREADS, pool_address
from tracejit.codegen_cpu.parallel.settings import parallel_settings

DOJOB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, DOJOB, ctypes.c_int, ctypes.c_size_t,
                            ctypes.c_void_p, ctypes.c_int)

pytestmark = pytest.mark.skipif(not openblas.blas_on_shared_pool(),
                                reason="this OpenBLAS has no threads callback")


def _callback():
    return CALLBACK(pool_address(BLAS_THREADS))


def _gang(jobs: int, inner=None):
    """Run ``jobs`` jobs through the callback; each waits at a barrier for all the others
    (so they must run at the same time) and records what it was handed."""
    barrier = threading.Barrier(jobs, timeout=20)
    seen = {}
    data = (ctypes.c_int64 * jobs)(*[100 + i for i in range(jobs)])

    @DOJOB
    def dojob(thread_num, job, dojob_data):
        value = ctypes.c_int64.from_address(job).value
        if thread_num == 0 and inner is not None:
            inner()
        barrier.wait()
        seen[thread_num] = (value, dojob_data, threading.get_ident())

    _callback()(1, dojob, jobs, 8, ctypes.addressof(data), 7)
    return seen


@pytest.mark.parametrize("jobs", [1, 2, 3, 5])
def test_every_job_of_a_call_runs_at_the_same_time(jobs):
    seen = _gang(jobs)
    assert sorted(seen) == list(range(jobs))
    assert all(seen[i][:2] == (100 + i, 7) for i in range(jobs))
    assert len({ident for _, _, ident in seen.values()}) == jobs


def test_a_call_while_the_pool_is_taken_runs_on_threads_of_its_own():
    inner_seen = {}
    # job 0 of the outer call holds the pool when it makes the inner call
    outer = _gang(2, inner=lambda: inner_seen.update(_gang(3)))
    assert sorted(outer) == [0, 1] and sorted(inner_seen) == [0, 1, 2]
    assert len({ident for _, _, ident in inner_seen.values()}) == 3


def test_numpy_matmuls_share_the_pool_with_programs():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 384, 384), np.float32)
    want_np = a @ b
    f = tj.jit(lambda x, y: tj.tanh(x @ y) + 1.0, executor="cpu")
    want = np.tanh(want_np) + 1.0
    stop, bad = threading.Event(), []

    def numpy_loop():
        for _ in range(200):
            if stop.is_set():
                break
            if not np.allclose(a @ b, want_np, atol=1e-3):
                bad.append("numpy")

    threads = [threading.Thread(target=numpy_loop) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(40):
            if not np.allclose(np.asarray(f(a, b)), want, atol=1e-3):
                bad.append("tracejit")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert bad == []


@pytest.mark.parametrize("pool", ["shared", "off"])
def test_a_large_gemm_calls_threaded_openblas_from_the_program(pool, monkeypatch):
    monkeypatch.setenv("TRACEJIT_GEMM", "blas")     # (AVX-512 hosts may use their own kernel)
    if pool == "off":
        monkeypatch.setenv(openblas.SHARED_POOL_ENV, "off")
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 300, 300), np.float32)
    with parallel_settings(threads=2, min_work=1):
        llvm = CpuExecutor().dump(tj.make_ir(lambda x, y: x @ y)(a, b), "llvm")
        got = np.asarray(tj.jit(lambda x, y: x @ y, executor="cpu")(a, b))
    np.testing.assert_allclose(got, a @ b, rtol=2e-5, atol=2e-4)
    widened = f"call void @{openblas.SET_THREADS}(i32 2)" in llvm
    split = "gemm0.range" in llvm
    assert (widened, split) == ((True, False) if pool == "shared" else (False, True))
