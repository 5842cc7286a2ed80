"""oneDNN's sgemm as the library of large float32 gemms a program calls whole: found,
forced, chosen by measurement, correct for every transpose, and reloadable from the
disk cache in a process that never lowered the program."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cpu.gemm import choice as gemm_choice
from tracejit.codegen_cpu.gemm import onednn
from tracejit.codegen_cpu.host import tuning
from tracejit.codegen_cpu.host.executor import CpuExecutor
from tracejit.codegen_cpu.parallel.settings import parallel_settings
from tracejit.ir import dtypes as dt

from .test_blas_threads import CASES

# The wheel is a dependency on Linux x86-64: there it must load, or the choice is gone.
LINUX_X86 = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")
needs_onednn = pytest.mark.skipif(not LINUX_X86, reason="oneDNN's wheel is for x86-64 Linux")


@pytest.fixture
def record(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    for name in (tuning.TUNE_ENV, gemm_choice.GEMM_ENV, onednn.ONEDNN_ENV):
        monkeypatch.delenv(name, raising=False)
    tuning.forget()
    yield tuning.record_path()
    tuning.forget()


@needs_onednn
def test_the_wheel_is_installed_and_loads():
    assert onednn.onednn_library() is not None
    assert onednn.unavailable_reason() is None


@needs_onednn
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("a_shape, b_shape, ta, tb", CASES)
def test_forced_onednn_matches_numpy(a_shape, b_shape, ta, tb, threads, monkeypatch):
    monkeypatch.setenv(gemm_choice.GEMM_ENV, "onednn")
    rng = np.random.default_rng(sum(a_shape) * 3 + sum(b_shape))
    a = rng.normal(size=a_shape).astype(np.float32)
    b = rng.normal(size=b_shape).astype(np.float32)
    f = tj.jit(lambda a, b: tj.matmul(a, b, transpose_a=ta, transpose_b=tb) + 1.0,
               executor="cpu")
    with parallel_settings(threads=threads, min_work=1):
        got = np.asarray(f(a, b))
    want = np.matmul(np.swapaxes(a, -1, -2) if ta else a,
                     np.swapaxes(b, -1, -2) if tb else b) + 1.0
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-4)


def _llvm(fn, *args, threads=2):
    with parallel_settings(threads=threads, min_work=1):
        return CpuExecutor().dump(tj.make_ir(fn)(*args), "llvm")


@needs_onednn
def test_only_float32_products_called_whole_go_to_onednn(monkeypatch):
    monkeypatch.setenv(gemm_choice.GEMM_ENV, "onednn")
    x32 = np.ones((64, 48), np.float32)
    assert f"@{onednn.SGEMM}(" in _llvm(lambda a: a @ a.T, x32)
    # float64: OpenBLAS; one thread: no whole threaded call; a batch: per-share calls.
    assert f"@{onednn.SGEMM}(" not in _llvm(lambda a: a @ a.T, x32.astype(np.float64))
    assert f"@{onednn.SGEMM}(" not in _llvm(lambda a: a @ a.T, x32, threads=1)
    monkeypatch.setenv(gemm_choice.GEMM_ENV, "blas")
    assert f"@{onednn.SGEMM}(" not in _llvm(lambda a: a @ a.T, x32)


def test_forcing_onednn_where_it_is_off_says_why(monkeypatch):
    monkeypatch.setenv(gemm_choice.GEMM_ENV, "onednn")
    monkeypatch.setenv(onednn.ONEDNN_ENV, "off")
    with pytest.raises(RuntimeError, match="TRACEJIT_GEMM=onednn.*TRACEJIT_ONEDNN is off"):
        gemm_choice.threaded_gemm(dt.float32, 512, 512, 512, False, False, 2)
    # Off, and not forced: OpenBLAS, measuring nothing.
    monkeypatch.delenv(gemm_choice.GEMM_ENV)
    assert gemm_choice.threaded_gemm(dt.float32, 512, 512, 512, False, False, 2) == "blas"


@needs_onednn
def test_the_threaded_choice_is_measured_once_and_remembered(record):
    choice = gemm_choice.threaded_gemm(dt.float32, 300, 200, 100, True, False, 2)
    assert choice in ("blas", "onednn")
    stored = json.loads(record.read_text())["decisions"]
    key = "gemm-threaded/float32/TN/2/512x256x128"
    assert stored[key]["choice"] == choice
    assert set(stored[key]["seconds"]) == {"blas", "onednn"}
    # Another product of the class reuses it; a remembered "onednn" is what code calls.
    stored[key]["choice"] = "onednn"
    record.write_text(json.dumps({"format": tuning.FORMAT, "host": {},
                                  "decisions": stored}))
    tuning.reload()
    assert gemm_choice.threaded_gemm(dt.float32, 260, 250, 70, True, False, 2) == "onednn"
    assert tuning.decisions()[key]["seconds"] == stored[key]["seconds"]


@needs_onednn
def test_a_cached_program_calling_onednn_runs_in_a_fresh_process(tmp_path):
    # The process that loads the program from disk never lowered it: the cache must
    # load oneDNN for it (an unresolved symbol would be a call to address 0).
    script = textwrap.dedent("""
        import numpy as np, tracejit as tj
        from tracejit.codegen_cpu.parallel.settings import parallel_settings
        rng = np.random.default_rng(5)
        a = rng.normal(size=(96, 80)).astype(np.float32)
        b = rng.normal(size=(80, 72)).astype(np.float32)
        with parallel_settings(threads=2, min_work=1):
            got = np.asarray(tj.jit(lambda a, b: a @ b, executor="cpu")(a, b))
        assert np.allclose(got, a @ b, rtol=1e-4, atol=1e-4), abs(got - a @ b).max()
        print("ok")
    """)
    env = {**os.environ, "TRACEJIT_CACHE_DIR": str(tmp_path),
           gemm_choice.GEMM_ENV: "onednn"}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert any(tmp_path.rglob("*")), "the first process wrote nothing to the cache"


@needs_onednn
@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "single"])
def test_each_measured_gemm_writes_its_own_live_operands(monkeypatch, threaded):
    # A timed candidate must keep its arrays: with only their addresses held, NumPy freed
    # them and every measurement wrote freed heap (a hang or "corrupted double-linked
    # list" a few thousand calls later). So: after the candidates are made and garbage
    # collected, each one still computes op(A) @ op(B) into the C it was given.
    import gc
    import weakref
    made = []

    def recording(*args):
        operands = real(*args)
        made.append([weakref.ref(x) for x in operands[:3]])
        return operands

    real = gemm_choice._operands
    monkeypatch.setattr(gemm_choice, "_operands", recording)
    m, n, k = 96, 80, 64
    if threaded:
        candidates = gemm_choice._threaded_candidates(m, n, k, True, True, 2)
    else:
        candidates = gemm_choice._candidates(dt.float32, m, n, k, True)
    gc.collect()
    (refs,) = made
    a, b, c = (ref() for ref in refs)
    assert a is not None and b is not None and c is not None, "the operands were freed"
    want = a.T.astype(np.float64) @ (b.T if threaded else b).astype(np.float64)
    for name, run in candidates.items():
        c[...] = np.nan
        run()
        np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-4, err_msg=name)
