"""The GPU smoke runs of the examples and of benchmarks/gpu_workloads.py on numba's CUDA
simulator (TRACEJIT_GPU=sim): each in its own process (the simulator replaces numba.cuda
for a whole process), the three started together so the test takes about as long as the
slowest, which is well under a minute."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None

pytestmark = pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda is not installed")

TIMEOUT = 150


def _start(args, tmp_path):
    env = {**os.environ, "TRACEJIT_GPU": "sim", "OUT": ""}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc) -> str:
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"{proc.args} took over {TIMEOUT} s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.mark.skipif(not HAVE_SKLEARN, reason="the examples need scikit-learn's digits")
def test_examples_and_gpu_workloads_run_on_the_simulated_gpu(tmp_path):
    jit = _start(["examples/cnn_digits_jit.py", "--device", "/gpu:0", "--tiny",
                  "--steps", "2", "--test-images", "4", "--logdir",
                  str(tmp_path / "logs")], tmp_path)
    tf1 = _start(["examples/deep_mnist_tf1.py", "--device", "/gpu:0", "--tiny"], tmp_path)
    bench = _start(["benchmarks/gpu_workloads.py", "--tiny", "--runs", "1",
                    "--out", str(tmp_path / "bench")], tmp_path)

    out = _finish(jit)
    losses = [float(v) for v in re.findall(r"step \d+ loss (\S+)", out)]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses), out
    assert "(trained on /gpu:0)" in out

    out = _finish(tf1)
    assert "test accuracy" in out, out

    out = _finish(bench)
    results = (tmp_path / "bench" / "gpu_results.json").read_text()
    for wid in ("W1", "W2", "W3"):
        assert f'"{wid}"' in results
    assert '"error"' not in results, results
