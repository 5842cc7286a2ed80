"""Start the processes of one configuration of the distributed benchmark on 127.0.0.1,
step them through their barriers, collect what they wrote, and kill every one of them.

Each process runs ``python -m benchmarks.dist_task`` in a session (process group) of
its own, so that killing the group also ends anything it started; every wait has a
deadline; whatever happens, the ``finally`` kills every group still alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracejit.cluster import free_port

from .dist_graphs import PER_WORKER_BATCH

ROOT = Path(__file__).resolve().parent.parent
PS_UP_S = 120.0         # a ps process imports its framework and binds: bounded
PS_DUMP_S = 10.0        # a tracejit ps writes its request log on SIGTERM
POLL_S = 0.02

__all__ = ["Config", "LaunchError", "launch", "task_env", "SPAWNED"]

# every process this module started, so that a test can check none outlived its run
SPAWNED: list[int] = []


@dataclass(frozen=True)
class Config:
    framework: str      # tracejit | tensorflow
    workload: str       # W4 | W5
    mode: str           # local | async | sync | allreduce
    workers: int

    @property
    def name(self) -> str:
        return f"{self.framework} {self.workload} {self.mode} x{self.workers}"

    @property
    def ps(self) -> int:
        return 1 if self.mode in ("async", "sync") else 0


class LaunchError(RuntimeError):
    pass


def task_env(framework: str) -> dict:
    """One thread per process for every framework and library (so the figures compare
    like with like and the workers of a run do not fight over the cores with pools),
    and no GPU for TensorFlow."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.update(TRACEJIT_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    if framework == "tensorflow":
        env.update(CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    return env


class _Tasks:
    """The processes of one configuration and their log files."""

    def __init__(self, rundir: Path, python: str, env: dict):
        self.rundir, self.python, self.env = rundir, python, env
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> None:
        with open(self.rundir / f"{name}.log", "w") as log:
            self.procs[name] = subprocess.Popen(
                [self.python, "-m", "benchmarks.dist_task", *args], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        SPAWNED.append(self.procs[name].pid)

    def wait_for(self, done: Callable[[], bool], deadline: float, what: str,
                 watch: list[str]) -> None:
        """Until ``done()``; a watched process that exits first, or the deadline, fails."""
        while not done():
            for name in watch:
                code = self.procs[name].poll()
                if code is not None and not done():
                    raise LaunchError(f"{name} exited with code {code} while waiting for "
                                      f"{what}: {self.tail(name)}")
            if time.monotonic() > deadline:
                raise LaunchError(f"timed out waiting for {what}")
            time.sleep(POLL_S)

    def tail(self, name: str, lines: int = 3) -> str:
        try:
            text = (self.rundir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        kept = [ln for ln in text.splitlines() if ln.strip() and "cuda" not in ln.lower()]
        return " | ".join(kept[-lines:])[-600:]

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass            # unkillable (D state): nothing more a driver can do


def launch(cfg: Config, python: str, steps: int, warmup: int, timeout_s: float,
           timeout_ms: int = 120_000, extra: tuple[str, ...] = ()) -> dict:
    """Run ``cfg`` once; returns what the workers (and a tracejit ps) wrote:
    ``{"workers": [...], "ps": {...} | None}``. Raises LaunchError naming the process
    that failed, with the last lines of its log."""
    rundir = Path(tempfile.mkdtemp(prefix="tj-dist-"))
    tasks = _Tasks(rundir, python, task_env(cfg.framework))
    deadline = time.monotonic() + timeout_s
    try:
        ps_hosts = [f"127.0.0.1:{free_port()}" for _ in range(cfg.ps)]
        worker_hosts = [f"127.0.0.1:{free_port()}" for _ in range(cfg.workers)]
        common = ["--framework", cfg.framework, "--workload", cfg.workload, "--mode",
                  cfg.mode, "--batch", str(PER_WORKER_BATCH[cfg.workload]), "--steps",
                  str(steps), "--warmup", str(warmup), "--rundir", str(rundir),
                  "--ps_hosts", ",".join(ps_hosts), "--worker_hosts", ",".join(worker_hosts),
                  "--timeout_ms", str(timeout_ms), *extra]
        for i in range(cfg.ps):
            tasks.start(f"ps{i}", [*common, "--job", "ps", "--task", str(i)])
        if cfg.ps:
            tasks.wait_for(lambda: all((rundir / f"ps{i}.up").exists()
                                       for i in range(cfg.ps)),
                           min(deadline, time.monotonic() + PS_UP_S), "the ps to start",
                           [f"ps{i}" for i in range(cfg.ps)])
        job = "local" if cfg.mode == "local" else "worker"
        names = [f"worker{i}" for i in range(cfg.workers)]
        for i, name in enumerate(names):
            tasks.start(name, [*common, "--job", job, "--task", str(i)])
        everyone = list(tasks.procs)
        if job == "worker":
            tasks.wait_for(lambda: all((rundir / f"ready{i}").exists()
                                       for i in range(cfg.workers)),
                           deadline, "the workers' warm-up", everyone)
            (rundir / "go").write_text("")
        tasks.wait_for(lambda: all((rundir / f"{n}.json").exists() for n in names),
                       deadline, "the workers' timed steps", everyone)
        (rundir / "done").write_text("")
        ps_record = None
        if cfg.ps and cfg.framework == "tracejit":
            tasks.procs["ps0"].send_signal(signal.SIGTERM)
            dump = rundir / "ps0.json"
            tasks.wait_for(dump.exists, time.monotonic() + PS_DUMP_S, "the ps's request log",
                           [])
            ps_record = json.loads(dump.read_text())
        workers = [json.loads((rundir / f"{n}.json").read_text()) for n in names]
        return {"workers": workers, "ps": ps_record}
    finally:
        tasks.kill_all()
        shutil.rmtree(rundir, ignore_errors=True)


def run_probe(python: str, tries: int = 30, timeout_s: float = 120.0) -> dict:
    """tracejit's message latency and per-byte cost on loopback: a ps process and the
    probe client of dist_task.py."""
    rundir = Path(tempfile.mkdtemp(prefix="tj-dist-probe-"))
    tasks = _Tasks(rundir, python, task_env("tracejit"))
    deadline = time.monotonic() + timeout_s
    try:
        ps = f"127.0.0.1:{free_port()}"
        common = ["--rundir", str(rundir), "--ps_hosts", ps, "--worker_hosts",
                  f"127.0.0.1:{free_port()}", "--steps", str(tries)]
        tasks.start("ps0", [*common, "--job", "ps"])
        tasks.wait_for((rundir / "ps0.up").exists, deadline, "the ps to start", ["ps0"])
        tasks.start("probe", [*common, "--job", "probe"])
        out = rundir / "probe.json"
        tasks.wait_for(out.exists, deadline, "the probe", ["probe"])
        return json.loads(out.read_text())
    finally:
        tasks.kill_all()
        shutil.rmtree(rundir, ignore_errors=True)
