"""The compile worker: LLVM in a child process, bounded in time and memory (issue 10)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cpu.host import compile_worker, target
from tracejit.codegen_cpu.host.executor import CompileWarning


def small_module(name="m"):
    from llvmlite import ir
    module = target.new_module(name)
    fn = ir.Function(module, ir.FunctionType(ir.IntType(64), [ir.IntType(64)]), "twice")
    b = ir.IRBuilder(fn.append_basic_block())
    b.ret(b.add(fn.args[0], fn.args[0]))
    return module


def test_the_worker_makes_the_same_object_code_as_this_process():
    cpu, features = target.target_cpu()
    text = str(small_module())
    assert compile_worker.emit_object(text, cpu, features) == \
        compile_worker.compile_in_process(text, cpu, features, 3)


def test_bad_ir_is_an_error_and_the_worker_carries_on():
    cpu, features = target.target_cpu()
    with pytest.raises(compile_worker.CompileFailed):
        compile_worker.emit_object("define i64 @f( {", cpu, features)
    assert compile_worker.emit_object(str(small_module()), cpu, features)


def test_a_slow_compile_is_stopped_and_the_next_one_works(monkeypatch):
    cpu, features = target.target_cpu()
    monkeypatch.setenv(compile_worker.DELAY_ENV, "30")
    monkeypatch.setenv(compile_worker.TIMEOUT_ENV, "0.5")
    compile_worker.restart()                # a worker that sees the delay
    with pytest.raises(compile_worker.CompileTimeout, match="within 0.5 s"):
        compile_worker.emit_object(str(small_module()), cpu, features)
    monkeypatch.delenv(compile_worker.DELAY_ENV)
    assert compile_worker.emit_object(str(small_module("again")), cpu, features)


@pytest.mark.parametrize("raw,seconds", [("", compile_worker.DEFAULT_TIMEOUT), ("2.5", 2.5),
                                         ("off", None), ("0", None)])
def test_timeout_setting(monkeypatch, raw, seconds):
    monkeypatch.setenv(compile_worker.TIMEOUT_ENV, raw)
    assert compile_worker.compile_timeout() == seconds


def test_a_bad_timeout_names_the_variable(monkeypatch):
    monkeypatch.setenv(compile_worker.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="TRACEJIT_COMPILE_TIMEOUT='soon'"):
        compile_worker.compile_timeout()


SLOW = """
import warnings, numpy as np, tracejit as tj
from tracejit.codegen_cpu.host.executor import CompileWarning
@tj.jit
def f(x):
    return tj.tanh(x) * 3.0 + 1.0
x = np.linspace(-1, 1, 11, dtype=np.float32)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    first = np.asarray(f(x))
    second = np.asarray(f(x))
timeouts = [w for w in caught if issubclass(w.category, CompileWarning)]
assert len(timeouts) == 1, [str(w.message) for w in caught]
assert "abandoned" in str(timeouts[0].message) and "'f'" in str(timeouts[0].message)
np.testing.assert_allclose(first, np.tanh(x) * 3 + 1, rtol=1e-6)
np.testing.assert_array_equal(first, second)
assert len(f.compile_log) == 1 and "compile timeout" in f.compile_log[0].reason
print("ok")
"""


def test_a_jitted_function_whose_compile_times_out_runs_on_the_interpreter(tmp_path):
    env = dict(os.environ, TRACEJIT_CACHE_DIR="off", TRACEJIT_COMPILE_TIMEOUT="1",
               TRACEJIT_COMPILE_TEST_DELAY="30", TRACEJIT_TUNE="off")
    env.pop("TRACEJIT_CPU_STRICT", None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SLOW)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr


LEAK = """
import gc, os, numpy as np, tracejit as tj
def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
def many(start):
    f = tj.jit(lambda x: tj.tanh(x) * 2.0)
    for n in range(start, start + 100):
        f(np.ones(n, np.float32))
    f.clear_cache(); tj.clear_caches(); gc.collect()
many(1)
base = rss_mb()
for k in range(2):
    many(1000 * (k + 1))
print(rss_mb() - base)
"""


def test_memory_returns_after_many_compiles_and_clear_caches(tmp_path):
    env = dict(os.environ, TRACEJIT_CACHE_DIR="off")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(LEAK)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    growth = float(done.stdout.strip().splitlines()[-1])
    # 200 compiles grew RSS by about 20 MB when LLVM ran in this process.
    assert growth < 6.0, f"RSS grew {growth:.1f} MB over 200 compiles"


def test_no_warnings_from_an_ordinary_compile():
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        assert float(tj.jit(lambda x: tj.reduce_sum(x))(np.ones(5, np.float32))) == 5.0


ORPHAN = """
import threading, time, numpy as np, tracejit as tj
from tracejit.codegen_cpu.host import compile_worker
threading.Thread(target=lambda: tj.jit(lambda x: x * 5.0)(np.ones(3, np.float32)),
                 daemon=True).start()
while not compile_worker._CURRENT:
    time.sleep(0.05)
print(compile_worker._CURRENT[0].proc.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_worker_ends_when_the_program_that_started_it_is_killed(tmp_path):
    # A worker busy compiling does not read its stdin and never saw the pipe close: the
    # workers of killed programs went on compiling (a hung LLVM: forever, at full CPU).
    env = dict(os.environ, TRACEJIT_CACHE_DIR="off", TRACEJIT_COMPILE_TEST_DELAY="60",
               TRACEJIT_TUNE="off")
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(ORPHAN)], env=env,
                              stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)
