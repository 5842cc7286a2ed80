"""Programs long enough to be worth it run with the GIL released (so input pipelines
and queue runners in Python threads go on meanwhile), under one process-wide mutex
(all programs share the thread pool; each program its arena); short ones keep it."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cpu.host.entry_checks import trampoline_support
from tracejit.codegen_cpu.host.executor import CpuExecutor, loaded_program
from tracejit.codegen_cpu.host.program import RELEASE_GIL_ELEMENTS, runs_long
from tracejit.ir import GraphBuilder, ops
from tracejit.ir.core import tensor_type

pytestmark = pytest.mark.skipif(trampoline_support() is not None,
                                reason="the ctypes entry always holds the GIL")


def _matmul_graph(n: int):
    b = GraphBuilder()
    x, w = b.add_input(tensor_type([n, n], "f32")), b.add_input(tensor_type([n, n], "f32"))
    return b.build([b.emit1(ops.MATMUL, [x, w])])


def _program(n: int):
    return CpuExecutor().compile(_matmul_graph(n))


def test_long_programs_release_the_gil_and_short_ones_keep_it():
    big, small = _matmul_graph(256), _matmul_graph(8)
    assert runs_long(big) and not runs_long(small)
    assert 3 * 8 * 8 < RELEASE_GIL_ELEMENTS <= 3 * 256 * 256
    assert loaded_program(_program(256)).layout.release_gil
    assert not loaded_program(_program(8)).layout.release_gil


def test_python_threads_run_while_a_long_program_runs():
    program = _program(384)
    rng = np.random.default_rng(0)
    x, w = (rng.standard_normal((384, 384)).astype(np.float32) for _ in range(2))
    program([x, w])
    inside = threading.Event()
    stop = threading.Event()
    seen_inside = [0]

    def spin():
        while not stop.is_set():
            if inside.is_set():
                seen_inside[0] += 1
            stop.wait(0.0002)           # gives the GIL back, then waits to retake it

    before = sys.getswitchinterval()
    # NOTE: with a one-minute switch interval the main thread gives the GIL up only
    # where it chooses to: this thread can run between `inside.set()` and
    # `inside.clear()` only while the native code runs without the GIL.
    sys.setswitchinterval(60.0)
    thread = threading.Thread(target=spin)
    try:
        thread.start()
        stop.wait(0.01)
        inside.set()
        for _ in range(20):
            (y,) = program([x, w])
        inside.clear()
    finally:
        stop.set()
        sys.setswitchinterval(before)
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert seen_inside[0] > 0
    np.testing.assert_allclose(y, x @ w, rtol=1e-4, atol=1e-3)


def test_programs_called_from_many_threads_give_right_answers():
    rng = np.random.default_rng(1)
    programs = {n: _program(n) for n in (96, 256)}

    @tj.jit
    def mlp(x, w1, w2):
        return tj.matmul(tj.relu(tj.matmul(x, w1)), w2)

    cases = []
    for n in programs:
        x, w = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        cases.append((n, x, w, x @ w))
    x = rng.standard_normal((128, 200)).astype(np.float32)
    w1 = rng.standard_normal((200, 300)).astype(np.float32)
    w2 = rng.standard_normal((300, 50)).astype(np.float32)
    mlp_expected = np.maximum(x @ w1, 0) @ w2
    errors: list[BaseException] = []

    def work(seed):
        try:
            for i in range(25):
                n, a, b, expected = cases[(seed + i) % len(cases)]
                (got,) = programs[n]([a, b])
                np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
                np.testing.assert_allclose(np.asarray(mlp(x, w1, w2)), mlp_expected,
                                           rtol=1e-4, atol=1e-2)
        except BaseException as exc:        # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[0]
