"""Many programs in worker subprocesses, each under a deadline.

A worker (``python -m tests.fuzz.worker``) checks one program at a time. A worker that
has not answered within the deadline is killed and its program reported as a *hang*; a
worker that dies (a segfault in generated code, an abort in LLVM) has its program
reported as a *crash*, with the end of its stderr. Either way a fresh worker takes its
place, so one bad program never stops a run.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# NOTE: real compiles (no disk cache), no timing-dependent choices (tuning off: the GEMM
# kernel is each program's own choice, see program.gemm), one thread per worker so that
# workers do not fight over cores; strict lowering (a graph the backend fails to lower
# would otherwise run on the interpreter and agree with itself).
WORKER_ENV = {"TRACEJIT_CACHE_DIR": "off", "TRACEJIT_TUNE": "off", "TRACEJIT_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1",
              "TRACEJIT_CPU_STRICT": "1"}
STARTUP_SECONDS = 120.0
FAILURES = ("mismatch", "error", "crash", "hang", "invalid")


@dataclass
class Outcome:
    task: dict
    status: str
    detail: str = ""
    source: str = ""


@dataclass
class Summary:
    programs: int = 0
    seconds: float = 0.0
    counts: collections.Counter = field(default_factory=collections.Counter)
    failures: list[Outcome] = field(default_factory=list)

    def line(self) -> str:
        c = self.counts
        rate = self.programs / self.seconds if self.seconds else 0.0
        return (f"{self.programs} programs, {c['mismatch']} mismatches, {c['error']} errors, "
                f"{c['crash']} crashes, {c['hang']} hangs, {c['invalid']} invalid, "
                f"{self.seconds:.1f} s ({rate:.1f}/s)")

    @property
    def ok(self) -> bool:
        return not self.failures


class Worker:
    def __init__(self, extra_env: dict | None = None):
        self.stderr = tempfile.TemporaryFile()
        env = {**os.environ, **WORKER_ENV, **(extra_env or {})}
        # NOTE: the leader of its own process group, so that stop() kills the backend's
        # compile processes with it.
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=env, start_new_session=True)
        self.buffer = b""
        self.ready = False
        self.task: dict | None = None
        self.since = time.monotonic()

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def send(self, task: dict) -> None:
        self.task = task
        self.since = time.monotonic()
        self.proc.stdin.write((json.dumps(task) + "\n").encode())
        self.proc.stdin.flush()

    def read(self) -> list[dict] | None:
        """Complete answers available now; None when the worker has exited."""
        chunk = os.read(self.fileno(), 1 << 20)
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def stderr_tail(self, limit: int = 3000) -> str:
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - limit))
        return self.stderr.read().decode(errors="replace")

    def death(self) -> str:
        code = self.proc.wait()
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.stderr.close()


def source_of(task: dict) -> str:
    if "source" in task:
        return task["source"]
    from .generate import generate
    return generate(task["seed"], task["index"], task.get("max_steps", 8)).source()


def run_tasks(tasks: Iterable[dict], *, workers: int, deadline: float,
              on_outcome: Callable[[Outcome], None], extra_env: dict | None = None) -> None:
    """Check every task; ``on_outcome`` sees each result as it arrives."""
    pending = collections.deque(tasks)
    extra_env = _limits(deadline, extra_env)
    pool = [Worker(extra_env) for _ in range(max(1, min(workers, len(pending))))]
    try:
        while pending or any(w.task is not None for w in pool):
            for w in pool:
                if w.ready and w.task is None and pending:
                    w.send(pending.popleft())
            now = time.monotonic()
            limits = [w.since + (deadline if w.ready else STARTUP_SECONDS) for w in pool]
            readable, _, _ = select.select(pool, [], [], max(0.0, min(limits) - now))
            for i, w in enumerate(pool):
                replacement = None
                if w in readable:
                    answers = w.read()
                    if answers is None:         # the worker died
                        task = w.task or {"startup": True}
                        on_outcome(Outcome(task, "crash", f"worker {w.death()}\n"
                                           f"stderr (end):\n{w.stderr_tail()}",
                                           source_of(w.task) if w.task else ""))
                        if w.task is None:
                            raise RuntimeError("a fuzz worker died while starting:\n"
                                               + w.stderr_tail())
                        replacement = Worker(extra_env)
                    for answer in answers or ():
                        if answer.get("ready"):
                            w.ready, w.since = True, time.monotonic()
                            continue
                        task, w.task = w.task, None
                        on_outcome(Outcome(task, answer["status"], answer.get("detail", ""),
                                           answer.get("source", "")))
                elif time.monotonic() > limits[i]:
                    if not w.ready:
                        raise RuntimeError("a fuzz worker did not start:\n" + w.stderr_tail())
                    on_outcome(Outcome(w.task, "hang", f"no answer within {deadline:.0f} s; "
                                       "the worker was killed", source_of(w.task)))
                    replacement = Worker(extra_env)
                if replacement is not None:
                    w.stop()
                    pool[i] = replacement
    finally:
        for w in pool:
            w.stop()


def _limits(deadline: float, extra_env: dict | None) -> dict:
    """The backend abandons a compile at 3/4 of the deadline (check.py reports its
    CompileWarning as a hang), before the worker is killed."""
    return {"TRACEJIT_COMPILE_TIMEOUT": f"{0.75 * deadline:g}", **(extra_env or {})}


def worker_env(placed: bool, device: str | None) -> dict | None:
    """What a worker's environment needs for placed or GPU checks."""
    env = {}
    if placed:
        env["TRACEJIT_CPU_DEVICES"] = "3"
    if device is not None and device.startswith("gpu"):
        env["TRACEJIT_GPU"] = "sim"
    return env or None


def run_programs(seed: int, indices: Iterable[int], *, workers: int = 2,
                 deadline: float = 20.0, max_steps: int = 8, progress=None,
                 placed: bool = False, device: str | None = None) -> Summary:
    """Check programs ``indices`` of ``seed``; ``progress(summary)`` is called after each.
    ``placed``: each compiled program's steps pinned at random over three CPU devices
    (check.py); ``device``: compiled for that device (``gpu``: the CUDA simulator)."""
    summary = Summary()
    start = time.monotonic()

    def record(outcome: Outcome) -> None:
        summary.programs += 1
        summary.counts[outcome.status] += 1
        if outcome.status in FAILURES:
            summary.failures.append(outcome)
        summary.seconds = time.monotonic() - start
        if progress is not None:
            progress(summary)

    tasks = [{"seed": seed, "index": i, "max_steps": max_steps, "placed": placed,
              "device": device} for i in indices]
    run_tasks(tasks, workers=workers, deadline=deadline, on_outcome=record,
              extra_env=worker_env(placed, device))
    summary.seconds = time.monotonic() - start
    return summary


def report(outcome: Outcome) -> str:
    """A failure as text: what went wrong, the program, and how to rerun it."""
    task = outcome.task
    if "index" in task:
        title = f"seed={task['seed']} index={task['index']}"
        steps = task.get("max_steps", 8)
        rerun = (f"python -m tests.fuzz repro --seed {task['seed']} --index {task['index']}"
                 + (f" --max-steps {steps}" if steps != 8 else "")
                 + (" --placed" if task.get("placed") else "")
                 + (f" --device {task['device']}" if task.get("device") else ""))
    else:
        title, rerun = "a given program", "python -m tests.fuzz check <file with the source>"
    return "\n".join([f"==== FUZZ {outcome.status.upper()}: {title}", outcome.detail,
                      "---- program", outcome.source.rstrip(), f"---- rerun: {rerun}", ""])


class Session:
    """One worker reused for tasks checked one by one (repro, the minimizer), replaced
    after a crash or a hang."""

    def __init__(self, deadline: float = 20.0, extra_env: dict | None = None):
        self.deadline = deadline
        self.extra_env = _limits(deadline, extra_env)
        self.worker: Worker | None = None

    def check(self, task: dict) -> Outcome:
        if self.worker is None:
            self.worker = Worker(self.extra_env)
            if self._wait(STARTUP_SECONDS)[0] != "ready":
                raise RuntimeError("a fuzz worker did not start:\n" + self.worker.stderr_tail())
        self.worker.send(task)
        event, answer = self._wait(self.deadline)
        if event == "answer":
            self.worker.task = None
            return Outcome(task, answer["status"], answer.get("detail", ""),
                           answer.get("source", ""))
        w, self.worker = self.worker, None
        if event == "timeout":
            w.stop()
            return Outcome(task, "hang", f"no answer within {self.deadline:.0f} s; the worker "
                           "was killed", source_of(task))
        outcome = Outcome(task, "crash", f"worker {w.death()}\nstderr (end):\n"
                          f"{w.stderr_tail()}", source_of(task))
        w.stop()
        return outcome

    def _wait(self, seconds: float) -> tuple[str, dict | None]:
        """("answer", answer), ("ready", None) when a starting worker is ready and has no
        task, ("dead", None) at the worker's end of output, or ("timeout", None)."""
        w = self.worker
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            readable, _, _ = select.select([w], [], [], max(0.0, end - time.monotonic()))
            if not readable:
                continue
            answers = w.read()
            if answers is None:
                return "dead", None
            for answer in answers:
                if answer.get("ready"):
                    w.ready = True
                    continue
                return "answer", answer
            if w.ready and w.task is None:
                return "ready", None
        return "timeout", None

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
