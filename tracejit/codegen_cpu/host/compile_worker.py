"""LLVM's optimizer and code generator in a child process: bounded memory and time.

Two reasons to run O3 and ``emit_object`` away from the user's process:

* **Memory.** llvmlite's pass builder allocates a PassInstrumentationCallbacks that it
  never frees, and every run registers more callbacks in it: about 100 KB of native
  memory per compile stayed allocated forever (a service compiling new shapes grew
  15 MB per 150 compiles; ``clear_caches`` and ``gc`` returned nothing). The worker
  is replaced after ``RECYCLE_AFTER`` compiles, which returns that memory to the OS.
* **Time.** Some IR shapes send LLVM's loop vectorizer into a loop that never ends. A
  compile in another process can be abandoned: after ``TRACEJIT_COMPILE_TIMEOUT``
  seconds (default ``DEFAULT_TIMEOUT``; ``0`` or ``off`` for none) the worker is killed
  and :class:`CompileTimeout` raised; the executor then runs that graph on the
  reference interpreter, with a warning.

The worker is this file run as a script (it imports llvmlite only, so it starts in
tens of milliseconds, not the seconds a ``tracejit`` import takes). The protocol over
its stdin/stdout is frames of a 4-byte little-endian length and bytes: a request is a
JSON header (``cpu``, ``features``, ``level``) and the LLVM IR text; a reply is a JSON
header (``ok``, ``error``) and the object code. Nothing is pickled. Compiling in the
parent (``TRACEJIT_COMPILE_WORKER=off``) remains possible, without either bound.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import threading
import time

import llvmlite.binding as llvm

__all__ = ["CompileTimeout", "CompileFailed", "WORKER_ENV", "TIMEOUT_ENV", "DELAY_ENV",
           "DEFAULT_TIMEOUT", "LLVM_OPTIONS", "RECYCLE_AFTER", "compile_in_process",
           "compile_timeout", "emit_object", "machine", "restart", "run_pipeline"]

WORKER_ENV = "TRACEJIT_COMPILE_WORKER"
TIMEOUT_ENV = "TRACEJIT_COMPILE_TIMEOUT"
# Seconds the worker sleeps before each compile: how the tests make a compile slow.
DELAY_ENV = "TRACEJIT_COMPILE_TEST_DELAY"
DEFAULT_TIMEOUT = 60.0
# The process id the worker watches (its parent at the time it was started).
PARENT_ENV = "TRACEJIT_COMPILE_PARENT"
RECYCLE_AFTER = 200
_LENGTH = struct.Struct("<I")


class CompileTimeout(RuntimeError):
    """LLVM did not finish compiling a module within the time limit."""


class CompileFailed(RuntimeError):
    """LLVM rejected a module (or the worker died compiling it)."""


# ---- what both sides run ---------------------------------------------------------------


def machine(cpu: str, features: str) -> llvm.TargetMachine:
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=cpu, features=features, opt=3, jit=True)


# LLVM command-line options every compile runs with (process-wide, set once).
#
# -vectorizer-min-trip-count=1: a loop of fewer than 16 iterations (a row of 9, 3
# channels) is otherwise vectorized only with its tail folded into masked loads and
# stores, and LLVM 22.1's x86 back end turns a masked store of one narrowed lane
# (float32 rounded to bfloat16/float16 in integers, int32 cast to int16) into a store
# of the wide lane: two bytes written past the array (llvm/llvm-project#179489, fixed
# after 22.1.0). With it such loops get a scalar remainder instead of masked stores.
LLVM_OPTIONS = ("-vectorizer-min-trip-count=1",)
_options_set = False


def set_llvm_options() -> None:
    global _options_set
    if not _options_set:
        for option in LLVM_OPTIONS:
            llvm.set_option("tracejit", option)
        _options_set = True


def run_pipeline(module: llvm.ModuleRef, tm: llvm.TargetMachine, level: int) -> llvm.ModuleRef:
    """LLVM's O``level`` pipeline with the loop and SLP vectorizers, in place."""
    set_llvm_options()
    pto = llvm.create_pipeline_tuning_options(level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)
    return module


def compile_in_process(ir_text: str, cpu: str, features: str, level: int) -> bytes:
    ref = llvm.parse_assembly(ir_text)
    ref.verify()
    tm = machine(cpu, features)
    return tm.emit_object(run_pipeline(ref, tm, level))


# ---- the worker process ------------------------------------------------------------------


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise CompileTimeout("no reply in time")
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the pipe closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float | None = None) -> bytes:
    (n,) = _LENGTH.unpack(_read_exact(fd, _LENGTH.size, deadline))
    return _read_exact(fd, n, deadline)


def _write_frames(fd: int, *frames: bytes) -> None:
    data = b"".join(_LENGTH.pack(len(f)) + f for f in frames)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _exit_with_parent(parent: int, period: float = 1.0) -> None:
    """End this process once ``parent`` is gone. A compile that never finishes does not
    read stdin, so it would not see the pipe close: workers of killed programs spun in
    LLVM for as long as anyone let them. (A thread, not PR_SET_PDEATHSIG: that fires
    when the *thread* that started the worker ends, which in a user's thread pool is
    long before the process.) llvmlite calls release the GIL, so this thread runs."""
    def watch():
        while os.getppid() == parent:
            time.sleep(period)
        os._exit(0)
    threading.Thread(target=watch, name="tracejit-parent-watch", daemon=True).start()


def _serve() -> None:
    _exit_with_parent(int(os.environ.get(PARENT_ENV) or os.getppid()))
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    delay = float(os.environ.get(DELAY_ENV) or 0)
    while True:
        try:
            header = json.loads(_read_frame(stdin))
            text = _read_frame(stdin).decode()
        except EOFError:
            return
        time.sleep(delay)
        try:
            obj = compile_in_process(text, header["cpu"], header["features"], header["level"])
            _write_frames(stdout, json.dumps({"ok": True}).encode(), obj)
        except Exception as exc:        # noqa: BLE001 (reported to the parent)
            _write_frames(stdout, json.dumps({"ok": False, "error": repr(exc)}).encode(), b"")


# ---- the parent's side -----------------------------------------------------------------


def compile_timeout() -> float | None:
    """Seconds a compile may take (``TRACEJIT_COMPILE_TIMEOUT``); None: no limit."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip().lower()
    if not raw:
        return DEFAULT_TIMEOUT
    if raw in ("0", "off", "none"):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: expected seconds, or 0/off for no "
                         "limit") from None
    return value if value > 0 else None


def _use_worker() -> bool:
    return os.environ.get(WORKER_ENV, "").strip().lower() not in ("0", "off", "no", "false")


class _Worker:
    def __init__(self):
        # NOTE: -S and sys.path[0] dropped: nothing of the user's site or working
        # folder shadows a module the worker imports; the parent's paths find llvmlite.
        start = (f"import sys; sys.path.pop(0); import runpy; "
                 f"runpy.run_path({os.path.abspath(__file__)!r}, run_name='__main__')")
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-c", start], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_worker_env(),
            close_fds=True)
        self.compiles = 0

    def compile(self, ir_text: str, cpu: str, features: str, level: int,
                timeout: float | None) -> bytes:
        header = json.dumps({"cpu": cpu, "features": features, "level": level}).encode()
        _write_frames(self.proc.stdin.fileno(), header, ir_text.encode())
        deadline = None if timeout is None else time.monotonic() + timeout
        reply = json.loads(_read_frame(self.proc.stdout.fileno(), deadline))
        obj = _read_frame(self.proc.stdout.fileno(), deadline)
        self.compiles += 1
        if not reply["ok"]:
            raise CompileFailed(reply["error"])
        return obj

    def stop(self, kill: bool = False) -> None:
        proc = self.proc
        try:
            if kill:
                proc.kill()
            else:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _worker_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env[PARENT_ENV] = str(os.getpid())
    return env


_LOCK = threading.Lock()
_CURRENT: list[_Worker] = []


def _forget_after_fork() -> None:
    # NOTE: a forked child must not talk to its parent's worker through shared pipes.
    global _LOCK
    _LOCK = threading.Lock()
    _CURRENT.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def restart() -> None:
    """Stop the current worker; the next compile starts a fresh one (which reads the
    environment again)."""
    with _LOCK:
        if _CURRENT:
            _CURRENT.pop().stop()


def emit_object(ir_text: str, cpu: str, features: str, level: int = 3) -> bytes:
    """Object code of ``ir_text`` optimized at O``level`` for ``cpu``/``features``, made
    in the worker under the time limit (or here when the worker is turned off)."""
    if not _use_worker():
        return compile_in_process(ir_text, cpu, features, level)
    timeout = compile_timeout()
    with _LOCK:
        if not _CURRENT:
            _CURRENT.append(_Worker())
        worker = _CURRENT[0]
        try:
            obj = worker.compile(ir_text, cpu, features, level, timeout)
        except CompileTimeout:
            _CURRENT.clear()
            worker.stop(kill=True)
            raise CompileTimeout(f"LLVM did not finish within {timeout:g} s "
                                 f"({TIMEOUT_ENV}); the compile was stopped") from None
        except (EOFError, OSError, ValueError) as exc:
            _CURRENT.clear()
            worker.stop(kill=True)
            raise CompileFailed(f"the compile worker died: {exc!r}") from None
        if worker.compiles >= RECYCLE_AFTER:
            _CURRENT.clear()
            worker.stop()
        return obj


if __name__ == "__main__":
    _serve()
