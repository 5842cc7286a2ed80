"""Processes of a loopback cluster for the tests: examples/distributed_mnist.py's tasks
started with free ports, each bounded in time and killed when the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tracejit.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "distributed_mnist.py"


class LoopbackCluster:
    """``with LoopbackCluster(workers=2) as c: c.start("ps", 0); ...``; every process it
    started is killed on exit."""

    def __init__(self, workers: int, tmp: Path, **flags):
        self.ps = [f"127.0.0.1:{free_port()}"]
        self.workers = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
        self.tmp = tmp
        self.flags = [f"--ps_hosts={','.join(self.ps)}",
                      f"--worker_hosts={','.join(self.workers)}"]
        self.flags += [f"--{k}={v}" if v is not True else f"--{k}" for k, v in flags.items()]
        self.procs: list[subprocess.Popen] = []

    def start(self, job: str, task: int, *extra: str) -> subprocess.Popen:
        log = open(self.tmp / f"{job}{task}-{len(self.procs)}.log", "w")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), f"--job_name={job}", f"--task_index={task}",
             *self.flags, *extra], stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        proc.log_path = log.name
        log.close()
        self.procs.append(proc)
        return proc

    def progress(self, worker: int) -> Path:
        return self.tmp / f"progress{worker}.txt"

    def steps_done(self, worker: int) -> int:
        path = self.progress(worker)
        return len(path.read_text().split()) if path.exists() else 0

    def wait_steps(self, worker: int, steps: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.steps_done(worker) < steps:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {worker} did not reach step {steps} in "
                                     f"{timeout} s; its log:\n{self.logs()}")
            time.sleep(0.05)

    def wait(self, proc: subprocess.Popen, timeout: float) -> int:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a task ran past {timeout} s; logs:\n{self.logs()}") \
                from None

    def logs(self) -> str:
        return "\n".join(f"--- {Path(p.log_path).name}\n{Path(p.log_path).read_text()[-3000:]}"
                         for p in self.procs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        return False
