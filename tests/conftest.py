"""Suite-wide guard: a test that hangs fails loudly instead of stalling the run.

A program that never returns (a deadlock in native code, where Python's own timers
cannot run because the thread holds the GIL) would otherwise eat CI's whole budget.
Each test runs under ``faulthandler.dump_traceback_later``: past the deadline the
process writes every thread's Python stack to a file and exits; pytest-xdist reports
the worker as crashed *naming the test*, starts a new one and goes on, and the
controller prints the stacks in its summary. ``TRACEJIT_TEST_DEADLINE`` (seconds,
default 600; 0 turns the guard off) sets the deadline.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The CUDA backend's /gpu:0 is numba's CUDA simulator in the test suite (every op-table
# test runs on it); benchmarks/gpu_check.sh sets TRACEJIT_GPU=cuda on a GPU machine. It
# must be decided before anything imports numba.cuda (codegen_cuda/mode.py).
if importlib.util.find_spec("numba_cuda") is not None:
    os.environ.setdefault("TRACEJIT_GPU", "sim")

DEADLINE_ENV = "TRACEJIT_TEST_DEADLINE"
HANG_DIR_ENV = "TRACEJIT_TEST_HANG_DIR"
_dump_file: list = []            # this process's open dump file, once opened


def _deadline() -> float:
    try:
        return float(os.environ.get(DEADLINE_ENV, "600"))
    except ValueError:
        return 600.0


def pytest_configure(config) -> None:
    # the controller picks the folder; xdist's workers inherit it through the environment
    if not hasattr(config, "workerinput") and HANG_DIR_ENV not in os.environ:
        os.environ[HANG_DIR_ENV] = tempfile.mkdtemp(prefix="tracejit-hangs-")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    deadline = _deadline()
    folder = os.environ.get(HANG_DIR_ENV)
    if deadline <= 0 or not folder:
        yield
        return
    if not _dump_file:
        _dump_file.append(open(Path(folder) / f"stacks-{os.getpid()}.txt", "w"))  # noqa: SIM115
    dump = _dump_file[0]
    dump.seek(0)
    dump.truncate()
    dump.write(f"{item.nodeid} ran past {deadline:g} s; every thread's stack:\n")
    dump.flush()
    faulthandler.dump_traceback_later(deadline, exit=True, file=dump)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if hasattr(config, "workerinput"):
        return
    folder = os.environ.get(HANG_DIR_ENV)
    if not folder or not Path(folder).is_dir():
        return
    for path in sorted(Path(folder).glob("stacks-*.txt")):
        text = path.read_text(errors="replace")
        if "Thread 0x" in text or "Current thread" in text:
            terminalreporter.section(f"hung test ({path.name})", sep="=")
            terminalreporter.write_line(text)


def pytest_unconfigure(config) -> None:
    # the controller made the folder; its stacks were printed in the summary
    if not hasattr(config, "workerinput"):
        folder = os.environ.pop(HANG_DIR_ENV, None)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def no_gpu(monkeypatch):
    """This process as a machine without a GPU (the suite's /gpu:0 is the simulator)."""
    from tracejit.codegen_cuda import mode
    monkeypatch.setattr(mode, "gpu_count", lambda: 0)
