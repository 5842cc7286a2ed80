"""tracejit's thread pool (threadpool.py) under the conditions that break pools: more
shares than cores, workers asleep, back-to-back jobs, nesting, and fork."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cpu.parallel.settings import parallel_settings


def _program(threads: int):
    with parallel_settings(threads=threads, min_work=1):
        f = tj.jit(lambda x: (tj.tanh(x) * 2.0 + x, tj.reduce_sum(x * x, axis=1)),
                   executor="cpu")
        f(np.zeros((37, 501), np.float32))      # compile while the settings hold
    return f


def _want(x):
    return np.tanh(x) * 2.0 + x, np.sum(x.astype(np.float64) ** 2, axis=1)


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_back_to_back_jobs_with_more_shares_than_cores(threads):
    f = _program(threads)
    rng = np.random.default_rng(threads)
    first, x = None, None
    for k in range(300):
        if k % 50 == 0:
            x = rng.normal(size=(37, 501)).astype(np.float32)
        a, s = (np.asarray(v) for v in f(x))
        if k % 50 == 0:
            want_a, want_s = _want(x)
            np.testing.assert_allclose(a, want_a, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(s, want_s, rtol=1e-4)
            first = s
        else:       # shares are static: the same sum in the same order every time
            np.testing.assert_array_equal(s, first)


def test_workers_that_fell_asleep_take_jobs_again():
    f = _program(2)
    x = np.random.default_rng(1).normal(size=(37, 501)).astype(np.float32)
    want_a, _ = _want(x)
    for _ in range(3):
        time.sleep(0.05)            # long past the spin: the workers sleep on the futex
        np.testing.assert_allclose(np.asarray(f(x)[0]), want_a, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_parallel_programs():
    f = _program(2)
    x = np.random.default_rng(2).normal(size=(37, 501)).astype(np.float32)
    f(x)                            # the parent's workers exist now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                    # the child: its own workers, same answers
        try:
            ok = all(np.allclose(np.asarray(f(x)[0]), _want(x)[0], rtol=1e-5, atol=1e-6)
                     for _ in range(20))
            os.write(write, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        pytest.fail("the forked child hung")
    assert os.read(read, 8) == b"ok"
    np.testing.assert_allclose(np.asarray(f(x)[0]), _want(x)[0], rtol=1e-5, atol=1e-6)


def test_an_idle_worker_gives_its_core_away_while_it_spins():
    # what the pool's spin must do (its effect, a pipeline's thread running beside a
    # spinning worker, is timing, measured by benchmarks/input_pipeline.py): the
    # worker's wait loop calls sched_yield
    from llvmlite import ir

    from tracejit.codegen_cpu.parallel.pool import pool_module
    module = pool_module(ir.Module("pool"))
    worker = str(module.get_global("tj_pool_worker"))
    assert "call i32 @\"sched_yield\"()" in worker or "@sched_yield()" in worker
